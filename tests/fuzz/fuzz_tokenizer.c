/* libFuzzer harness for the tokenizer (build with -DBITNET_FUZZ=ON, clang).
 *
 * Input layout: byte 0 = flags (bit 0 parse_special, bit 1 add_bos, bit 2
 * "default" pre-tokenizer instead of LLaMA-3, bit 3 also stream random ids
 * through the detokenizer, bit 4 their low bit); the rest is text, where 0xFE K M inserts M bytes
 * (all when M = 0) of special token 128000 + K's text, so special-token
 * fragments, partial matches and neighbours are exercised.
 *
 * Checks: no crash / sanitizer report; for valid UTF-8 text,
 * decode(encode(x)) == x; for any text, the decoded output is valid UTF-8
 * (bad bytes become U+FFFD) and the streaming decoder agrees with it.
 *
 * The vocabulary is tests/data/llama3-vocab.gguf (or $BN_FUZZ_VOCAB). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "gguf.h"
#include "tokenizer.h"
#include "unicode.h"

static bn_tokenizer *tok_llama3, *tok_default;

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

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char path[4096];
    const char *env = getenv("BN_FUZZ_VOCAB");
    if (env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        /* this file is <root>/tests/fuzz/fuzz_tokenizer.c */
        snprintf(path, sizeof path, "%s", __FILE__);
        char *cut = strstr(path, "tests/fuzz/fuzz_tokenizer.c");
        if (cut) *cut = '\0';
        else path[0] = '\0';
        strncat(path, "tests/data/llama3-vocab.gguf", sizeof path - strlen(path) - 1);
    }
    tok_llama3 = load(path, "llama3");
    tok_default = load(path, "default");
    return 0;
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_tokenizer: check failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 16384) return 0;
    unsigned flags = data[0];
    const bn_tokenizer *t = flags & 4 ? tok_default : tok_llama3;
    int parse_special = flags & 1, add_bos = (flags >> 1) & 1;

    /* build the text, expanding special-token fragments */
    char *text = malloc(size * 32 + 64);
    size_t n = 0;
    for (size_t i = 1; i < size; i++) {
        if (data[i] == 0xFE && i + 2 < size) {
            char sp[64];
            int len = bn_token_to_bytes(t, 128000 + data[i + 1], 1, sp, sizeof sp);
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

    /* random ids (pairs of input bytes) through the streaming decoder */
    if (flags & 8) {
        char out[1024];
        bn_detok_init(&d, t);
        for (size_t i = 1; i + 1 < size; i += 2) {
            int32_t id = (int32_t)(((unsigned)data[i] << 9 | (unsigned)data[i + 1] << 1 | ((flags >> 4) & 1)) %
                                   (unsigned)bn_vocab_size(t));
            int len = bn_detok_push(&d, id, out, sizeof out);
            check(len >= 0 && bn_utf8_valid_len((unsigned char *)out, (size_t)len) == (size_t)len,
                  "detok random ids: valid UTF-8");
        }
        check(bn_detok_flush(&d, out, sizeof out) >= 0, "detok flush");
    }
    free(stream);
    free(back);
    free(ids);
    free(text);
    return 0;
}
