/* LLaMA-3 tokenizer against the committed reference fixtures:
 * the 585 tokenize cases (with and without special parsing), the 49 decode
 * cases, the whole-vocabulary self-test, special ids and EOG, BOS, output
 * buffer semantics, invalid UTF-8 and a random encode/decode round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tok_test_util.h"
#include "unicode.h"

static bn_tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    tok = tt_load(LLAMA3_VOCAB, NULL);
    return tok ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    bn_tokenizer_free(tok);
    return 0;
}

static void test_reference_cases(void **state)
{
    (void)state;
    size_t size = 0;
    char *data = tt_read_file(BN_SOURCE_DIR "/tests/data/llama3-tokenize-cases.tsv", &size);
    assert_non_null(data);
    char *text = malloc(size), *save = NULL;
    int32_t want[8192], got[8192];
    int n_cases = 0, n_no_special = 0;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char *f[3];
        size_t len[3];
        int nf = tt_split_tabs(line, f, len, 3);
        size_t tn = tt_unhex(f[0], len[0], text);
        int nw = nf > 1 ? tt_parse_ids(f[1], len[1], want, 8192) : 0;
        int ng = bn_tokenize(tok, text, tn, 0, 1, got, 8192);
        char what[64];
        snprintf(what, sizeof what, "case %d (special)", n_cases);
        tt_expect_ids(what, got, ng, want, nw);
        /* Without special parsing: the third column where specials occur. */
        if (nf > 2) {
            nw = tt_parse_ids(f[2], len[2], want, 8192);
            n_no_special++;
        }
        ng = bn_tokenize(tok, text, tn, 0, 0, got, 8192);
        snprintf(what, sizeof what, "case %d (no special)", n_cases);
        tt_expect_ids(what, got, ng, want, nw);
        n_cases++;
    }
    assert_int_equal(n_cases, 585);
    assert_int_equal(n_no_special, 19);
    free(text);
    free(data);
}

static void test_decode_cases(void **state)
{
    (void)state;
    char *data = tt_read_file(BN_SOURCE_DIR "/tests/data/llama3-decode-cases.tsv", NULL);
    assert_non_null(data);
    char *save = NULL;
    int n_cases = 0;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char *f[4];
        size_t len[4];
        assert_int_equal(tt_split_tabs(line, f, len, 4), 4);
        int32_t ids[256];
        int n = tt_parse_ids(f[0], len[0], ids, 256);
        char want_bytes[2048], want_text[4096], want_skip[4096];
        size_t nb = tt_unhex(f[1], len[1], want_bytes);
        size_t nt = tt_unhex(f[2], len[2], want_text);
        size_t ns = tt_unhex(f[3], len[3], want_skip);

        /* token bytes with specials rendered, and their lossy text */
        char bytes[2048], text[4096];
        size_t o = 0;
        for (int i = 0; i < n; i++) {
            int k = bn_token_to_bytes(tok, ids[i], 1, bytes + o, (int)(sizeof bytes - o));
            assert_true(k >= 0 && o + (size_t)k <= sizeof bytes);
            o += (size_t)k;
        }
        assert_int_equal(o, nb);
        assert_memory_equal(bytes, want_bytes, nb);
        assert_int_equal(tt_lossy((unsigned char *)bytes, o, text), nt);
        assert_memory_equal(text, want_text, nt);

        /* streaming decoder: control tokens hidden, partial UTF-8 held back */
        bn_detok d;
        bn_detok_init(&d, tok);
        o = 0;
        for (int i = 0; i < n; i++) {
            int k = bn_detok_push(&d, ids[i], text + o, (int)(sizeof text - o));
            assert_true(k >= 0);
            o += (size_t)k;
        }
        o += (size_t)bn_detok_flush(&d, text + o, (int)(sizeof text - o));
        assert_int_equal(o, ns);
        assert_memory_equal(text, want_skip, ns);
        n_cases++;
    }
    assert_int_equal(n_cases, 49);
    free(data);
}

/* Every regular token whose bytes are valid UTF-8 encodes, alone, to itself
 * (the reference self-test; 588 of them only through the whole-piece hit). */
static void test_vocab_selftest(void **state)
{
    (void)state;
    int checked = 0;
    char buf[256];
    int32_t ids[256];
    for (int32_t id = 0; id < 128000; id++) {
        int n = bn_token_to_bytes(tok, id, 1, buf, sizeof buf);
        assert_true(n > 0 && n <= (int)sizeof buf);
        if (bn_utf8_valid_len((unsigned char *)buf, (size_t)n) != (size_t)n) continue;
        int k = bn_tokenize(tok, buf, (size_t)n, 0, 1, ids, 256);
        if (k != 1 || ids[0] != id) fail_msg("token %d encodes to %d ids, first %d", id, k, ids[0]);
        checked++;
    }
    assert_int_equal(checked, 126648);
}

static void test_special_ids(void **state)
{
    (void)state;
    assert_int_equal(bn_vocab_size(tok), 128256);
    assert_int_equal(bn_token_bos(tok), 128000);
    assert_int_equal(bn_token_eos(tok), 128001);
    assert_int_equal(bn_token_eot(tok), 128009);
    assert_int_equal(bn_add_bos(tok), 1);
    assert_int_equal(bn_tokenizer_pre(tok), BN_PRE_LLAMA3);   /* no pre key, LLaMA-3 vocab */
    assert_true(bn_token_is_eog(tok, 128001));
    assert_true(bn_token_is_eog(tok, 128009));
    assert_false(bn_token_is_eog(tok, 128008));   /* LLaMA-3.0 naming: reserved, not eom */
    assert_false(bn_token_is_eog(tok, 128000));
    assert_false(bn_token_is_eog(tok, 0));
    assert_int_equal(bn_token_lookup(tok, "<|eot_id|>", 10), 128009);
    assert_int_equal(bn_token_lookup(tok, "<|reserved_special_token_31|>", 29), 128036);
    assert_int_equal(bn_token_lookup(tok, " world", 6), 1917);
    assert_int_equal(bn_token_lookup(tok, "Hello", 5), 9906);
    assert_int_equal(bn_token_lookup(tok, "<|eom_id|>", 10), -1);
    assert_int_equal(bn_token_lookup(tok, "", 0), -1);

    char buf[64];
    assert_int_equal(bn_token_to_bytes(tok, 128009, 0, buf, sizeof buf), 0);
    assert_int_equal(bn_token_to_bytes(tok, 128009, 1, buf, sizeof buf), 10);
    assert_memory_equal(buf, "<|eot_id|>", 10);
    assert_int_equal(bn_token_to_bytes(tok, 1917, 0, buf, 3), 6);   /* too small: size reported */
    assert_int_equal(bn_token_to_bytes(tok, -1, 0, buf, sizeof buf), -1);
    assert_int_equal(bn_token_to_bytes(tok, 128256, 0, buf, sizeof buf), -1);
}

static void test_bos_and_buffer(void **state)
{
    (void)state;
    int32_t ids[8];
    assert_int_equal(bn_tokenize(tok, "Hello world!", 12, 1, 1, ids, 8), 4);
    int32_t want[] = { 128000, 9906, 1917, 0 };
    assert_memory_equal(ids, want, sizeof want);
    /* A short buffer gets the first ids; the return value is the total. */
    int32_t two[2] = { -7, -7 };
    assert_int_equal(bn_tokenize(tok, "Hello world!", 12, 1, 1, two, 1), 4);
    assert_int_equal(two[0], 128000);
    assert_int_equal(two[1], -7);
    assert_int_equal(bn_tokenize(tok, "Hello world!", 12, 0, 1, NULL, 0), 3);
    assert_int_equal(bn_tokenize(tok, "", 0, 1, 1, ids, 8), 1);
    assert_int_equal(bn_tokenize(tok, "", 0, 0, 1, ids, 8), 0);
    assert_int_equal(bn_tokenize(tok, NULL, 0, 0, 1, ids, 8), 0);
    assert_int_equal(bn_tokenize(tok, NULL, 3, 0, 1, ids, 8), -1);
    /* NUL is an ordinary byte */
    assert_int_equal(bn_tokenize(tok, "a\0b", 3, 0, 1, ids, 8), 3);
    assert_int_equal(ids[1], 188);   /* byte 0x00 = U+0100 'Ā' */
}

/* llama.cpp's convention: each byte that does not start a valid sequence is
 * one U+FFFD (so E2 82 gives two, unlike the maximal-subpart rule). */
static void test_invalid_utf8(void **state)
{
    (void)state;
    static const struct { const char *in; size_t n; const char *as; } cases[] = {
        { "\xff", 1, "\xEF\xBF\xBD" },
        { "\xc3(", 2, "\xEF\xBF\xBD(" },
        { "\xe2\x82", 2, "\xEF\xBF\xBD\xEF\xBF\xBD" },
        { "a\x80z", 3, "a\xEF\xBF\xBDz" },
        { "\xed\xa0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },     /* surrogate */
        { "\xc0\x80", 2, "\xEF\xBF\xBD\xEF\xBF\xBD" },                     /* overlong NUL */
        { "\xf4\x90\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
        { "x\xf0\x9f\x98", 4, "x\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t a[32], b[32];
        int na = bn_tokenize(tok, cases[i].in, cases[i].n, 0, 1, a, 32);
        int nb = bn_tokenize(tok, cases[i].as, strlen(cases[i].as), 0, 1, b, 32);
        assert_true(na > 0);
        tt_expect_ids(cases[i].as, a, na, b, nb);
    }
    int32_t ids[4];
    assert_int_equal(bn_tokenize(tok, "\xff", 1, 0, 1, ids, 4), 1);
    assert_int_equal(ids[0], 5809);
}

/* Leftmost-longest special matching and the parse_special switch. */
static void test_specials_in_text(void **state)
{
    (void)state;
    int32_t ids[32];
    const char *s = "<|<|eot_id|>|>";
    int n = bn_tokenize(tok, s, strlen(s), 0, 1, ids, 32);
    int32_t want[] = { 27, 91, 128009, 91, 29 };
    tt_expect_ids(s, ids, n, want, 5);
    s = "<|reserved_special_token_10|><|reserved_special_token_1|>";
    n = bn_tokenize(tok, s, strlen(s), 0, 1, ids, 32);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 128015);
    assert_int_equal(ids[1], 128003);
    n = bn_tokenize(tok, s, strlen(s), 0, 0, ids, 32);
    assert_true(n > 2);
    for (int i = 0; i < n; i++) assert_true(ids[i] < 128000);
}

/* A 100 KB "word" (one pre-token) goes through the heap merge path. */
static void test_long_piece(void **state)
{
    (void)state;
    size_t n = 100000;
    char *s = malloc(n);
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        s[i] = (char)('a' + (x >> 16) % 26);
    }
    int k = 0;
    int32_t *ids = tt_tokenize(tok, s, n, 0, 1, &k);
    assert_non_null(ids);
    assert_true(k > 10000 && k < 60000);
    char *back = malloc(n + 16);
    size_t o = 0;
    for (int i = 0; i < k; i++) {
        int m = bn_token_to_bytes(tok, ids[i], 1, back + o, (int)(n + 16 - o));
        assert_true(m > 0);
        o += (size_t)m;
    }
    assert_int_equal(o, n);
    assert_memory_equal(back, s, n);
    free(back);
    free(ids);
    free(s);
}

/* decode(encode(x)) == x for random valid UTF-8 built from the material the
 * splitter cares about, with and without special parsing, through both the
 * raw-bytes path and the streaming decoder. */
static size_t random_text(uint64_t *rng, char *out, size_t max)
{
    static const char *const atoms[] = {
        " ", "  ", "\n", "\r\n", "\t", "'s", "'S", "'ll", "'\xC5\xBF", "don't", "123", "4567",
        "Hello", " world", ".", "!!", "(", "\xC2\xA0", "\xC2\x85", "\xE3\x80\x80", "\xEF\xBB\xBF",
        "\xE2\x80\x99", "caf\xC3\xA9", "e\xCC\x81", "\xD9\xA1\xD9\xA2", "\xE2\x91\xA0",
        "\xF0\x9F\x98\x80", "\xE4\xBD\xA0\xE5\xA5\xBD", "\xD0\xBF\xD1\x80\xD0\xB8", "<|eot_id|>",
        "<|begin_of_text|>", "<|", "|>", "<|eot_id", "\0", "\x1c", "Vi\xE1\xBB\x87t",
    };
    size_t o = 0;
    while (o + 40 < max) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(*rng >> 33);
        if (r % 7 == 0) {            /* a random code point */
            uint32_t cp = (r >> 3) % 0x30000;
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 'x';
            o += (size_t)bn_utf8_encode(cp, (unsigned char *)out + o);
        } else {
            const char *a = atoms[(r >> 3) % (sizeof atoms / sizeof atoms[0])];
            size_t n = a[0] ? strlen(a) : 1;
            memcpy(out + o, a, n);
            o += n;
        }
        if ((r >> 20) % 16 == 0) break;
    }
    return o;
}

static void test_roundtrip_random(void **state)
{
    (void)state;
    uint64_t rng = 42;
    char text[4096], back[8192];
    int32_t ids[4096];
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = random_text(&rng, text, sizeof text);
        assert_int_equal(bn_utf8_valid_len((unsigned char *)text, n), n);
        for (int special = 0; special < 2; special++) {
            int k = bn_tokenize(tok, text, n, 0, special, ids, 4096);
            assert_true(k >= 0 && k <= 4096);
            size_t o = 0;
            for (int i = 0; i < k; i++)
                o += (size_t)bn_token_to_bytes(tok, ids[i], 1, back + o, (int)(sizeof back - o));
            assert_int_equal(o, n);
            assert_memory_equal(back, text, n);
            if (special) continue;
            /* no specials in the ids: the streaming decoder gives the text back */
            bn_detok d;
            bn_detok_init(&d, tok);
            o = 0;
            for (int i = 0; i < k; i++) {
                int m = bn_detok_push(&d, ids[i], back + o, (int)(sizeof back - o));
                assert_true(m >= 0);
                o += (size_t)m;
            }
            o += (size_t)bn_detok_flush(&d, back + o, (int)(sizeof back - o));
            assert_int_equal(o, n);
            assert_memory_equal(back, text, n);
        }
    }
}

/* The streaming decoder holds back a split character and refuses (without
 * losing state) an output buffer that is too small. */
static void test_detok_partial(void **state)
{
    (void)state;
    bn_detok d;
    bn_detok_init(&d, tok);
    char out[16];
    /* 9468 = F0 9F: incomplete, held back; flush turns it into one U+FFFD */
    assert_int_equal(bn_detok_push(&d, 9468, out, sizeof out), 0);
    assert_int_equal(d.n_pending, 2);
    assert_int_equal(bn_detok_flush(&d, out, 2), -1);
    assert_int_equal(bn_detok_flush(&d, out, sizeof out), 3);
    assert_memory_equal(out, "\xEF\xBF\xBD", 3);
    assert_int_equal(bn_detok_flush(&d, out, sizeof out), 0);
    /* control tokens print nothing */
    assert_int_equal(bn_detok_push(&d, 128009, out, sizeof out), 0);
    assert_int_equal(bn_detok_push(&d, 1917, out, 3), -1);
    assert_int_equal(bn_detok_push(&d, 1917, out, sizeof out), 6);
    assert_memory_equal(out, " world", 6);
    assert_int_equal(bn_detok_push(&d, -5, out, sizeof out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_cases),
        cmocka_unit_test(test_decode_cases),
        cmocka_unit_test(test_vocab_selftest),
        cmocka_unit_test(test_special_ids),
        cmocka_unit_test(test_bos_and_buffer),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_specials_in_text),
        cmocka_unit_test(test_long_piece),
        cmocka_unit_test(test_roundtrip_random),
        cmocka_unit_test(test_detok_partial),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
