/* Large inputs: a text built at test time from the committed cases (long
 * enough to switch the piece cache on, and additive across special tokens so
 * the expected ids are known), the 1.3 MB reference text with its sha256
 * (when ../shared is present), and the prompts of the bitnet.cpp reference
 * runs on the small models in ../shared/models (when present). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "tok_test_util.h"
#include "unicode.h"

/* ---- SHA-256 (FIPS 180-4), for the reference id hash ---------------------- */
typedef struct sha256 {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} sha256;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256 *s, const unsigned char *p)
{
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, s->h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = a[7] + (ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25)) +
                      ((a[4] & a[5]) ^ (~a[4] & a[6])) + K256[i] + w[i];
        uint32_t t2 = (ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22)) +
                      ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) s->h[i] += a[i];
}

static void sha256_init(sha256 *s)
{
    static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(s->h, h0, sizeof h0);
    s->len = 0;
    s->n = 0;
}

static void sha256_update(sha256 *s, const void *data, size_t n)
{
    const unsigned char *p = data;
    s->len += n;
    while (n--) {
        s->buf[s->n++] = *p++;
        if (s->n == 64) { sha256_block(s, s->buf); s->n = 0; }
    }
}

static void sha256_hex(sha256 *s, char out[65])
{
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80;
    sha256_update(s, &pad, 1);
    pad = 0;
    while (s->n != 56) sha256_update(s, &pad, 1);
    for (int i = 7; i >= 0; i--) { unsigned char b = (unsigned char)(bits >> (8 * i)); sha256_update(s, &b, 1); }
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_sha256_known(void **state)
{
    (void)state;
    sha256 s;
    char hex[65];
    sha256_init(&s);
    sha256_update(&s, "abc", 3);
    sha256_hex(&s, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Text = the reference cases (those without '<' or '|', so nothing can form
 * a special token across a boundary) joined by <|eot_id|>, several times
 * over (> 16 KB: the piece cache is on, and repeats hit it). Tokenization
 * restarts at every special token, so the expected ids are the cases' ids
 * joined by 128009. */
static void test_generated_big_text(void **state)
{
    (void)state;
    bn_tokenizer *t = tt_load(LLAMA3_VOCAB, NULL);
    assert_non_null(t);
    size_t size = 0;
    char *data = tt_read_file(BN_SOURCE_DIR "/tests/data/llama3-tokenize-cases.tsv", &size);
    assert_non_null(data);

    size_t text_cap = 4 * 1024 * 1024, n_text = 0;
    char *text = malloc(text_cap), *one = malloc(size);
    int32_t *want = malloc(2 * 1024 * 1024 * sizeof *want);
    int n_want = 0, n_used = 0;
    for (int rep = 0; rep < 4; rep++) {
        char *p = data;
        while (p < data + size) {
            char *eol = memchr(p, '\n', (size_t)(data + size - p));
            if (!eol) eol = data + size;
            if (*p != '#') {
                char *tab = memchr(p, '\t', (size_t)(eol - p));
                char *tab2 = tab ? memchr(tab + 1, '\t', (size_t)(eol - tab - 1)) : NULL;
                size_t nt = tt_unhex(p, (size_t)(tab - p), one);
                if (!memchr(one, '<', nt) && !memchr(one, '|', nt) && nt) {
                    memcpy(text + n_text, one, nt);
                    n_text += nt;
                    memcpy(text + n_text, "<|eot_id|>", 10);
                    n_text += 10;
                    char *end = tab2 ? tab2 : eol;
                    n_want += tt_parse_ids(tab + 1, (size_t)(end - tab - 1), want + n_want, 1 << 20);
                    want[n_want++] = 128009;
                    n_used++;
                }
            }
            p = eol + 1;
        }
    }
    assert_true(n_text > 16384 && n_used > 2000);
    int n = 0;
    int32_t *ids = tt_tokenize(t, text, n_text, 0, 1, &n);
    assert_non_null(ids);
    assert_int_equal(n, n_want);
    for (int i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("id %d: got %d want %d", i, ids[i], want[i]);
    free(ids);
    free(want);
    free(one);
    free(text);
    free(data);
    bn_tokenizer_free(t);
}

static void test_reference_big_text(void **state)
{
    (void)state;
    const char *path = BN_SHARED_DIR "/tokenizer/llama3-bigtext.txt";
    if (!exists(path)) skip();
    size_t len = 0;
    char *text = tt_read_file(path, &len);
    assert_non_null(text);
    assert_int_equal(len, 1326612);
    bn_tokenizer *t = tt_load(LLAMA3_VOCAB, NULL);
    assert_non_null(t);
    int n = 0;
    int32_t *ids = tt_tokenize(t, text, len, 0, 1, &n);
    assert_non_null(ids);
    assert_int_equal(n, 332244);
    sha256 s;
    sha256_init(&s);
    for (int i = 0; i < n; i++) {
        char line[16];
        int k = snprintf(line, sizeof line, "%d\n", ids[i]);
        sha256_update(&s, line, (size_t)k);
    }
    char hex[65];
    sha256_hex(&s, hex);
    assert_string_equal(hex, "d7fb2c4dee309f5e8ce686281532a2f1d111715e65847500573988cf0bab4ea7");
    /* and it decodes back to the same bytes */
    char *back = malloc(len + 256);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int k = bn_token_to_bytes(t, ids[i], 1, back + o, (int)(len + 256 - o));
        assert_true(k >= 0);
        o += (size_t)k;
    }
    assert_int_equal(o, len);
    assert_memory_equal(back, text, len);
    free(back);
    free(ids);
    free(text);
    bn_tokenizer_free(t);
}

/* The prompt tokens bitnet.cpp used for the reference logits: with BOS and
 * specials parsed, exactly as the engine will tokenize prompts. */
static void check_reference_prompt(const char *model, const char *ref)
{
    if (!exists(model) || !exists(ref)) skip();
    char *json = tt_read_file(ref, NULL);
    assert_non_null(json);
    char *text = malloc(strlen(json) + 1);
    assert_non_null(text);
    long len = tt_json_str(json, "text", text);
    assert_true(len >= 0);
    int32_t want[4096];
    int n_want = tt_json_ids(json, "tokens", want, 4096);
    assert_true(n_want > 0);
    bn_tokenizer *t = tt_load(model, NULL);
    assert_non_null(t);
    assert_int_equal(bn_add_bos(t), 1);
    int n = 0;
    int32_t *ids = tt_tokenize(t, text, (size_t)len, bn_add_bos(t), 1, &n);
    assert_non_null(ids);
    assert_int_equal(n, n_want);
    for (int i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("%s: id %d: got %d want %d", ref, i, ids[i], want[i]);
    free(ids);
    free(text);
    free(json);
    bn_tokenizer_free(t);
}

static void test_mid_2b4t_shakespeare(void **state)
{
    (void)state;
    check_reference_prompt(BN_SHARED_DIR "/models/mid-2b4t.gguf",
                           BN_SHARED_DIR "/ref/mid-2b4t.shakespeare160.seq.json");
}

static void test_mini_llama3_capital(void **state)
{
    (void)state;
    check_reference_prompt(BN_SHARED_DIR "/models/mini-llama3.gguf",
                           BN_SHARED_DIR "/ref/mini-llama3.capital16.seq.json");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_known),
        cmocka_unit_test(test_generated_big_text),
        cmocka_unit_test(test_reference_big_text),
        cmocka_unit_test(test_mid_2b4t_shakespeare),
        cmocka_unit_test(test_mini_llama3_capital),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
