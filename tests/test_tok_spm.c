/* SentencePiece (tokenizer.ggml.model = llama) as llama.cpp runs it.
 *
 * Without ../shared: a 280-token vocabulary defined below (and committed as
 * tests/data/spm-tiny-vocab.gguf, which must equal what this file writes)
 * and its hand-checked cases in tests/data/spm-tiny-cases.tsv: special
 * tokens first (USER_DEFINED even without special parsing), the "▁" prefix,
 * only U+0020 as a space, merging by score with ties to the leftmost, byte
 * fallback, BOS; decoding with its leading-space rule, BYTE tokens and
 * streaming; the refusal of a vocabulary without scores; round trips.
 *
 * With ../shared: bitnet.cpp's ids for the 615 texts of
 * llama2-spm-tokenize-cases.jsonl (without and with BOS, and without special
 * parsing) and its bytes for the 200 sequences of
 * llama2-spm-decode-cases.jsonl.
 *
 *   test_tok_spm --write-fixture        rewrites tests/data/spm-tiny-vocab.gguf
 *   test_tok_spm --export-cases DIR     writes what tests/cli_tokenize.sh runs
 *                                       through the CLI (see there) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <sys/stat.h>

#include "gguf_writer.h"
#include "tok_test_util.h"

#define FIXTURE BN_SOURCE_DIR "/tests/data/spm-tiny-vocab.gguf"
#define FIXTURE_CASES BN_SOURCE_DIR "/tests/data/spm-tiny-cases.tsv"
#define SHARED_VOCAB BN_SHARED_DIR "/tokenizer/llama2-spm-vocab.gguf"
#define SHARED_CASES BN_SHARED_DIR "/tokenizer/llama2-spm-tokenize-cases.jsonl"
#define SHARED_DECODE BN_SHARED_DIR "/tokenizer/llama2-spm-decode-cases.jsonl"
#define SHARED_FALCON3 BN_SHARED_DIR "/tokenizer/falcon3-pretok-llama3vocab-cases.jsonl"

/* ---- the tiny vocabulary -------------------------------------------------------- */

enum { NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6 };

#define META "\xE2\x96\x81"         /* U+2581, SentencePiece's space */

/* Ids 259.. after <unk> <s> </s> and the 256 byte tokens. Scores as
 * SentencePiece gives them: higher merges first, whitespace-only pieces
 * last (-1e9). "ab" twice: llama.cpp's text -> id map keeps the later id. */
static const struct { const char *text; float score; int type; } pieces[] = {
    { META, -1e9f, NORMAL },                        /* 259 */
    { META META, -1e9f, NORMAL },                   /* 260 */
    { META META META META, -1e9f, NORMAL },         /* 261 */
    { "a", -1, NORMAL }, { "b", -2, NORMAL }, { "c", -3, NORMAL },     /* 262-264 */
    { "x", -4, NORMAL }, { "y", -5, NORMAL },                           /* 265-266 */
    { "ab", -10, NORMAL }, { "bc", -6, NORMAL }, { "abc", -4, NORMAL }, /* 267-269 */
    { META "a", -7, NORMAL }, { META "b", -8, NORMAL },                 /* 270-271 */
    { META "abc", -3, NORMAL }, { "yy", -9, NORMAL },                   /* 272-273 */
    { META "x", -11, NORMAL }, { "\xE6\x97\xA5", -12, NORMAL },         /* 274-275 日 */
    { "ab", -10, NORMAL },                                              /* 276 */
    { "<pad>", -1000, USER_DEFINED }, { "</line>", -1000, USER_DEFINED }, /* 277-278 */
    { "[PAD0]", 0, UNUSED },                                            /* 279 */
};
#define N_PIECES ((int)(sizeof pieces / sizeof pieces[0]))
#define N_TINY (259 + N_PIECES)

/* The vocabulary as a GGUF; scores_type 0 = no scores key. */
static gguf_writer *tiny_writer(uint32_t scores_type)
{
    static char bytes[256][8];
    gguf_str toks[N_TINY];
    float scores[N_TINY];
    int32_t iscores[N_TINY], types[N_TINY];
    static const char *const head[3] = { "<unk>", "<s>", "</s>" };
    for (int i = 0; i < 3; i++) {
        toks[i].ptr = head[i];
        toks[i].len = strlen(head[i]);
        types[i] = i ? CONTROL : UNKNOWN;
        scores[i] = 0;
    }
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b].ptr = bytes[b];
        toks[3 + b].len = 6;
        types[3 + b] = BYTE;
        scores[3 + b] = 0;
    }
    for (int i = 0; i < N_PIECES; i++) {
        toks[259 + i].ptr = pieces[i].text;
        toks[259 + i].len = strlen(pieces[i].text);
        types[259 + i] = pieces[i].type;
        scores[259 + i] = pieces[i].score;
    }
    for (int i = 0; i < N_TINY; i++) iscores[i] = (int32_t)scores[i];
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_str(w, "general.name", "spm-tiny");
    gguf_w_str(w, "tokenizer.ggml.model", "llama");
    gguf_w_str(w, "tokenizer.ggml.pre", "default");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, N_TINY);
    if (scores_type == GGUF_F32) gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_F32, scores, N_TINY);
    if (scores_type == GGUF_I32) gguf_w_arr(w, "tokenizer.ggml.scores", GGUF_I32, iscores, N_TINY);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, N_TINY);
    gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_w_u32(w, "tokenizer.ggml.padding_token_id", 277);
    gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_w_bool(w, "tokenizer.ggml.add_eos_token", 0);
    return w;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- the committed fixture ---------------------------------------------------------- */

static void test_fixture_is_generated(void **state)
{
    (void)state;
    uint8_t *buf;
    uint64_t len;
    gguf_writer *w = tiny_writer(GGUF_F32);
    assert_int_equal(gguf_writer_to_buffer(w, &buf, &len), 0);
    gguf_writer_free(w);
    size_t n = 0;
    char *file = tt_read_file(FIXTURE, &n);
    if (!file) fail_msg("%s is missing (test_tok_spm --write-fixture writes it)", FIXTURE);
    if (n != len || memcmp(file, buf, n) != 0)
        fail_msg("%s differs from the vocabulary in tests/test_tok_spm.c "
                 "(test_tok_spm --write-fixture rewrites it)", FIXTURE);
    assert_true(n < 1000000);
    free(file);
    free(buf);
}

static void test_fixture_loads(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(FIXTURE, NULL);
    assert_non_null(t);
    assert_true(bn_tokenizer_is_spm(t));
    assert_int_equal(bn_tokenizer_pre(t), BN_PRE_NONE);
    assert_int_equal(bn_vocab_size(t), N_TINY);
    assert_int_equal(bn_token_bos(t), 1);
    assert_int_equal(bn_token_eos(t), 2);
    assert_int_equal(bn_token_eot(t), -1);
    assert_int_equal(bn_add_bos(t), 1);
    assert_true(bn_token_is_eog(t, 2));
    assert_false(bn_token_is_eog(t, 1));
    /* lookups by piece text, by text with real spaces, specials */
    assert_int_equal(bn_token_lookup(t, META "a", 4), 270);
    assert_int_equal(bn_token_lookup(t, " a", 2), 270);
    assert_int_equal(bn_token_lookup(t, "ab", 2), 276);
    assert_int_equal(bn_token_lookup(t, "<pad>", 5), 277);
    assert_int_equal(bn_token_lookup(t, "<s>", 3), 1);
    assert_int_equal(bn_token_lookup(t, "<0x41>", 6), 3 + 0x41);
    assert_int_equal(bn_token_lookup(t, "zz", 2), -1);
    /* a pre-tokenizer override means nothing to SentencePiece */
    bn_tokenizer *o = tt_load(FIXTURE, "falcon3");
    assert_non_null(o);
    assert_int_equal(bn_tokenizer_pre(o), BN_PRE_NONE);
    bn_tokenizer_free(o);
    bn_tokenizer_free(t);
}

/* Every line of spm-tiny-cases.tsv, with and without special parsing,
 * and with BOS (always [1] + ids). */
static void test_fixture_cases(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(FIXTURE, NULL);
    assert_non_null(t);
    char *data = tt_read_file(FIXTURE_CASES, NULL), *cur = data, *line;
    assert_non_null(data);
    char text[1024];
    int32_t want[256], got[256];
    int n_cases = 0;
    while ((line = tt_next_line(&cur))) {
        if (line[0] == '#') continue;
        char *f[3];
        size_t len[3];
        assert_int_equal(tt_split_tabs(line, f, len, 3), 3);
        size_t tn = tt_unescape(f[0], len[0], text);
        char what[96];
        for (int special = 1; special >= 0; special--) {
            int nw = tt_parse_ids(f[special ? 1 : 2], len[special ? 1 : 2], want, 256);
            int ng = bn_tokenize(t, text, tn, 0, special, got, 256);
            snprintf(what, sizeof what, "line '%.*s' (special %d)", (int)len[0], f[0], special);
            tt_expect_ids(what, got, ng, want, nw);
            if (!special) continue;
            ng = bn_tokenize(t, text, tn, 1, special, got, 256);
            assert_int_equal(ng, nw + 1);
            assert_int_equal(got[0], 1);
            tt_expect_ids(what, got + 1, ng - 1, want, nw);
        }
        n_cases++;
    }
    assert_int_equal(n_cases, 25);
    free(data);
    bn_tokenizer_free(t);
}

/* bn_detokenize with its flags: "" when the id list holds nothing printable. */
static void expect_detok(const bn_tokenizer *t, const int32_t *ids, int n, int flags,
                         const char *want)
{
    char out[256];
    int k = bn_detokenize(t, ids, n, flags, out, sizeof out);
    assert_true(k >= 0 && k < (int)sizeof out);
    out[k] = '\0';
    assert_int_equal(k, strlen(want));
    assert_memory_equal(out, want, (size_t)k);
}

static void test_fixture_decode(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(FIXTURE, NULL);
    assert_non_null(t);
    const int R = BN_DETOK_REMOVE_SPECIAL, U = BN_DETOK_UNPARSE_SPECIAL;
    char buf[16];
    /* pieces: ▁ -> space, BYTE -> its byte, control hidden unless asked */
    assert_int_equal(bn_token_to_bytes(t, 270, 0, buf, sizeof buf), 2);
    assert_memory_equal(buf, " a", 2);
    assert_int_equal(bn_token_to_bytes(t, 261, 0, buf, sizeof buf), 4);
    assert_memory_equal(buf, "    ", 4);
    assert_int_equal(bn_token_to_bytes(t, 3 + 0x20, 0, buf, sizeof buf), 1);
    assert_int_equal(buf[0], ' ');
    assert_int_equal(bn_token_to_bytes(t, 3 + 0xE6, 0, buf, sizeof buf), 1);
    assert_int_equal((unsigned char)buf[0], 0xE6);
    assert_int_equal(bn_token_to_bytes(t, 2, 0, buf, sizeof buf), 0);
    assert_int_equal(bn_token_to_bytes(t, 2, 1, buf, sizeof buf), 4);
    assert_int_equal(bn_token_to_bytes(t, 0, 0, buf, sizeof buf), 0);
    assert_int_equal(bn_token_to_bytes(t, 277, 0, buf, sizeof buf), 5);
    assert_int_equal(bn_token_to_bytes(t, 279, 1, buf, sizeof buf), 0);      /* UNUSED */
    assert_int_equal(bn_token_to_bytes(t, 272, 0, buf, 2), 4);               /* " abc": too small */
    assert_int_equal(bn_token_to_bytes(t, N_TINY, 0, buf, sizeof buf), -1);

    /* whole sequences: the first piece loses one leading space ... */
    expect_detok(t, (const int32_t[]){ 270 }, 1, 0, "a");
    expect_detok(t, (const int32_t[]){ 270, 271 }, 2, 0, "a b");
    expect_detok(t, (const int32_t[]){ 260 }, 1, 0, " ");
    expect_detok(t, (const int32_t[]){ 259, 198, 172 }, 3, 0, "\xC3\xA9");
    expect_detok(t, (const int32_t[]){ 3 + 0x20, 262 }, 2, 0, "a");          /* <0x20> too */
    expect_detok(t, (const int32_t[]){ 277, 270 }, 2, 0, "<pad> a");
    /* ... unless BOS leads: printed or not, it takes the first place */
    expect_detok(t, (const int32_t[]){ 1, 270 }, 2, 0, " a");
    expect_detok(t, (const int32_t[]){ 1, 270 }, 2, R, " a");
    expect_detok(t, (const int32_t[]){ 1, 270 }, 2, U, "<s> a");
    expect_detok(t, (const int32_t[]){ 1, 270, 2 }, 3, R | U, " a</s>");     /* no add_eos */
    expect_detok(t, (const int32_t[]){ 2, 0, 279 }, 3, 0, "");
    expect_detok(t, (const int32_t[]){ 2, 0, 279 }, 3, U, "</s><unk>");
    expect_detok(t, (const int32_t[]){ 233, 159, 175 }, 3, 0, "\xE6\x9C\xAC");
    expect_detok(t, NULL, 0, 0, "");
    /* what does not round-trip, in llama.cpp too: BOS keeps the prefix space,
     * the fragment after a special token has its own, U+2581 is a space */
    int32_t ids[16];
    int n = bn_tokenize(t, "a", 1, 1, 0, ids, 16);
    expect_detok(t, ids, n, R, " a");
    n = bn_tokenize(t, "x<pad>y", 7, 0, 0, ids, 16);
    expect_detok(t, ids, n, 0, "x<pad> y");
    n = bn_tokenize(t, META "a", 4, 0, 0, ids, 16);
    expect_detok(t, ids, n, 0, " a");
    /* the count is the same with no room */
    assert_int_equal(bn_detokenize(t, (const int32_t[]){ 270, 271 }, 2, 0, NULL, 0), 3);
    assert_int_equal(bn_detokenize(t, (const int32_t[]){ 270, 9999 }, 2, 0, buf, sizeof buf), -1);

    /* streaming: a character split over BYTE tokens is held back */
    bn_detok d;
    bn_detok_init(&d, t);
    assert_int_equal(bn_detok_push(&d, 270, buf, sizeof buf), 2);
    assert_int_equal(bn_detok_push(&d, 233, buf, sizeof buf), 0);
    assert_int_equal(bn_detok_push(&d, 159, buf, sizeof buf), 0);
    assert_int_equal(bn_detok_push(&d, 175, buf, sizeof buf), 3);
    assert_memory_equal(buf, "\xE6\x9C\xAC", 3);
    assert_int_equal(bn_detok_push(&d, 233, buf, sizeof buf), 0);
    assert_int_equal(bn_detok_flush(&d, buf, sizeof buf), 3);                /* cut: U+FFFD */
    assert_memory_equal(buf, "\xEF\xBF\xBD", 3);
    bn_tokenizer_free(t);
}

/* A SentencePiece vocabulary needs its scores: one line naming the key. */
static void test_scores_required(void **state)
{
    (void)state;
    char err[256];
    assert_null(tt_from_writer(tiny_writer(0), NULL, err, sizeof err));
    assert_non_null(strstr(err, "tokenizer.ggml.scores"));
    assert_null(strchr(err, '\n'));
    assert_null(tt_from_writer(tiny_writer(GGUF_I32), NULL, err, sizeof err));
    assert_non_null(strstr(err, "float32"));
    bn_tokenizer *t = tt_from_writer(tiny_writer(GGUF_F32), NULL, err, sizeof err);
    assert_non_null(t);
    bn_tokenizer_free(t);
}

/* decode(encode(x)) == x without special parsing and BOS, for valid UTF-8
 * without USER_DEFINED texts or U+2581: every byte survives (byte fallback)
 * and the prefix space goes. (test_fixture_decode shows the exceptions.) */
static size_t random_text(uint64_t *rng, char *out, size_t max)
{
    static const char *const atoms[] = {
        " ", "  ", "a", "b", "c", "ab", "abc", "x", "yy", "\t", "\n", "\xC2\xA0",
        "\xE6\x97\xA5", "\xE6\x9C\xAC", "\xF0\x9F\x98\x80", "<s>", "</s>",
        "<unk>", "[PAD0]", "<0x41>", "<", "\0", "Hello", " world", ".",
    };
    size_t o = 0;
    while (o + 16 < max) {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t r = (uint32_t)(*rng >> 33);
        const char *a = atoms[(r >> 3) % (sizeof atoms / sizeof atoms[0])];
        size_t n = a[0] ? strlen(a) : 1;
        memcpy(out + o, a, n);
        o += n;
        if ((r >> 20) % 24 == 0) break;
    }
    return o;
}

static void roundtrip(const bn_tokenizer *t, int iters)
{
    uint64_t rng = 7;
    char text[2048], back[4096];
    int32_t ids[2048];
    for (int it = 0; it < iters; it++) {
        size_t n = random_text(&rng, text, sizeof text);
        int k = bn_tokenize(t, text, n, 0, 0, ids, 2048);
        assert_true(k >= 0 && k <= 2048);
        int m = bn_detokenize(t, ids, k, BN_DETOK_REMOVE_SPECIAL, back, sizeof back);
        if (m != (int)n || memcmp(back, text, n) != 0)
            fail_msg("round trip %d: %d bytes back for %zu", it, m, n);
    }
}

/* Long inputs cache segments: a long text of short texts joined by </s>
 * (after which tokenizing starts afresh) gives the ids of the short texts,
 * each tokenized alone (too short for the cache), joined by 2. */
static void cached_equals_uncached(const bn_tokenizer *t)
{
    uint64_t rng = 11;
    size_t cap = 200000, n = 0;
    char *text = malloc(cap);
    int32_t *want = malloc(cap * sizeof *want), *got = malloc(cap * sizeof *got);
    int nw = 0;
    char part[2048];
    while (n < 100000) {
        size_t k = random_text(&rng, part, sizeof part);
        int m = bn_tokenize(t, part, k, 0, 1, want + nw, (int)cap - nw);
        assert_true(m >= 0 && nw + m + 1 < (int)cap);
        nw += m;
        want[nw++] = 2;
        memcpy(text + n, part, k);
        memcpy(text + n + k, "</s>", 4);
        n += k + 4;
    }
    int ng = bn_tokenize(t, text, n, 0, 1, got, (int)cap);
    tt_expect_ids("long text", got, ng, want, nw);
    free(text);
    free(want);
    free(got);
}

static void test_fixture_long_text(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(FIXTURE, NULL);
    assert_non_null(t);
    cached_equals_uncached(t);
    bn_tokenizer_free(t);
}

static void test_fixture_roundtrip(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(FIXTURE, NULL);
    assert_non_null(t);
    roundtrip(t, 3000);
    bn_tokenizer_free(t);
}

/* A 200 KB fragment: the merge is O(n log n), and its memory is sized up
 * front (one symbol per character, two heap entries per symbol). */
static void test_long_fragment(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(FIXTURE, NULL);
    assert_non_null(t);
    size_t n = 200000;
    char *s = malloc(n);
    for (size_t i = 0; i < n; i++) s[i] = "abc "[i % 4];
    int k = 0;
    int32_t *ids = tt_tokenize(t, s, n, 0, 1, &k);
    assert_non_null(ids);
    /* "▁abc▁abc...▁abc▁": one ▁abc per 4 bytes, the last space alone */
    assert_int_equal(k, (int)(n / 4) + 1);
    for (int i = 0; i + 1 < k; i++) assert_int_equal(ids[i], 272);
    assert_int_equal(ids[k - 1], 259);
    free(ids);
    free(s);
    bn_tokenizer_free(t);
}

/* ---- bitnet.cpp's reference cases (../shared) ------------------------------------------ */

static void test_shared_tokenize(void **state)
{
    (void)state;
    if (!exists(SHARED_VOCAB) || !exists(SHARED_CASES)) {
        print_message("skipped: %s not found\n", SHARED_CASES);
        skip();
        return;
    }
    bn_tokenizer *t = tt_load(SHARED_VOCAB, NULL);
    assert_non_null(t);
    assert_int_equal(bn_vocab_size(t), 32002);
    size_t size = 0;
    char *data = tt_read_file(SHARED_CASES, &size), *cur = data, *line;
    assert_non_null(data);
    char *text = malloc(size);
    static int32_t want[16384], got[16384];
    int n_cases = 0, n_no_special = 0;
    while ((line = tt_next_line(&cur))) {
        long tn = tt_json_str(line, "text", text);
        assert_true(tn >= 0);
        char what[64];
        struct { const char *key; int bos, special; } runs[] = {
            { "ids", 0, 1 }, { "ids_bos", 1, 1 }, { "ids_no_parse_special", 0, 0 },
        };
        for (int r = 0; r < 3; r++) {
            int nw = tt_json_ids(line, runs[r].key, want, 16384);
            if (nw < 0 && r == 2) nw = tt_json_ids(line, "ids", want, 16384);  /* same ids */
            else if (r == 2) n_no_special++;
            assert_true(nw >= 0);
            int ng = bn_tokenize(t, text, (size_t)tn, runs[r].bos, runs[r].special, got, 16384);
            snprintf(what, sizeof what, "case %d (%s)", n_cases, runs[r].key);
            tt_expect_ids(what, got, ng, want, nw);
        }
        n_cases++;
    }
    assert_int_equal(n_cases, 615);
    assert_int_equal(n_no_special, 3);
    print_message("SentencePiece: %d/%d cases (x3: ids, ids_bos, no special parsing)\n",
                  n_cases, n_cases);
    free(text);
    free(data);
    bn_tokenizer_free(t);
}

static void expect_text(const char *what, const char *got, size_t ng, const char *want, long nw)
{
    if ((long)ng == nw && memcmp(got, want, ng) == 0) return;
    fail_msg("%s: got '%.*s' (%zu bytes), want '%.*s' (%ld)", what, (int)(ng > 200 ? 200 : ng),
             got, ng, (int)(nw > 200 ? 200 : nw), want, nw);
}

static void test_shared_decode(void **state)
{
    (void)state;
    if (!exists(SHARED_VOCAB) || !exists(SHARED_DECODE)) {
        print_message("skipped: %s not found\n", SHARED_DECODE);
        skip();
        return;
    }
    bn_tokenizer *t = tt_load(SHARED_VOCAB, NULL);
    assert_non_null(t);
    size_t size = 0;
    char *data = tt_read_file(SHARED_DECODE, &size), *cur = data, *line;
    assert_non_null(data);
    char *want = malloc(size), *hex = malloc(size);
    static char got[65536], text[65536];
    int32_t ids[4096];
    int n_cases = 0;
    while ((line = tt_next_line(&cur))) {
        int n = tt_json_ids(line, "ids", ids, 4096);
        assert_true(n >= 0);
        char what[64];
        snprintf(what, sizeof what, "decode case %d", n_cases);
        /* raw bytes: llama_detokenize(remove_special=false, unparse_special=false) */
        long nh = tt_json_str(line, "bytes_hex", hex);
        size_t nb = tt_unhex(hex, (size_t)nh, want);
        int k = bn_detokenize(t, ids, n, 0, got, sizeof got);
        assert_true(k >= 0);
        expect_text(what, got, (size_t)k, want, (long)nb);
        /* the same lossy text as the reference's */
        long nt = tt_json_str(line, "text", want);
        expect_text(what, text, tt_lossy((unsigned char *)got, (size_t)k, text), want, nt);
        /* remove_special=true; unparse_special=true */
        static const struct { const char *key; int flags; } v[] = {
            { "text_remove_special", BN_DETOK_REMOVE_SPECIAL },
            { "text_unparse_special", BN_DETOK_UNPARSE_SPECIAL },
        };
        for (int i = 0; i < 2; i++) {
            nt = tt_json_str(line, v[i].key, want);
            k = bn_detokenize(t, ids, n, v[i].flags, got, sizeof got);
            snprintf(what, sizeof what, "decode case %d (%s)", n_cases, v[i].key);
            expect_text(what, text, tt_lossy((unsigned char *)got, (size_t)k, text), want, nt);
        }
        /* token_to_piece(special=true) of each id, concatenated */
        size_t o = 0;
        for (int i = 0; i < n; i++)
            o += (size_t)bn_token_to_bytes(t, ids[i], 1, got + o, (int)(sizeof got - o));
        nt = tt_json_str(line, "pieces_concat", want);
        snprintf(what, sizeof what, "decode case %d (pieces_concat)", n_cases);
        expect_text(what, text, tt_lossy((unsigned char *)got, o, text), want, nt);
        /* streaming: the pieces without control text, split characters held */
        size_t raw = 0;
        for (int i = 0; i < n; i++)
            raw += (size_t)bn_token_to_bytes(t, ids[i], 0, got + raw, (int)(sizeof got - raw));
        size_t nl = tt_lossy((unsigned char *)got, raw, want);
        bn_detok d;
        bn_detok_init(&d, t);
        o = 0;
        for (int i = 0; i < n; i++) {
            k = bn_detok_push(&d, ids[i], text + o, (int)(sizeof text - o));
            assert_true(k >= 0);
            o += (size_t)k;
        }
        o += (size_t)bn_detok_flush(&d, text + o, (int)(sizeof text - o));
        snprintf(what, sizeof what, "decode case %d (streaming)", n_cases);
        expect_text(what, text, o, want, (long)nl);
        n_cases++;
    }
    assert_int_equal(n_cases, 200);
    print_message("SentencePiece decode: %d/%d cases (bytes, text, remove_special, "
                  "unparse_special, pieces, streaming)\n", n_cases, n_cases);
    free(want);
    free(hex);
    free(data);
    bn_tokenizer_free(t);
}

static void test_shared_roundtrip(void **state)
{
    (void)state;
    if (!exists(SHARED_VOCAB)) {
        print_message("skipped: %s not found\n", SHARED_VOCAB);
        skip();
        return;
    }
    bn_tokenizer *t = tt_load(SHARED_VOCAB, NULL);
    assert_non_null(t);
    roundtrip(t, 3000);
    cached_equals_uncached(t);
    bn_tokenizer_free(t);
}

/* ---- files for tests/cli_tokenize.sh -------------------------------------------------- */

static int write_gguf(gguf_writer *w, const char *dir, const char *name)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = gguf_writer_write(w, path, err, sizeof err);
    if (rc) fprintf(stderr, "%s: %s\n", path, err);
    gguf_writer_free(w);
    return rc;
}

/* A JSONL case file as TSV: escaped text, then the ids of each key. */
static int export_jsonl(const char *in, const char *out, const char *const *keys, int n_keys)
{
    size_t size = 0;
    char *data = tt_read_file(in, &size), *cur = data, *line;
    FILE *fp = data ? fopen(out, "w") : NULL;
    if (!fp) { free(data); return -1; }
    char *text = malloc(size);
    static int32_t ids[16384];
    while ((line = tt_next_line(&cur))) {
        long tn = tt_json_str(line, "text", text);
        tt_escape(fp, text, (size_t)tn);
        for (int k = 0; k < n_keys; k++) {
            int n = tt_json_ids(line, keys[k], ids, 16384);
            fputc('\t', fp);
            for (int i = 0; i < n; i++) fprintf(fp, "%s%d", i ? " " : "", ids[i]);
        }
        fputc('\n', fp);
    }
    free(text);
    free(data);
    return fclose(fp);
}

/* Vocabularies the CLI must refuse, and the ../shared cases as TSV (when
 * present): spm-no-scores.gguf, bpe-unknown-pre.gguf, shared-spm.tsv
 * (text, ids), shared-falcon3.tsv (text, ids, ids_falcon_e). */
static int export_cases(const char *dir)
{
    if (write_gguf(tiny_writer(0), dir, "spm-no-scores.gguf")) return 1;
    gguf_writer *w = gguf_writer_new(0);
    gguf_str toks[2] = { { "a", 1 }, { "b", 1 } };
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_w_str(w, "tokenizer.ggml.pre", "qwen2");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, 2);
    if (write_gguf(w, dir, "bpe-unknown-pre.gguf")) return 1;
    if (!exists(SHARED_CASES) || !exists(SHARED_FALCON3)) return 0;
    char path[4096];
    static const char *const spm_keys[] = { "ids" }, *const f3_keys[] = { "ids", "ids_falcon_e" };
    snprintf(path, sizeof path, "%s/shared-spm.tsv", dir);
    if (export_jsonl(SHARED_CASES, path, spm_keys, 1)) return 1;
    snprintf(path, sizeof path, "%s/shared-falcon3.tsv", dir);
    return export_jsonl(SHARED_FALCON3, path, f3_keys, 2) ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--write-fixture") == 0) {
        char err[256];
        gguf_writer *w = tiny_writer(GGUF_F32);
        int rc = gguf_writer_write(w, FIXTURE, err, sizeof err);
        gguf_writer_free(w);
        if (rc) fprintf(stderr, "%s: %s\n", FIXTURE, err);
        return rc ? 1 : 0;
    }
    if (argc == 3 && strcmp(argv[1], "--export-cases") == 0) return export_cases(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_is_generated),
        cmocka_unit_test(test_fixture_loads),
        cmocka_unit_test(test_fixture_cases),
        cmocka_unit_test(test_fixture_decode),
        cmocka_unit_test(test_scores_required),
        cmocka_unit_test(test_fixture_roundtrip),
        cmocka_unit_test(test_fixture_long_text),
        cmocka_unit_test(test_long_fragment),
        cmocka_unit_test(test_shared_tokenize),
        cmocka_unit_test(test_shared_decode),
        cmocka_unit_test(test_shared_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
