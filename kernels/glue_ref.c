/* The glue between BitLinears in plain C (kernels.h, bn_glue_kernels): the
 * definition every variant's glue loops reproduce bit for bit. The
 * reference table uses it, and so does any variant without its own. */
#include <math.h>
#include <string.h>

#include "kernels.h"

/* docs/NUMERICS.md, RMSNorm, step 1: one chain per row. */
static void ref_sum_squares(const float *x, size_t ld, int rows, int n, double *sums) {
    for (int r = 0; r < rows; r++) {
        const float *row = x + (size_t)r * ld;
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += (double)(row[i] * row[i]);
        sums[r] = sum;
    }
}

/* RMSNorm's step 4 (or the row as it is) with K..Kp as zeros. */
static float normed(const float *x, const float *w, float scale, int K, int k) {
    if (k >= K) return 0.0f;
    return w ? (x[k] * scale) * w[k] : x[k];
}

/* quantize_act (ternary_ref.c) of the row normed(...), each y computed
 * where it is used. */
static float ref_norm_quantize_act(const float *x, const float *w, float scale, int K, int Kp,
                                   int8_t *q, int32_t *sum) {
    double amax = 1e-5;
    for (int k = 0; k < Kp; k++) {
        double a = fabs((double)normed(x, w, scale, K, k));
        if (a > amax) amax = a;
    }
    float s = (float)(127.0 / amax);
    int32_t total = 0;
    for (int k = 0; k < Kp; k++) {
        int32_t v = bn_round_half_even(normed(x, w, scale, K, k) * s);
        if (v > 127) v = 127;
        if (v < -128) v = -128;
        q[k] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

/* docs/NUMERICS.md, BitLinear, step 6. */
static void ref_epilogue(const int32_t *dot, int n, float act_scale, float w_scale, float *y) {
    for (int m = 0; m < n; m++) y[m] = bn_ternary_epilogue(dot[m], act_scale, w_scale);
}

static void ref_epilogue_add(const int32_t *dot, int n, float act_scale, float w_scale,
                             float *y) {
    for (int m = 0; m < n; m++) y[m] = y[m] + bn_ternary_epilogue(dot[m], act_scale, w_scale);
}

/* docs/NUMERICS.md, FFN activations: relu, square, times up. (g + |g|) / 2
 * equals max(g, 0) for every finite g and needs no branch on g's sign,
 * which is random. */
static void ref_relu2_glu(const int32_t *dg, const int32_t *du, int n, float act_scale,
                          float gs, float us, float *out) {
    for (int m = 0; m < n; m++) {
        float g = bn_ternary_epilogue(dg[m], act_scale, gs);
        float u = bn_ternary_epilogue(du[m], act_scale, us);
        float r = (g + fabsf(g)) * 0.5f;
        out[m] = (r * r) * u;
    }
}

/* docs/NUMERICS.md, FFN activations: exp(-g) through bn_attn_exp, whose
 * float steps the SIMD variants repeat lane by lane (libm's expf differs
 * between C libraries and has no vector form). -g is clamped to 88, where
 * exp is still finite (1.65e38): for g < -88 SiLU(g) is below 1e-36 in
 * magnitude either way; bn_attn_exp gives 0 below -87 (SiLU(g) = g). */
float bn_silu_exp(float g) {
    float x = -g;
    return bn_attn_exp(x < 88.0f ? x : 88.0f);
}

static void ref_silu_glu(const int32_t *dg, const int32_t *du, int n, float act_scale,
                         float gs, float us, float *out) {
    for (int m = 0; m < n; m++) {
        float g = bn_ternary_epilogue(dg[m], act_scale, gs);
        float u = bn_ternary_epilogue(du[m], act_scale, us);
        out[m] = (g / (1.0f + bn_silu_exp(g))) * u;
    }
}

const bn_glue_kernels bn_glue_ref = {
    .name = "ref",
    .sum_squares = ref_sum_squares,
    .norm_quantize_act = ref_norm_quantize_act,
    .epilogue = ref_epilogue,
    .epilogue_add = ref_epilogue_add,
    .relu2_glu = ref_relu2_glu,
    .silu_glu = ref_silu_glu,
};
