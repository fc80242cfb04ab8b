/* The glue between BitLinears (kernels.h, bn_glue_kernels) of every variant,
 * bit for bit against plain transcriptions of docs/NUMERICS.md (RMSNorm;
 * BitLinear, steps 1-4 and 6; FFN activations), on rows of every length
 * around the vector widths, odd row counts, zero padding, and values over a
 * wide range of magnitudes (tiny, huge, zeros of both signs). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"

static uint32_t seed = 2024;
static uint32_t next(void) {
    seed = seed * 1664525u + 1013904223u;
    return seed;
}

/* uniform in [-1, 1) */
static float frand(void) {
    return (float)(next() >> 8) / 16777216.0f * 2.0f - 1.0f;
}

/* Values whose magnitudes span 2^-20 .. 2^11, with some zeros of both signs:
 * sums of their squares (2^-40 .. 2^22) round at almost every step, so any
 * change of order shows. */
static float wild(void) {
    uint32_t r = next() >> 24;
    if (r < 8) return (r & 1) ? -0.0f : 0.0f;
    return ldexpf(frand(), (int)(next() >> 27) - 20);
}

static int same(float a, float b) {
    return memcmp(&a, &b, sizeof a) == 0;
}

static const int lengths[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 128, 400, 2560};
enum { N_LENGTHS = sizeof lengths / sizeof lengths[0] };

/* ---- RMSNorm sums ------------------------------------------------------------ */

static void test_sum_squares(void **state) {
    (void)state;
    const bn_kernels *ks[16];
    int nk = bn_kernels_all(ks, 16);
    enum { MAXR = 19, MAXN = 2560, LD = MAXN + 3 };
    float *x = malloc(sizeof *x * MAXR * LD);
    for (int i = 0; i < MAXR * LD; i++) x[i] = wild();
    for (int li = 0; li < N_LENGTHS; li++) {
        int n = lengths[li];
        for (int rows = 1; rows <= MAXR; rows++) {
            double want[MAXR], got[MAXR];
            for (int r = 0; r < rows; r++) {
                double s = 0.0;
                for (int i = 0; i < n; i++) {
                    volatile float sq = x[(size_t)r * LD + i] * x[(size_t)r * LD + i];
                    s += (double)sq;
                }
                want[r] = s;
            }
            for (int v = 0; v < nk; v++) {
                for (int r = 0; r < MAXR; r++) got[r] = -1.0;
                ks[v]->glue->sum_squares(x, LD, rows, n, got);
                for (int r = 0; r < rows; r++)
                    if (memcmp(&got[r], &want[r], sizeof got[r]) != 0)
                        fail_msg("%s: n=%d rows=%d row %d: %a != %a", ks[v]->name, n, rows, r,
                                 got[r], want[r]);
                for (int r = rows; r < MAXR; r++)
                    if (got[r] != -1.0) fail_msg("%s wrote past %d rows", ks[v]->name, rows);
            }
        }
    }
    free(x);
}

/* ---- RMSNorm's last step + quantize_act ---------------------------------------- */

/* docs/NUMERICS.md, BitLinear, steps 1-4, with nearbyintf. */
static float spec_quantize(const float *y, int K, int8_t *q, int32_t *sum) {
    double amax = 1e-5;
    for (int i = 0; i < K; i++) amax = fmax(amax, fabs((double)y[i]));
    const float s = (float)(127.0 / amax);
    int32_t total = 0;
    for (int i = 0; i < K; i++) {
        volatile float prod = y[i] * s;
        float r = nearbyintf(prod);
        int v = r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r;
        q[i] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

static void check_norm_quantize(const float *x, const float *w, float scale, int K, int Kp) {
    const bn_kernels *ks[16];
    int nk = bn_kernels_all(ks, 16);
    float *y = malloc(sizeof *y * Kp);
    int8_t *want = malloc(Kp), *got = malloc(Kp + 64), *own = malloc(Kp);
    for (int k = 0; k < Kp; k++) {
        volatile float xs = k < K && w ? x[k] * scale : 0.0f;
        y[k] = k >= K ? 0.0f : w ? xs * w[k] : x[k];
    }
    int32_t wsum, gsum, osum;
    float ws = spec_quantize(y, Kp, want, &wsum);
    for (int v = 0; v < nk; v++) {
        memset(got, 0x55, Kp + 64);
        gsum = 0x12345678;
        float gs = ks[v]->glue->norm_quantize_act(x, w, scale, K, Kp, (int8_t *)got, &gsum);
        if (!same(gs, ws)) fail_msg("%s K=%d scale %a != %a", ks[v]->name, K, (double)gs, (double)ws);
        if (gsum != wsum) fail_msg("%s K=%d sum %d != %d", ks[v]->name, K, gsum, wsum);
        for (int k = 0; k < Kp; k++)
            if (got[k] != want[k])
                fail_msg("%s K=%d Kp=%d w=%s q[%d] = %d, want %d", ks[v]->name, K, Kp,
                         w ? "yes" : "NULL", k, got[k], want[k]);
        for (int k = Kp; k < Kp + 64; k++)
            if (got[k] != 0x55) fail_msg("%s wrote q past Kp=%d", ks[v]->name, Kp);
        /* the variant's own quantize_act of the stored row: the same bytes */
        float os = ks[v]->quantize_act(y, Kp, own, &osum);
        if (!same(os, gs) || osum != gsum || memcmp(own, got, Kp) != 0)
            fail_msg("%s K=%d: fused != quantize_act of the normed row", ks[v]->name, K);
    }
    free(y);
    free(want);
    free(got);
    free(own);
}

static void test_norm_quantize_act(void **state) {
    (void)state;
    const int Ks[] = {1, 7, 8, 9, 31, 32, 33, 100, 127, 128, 129, 400, 2560, 6912};
    for (size_t t = 0; t < sizeof Ks / sizeof Ks[0]; t++) {
        int K = Ks[t], Kp = (K + 127) / 128 * 128;
        float *x = malloc(sizeof *x * K), *w = malloc(sizeof *w * K);
        for (int rep = 0; rep < 4; rep++) {
            /* activations of a few magnitudes, norm weights near 1 with outliers */
            float mag = ldexpf(1.0f, (int)(next() >> 28) - 6);
            for (int k = 0; k < K; k++) x[k] = frand() * mag;
            for (int k = 0; k < K; k++) w[k] = (next() >> 28) ? 1.0f + 0.3f * frand() : 20.0f * frand();
            if (rep == 3) for (int k = 0; k < K; k++) x[k] = wild();
            float scale = 1.0f / sqrtf(mag * mag / 3.0f + 1e-5f);
            check_norm_quantize(x, w, scale, K, Kp);
            check_norm_quantize(x, NULL, 1.0f, K, Kp);
            /* tiny rows: the 1e-5 floor decides s */
            check_norm_quantize(x, w, 1e-9f, K, Kp);
        }
        free(x);
        free(w);
    }
}

/* ---- epilogues and the ReLU² and SiLU products -------------------------------------------- */

static void test_epilogues(void **state) {
    (void)state;
    const bn_kernels *ks[16];
    int nk = bn_kernels_all(ks, 16);
    enum { MAXN = 2560 };
    int32_t *dg = malloc(sizeof *dg * MAXN), *du = malloc(sizeof *du * MAXN);
    float *y0 = malloc(sizeof *y0 * MAXN), *want = malloc(sizeof *want * (MAXN + 8));
    float *got = malloc(sizeof *got * (MAXN + 8));
    for (int rep = 0; rep < 3; rep++) {
        /* dots up to 2^23 in size (K * 128 for K up to 2^16) */
        int bits = rep == 0 ? 8 : rep == 1 ? 16 : 23;
        for (int m = 0; m < MAXN; m++) {
            dg[m] = (int32_t)(next() >> (32 - bits)) - (1 << (bits - 1));
            du[m] = (int32_t)(next() >> (32 - bits)) - (1 << (bits - 1));
            y0[m] = wild();
        }
        float as = 127.0f / (0.01f + fabsf(frand()) * 30.0f);
        float gs = 0.5f + fabsf(frand()), us = 0.5f + fabsf(frand());
        for (int li = 0; li < N_LENGTHS; li++) {
            int n = lengths[li];
            for (int v = 0; v < nk; v++) {
                const bn_glue_kernels *g = ks[v]->glue;
                for (int op = 0; op < 4; op++) {
                    for (int m = 0; m < n; m++) {
                        volatile float e = (float)dg[m] / as;
                        float eg = e * gs;
                        if (op == 0) want[m] = eg;
                        if (op == 1) want[m] = y0[m] + eg;
                        if (op == 2) {
                            volatile float f = (float)du[m] / as;
                            float eu = f * us;
                            float r = fmaxf(eg, 0.0f);
                            volatile float rr = r * r;
                            want[m] = rr * eu;
                        }
                        if (op == 3) {
                            volatile float f = (float)du[m] / as;
                            float eu = f * us;
                            volatile float sg = eg / (1.0f + bn_silu_exp(eg));
                            want[m] = sg * eu;
                        }
                    }
                    memcpy(got, y0, sizeof *got * n);
                    for (int m = n; m < n + 8; m++) got[m] = 42.0f;
                    if (op == 0) g->epilogue(dg, n, as, gs, got);
                    if (op == 1) g->epilogue_add(dg, n, as, gs, got);
                    if (op == 2) g->relu2_glu(dg, du, n, as, gs, us, got);
                    if (op == 3) g->silu_glu(dg, du, n, as, gs, us, got);
                    for (int m = 0; m < n; m++)
                        if (!same(got[m], want[m]))
                            fail_msg("%s op %d n=%d [%d]: %a != %a", ks[v]->name, op, n, m,
                                     (double)got[m], (double)want[m]);
                    for (int m = n; m < n + 8; m++)
                        if (got[m] != 42.0f) fail_msg("%s op %d wrote past n=%d", ks[v]->name, op, n);
                }
            }
        }
    }
    free(dg);
    free(du);
    free(y0);
    free(want);
    free(got);
}

/* bn_silu_exp(g) against exp(-g) in double: a few ulp over the range where
 * exp(-g) is a normal float; clamped to exp(88) above, 0 below -87. */
static void test_silu_exp(void **state) {
    (void)state;
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        float x = -87.0f + 175.0f * (float)i / 200000.0f;   /* x = -g in [-87, 88] */
        double want = exp((double)x), got = (double)bn_silu_exp(-x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel;
    }
    printf("  bn_silu_exp: worst relative error %.3g over [-87, 88]\n", worst);
    assert_true(worst < 4.0 * 0x1p-24);
    assert_true(bn_silu_exp(-1e6f) == bn_silu_exp(-88.0f) && isfinite(bn_silu_exp(-1e30f)));
    assert_true(bn_silu_exp(100.0f) == 0.0f && bn_silu_exp(1e30f) == 0.0f);
    assert_true(bn_silu_exp(0.0f) == 1.0f && bn_silu_exp(-0.0f) == 1.0f);
}

int main(void) {
    const bn_kernels *ks[16];
    int nk = bn_kernels_all(ks, 16);
    for (int v = 0; v < nk; v++) printf("glue of %s: %s\n", ks[v]->name, ks[v]->glue->name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_squares),
        cmocka_unit_test(test_norm_quantize_act),
        cmocka_unit_test(test_epilogues),
        cmocka_unit_test(test_silu_exp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
