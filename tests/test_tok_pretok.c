/* Pre-tokenizers and Unicode helpers: the reference vectors for the
 * "default" (bitnet.cpp) and LLaMA-3 splitters, falcon3's, class tables,
 * UTF-8 and the GPT-2 byte map, and the choice of pre-tokenizer from the
 * file / override. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "gguf_writer.h"
#include "tok_internal.h"
#include "tok_test_util.h"
#include "unicode.h"

/* Collects pieces as "|"-joined bytes (no test input contains '|'). */
typedef struct pieces {
    const char *text;
    const uint32_t *off;
    char out[1024];
    size_t n;
} pieces;

static int collect(void *ctx, size_t a, size_t b)
{
    pieces *p = ctx;
    size_t len = p->off[b] - p->off[a];
    if (p->n) p->out[p->n++] = '|';
    memcpy(p->out + p->n, p->text + p->off[a], len);
    p->n += len;
    p->out[p->n] = '\0';
    return 0;
}

/* which: 0 "default", 1 LLaMA-3, 2 falcon3 / falcon_e */
static void split(int which, const char *text, pieces *p)
{
    uint32_t cp[512], off[513];
    size_t m = 0, i = 0, n = strlen(text);
    while (i < n) {
        int k = bn_utf8_decode((const unsigned char *)text + i, n - i, &cp[m]);
        assert_true(k > 0);
        off[m++] = (uint32_t)i;
        i += (size_t)k;
    }
    off[m] = (uint32_t)n;
    p->text = text;
    p->off = off;
    p->n = 0;
    p->out[0] = '\0';
    if (which == 1) assert_int_equal(bn_pretok_llama3(cp, m, collect, p), 0);
    else if (which == 2) assert_int_equal(bn_pretok_falcon3(cp, m, collect, p), 0);
    else assert_int_equal(bn_pretok_default(cp, m, collect, p), 0);
}

/* docs/TOKENIZER.md, default pre-tokenizer table: input, DEFAULT pieces, LLaMA-3 pieces. */
static const char *const spec_vectors[][3] = {
    { "don't stop", "don|'|t| stop", "don|'t| stop" },
    { "Hello, world! (x) non-linear 12345",
      "Hello|,| world|!| |(|x|)| non|-|linear| |123|45",
      "Hello|,| world|!| (|x|)| non|-linear| |123|45" },
    { " `code` a  b\n\nc", " `|code|`| a| | b|\n|\n|c", " `|code|`| a| | b|\n\n|c" },
    { "User: Hi<x>Assistant: ", "User|:| Hi|<|x|>|Assistant|:| ", "User|:| Hi|<x|>Assistant|:| " },
    { " 3.14159 \xE2\x82\xAC" "5 caf\xC3\xA9", " |3|.|141|59| \xE2\x82\xAC|5| caf\xC3\xA9",
      " |3|.|141|59| \xE2\x82\xAC|5| caf\xC3\xA9" },
};

static void test_spec_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof spec_vectors / sizeof spec_vectors[0]; i++) {
        pieces p;
        split(0, spec_vectors[i][0], &p);
        assert_string_equal(p.out, spec_vectors[i][1]);
        split(1, spec_vectors[i][0], &p);
        assert_string_equal(p.out, spec_vectors[i][2]);
    }
}

/* README pitfalls, checked at the piece level. */
static void test_llama3_pitfalls(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        { "1234567890123", "123|456|789|012|3" },
        { "In 1492", "In| |149|2" },
        { "   123", "  | |123" },
        { "a    b", "a|   | b" },
        { "spaces   ", "spaces|   " },
        { "a   \nb", "a|   \n|b" },
        { "a   \n   b", "a|   \n|  | b" },
        { "x  \n  y", "x|  \n| | y" },
        { "a\r\nb", "a|\r\n|b" },
        { "\tabc", "\tabc" },
        { "\nabc", "\n|abc" },
        { "end.\n\n", "end|.\n\n" },
        { " !!\n\n\nx", " !!\n\n\n|x" },
        { "$abc", "$abc" },
        { "'Sand", "'S|and" },
        { "JOHN'S", "JOHN|'S" },
        { "We'Ve a'lL", "We|'Ve| a|'lL" },
        { "it'\xC5\xBF", "it|'\xC5\xBF" },                 /* U+017F folds to s */
        { "don\xE2\x80\x99t", "don|\xE2\x80\x99t" },       /* U+2019 is not a contraction */
        { "l'homme", "l|'homme" },
        { "cafe\xCC\x81", "cafe|\xCC\x81" },
        { "\xF0\xAE\xAF\xB0's", "\xF0\xAE\xAF\xB0|'s" },   /* U+2EBF0 (Unicode 16 letter) */
        { "\xD9\xA1\xD9\xA2\xD9\xA3\xD9\xA4", "\xD9\xA1\xD9\xA2\xD9\xA3|\xD9\xA4" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        pieces p;
        split(1, v[i][0], &p);
        assert_string_equal(p.out, v[i][1]);
    }
}

static void test_default_details(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        { "it's 'RE", "it|'|s| |'|RE" },                /* regex 1 takes the apostrophe first */
        { "a \xE2\x80\x94 b", "a| |\xE2\x80\x94| b" },   /* em dash is P */
        { "x 1234567", "x| |123|456|7" },
        { "\xD9\xA1\xD9\xA2" "345", "\xD9\xA1\xD9\xA2|345" },
        { "a`b", "a|`|b" },                               /* backtick is not in regex 1 */
        { "   ", "   " },
        { "a  ", "a|  " },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        pieces p;
        split(0, v[i][0], &p);
        assert_string_equal(p.out, v[i][1]);
    }
}

/* falcon3 = default's scheme with the backtick in regex 1 and [0-9]
 * isolating every ASCII digit in place of default's \p{N}+ and triples. */
static void test_falcon3_details(void **state)
{
    (void)state;
    static const char *const v[][2] = {
        { "it's", "it|'|s" },
        { " 12345", " |1|2|3|4|5" },                      /* the space alone */
        { "a `b", "a| |`|b" },                            /* regex 1 takes the backtick */
        { "x+=1", "x|+=|1" },
        { "1.5e10", "1|.|5|e|1|0" },
        { "\xD9\xA1\xD9\xA2", "\xD9\xA1\xD9\xA2" },       /* non-ASCII digits stay together */
        { "\xE2\x82\xAC" "5", "\xE2\x82\xAC|5" },         /* a symbol (Sc) is not regex 1 */
        { "a \xE2\x80\x94 b", "a| |\xE2\x80\x94| b" },
        { "Hello, world! (x) 2024", "Hello|,| world|!| |(|x|)| |2|0|2|4" },
        { "   ", "   " },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        pieces p;
        split(2, v[i][0], &p);
        assert_string_equal(p.out, v[i][1]);
    }
    /* the difference to default on the same texts */
    pieces p;
    split(0, "a `b", &p);
    assert_string_equal(p.out, "a| `|b");
    split(0, " 12345", &p);
    assert_string_equal(p.out, " |123|45");
}

static void test_unicode_classes(void **state)
{
    (void)state;
    assert_true(bn_uc_is_letter('a') && bn_uc_is_letter(0x17F) && bn_uc_is_letter(0x4F60));
    assert_true(bn_uc_is_letter(0x2EBF0));                     /* Unicode 16 delta */
    assert_true(bn_uc_is_number('7') && bn_uc_is_number(0xB2) && bn_uc_is_number(0xBD));
    assert_true(bn_uc_is_number(0x216B) && bn_uc_is_number(0x2460) && bn_uc_is_number(0x661));
    assert_false(bn_uc_is_letter(0x301) || bn_uc_is_number(0x301));   /* combining mark */
    static const uint32_t ws[] = { 9, 10, 11, 12, 13, 0x20, 0x85, 0xA0, 0x1680, 0x2000,
                                   0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 };
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) assert_true(bn_uc_is_space(ws[i]));
    static const uint32_t not_ws[] = { 0xFEFF, 0x200B, 0x180E, 0x1C, 0x1F, 0, 'a' };
    for (size_t i = 0; i < sizeof not_ws / sizeof not_ws[0]; i++) assert_false(bn_uc_is_space(not_ws[i]));
    assert_int_equal(bn_uc_class(0x2014) & BN_UC_CAT_MASK, BN_UC_PUNCT);
    assert_int_equal(bn_uc_class(0x20AC) & BN_UC_CAT_MASK, BN_UC_SYMBOL);
    assert_int_equal(bn_uc_class(0x110000), BN_UC_OTHER);
    int letters = 0;
    for (uint32_t c = 0; c < 0x110000; c++) letters += bn_uc_is_letter(c);
    assert_true(letters > 140000);    /* Unicode 16: 142,759 */
}

static void test_utf8_and_byte_map(void **state)
{
    (void)state;
    uint32_t cp;
    unsigned char buf[4];
    for (uint32_t c = 0; c < 0x110000; c += (c < 0x800 ? 1 : 97)) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        int n = bn_utf8_encode(c, buf);
        assert_int_equal(bn_utf8_decode(buf, (size_t)n, &cp), n);
        assert_int_equal(cp, c);
        if (n > 1) assert_int_equal(bn_utf8_partial(buf, (size_t)n - 1), n - 1);
    }
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xC0\x80", 2, &cp), 0);
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xE0\x9F\xBF", 3, &cp), 0);
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xED\xA0\x80", 3, &cp), 0);
    assert_int_equal(bn_utf8_decode((const unsigned char *)"\xF4\x90\x80\x80", 4, &cp), 0);
    assert_int_equal(bn_utf8_partial((const unsigned char *)"\xED\xA0", 2), 1);   /* ED may go on */
    assert_int_equal(bn_utf8_partial((const unsigned char *)"\xE2\x82", 2), 2);
    assert_int_equal(bn_utf8_partial((const unsigned char *)"\x80", 1), 0);
    /* GPT-2 map: a bijection; space -> U+0120, newline -> U+010A, 0xAD -> U+0143 */
    int seen[0x144] = { 0 };
    for (int b = 0; b < 256; b++) {
        uint32_t c = bn_gpt2_byte_to_cp((unsigned char)b);
        assert_true(c < 0x144 && !seen[c]);
        seen[c] = 1;
        assert_int_equal(bn_gpt2_cp_to_byte(c), b);
    }
    assert_int_equal(bn_gpt2_byte_to_cp(' '), 0x120);
    assert_int_equal(bn_gpt2_byte_to_cp('\n'), 0x10A);
    assert_int_equal(bn_gpt2_byte_to_cp(0xAD), 0x143);
    assert_int_equal(bn_gpt2_cp_to_byte(0x20), -1);
    assert_int_equal(bn_gpt2_cp_to_byte(0x144), -1);
}

/* A small byte-level vocab: all 256 bytes, a few merges, four specials. */
static bn_tokenizer *tiny_vocab(const char *pre_key, const char *override, char *err, size_t errlen)
{
    static char texts[262][16];
    gguf_str toks[262];
    int32_t types[262];
    int n = 0;
    for (int b = 0; b < 256; b++, n++) {
        unsigned char u[4];
        int k = bn_utf8_encode(bn_gpt2_byte_to_cp((unsigned char)b), u);
        memcpy(texts[n], u, (size_t)k);
        toks[n].ptr = texts[n];
        toks[n].len = (uint64_t)k;
        types[n] = 1;
    }
    const char *extra[] = { "ab", "abc", "<s>", "</s>", "<|eot_id|>", "<|eom_id|>" };
    for (int i = 0; i < 6; i++, n++) {
        strcpy(texts[n], extra[i]);
        toks[n].ptr = texts[n];
        toks[n].len = strlen(extra[i]);
        types[n] = i < 2 ? 1 : 3;
    }
    gguf_str merges[2] = { { "a b", 3 }, { "ab c", 4 } };
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    if (pre_key) gguf_w_str(w, "tokenizer.ggml.pre", pre_key);
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)n);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    return tt_from_writer(w, override, err, errlen);
}

static void test_pre_selection(void **state)
{
    (void)state;
    char err[256];
    bn_tokenizer *t = tiny_vocab(NULL, NULL, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_tokenizer_pre(t), BN_PRE_DEFAULT);   /* absent, not LLaMA-3 */
    assert_int_equal(bn_token_bos(t), -1);
    assert_int_equal(bn_add_bos(t), 0);
    int32_t ids[16];
    assert_int_equal(bn_tokenize(t, "abc</s>x", 8, 1, 1, ids, 16), 3);
    assert_int_equal(ids[0], 257);
    assert_int_equal(ids[1], 259);
    assert_int_equal(bn_token_eos(t), -1);
    /* EOT by text; EOG = eot + <|eom_id|> (LLaMA-3.1 naming) */
    assert_int_equal(bn_token_eot(t), 260);
    assert_true(bn_token_is_eog(t, 260) && bn_token_is_eog(t, 261));
    assert_false(bn_token_is_eog(t, 259));
    bn_tokenizer_free(t);

    static const char *const llama3_names[] = { "llama-bpe", "llama3", "llama-v3" };
    for (int i = 0; i < 3; i++) {
        t = tiny_vocab(llama3_names[i], NULL, err, sizeof err);
        assert_non_null(t);
        assert_int_equal(bn_tokenizer_pre(t), BN_PRE_LLAMA3);
        bn_tokenizer_free(t);
    }
    t = tiny_vocab("default", NULL, err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_tokenizer_pre(t), BN_PRE_DEFAULT);
    bn_tokenizer_free(t);
    t = tiny_vocab("llama-bpe", "default", err, sizeof err);
    assert_non_null(t);
    assert_int_equal(bn_tokenizer_pre(t), BN_PRE_DEFAULT);
    bn_tokenizer_free(t);

    static const char *const falcon_names[] = { "falcon3", "falcon_e" };
    for (int i = 0; i < 2; i++) {
        t = tiny_vocab(falcon_names[i], NULL, err, sizeof err);
        assert_non_null(t);
        assert_int_equal(bn_tokenizer_pre(t), i ? BN_PRE_FALCON_E : BN_PRE_FALCON3);
        assert_string_equal(bn_pre_name(bn_tokenizer_pre(t)), falcon_names[i]);
        bn_tokenizer_free(t);
        t = tiny_vocab("default", falcon_names[i], err, sizeof err);
        assert_non_null(t);
        assert_int_equal(bn_tokenizer_pre(t), i ? BN_PRE_FALCON_E : BN_PRE_FALCON3);
        bn_tokenizer_free(t);
    }

    /* an unknown name: one line that names it and the way out */
    assert_null(tiny_vocab("qwen2", NULL, err, sizeof err));
    assert_non_null(strstr(err, "'qwen2'"));
    assert_non_null(strstr(err, "--pre-tokenizer"));
    assert_null(strchr(err, '\n'));
    assert_null(tiny_vocab(NULL, "gpt4", err, sizeof err));
    assert_non_null(strstr(err, "gpt4"));
    /* ... which the override gets past */
    t = tiny_vocab("qwen2", "falcon3", err, sizeof err);
    assert_non_null(t);
    bn_tokenizer_free(t);

    /* the LLaMA-3 fixture: no pre key -> llama3; override -> default */
    t = tt_load(LLAMA3_VOCAB, "default");
    assert_non_null(t);
    assert_int_equal(bn_tokenizer_pre(t), BN_PRE_DEFAULT);
    /* default splits "don't" as don|'|t and merges without the whole-piece hit */
    bn_tokenizer *l3 = tt_load(LLAMA3_VOCAB, "llama3");
    assert_non_null(l3);
    int32_t a[16], b[16];
    int na = bn_tokenize(t, "don't stop", 10, 0, 1, a, 16);
    int nb = 0;
    const char *parts[] = { "don", "'", "t", " stop" };
    for (int i = 0; i < 4; i++) nb += bn_tokenize(l3, parts[i], strlen(parts[i]), 0, 1, b + nb, 16 - nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);
    /* " Việt" is unreachable by merges: one id in llama3, three in default */
    assert_int_equal(bn_tokenize(l3, " Vi\xE1\xBB\x87t", 7, 0, 1, a, 16), 1);
    assert_int_equal(a[0], 101798);
    assert_int_equal(bn_tokenize(t, " Vi\xE1\xBB\x87t", 7, 0, 1, a, 16), 3);
    int32_t want[] = { 11655, 26298, 83 };
    assert_memory_equal(a, want, sizeof want);
    bn_tokenizer_free(l3);
    bn_tokenizer_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_vectors),
        cmocka_unit_test(test_llama3_pitfalls),
        cmocka_unit_test(test_default_details),
        cmocka_unit_test(test_falcon3_details),
        cmocka_unit_test(test_unicode_classes),
        cmocka_unit_test(test_utf8_and_byte_map),
        cmocka_unit_test(test_pre_selection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
