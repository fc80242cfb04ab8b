/* `bitnet logits`: raw float32 little-endian logits for a token sequence,
 * one row of n_vocab per position (the last one unless --all), from the
 * batched prompt path (default) or token by token (--seq); the file the
 * parity checks against bitnet.cpp read. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* --tokens 1,2,3 -> ids (each in [0, n_vocab)); prints the error. */
static int32_t *parse_tokens(const char *s, int n_vocab, int *n_out) {
    int cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) {
        bn_err("out of memory");
        return NULL;
    }
    int n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || errno == ERANGE || *p == ' ' || *p == '+') {
            bn_err("--tokens: bad list '%s' (expected token ids separated by commas)", s);
            free(ids);
            return NULL;
        }
        if (v < 0 || v >= n_vocab) {
            bn_err("--tokens: token id %ld is out of range (0 to %d)", v, n_vocab - 1);
            free(ids);
            return NULL;
        }
        ids[n++] = (int32_t)v;
        if (*end == '\0') break;
        p = end + 1;
    }
    *n_out = n;
    return ids;
}

/* Writes n floats little-endian whatever the host order. */
static int write_f32_le(FILE *f, const float *x, size_t n) {
    const uint16_t probe = 1;
    if (*(const uint8_t *)&probe == 1) return fwrite(x, sizeof *x, n, f) == n ? 0 : -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        if (fwrite(b, 1, 4, f) != 4) return -1;
    }
    return 0;
}

int bn_cmd_logits(const bn_cli_opts *o) {
    if (!o->out) return bn_err("logits: -o OUT is required (see bitnet --help)");
    if (!!o->tokens + !!o->prompt != 1) return bn_err("logits: give either --tokens LIST or -p TEXT");
    if (o->prompt && o->prompt_len == 0) return bn_err("empty prompt");
    double load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    if (!m) return 1;
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    const int n_vocab = bn_model_hparams(m)->n_vocab;
    int n = 0, rc = 1;
    int32_t *ids = o->tokens ? parse_tokens(o->tokens, n_vocab, &n)
                             : bn_cli_tokenize(tok, o->prompt, o->prompt_len, bn_add_bos(tok), 1, &n);
    bn_context *c = NULL;
    FILE *f = NULL;
    if (!ids) goto done;
    if (n == 0) {
        bn_err("empty prompt");
        goto done;
    }
    c = bn_cli_new_context(o, m, o->all && !o->seq ? n : 1);
    if (!c) goto done;
    if (n > bn_context_n_ctx(c)) {
        bn_err("the prompt is %d tokens, longer than the context (%d)", n, bn_context_n_ctx(c));
        goto done;
    }
    f = fopen(o->out, "wb");
    if (!f) {
        bn_err("%s: cannot open for writing: %s", o->out, strerror(errno));
        goto done;
    }
    bn_cli_log_load(o, m, load_ms);
    char err[256];
    int rows = 0;
    if (o->seq) {                   /* token by token: the decode path */
        for (int i = 0; i < n; i++) {
            if (bn_decode(c, &ids[i], 1, 0, err, sizeof err) != 0) {
                bn_err("decoding: %s", err);
                goto done;
            }
            if ((o->all || i == n - 1) && write_f32_le(f, bn_get_logits(c, -1), (size_t)n_vocab) != 0) {
                bn_err("%s: write error", o->out);
                goto done;
            }
            rows += o->all || i == n - 1;
        }
    } else {                        /* one bn_decode of the whole prompt */
        if (bn_decode(c, ids, n, o->all, err, sizeof err) != 0) {
            bn_err("decoding: %s", err);
            goto done;
        }
        for (int i = o->all ? 0 : n - 1; i < n; i++) {
            if (write_f32_le(f, bn_get_logits(c, o->all ? i : -1), (size_t)n_vocab) != 0) {
                bn_err("%s: write error", o->out);
                goto done;
            }
            rows++;
        }
    }
    if (fclose(f) != 0) {
        f = NULL;
        bn_err("%s: write error", o->out);
        goto done;
    }
    f = NULL;
    bn_cli_print_full_rows_head(m);
    fprintf(stderr, "%d %d\n", rows, n_vocab);
    rc = 0;
done:
    if (f) fclose(f);
    bn_context_free(c);
    free(ids);
    bn_model_free(m);
    return rc;
}
