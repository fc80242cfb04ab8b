/* Shared test fixtures (see helper_fixtures.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "context.h"
#include "helper_fixtures.h"
#include "helper_ref_forward.h"

void fx_model_path(char *path, size_t n, const char *name) {
    snprintf(path, n, "%s/%s-%d.gguf", BN_BINARY_DIR, name, (int)getpid());
}

void fx_synth_write(const char *path, const bn_synth_config *c) {
    char err[256] = "";
    if (bn_synth_write(c, path, err, sizeof err) != 0) fail_msg("bn_synth_write(%s): %s", path, err);
}

void fx_write_model(const char *path, const bn_synth_config *over) {
    bn_synth_config c = *over, p;
    assert_int_equal(bn_synth_preset("small", NULL, &p), 0);
    /* the preset's own values; every other field is 0 (off) in it, so
     * `over`'s stands as it is */
    if (!c.n_layer) c.n_layer = p.n_layer;
    if (!c.n_embd) c.n_embd = p.n_embd;
    if (!c.n_head) c.n_head = p.n_head;
    if (!c.n_head_kv) c.n_head_kv = p.n_head_kv;
    if (!c.n_ff) c.n_ff = p.n_ff;
    if (!c.n_ctx) c.n_ctx = p.n_ctx;
    if (c.rope_theta == 0.0f) c.rope_theta = p.rope_theta;
    if (c.rms_eps == 0.0f) c.rms_eps = p.rms_eps;
    if (!c.name) c.name = p.name;
    if (!c.seed) c.seed = p.seed;
    fx_synth_write(path, &c);
}

bn_model *fx_load(const char *path, const char *kernel, int head) {
    bn_model_params mp = bn_model_default_params();
    mp.kernel = kernel;
    mp.head = head;
    char err[256] = "";
    bn_model *m = bn_model_load(path, &mp, err, sizeof err);
    if (!m) fail_msg("bn_model_load(%s, %s): %s", path, kernel ? kernel : "auto", err);
    return m;
}

bn_context *fx_context(bn_model *m, bn_context_params cp) {
    char err[256] = "";
    bn_context *c = bn_context_new(m, &cp, err, sizeof err);
    if (!c) fail_msg("bn_context_new: %s", err);
    return c;
}

void fx_decode(bn_context *c, const int32_t *t, int n) {
    char err[256] = "";
    if (bn_decode(c, t, n, 0, err, sizeof err) != 0) fail_msg("bn_decode: %s", err);
}

void fx_lcg_tokens(int32_t *t, int n, int n_vocab, uint32_t x0) {
    uint32_t x = x0;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        t[i] = 1 + (int32_t)((x >> 8) % (uint32_t)(n_vocab - 1));
    }
}

void fx_tokens(int32_t *t, int n, int n_vocab, uint32_t seed) {
    fx_lcg_tokens(t, n, n_vocab, seed * 2654435761u + 1);
}

int fx_tokens_after_shift(const int32_t *t, int n, int keep, int n_discard, int32_t *out) {
    int k = 0;
    for (int i = 0; i < keep; i++) out[k++] = t[i];
    for (int i = keep + n_discard; i < n; i++) out[k++] = t[i];
    return k;
}

float *fx_logits(bn_context *c, const int32_t *t, int n, int by_token) {
    const int V = c->hp.n_vocab;
    const int n_past = bn_context_n_past(c);
    float *out = malloc((size_t)n * V * sizeof(float));
    assert_non_null(out);
    char err[256] = "";
    if (by_token) {
        for (int i = 0; i < n; i++) {
            if (bn_decode(c, t + i, 1, 0, err, sizeof err) != 0) fail_msg("decode: %s", err);
            memcpy(out + (size_t)i * V, bn_get_logits(c, -1), (size_t)V * sizeof(float));
        }
    } else {
        if (bn_decode(c, t, n, 1, err, sizeof err) != 0) fail_msg("decode: %s", err);
        for (int i = 0; i < n; i++)
            memcpy(out + (size_t)i * V, bn_get_logits(c, i), (size_t)V * sizeof(float));
    }
    assert_int_equal(bn_context_n_past(c), n_past + n);
    return out;
}

float *fx_ref_logits(const bn_model *m, const int32_t *t, int n) {
    const int V = bn_model_hparams(m)->n_vocab;
    float *out = malloc((size_t)n * V * sizeof(float));
    ref_forward *r = ref_forward_new(m, n);
    assert_non_null(out);
    assert_non_null(r);
    for (int i = 0; i < n; i++) assert_int_equal(ref_forward_token(r, t[i], out + (size_t)i * V), 0);
    ref_forward_free(r);
    return out;
}

void fx_same_bits(const float *a, const float *b, size_t n, const char *what, ...) {
    if (memcmp(a, b, n * sizeof *a) == 0) return;
    size_t i = 0;
    while (memcmp(&a[i], &b[i], sizeof *a) == 0) i++;
    char msg[512];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    fail_msg("%s: value %zu of %zu is %.9g, not %.9g", msg, i, n, (double)b[i], (double)a[i]);
}

fx_diff fx_compare(const float *ref, const float *got, size_t n) {
    double s = 0, ss = 0, sum = 0;
    fx_diff d = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double r = (double)ref[i], e = fabs((double)got[i] - r);
        if (isnan(e)) fail_msg("value %zu of %zu: %g against %g", i, n, (double)got[i], r);
        s += r;
        ss += r * r;
        sum += e;
        if (e > d.max) d.max = e;
    }
    double mu = s / (double)n;
    d.sigma = sqrt(ss / (double)n - mu * mu);
    d.mean = sum / (double)n;
    return d;
}
