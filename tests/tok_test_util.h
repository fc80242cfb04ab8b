/* Shared helpers for the tokenizer tests (header-only: tests/helper_*.c
 * would be linked into every test of the project). */
#ifndef BN_TOK_TEST_UTIL_H
#define BN_TOK_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "gguf.h"
#include "tokenizer.h"

#define LLAMA3_VOCAB BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf"

/* Loads a tokenizer from a GGUF path (NULL on failure, message printed). */
static inline bn_tokenizer *tt_load(const char *path, const char *pre)
{
    gguf_file f;
    char err[256];
    if (gguf_open(&f, path, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", path, err);
        return NULL;
    }
    bn_tokenizer *t = bn_tokenizer_from_gguf(&f, pre, err, sizeof err);
    if (!t) fprintf(stderr, "%s: %s\n", path, err);
    gguf_close(&f);     /* the tokenizer keeps copies of everything it needs */
    return t;
}

/* Whole file into a malloc'd buffer (NUL-terminated), or NULL. */
static inline char *tt_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, fp) != (size_t)n) { free(buf); buf = NULL; }
    fclose(fp);
    if (buf) { buf[n] = '\0'; if (len) *len = (size_t)n; }
    return buf;
}

/* Hex string [s, s+n) -> bytes in out; returns the byte count. */
static inline size_t tt_unhex(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i + 1 < n; i += 2) {
        unsigned v;
        sscanf(s + i, "%2x", &v);
        out[o++] = (char)v;
    }
    return o;
}

/* Space-separated decimal ids in [s, s+n) -> out; returns the count. */
static inline int tt_parse_ids(const char *s, size_t n, int32_t *out, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n && k < max) {
        while (i < n && s[i] == ' ') i++;
        if (i >= n) break;
        out[k++] = (int32_t)strtol(s + i, NULL, 10);
        while (i < n && s[i] != ' ') i++;
    }
    return k;
}

/* Tokenizes into a malloc'd array (*n ids), or NULL on error. */
static inline int32_t *tt_tokenize(const bn_tokenizer *t, const char *s, size_t len, int bos,
                                   int special, int *n)
{
    int need = bn_tokenize(t, s, len, bos, special, NULL, 0);
    if (need < 0) return NULL;
    int32_t *ids = malloc(((size_t)need + 1) * sizeof *ids);
    if (!ids) return NULL;
    *n = bn_tokenize(t, s, len, bos, special, ids, need);
    return ids;
}

#endif
