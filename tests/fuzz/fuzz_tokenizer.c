/* libFuzzer harness for the tokenizers (build with -DBITNET_FUZZ=ON, clang).
 *
 * Input layout: byte 0 = flags: bit 0 parse_special, bit 1 add_bos, bits
 * 2-3 the tokenizer (0 LLaMA-3, 1 "default", 2 "falcon3" pre-tokenizer on
 * the LLaMA-3 vocabulary, 3 SentencePiece), bit 4 also stream random ids
 * through the decoders, bit 5 their low bit. The rest is text, where
 * 0xFE K M inserts M bytes (all when M = 0) of the K-th special token's
 * text, so special-token fragments, partial matches and neighbours are
 * exercised.
 *
 * Checks: no crash / sanitizer report; every id in the vocabulary.
 * Byte-level BPE: for valid UTF-8 text, decode(encode(x)) == x; for any
 * text, the decoded output is valid UTF-8 (bad bytes become U+FFFD) and the
 * streaming decoder agrees with it. SentencePiece: the ids equal those of a
 * naive reference (repeatedly merge the best-scoring adjacent pair, leftmost
 * on ties, over the whole fragment: no segments, no heap, no cache), and
 * without special parsing decode(encode(x)) == x (when x holds no
 * USER_DEFINED text and no U+2581); bn_detokenize and the streaming decoder
 * agree with the pieces.
 *
 * Vocabularies: tests/data/llama3-vocab.gguf (or $BN_FUZZ_VOCAB) and
 * tests/data/spm-tiny-vocab.gguf (or $BN_FUZZ_SPM_VOCAB, e.g. the LLaMA-2
 * vocabulary in ../shared/tokenizer). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "gguf.h"
#include "tok_internal.h"
#include "unicode.h"

enum { TOK_LLAMA3, TOK_DEFAULT, TOK_FALCON3, TOK_SPM };

static bn_tokenizer *toks[4];
static int32_t *specials[4];        /* ids of special tokens, per tokenizer */
static int n_specials[4];

static bn_tokenizer *load(const char *path, const char *pre)
{
    gguf_file f;
    char err[256];
    if (gguf_open(&f, path, err, sizeof err)) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err);
        abort();
    }
    bn_tokenizer *t = bn_tokenizer_from_gguf(&f, pre, err, sizeof err);
    gguf_close(&f);
    if (!t) {
        fprintf(stderr, "fuzz_tokenizer: %s: %s\n", path, err);
        abort();
    }
    return t;
}

static void list_specials(int k)
{
    const bn_tokenizer *t = toks[k];
    specials[k] = malloc((size_t)t->n_vocab * sizeof *specials[k]);
    for (int32_t id = 0; id < t->n_vocab; id++)
        if (t->type[id] == BN_TT_CONTROL || t->type[id] == BN_TT_USER_DEFINED ||
            t->type[id] == BN_TT_UNKNOWN)
            specials[k][n_specials[k]++] = id;
}

/* <root>/tests/data/NAME (this file is <root>/tests/fuzz/fuzz_tokenizer.c) */
static void data_path(char *path, size_t cap, const char *env, const char *name)
{
    const char *e = getenv(env);
    if (e) {
        snprintf(path, cap, "%s", e);
        return;
    }
    snprintf(path, cap, "%s", __FILE__);
    char *cut = strstr(path, "tests/fuzz/fuzz_tokenizer.c");
    if (cut) *cut = '\0';
    else path[0] = '\0';
    strncat(path, "tests/data/", cap - strlen(path) - 1);
    strncat(path, name, cap - strlen(path) - 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[4096];
    data_path(path, sizeof path, "BN_FUZZ_VOCAB", "llama3-vocab.gguf");
    toks[TOK_LLAMA3] = load(path, "llama3");
    toks[TOK_DEFAULT] = load(path, "default");
    toks[TOK_FALCON3] = load(path, "falcon3");
    data_path(path, sizeof path, "BN_FUZZ_SPM_VOCAB", "spm-tiny-vocab.gguf");
    toks[TOK_SPM] = load(path, NULL);
    for (int k = 0; k < 4; k++) list_specials(k);
    return 0;
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
        abort();
    }
}

static int contains(const char *s, size_t n, const char *w, size_t wn)
{
    for (size_t i = 0; wn && i + wn <= n; i++)
        if (memcmp(s + i, w, wn) == 0) return 1;
    return 0;
}

/* ---- SentencePiece: the naive reference ------------------------------------------ */

/* ids of the one fragment " " + text (spaces as U+2581), quadratic. */
static int spm_reference(const bn_tokenizer *t, const char *text, size_t n, int32_t *out)
{
    unsigned char *s = malloc(3 * n + 3);
    uint32_t *start = malloc((n + 1) * sizeof *start), *len = malloc((n + 1) * sizeof *len);
    size_t m = 0;
    memcpy(s, "\xE2\x96\x81", 3);
    m = 3;
    for (size_t i = 0; i < n; i++) {
        if (text[i] == ' ') { memcpy(s + m, "\xE2\x96\x81", 3); m += 3; }
        else s[m++] = (unsigned char)text[i];
    }
    int k = 0;
    for (size_t i = 0; i < m;) {
        uint32_t c;
        int l = bn_utf8_decode(s + i, m - i, &c);
        start[k] = (uint32_t)i;
        len[k++] = (uint32_t)l;
        i += (size_t)l;
    }
    for (;;) {
        int best = -1;
        float best_score = 0;
        for (int i = 0; i + 1 < k; i++) {
            int32_t id = bn_tok_find(t, s + start[i], len[i] + len[i + 1]);
            if (id >= 0 && (best < 0 || t->score[id] > best_score)) {
                best = i;
                best_score = t->score[id];
            }
        }
        if (best < 0) break;
        len[best] += len[best + 1];
        memmove(start + best + 1, start + best + 2, (size_t)(k - best - 2) * sizeof *start);
        memmove(len + best + 1, len + best + 2, (size_t)(k - best - 2) * sizeof *len);
        k--;
    }
    int o = 0;
    for (int i = 0; i < k; i++) {
        int32_t id = bn_tok_find(t, s + start[i], len[i]);
        if (id >= 0) { out[o++] = id; continue; }
        for (uint32_t j = 0; j < len[i]; j++) {
            int32_t b = t->byte_id[s[start[i] + j]];
            if (b < 0) b = t->unk;
            if (b >= 0) out[o++] = b;
        }
    }
    free(s);
    free(start);
    free(len);
    return o;
}

static void check_spm(const bn_tokenizer *t, const char *text, size_t n, int add_bos,
                      int parse_special, const int32_t *ids, int k)
{
    int valid = bn_utf8_valid_len((const unsigned char *)text, n) == n;
    int user_defined = 0;
    char piece[256];
    for (int i = 0; i < n_specials[TOK_SPM]; i++) {
        int32_t id = specials[TOK_SPM][i];
        int len = bn_token_to_bytes(t, id, 1, piece, sizeof piece);
        if (t->type[id] == BN_TT_USER_DEFINED && len > 0 && len <= (int)sizeof piece)
            user_defined |= contains(text, n, piece, (size_t)len);
    }
    int one_fragment = valid && !parse_special && !user_defined && n > 0;
    if (one_fragment && n <= 512) {
        int32_t *want = malloc((3 * n + 8) * sizeof *want);
        int nw = spm_reference(t, text, n, want);
        int off = add_bos && t->bos >= 0;
        check(k == nw + off && memcmp(ids + off, want, (size_t)nw * sizeof *want) == 0,
              "SentencePiece ids == naive reference");
        free(want);
    }
    /* bn_detokenize: the raw pieces, minus one leading space */
    size_t cap = 4 * n + 64;
    char *a = malloc(cap), *b = malloc(cap);
    size_t pa = 0;
    for (int i = 0; i < k; i++) {
        int len = bn_token_to_bytes(t, ids[i], 0, a + pa, (int)(cap - pa));
        check(len >= 0 && pa + (size_t)len <= cap, "piece bytes");
        pa += (size_t)len;
    }
    int nb = bn_detokenize(t, ids, k, 0, b, (int)cap);
    check(nb >= 0 && (size_t)nb <= pa && pa - (size_t)nb <= 1, "detokenize: one space at most");
    if (one_fragment && !add_bos && !contains(text, n, "\xE2\x96\x81", 3))
        check((size_t)nb == n && memcmp(b, text, n) == 0, "SentencePiece decode(encode(x)) == x");
    free(a);
    free(b);
}

/* ---- byte-level BPE -------------------------------------------------------------------- */

static void check_bpe(const bn_tokenizer *t, const char *text, size_t n, int add_bos,
                      const int32_t *ids, int k)
{
    /* decode with specials rendered */
    char *back = malloc(n * 3 + 64);
    size_t o = 0;
    int first = add_bos && bn_token_bos(t) >= 0;
    if (first) check(ids[0] == bn_token_bos(t), "bos first");
    for (int i = first; i < k; i++) {
        int len = bn_token_to_bytes(t, ids[i], 1, back + o, (int)(n * 3 + 64 - o));
        check(len >= 0 && o + (size_t)len <= n * 3 + 64, "token bytes");
        o += (size_t)len;
    }
    int valid = bn_utf8_valid_len((const unsigned char *)text, n) == n;
    if (valid) check(o == n && memcmp(back, text, n) == 0, "decode(encode(x)) == x");
    check(bn_utf8_valid_len((const unsigned char *)back, o) == o, "decoded output is valid UTF-8");

    /* streaming decoder: without specials in the ids it reproduces back */
    int has_control = 0;
    for (int i = 0; i < k; i++) has_control |= ids[i] >= 128000;
    char *stream = malloc(o * 3 + 64);
    size_t so = 0;
    bn_detok d;
    bn_detok_init(&d, t);
    for (int i = 0; i < k; i++) {
        int len = bn_detok_push(&d, ids[i], stream + so, (int)(o * 3 + 64 - so));
        check(len >= 0, "detok push");
        so += (size_t)len;
    }
    so += (size_t)bn_detok_flush(&d, stream + so, (int)(o * 3 + 64 - so));
    if (!has_control) check(so == o && memcmp(stream, back, o) == 0, "detok == decode");
    free(stream);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 16384) return 0;
    unsigned flags = data[0];
    int which = (flags >> 2) & 3;
    const bn_tokenizer *t = toks[which];
    int parse_special = flags & 1, add_bos = (flags >> 1) & 1;

    /* build the text, expanding special-token fragments */
    char *text = malloc(size * 32 + 64);
    size_t n = 0;
    for (size_t i = 1; i < size; i++) {
        if (data[i] == 0xFE && i + 2 < size) {
            char sp[64];
            int32_t id = specials[which][data[i + 1] % n_specials[which]];
            int len = bn_token_to_bytes(t, id, 1, sp, sizeof sp);
            int m = data[i + 2] % 32;
            if (len > 0 && len <= (int)sizeof sp) {
                if (m && m < len) len = m;
                memcpy(text + n, sp, (size_t)len);
                n += (size_t)len;
            }
            i += 2;
            continue;
        }
        text[n++] = (char)data[i];
    }

    int k = bn_tokenize(t, text, n, add_bos, parse_special, NULL, 0);
    check(k >= 0, "tokenize count");
    int32_t *ids = malloc(((size_t)k + 1) * sizeof *ids);
    check(bn_tokenize(t, text, n, add_bos, parse_special, ids, k) == k, "tokenize repeat");
    for (int i = 0; i < k; i++) check(ids[i] >= 0 && ids[i] < bn_vocab_size(t), "id in the vocabulary");

    if (which == TOK_SPM) check_spm(t, text, n, add_bos, parse_special, ids, k);
    else check_bpe(t, text, n, add_bos, ids, k);

    /* random ids (pairs of input bytes) through the streaming decoder */
    if (flags & 16) {
        char out[1024];
        bn_detok d;
        bn_detok_init(&d, t);
        for (size_t i = 1; i + 1 < size; i += 2) {
            int32_t id = (int32_t)(((unsigned)data[i] << 9 | (unsigned)data[i + 1] << 1 | ((flags >> 5) & 1)) %
                                   (unsigned)bn_vocab_size(t));
            int len = bn_detok_push(&d, id, out, sizeof out);
            check(len >= 0 && bn_utf8_valid_len((unsigned char *)out, (size_t)len) == (size_t)len,
                  "detok random ids: valid UTF-8");
        }
        check(bn_detok_flush(&d, out, sizeof out) >= 0, "detok flush");
        int32_t few[64];
        int m = 0;
        for (size_t i = 1; i + 1 < size && m < 64; i += 2)
            few[m++] = (int32_t)(((unsigned)data[i] << 8 | data[i + 1]) % (unsigned)bn_vocab_size(t));
        check(bn_detokenize(t, few, m, (int)(flags & 3), NULL, 0) >= 0, "detokenize random ids");
    }
    free(ids);
    free(text);
    return 0;
}
