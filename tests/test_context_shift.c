/* The context shift (bn_context_shift), on small synthetic models written at
 * test time:
 *
 *   - layer-0 K depends only on the token and its position, so after a shift
 *     the re-rotated cache must equal a fresh evaluation of the kept tokens
 *     at their new positions within f16 rounding (bound below), for NEOX and
 *     NORM pairs and for RoPE over part of the head; layer-0 V is position-
 *     free and must be bit-identical; the same cache without re-rotation
 *     must fail the bound (so the check can fail);
 *   - every layer against an independent re-rotation in double of the cache
 *     as it was before the shift; V moved exactly; kept cells untouched; the
 *     freed V cells of the current block zeroed;
 *   - on a 1-layer model, where the shifted cache is in exact arithmetic the
 *     fresh cache (layer 0 is all there is), the logits of tokens decoded
 *     after a shift equal a fresh evaluation of the same tokens at the same
 *     positions within the strict reference tolerance, and the un-rotated
 *     cache does not;
 *   - discarding everything after `keep` gives exactly the bits of a fresh
 *     evaluation of the kept tokens (multi-layer, nothing re-rotated);
 *   - thread counts give identical caches; refused calls change nothing;
 *     generation with repeated shifts runs far past n_ctx. */
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

#include "bitnet.h"
#include "context.h"
#include "helper_fixtures.h"
#include "model.h"

#define N_CTX 64

/* ---- fixtures ------------------------------------------------------------------ */

static void write_model(const char *path, int n_layer, int n_head, int n_head_kv, float theta) {
    fx_write_model(path, &(bn_synth_config){FX_DIMS(n_layer, 256, n_head, n_head_kv, 256, N_CTX),
                                            .rope_theta = theta, .seed = 77u + (uint64_t)n_layer});
}

static bn_model *load(const char *path) {
    return fx_load(path, NULL, BN_HEAD_F16);
}

static bn_context *new_ctx(bn_model *m, int n_threads, int n_outputs_max) {
    return fx_context(m, (bn_context_params){.n_threads = n_threads, .n_outputs_max = n_outputs_max});
}

static void shift(bn_context *c, int keep, int n_discard) {
    char err[256] = "";
    if (bn_context_shift(c, keep, n_discard, err, sizeof err) != 0)
        fail_msg("bn_context_shift: %s", err);
}

/* RoPE variants the tests run under: the model's NEOX pairs, NORM pairs
 * (the architecture entry swapped for a copy), and RoPE over half the head
 * (dims above n_rot must only move). */
typedef struct variant {
    const char *name;
    enum bn_rope_style style;
    int half_rot;
} variant;

static const variant VARIANTS[] = {
    {"neox", BN_ROPE_NEOX, 0},
    {"norm", BN_ROPE_NORM, 0},
    {"neox-half-rot", BN_ROPE_NEOX, 1},
};
#define N_VARIANTS (int)(sizeof VARIANTS / sizeof VARIANTS[0])

static bn_arch g_arch;

static void apply_variant(bn_model *m, const variant *v) {
    g_arch = *m->arch;
    g_arch.rope = v->style;
    m->arch = &g_arch;
    m->hp.n_rot = v->half_rot ? m->hp.head_dim / 2 : m->hp.head_dim;
}

/* Index of the other member of dim i's RoPE pair, or -1 (not rotated). */
static int pair_of(enum bn_rope_style style, int i, int n_rot) {
    if (i >= n_rot) return -1;
    if (style == BN_ROPE_NORM) return i ^ 1;
    return i < n_rot / 2 ? i + n_rot / 2 : i - n_rot / 2;
}

/* Layer l, KV head h, cell t: the K row and one V element. */
static const uint16_t *k_row(const bn_context *c, int l, int h, int t) {
    return c->k_cache + (((size_t)l * c->hp.n_head_kv + h) * c->n_ctx + t) * c->hp.head_dim;
}

static uint16_t v_at(const bn_context *c, int l, int d, int t) {
    return c->v_cache[((size_t)l * c->kv_dim + d) * c->n_ctx + t];
}

static size_t cache_elems(const bn_context *c) {
    return (size_t)c->hp.n_layer * c->n_ctx * c->kv_dim;
}

/* ---- layer 0: shifted cache vs fresh evaluation ------------------------------------ */

/* |got - want| for each rotated dim, against the bound of two f16 roundings
 * of the pair (each moves a pair by at most 2^-11 of its length r: the cached
 * value before the shift and the result after it) plus the fresh value's own
 * rounding (2^-11 r), float arithmetic and angle composition (1e-5 r; the
 * angles of positions < 64 carry errors of ~1e-6 rad), and 2^-24 for
 * subnormals. Returns the worst ratio error / bound (<= 1 passes). */
static double k_error_ratio(const uint16_t *got, const uint16_t *want, enum bn_rope_style style,
                            int hd, int n_rot) {
    double worst = 0;
    for (int i = 0; i < hd; i++) {
        double g = (double)bn_f16_to_f32(got[i]), w = (double)bn_f16_to_f32(want[i]);
        int j = pair_of(style, i, n_rot);
        if (j < 0) {
            if (got[i] != want[i]) return (double)INFINITY;    /* not rotated: moved exactly */
            continue;
        }
        double wj = (double)bn_f16_to_f32(want[j]);
        double r = sqrt(w * w + wj * wj);
        double bound = r * (3.0 / 2048.0 + 1e-5) + 0x1p-24;
        double ratio = fabs(g - w) / bound;
        if (ratio > worst) worst = ratio;
    }
    return worst;
}

static void check_layer0_k(const variant *v, const char *path) {
    bn_model *m = load(path);
    apply_variant(m, v);
    const bn_hparams *hp = &m->hp;
    int V = hp->n_vocab, n = 48, keep = 5, n_discard = 19;
    int32_t t[48], fresh_t[48];
    fx_tokens(t, n, V, 3);
    int n_fresh = fx_tokens_after_shift(t, n, keep, n_discard, fresh_t);

    bn_context *a = new_ctx(m, 2, 1), *b = new_ctx(m, 2, 1);
    fx_decode(a, t, n);
    /* the cache as it was, before the shift, for the "no re-rotation" check */
    uint16_t *before = malloc(cache_elems(a) * sizeof *before);
    assert_non_null(before);
    memcpy(before, a->k_cache, cache_elems(a) * sizeof *before);
    shift(a, keep, n_discard);
    assert_int_equal(bn_context_n_past(a), n_fresh);
    fx_decode(b, fresh_t, n_fresh);

    double worst = 0, unrotated = 0;
    for (int h = 0; h < hp->n_head_kv; h++) {
        for (int p = 0; p < n_fresh; p++) {
            const uint16_t *got = k_row(a, 0, h, p), *want = k_row(b, 0, h, p);
            if (p < keep) {
                assert_memory_equal(got, want, (size_t)hp->head_dim * sizeof *got);
                continue;
            }
            double r = k_error_ratio(got, want, v->style, hp->head_dim, hp->n_rot);
            if (r > worst) worst = r;
            /* the cell's K as it was at its old position, merely moved */
            const uint16_t *old = before + ((size_t)h * a->n_ctx + p + n_discard) * hp->head_dim;
            r = k_error_ratio(old, want, v->style, hp->head_dim, hp->n_rot);
            if (r > unrotated) unrotated = r;
        }
    }
    for (int d = 0; d < a->kv_dim; d++)
        for (int p = 0; p < n_fresh; p++) assert_int_equal(v_at(a, 0, d, p), v_at(b, 0, d, p));
    print_message("  %-14s layer-0 K after the shift vs fresh: worst error %.3f of the bound; "
                  "without re-rotation %.1f\n", v->name, worst, unrotated);
    assert_true(worst <= 1.0);
    assert_true(unrotated > 10.0);
    free(before);
    bn_context_free(a);
    bn_context_free(b);
    bn_model_free(m);
}

static void test_layer0_k_matches_fresh(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_context_shift-l0");
    write_model(path, 2, 4, 2, 10000.0f);
    for (int i = 0; i < N_VARIANTS; i++) check_layer0_k(&VARIANTS[i], path);
    unlink(path);
}

/* ---- every layer: against a re-rotation in double ---------------------------------- */

static void check_all_layers(const variant *v, const char *path) {
    bn_model *m = load(path);
    apply_variant(m, v);
    const bn_hparams *hp = &m->hp;
    int n = 45, keep = 3, n_discard = 21, hd = hp->head_dim, n_rot = hp->n_rot;
    int32_t t[45];
    fx_tokens(t, n, hp->n_vocab, 5);
    bn_context *a = new_ctx(m, 3, 1);
    fx_decode(a, t, n);
    size_t elems = cache_elems(a);
    uint16_t *k0 = malloc(elems * sizeof *k0), *v0 = malloc(elems * sizeof *v0);
    assert_non_null(k0);
    assert_non_null(v0);
    memcpy(k0, a->k_cache, elems * sizeof *k0);
    memcpy(v0, a->v_cache, elems * sizeof *v0);
    shift(a, keep, n_discard);
    int n_past = n - n_discard;

    /* pair i's angle at position -n_discard, in double */
    double ang[64];
    assert_true(n_rot / 2 <= 64);
    for (int i = 0; i < n_rot / 2; i++)
        ang[i] = -(double)n_discard * pow((double)hp->rope_theta, -2.0 * i / n_rot);
    double worst = 0;
    for (int l = 0; l < hp->n_layer; l++) {
        for (int h = 0; h < hp->n_head_kv; h++) {
            for (int p = 0; p < n_past; p++) {
                const uint16_t *got = k_row(a, l, h, p);
                const uint16_t *old = k0 + (((size_t)l * hp->n_head_kv + h) * a->n_ctx + p) * hd;
                if (p < keep) {
                    assert_memory_equal(got, old, (size_t)hd * sizeof *got);
                    continue;
                }
                old += (size_t)n_discard * hd;
                for (int i = 0; i < hd; i++) {
                    int j = pair_of(v->style, i, n_rot);
                    if (j < 0) {
                        assert_int_equal(got[i], old[i]);
                        continue;
                    }
                    /* x0 is the pair's first member: (i, j) with i < j */
                    int first = i < j ? i : j, second = i < j ? j : i;
                    int pi = v->style == BN_ROPE_NORM ? first / 2 : first;
                    double x0 = (double)bn_f16_to_f32(old[first]), x1 = (double)bn_f16_to_f32(old[second]);
                    double want = i == first ? x0 * cos(ang[pi]) - x1 * sin(ang[pi])
                                             : x0 * sin(ang[pi]) + x1 * cos(ang[pi]);
                    double r = sqrt(x0 * x0 + x1 * x1);
                    /* one f16 rounding of the result, plus float angles
                     * (iterated products, |angle| < 22) and arithmetic */
                    double bound = r * (1.0 / 2048.0 + 1e-5) + 0x1p-24;
                    double e = fabs((double)bn_f16_to_f32(got[i]) - want) / bound;
                    if (e > worst) worst = e;
                }
            }
        }
        for (int d = 0; d < a->kv_dim; d++) {
            const uint16_t *row0 = v0 + ((size_t)l * a->kv_dim + d) * a->n_ctx;
            for (int p = 0; p < n_past; p++)
                assert_int_equal(v_at(a, l, d, p), row0[p < keep ? p : p + n_discard]);
            /* freed cells up to the end of the current block of 32 */
            for (int p = n_past; p < 32 && p < n; p++) assert_int_equal(v_at(a, l, d, p), 0);
        }
    }
    print_message("  %-14s all layers vs double re-rotation: worst error %.3f of the bound\n",
                  v->name, worst);
    assert_true(worst <= 1.0);
    free(k0);
    free(v0);
    bn_context_free(a);
    bn_model_free(m);
}

static void test_all_layers_vs_double(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_context_shift-all");
    write_model(path, 2, 4, 2, 500000.0f);
    for (int i = 0; i < N_VARIANTS; i++) check_all_layers(&VARIANTS[i], path);
    unlink(path);
}

/* ---- logits after a shift, 1-layer model ----------------------------------------------- */

#define N_AFTER 8

/* Decodes t[0..n), shifts (keep, n_discard), then t[n..n+N_AFTER) one by one;
 * returns their logits (malloc'd). With unrotate, the moved K cells are put
 * back as they were before the shift, only moved (what a shift without
 * re-rotation would leave). */
static float *logits_after_shift(bn_model *m, const int32_t *t, int n, int keep, int n_discard,
                                 int unrotate) {
    bn_context *a = new_ctx(m, 2, 1);
    fx_decode(a, t, n);
    size_t elems = cache_elems(a);
    uint16_t *k0 = malloc(elems * sizeof *k0);
    assert_non_null(k0);
    memcpy(k0, a->k_cache, elems * sizeof *k0);
    shift(a, keep, n_discard);
    if (unrotate) {
        size_t row = (size_t)a->n_ctx * m->hp.head_dim, hd = (size_t)m->hp.head_dim;
        for (size_t r = 0; r < elems / row; r++)
            for (int p = keep; p < n - n_discard; p++)
                memcpy(a->k_cache + r * row + (size_t)p * hd, k0 + r * row + (size_t)(p + n_discard) * hd,
                       hd * sizeof *k0);
    }
    float *out = fx_logits(a, t + n, N_AFTER, 1);
    free(k0);
    bn_context_free(a);
    return out;
}

static void check_logits_one_layer(const variant *v, const char *path) {
    bn_model *m = load(path);
    apply_variant(m, v);
    int V = m->hp.n_vocab, n = 50, keep = 4, n_discard = 23;
    int32_t t[50 + N_AFTER], fresh_t[50 + N_AFTER];
    fx_tokens(t, n + N_AFTER, V, 9);
    t[0] = bn_token_bos(bn_model_tokenizer(m));
    int n_fresh = fx_tokens_after_shift(t, n + N_AFTER, keep, n_discard, fresh_t);

    /* the fresh evaluation: the same tokens at the same positions */
    bn_context *b = new_ctx(m, 2, n_fresh);
    float *fresh = fx_logits(b, fresh_t, n_fresh, 0);
    bn_context_free(b);
    const float *want = fresh + (size_t)(n_fresh - N_AFTER) * V;

    float *got = logits_after_shift(m, t, n, keep, n_discard, 0);
    float *bad = logits_after_shift(m, t, n, keep, n_discard, 1);
    fx_diff d = fx_compare(want, got, (size_t)N_AFTER * V);
    fx_diff u = fx_compare(want, bad, (size_t)N_AFTER * V);
    print_message("  %-14s 1 layer, logits after the shift vs fresh: max|d| %.2e sigma, "
                  "mean %.2e sigma; without re-rotation max %.2e sigma\n",
                  v->name, d.max / d.sigma, d.mean / d.sigma, u.max / u.sigma);
    assert_true(d.sigma > 0);
    assert_true(d.max <= 0.25 * d.sigma);
    assert_true(d.mean <= 0.04 * d.sigma);
    assert_true(u.max > 0.25 * u.sigma);
    free(fresh);
    free(got);
    free(bad);
    bn_model_free(m);
}

static void test_logits_one_layer(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_context_shift-1l");
    write_model(path, 1, 4, 4, 10000.0f);
    for (int i = 0; i < N_VARIANTS; i++) check_logits_one_layer(&VARIANTS[i], path);
    unlink(path);
}

/* ---- exact cases, threads, errors, many shifts ------------------------------------------ */

/* The cells [0, n_past) of two caches hold the same bits (cells past n_past
 * may hold anything). */
static int same_cells(const bn_context *a, const bn_context *b) {
    int n = a->n_past, hd = a->hp.head_dim;
    if (b->n_past != n) return 0;
    for (int l = 0; l < a->hp.n_layer; l++) {
        for (int h = 0; h < a->hp.n_head_kv; h++)
            if (memcmp(k_row(a, l, h, 0), k_row(b, l, h, 0), (size_t)n * hd * sizeof(uint16_t)))
                return 0;
        for (int d = 0; d < a->kv_dim; d++)
            for (int p = 0; p < n; p++)
                if (v_at(a, l, d, p) != v_at(b, l, d, p)) return 0;
    }
    return 1;
}

/* A context longer than the model's training length is honoured (as in
 * llama.cpp: positions past it extrapolate), and one past BN_MAX_CTX is a
 * clean error. */
static void test_context_past_training_length(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_context_shift-long");
    write_model(path, 1, 4, 2, 10000.0f);
    bn_model *m = load(path);
    int V = m->hp.n_vocab, n = 2 * N_CTX + 8;
    char err[256] = "";
    bn_context_params cp = bn_context_default_params();
    cp.n_ctx = BN_MAX_CTX + 1;
    assert_null(bn_context_new(m, &cp, err, sizeof err));
    assert_non_null(strstr(err, "too large"));
    cp.n_ctx = n;
    cp.n_threads = 2;
    bn_context *c = bn_context_new(m, &cp, err, sizeof err);
    if (!c) fail_msg("bn_context_new: %s", err);
    assert_int_equal(bn_context_n_ctx(c), n);
    int32_t *t = malloc((size_t)n * sizeof *t);
    assert_non_null(t);
    fx_tokens(t, n, V, 5);
    fx_decode(c, t, n - 1);
    fx_decode(c, t + n - 1, 1);
    assert_int_equal(bn_context_n_past(c), n);
    const float *lg = bn_get_logits(c, -1);
    for (int v = 0; v < V; v++) assert_true(isfinite(lg[v]));
    /* full now: one more token is refused */
    assert_int_not_equal(bn_decode(c, t, 1, 0, err, sizeof err), 0);
    free(t);
    bn_context_free(c);
    bn_model_free(m);
    remove(path);
}

static void test_exact_cases_and_errors(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_context_shift-ex");
    write_model(path, 2, 4, 2, 10000.0f);
    bn_model *m = load(path);
    int V = m->hp.n_vocab;
    size_t row = (size_t)V * sizeof(float);
    int32_t t[60];
    fx_tokens(t, 60, V, 13);
    char err[256];

    /* Everything after keep discarded: nothing is re-rotated, so the next
     * tokens see exactly the cache of a fresh evaluation of t[0..keep). */
    bn_context *a = new_ctx(m, 2, 1), *b = new_ctx(m, 2, 1);
    fx_decode(a, t, 40);
    shift(a, 7, 33);
    assert_int_equal(bn_context_n_past(a), 7);
    fx_decode(b, t, 7);
    for (int i = 40; i < 60; i++) {
        fx_decode(a, t + i, 1);
        fx_decode(b, t + i, 1);
        assert_memory_equal(bn_get_logits(a, -1), bn_get_logits(b, -1), row);
    }
    /* keep 0 and everything discarded: as after a reset */
    bn_context_reset(b);
    shift(a, 0, bn_context_n_past(a));
    assert_int_equal(bn_context_n_past(a), 0);
    fx_decode(a, t + 3, 30);
    fx_decode(b, t + 3, 30);
    assert_memory_equal(bn_get_logits(a, -1), bn_get_logits(b, -1), row);

    /* Refused calls leave cache, n_past and logits as they were. */
    size_t elems = cache_elems(a);
    uint16_t *k0 = malloc(elems * sizeof *k0);
    float *l0 = malloc(row);
    assert_non_null(k0);
    assert_non_null(l0);
    memcpy(k0, a->k_cache, elems * sizeof *k0);
    memcpy(l0, bn_get_logits(a, -1), row);
    const int bad[][2] = {{-1, 5}, {0, 0}, {5, -2}, {10, 21}, {31, 1}, {0, 31}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(bn_context_shift(a, bad[i][0], bad[i][1], err, sizeof err), -1);
        assert_non_null(strstr(err, "cannot shift the context"));
        assert_int_equal(bn_context_n_past(a), 30);
    }
    assert_memory_equal(a->k_cache, k0, elems * sizeof *k0);
    /* a shift keeps the last logits */
    shift(a, 2, 10);
    assert_memory_equal(bn_get_logits(a, -1), l0, row);
    free(k0);
    free(l0);
    bn_context_free(a);
    bn_context_free(b);

    /* Thread counts: identical caches and logits. A generation loop that
     * shifts whenever the next token would not fit runs far past n_ctx. */
    bn_context *c1 = new_ctx(m, 1, 1), *c3 = new_ctx(m, 3, 1);
    fx_decode(c1, t, 20);
    fx_decode(c3, t, 20);
    int shifts = 0;
    for (int i = 0; i < 300; i++) {
        int32_t id = t[i % 60];
        if (bn_context_n_past(c1) + 1 >= N_CTX) {
            int n_discard = (bn_context_n_past(c1) - 4) / 2;
            shift(c1, 4, n_discard);
            shift(c3, 4, n_discard);
            shifts++;
            assert_true(same_cells(c1, c3));
        }
        fx_decode(c1, &id, 1);
        fx_decode(c3, &id, 1);
        assert_memory_equal(bn_get_logits(c1, -1), bn_get_logits(c3, -1), row);
    }
    assert_true(shifts >= 8);
    bn_context_free(c1);
    bn_context_free(c3);
    bn_model_free(m);
    unlink(path);
}

/* bn_context_truncate (the server's prompt cache): keeping the first n
 * tokens and decoding others after them gives exactly the bits of a fresh
 * evaluation, for f16 and q8_0 caches, short rows and the chunked long path
 * (n_ctx 400: rows past 256 cells), aligned and unaligned n, 1 and 2
 * threads; the forgotten V cells of n's block are zero again; refused
 * calls change nothing. */
static bn_context *new_ctx_typed(bn_model *m, int n_ctx, int n_threads, int type) {
    return fx_context(m, (bn_context_params){.n_ctx = n_ctx, .n_threads = n_threads, .type_k = type,
                                             .type_v = type});
}

static void test_truncate(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_context_shift-tr");
    write_model(path, 2, 4, 2, 10000.0f);
    bn_model *m = load(path);
    const int V = m->hp.n_vocab;
    const size_t row = (size_t)V * sizeof(float);
    int32_t t[400], fresh[400];
    fx_tokens(t, 400, V, 29);
    char err[256];
    static const struct { int keep, after, n_ctx; } cases[] = {
        {20, 15, 64}, {32, 9, 64}, {0, 12, 64}, {37, 1, 64}, {270, 40, 400}, {100, 200, 400},
    };
    for (int type = BN_KV_F16; type <= BN_KV_Q8_0; type++)
        for (int nt = 1; nt <= 2; nt++)
            for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
                const int keep = cases[k].keep, after = cases[k].after;
                bn_context *a = new_ctx_typed(m, cases[k].n_ctx, nt, type);
                bn_context *b = new_ctx_typed(m, cases[k].n_ctx, nt, type);
                /* a: the kept tokens, then others that are forgotten */
                fx_decode(a, t, keep + after + 3 <= cases[k].n_ctx ? keep + after + 3 : keep + 1);
                assert_int_equal(bn_context_truncate(a, keep, err, sizeof err), 0);
                assert_int_equal(bn_context_n_past(a), keep);
                if (type == BN_KV_F16)
                    for (int l = 0; l < m->hp.n_layer; l++)
                        for (int d = 0; d < a->kv_dim; d++)
                            for (int c = keep; c < (keep + 31) / 32 * 32 && c < a->n_ctx; c++)
                                assert_int_equal(v_at(a, l, d, c), 0);
                /* then different tokens after them, against all of it afresh */
                memcpy(fresh, t, (size_t)keep * sizeof *t);
                for (int i = 0; i < after; i++) fresh[keep + i] = t[(keep + 7 * i + 11) % 400];
                fx_decode(a, fresh + keep, after);
                fx_decode(b, fresh, keep + after);
                assert_memory_equal(bn_get_logits(a, -1), bn_get_logits(b, -1), row);
                int32_t next = fresh[0];
                fx_decode(a, &next, 1);
                fx_decode(b, &next, 1);
                assert_memory_equal(bn_get_logits(a, -1), bn_get_logits(b, -1), row);
                /* refused: n_past and the logits stay */
                const int past = bn_context_n_past(a);
                assert_int_equal(bn_context_truncate(a, past + 1, err, sizeof err), -1);
                assert_non_null(strstr(err, "cannot keep"));
                assert_int_equal(bn_context_truncate(a, -1, err, sizeof err), -1);
                assert_int_equal(bn_context_n_past(a), past);
                assert_memory_equal(bn_get_logits(a, -1), bn_get_logits(b, -1), row);
                bn_context_free(a);
                bn_context_free(b);
            }
    bn_model_free(m);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layer0_k_matches_fresh),
        cmocka_unit_test(test_all_layers_vs_double),
        cmocka_unit_test(test_logits_one_layer),
        cmocka_unit_test(test_exact_cases_and_errors),
        cmocka_unit_test(test_context_past_training_length),
        cmocka_unit_test(test_truncate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
