/* The glue between BitLinears in NEON (kernels.h, bn_glue_kernels): the
 * same float operations as glue_ref.c on every element, four at a time, so
 * the results are the reference's bit for bit (no FMA: -ffp-contract=off
 * and explicit vmulq). Both NEON tables use it. */
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

/* ---- RMSNorm sums (docs/NUMERICS.md, RMSNorm, step 1) ------------------------ */

/* acc holds the sums of rows a (lane 0) and b (lane 1); adds their squares
 * of elements i..i+3 in order (each square rounded to float). */
static inline float64x2_t add_pair(float64x2_t acc, const float *a, const float *b) {
    float32x4_t va = vld1q_f32(a), vb = vld1q_f32(b);
    va = vmulq_f32(va, va);
    vb = vmulq_f32(vb, vb);
    float64x2_t la = vcvt_f64_f32(vget_low_f32(va)), lb = vcvt_f64_f32(vget_low_f32(vb));
    float64x2_t ha = vcvt_high_f64_f32(va), hb = vcvt_high_f64_f32(vb);
    acc = vaddq_f64(acc, vzip1q_f64(la, lb));
    acc = vaddq_f64(acc, vzip2q_f64(la, lb));
    acc = vaddq_f64(acc, vzip1q_f64(ha, hb));
    return vaddq_f64(acc, vzip2q_f64(ha, hb));
}

/* Rows in pairs (g = 2, 4 or 8 rows), each row a chain in its own lane;
 * several pairs keep several adders busy. The last n % 4 values go in as
 * zeros past the end: +0 added to a sum of squares (never -0) changes
 * nothing. */
static void sum_squares_group(const float *x, size_t ld, int g, int n, double *sums) {
    float64x2_t acc[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0),
                          vdupq_n_f64(0.0)};
    const float *p[8];
    for (int r = 0; r < g; r++) p[r] = x + (size_t)r * ld;
    int i = 0;
    for (; i + 4 <= n; i += 4)
        for (int pr = 0; pr < g / 2; pr++) acc[pr] = add_pair(acc[pr], p[2 * pr] + i, p[2 * pr + 1] + i);
    if (i < n) {
        float t[8][4];
        for (int r = 0; r < g; r++)
            for (int j = 0; j < 4; j++) t[r][j] = i + j < n ? p[r][i + j] : 0.0f;
        for (int pr = 0; pr < g / 2; pr++) acc[pr] = add_pair(acc[pr], t[2 * pr], t[2 * pr + 1]);
    }
    for (int pr = 0; pr < g / 2; pr++) vst1q_f64(sums + 2 * pr, acc[pr]);
}

static void neon_sum_squares(const float *x, size_t ld, int rows, int n, double *sums) {
    int r = 0;
    for (; r + 8 <= rows; r += 8) sum_squares_group(x + (size_t)r * ld, ld, 8, n, sums + r);
    for (; r + 2 <= rows; r += 2) sum_squares_group(x + (size_t)r * ld, ld, 2, n, sums + r);
    for (; r < rows; r++) {
        const float *row = x + (size_t)r * ld;
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += (double)(row[i] * row[i]);
        sums[r] = sum;
    }
}

/* ---- RMSNorm's last step + quantize_act (docs/NUMERICS.md, BitLinear,
 * steps 1-4; bn_neon_quantize_act of the normed row) ----------------------- */

static inline float normed1(const float *x, const float *w, float scale, int K, int k) {
    if (k >= K) return 0.0f;
    return w ? (x[k] * scale) * w[k] : x[k];
}

/* y[i..i+4): (x * scale) * w (x where w is NULL) below K, zeros from K on. */
static inline float32x4_t normed4(const float *x, const float *w, float32x4_t vscale,
                                  float scale, int K, int i) {
    if (i + 4 <= K) {
        float32x4_t v = vld1q_f32(x + i);
        return w ? vmulq_f32(vmulq_f32(v, vscale), vld1q_f32(w + i)) : v;
    }
    float t[4];
    for (int j = 0; j < 4; j++) t[j] = normed1(x, w, scale, K, i + j);
    return vld1q_f32(t);
}

static float neon_norm_quantize_act(const float *x, const float *w, float scale, int K, int Kp,
                                    int8_t *q, int32_t *sum) {
    const float32x4_t vscale = vdupq_n_f32(scale);
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0;
    int i = 0;
    for (; i + 8 <= Kp; i += 8) {
        m0 = vmaxnmq_f32(m0, vabsq_f32(normed4(x, w, vscale, scale, K, i)));
        m1 = vmaxnmq_f32(m1, vabsq_f32(normed4(x, w, vscale, scale, K, i + 4)));
    }
    float fmax = vmaxnmvq_f32(vmaxnmq_f32(m0, m1));
    for (; i < Kp; i++) {
        float a = fabsf(normed1(x, w, scale, K, i));
        if (a > fmax) fmax = a;
    }
    const float s = bn_act_quant_scale(fmax);

    /* y computed again rather than stored: the same bits, no row written */
    const float32x4_t vs = vdupq_n_f32(s);
    int32x4_t acc = vdupq_n_s32(0);
    i = 0;
    for (; i + 16 <= Kp; i += 16) {
        int32x4_t r0 = vcvtnq_s32_f32(vmulq_f32(normed4(x, w, vscale, scale, K, i), vs));
        int32x4_t r1 = vcvtnq_s32_f32(vmulq_f32(normed4(x, w, vscale, scale, K, i + 4), vs));
        int32x4_t r2 = vcvtnq_s32_f32(vmulq_f32(normed4(x, w, vscale, scale, K, i + 8), vs));
        int32x4_t r3 = vcvtnq_s32_f32(vmulq_f32(normed4(x, w, vscale, scale, K, i + 12), vs));
        int16x8_t h0 = vcombine_s16(vqmovn_s32(r0), vqmovn_s32(r1));
        int16x8_t h1 = vcombine_s16(vqmovn_s32(r2), vqmovn_s32(r3));
        int8x16_t b = vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
        vst1q_s8(q + i, b);
        acc = vpadalq_s16(acc, vpaddlq_s8(b));
    }
    int32_t total = vaddvq_s32(acc);
    for (; i < Kp; i++) {
        int32_t v = vcvtns_s32_f32(normed1(x, w, scale, K, i) * s);
        if (v > 127) v = 127;
        if (v < -128) v = -128;
        q[i] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

/* ---- epilogues (docs/NUMERICS.md, BitLinear, step 6) ----------------------- */

/* (float)dot is exact (|dot| < 2^24); divide, then multiply, each rounded
 * once, as bn_ternary_epilogue. */
static inline float32x4_t epilogue4(const int32_t *dot, float32x4_t vas, float32x4_t vws) {
    return vmulq_f32(vdivq_f32(vcvtq_f32_s32(vld1q_s32(dot)), vas), vws);
}

static void neon_epilogue(const int32_t *dot, int n, float act_scale, float w_scale, float *y) {
    const float32x4_t vas = vdupq_n_f32(act_scale), vws = vdupq_n_f32(w_scale);
    int m = 0;
    for (; m + 4 <= n; m += 4) vst1q_f32(y + m, epilogue4(dot + m, vas, vws));
    for (; m < n; m++) y[m] = bn_ternary_epilogue(dot[m], act_scale, w_scale);
}

static void neon_epilogue_add(const int32_t *dot, int n, float act_scale, float w_scale,
                              float *y) {
    const float32x4_t vas = vdupq_n_f32(act_scale), vws = vdupq_n_f32(w_scale);
    int m = 0;
    for (; m + 4 <= n; m += 4) vst1q_f32(y + m, vaddq_f32(vld1q_f32(y + m), epilogue4(dot + m, vas, vws)));
    for (; m < n; m++) y[m] = y[m] + bn_ternary_epilogue(dot[m], act_scale, w_scale);
}

/* ---- ReLU² product (docs/NUMERICS.md, FFN activations) ---------------------- */

static void neon_relu2_glu(const int32_t *dg, const int32_t *du, int n, float act_scale,
                           float gs, float us, float *out) {
    const float32x4_t vas = vdupq_n_f32(act_scale), vgs = vdupq_n_f32(gs);
    const float32x4_t vus = vdupq_n_f32(us), half = vdupq_n_f32(0.5f);
    int m = 0;
    for (; m + 4 <= n; m += 4) {
        float32x4_t g = epilogue4(dg + m, vas, vgs);
        float32x4_t u = epilogue4(du + m, vas, vus);
        float32x4_t r = vmulq_f32(vaddq_f32(g, vabsq_f32(g)), half);
        vst1q_f32(out + m, vmulq_f32(vmulq_f32(r, r), u));
    }
    for (; m < n; m++) {
        float g = bn_ternary_epilogue(dg[m], act_scale, gs);
        float u = bn_ternary_epilogue(du[m], act_scale, us);
        float r = (g + fabsf(g)) * 0.5f;
        out[m] = (r * r) * u;
    }
}

/* ---- SiLU product (glue_ref.c, bn_silu_exp) --------------------------------- */

static void neon_silu_glu(const int32_t *dg, const int32_t *du, int n, float act_scale,
                          float gs, float us, float *out) {
    const float32x4_t vas = vdupq_n_f32(act_scale), vgs = vdupq_n_f32(gs);
    const float32x4_t vus = vdupq_n_f32(us), one = vdupq_n_f32(1.0f), lim = vdupq_n_f32(88.0f);
    int m = 0;
    for (; m + 4 <= n; m += 4) {
        float32x4_t g = epilogue4(dg + m, vas, vgs);
        float32x4_t u = epilogue4(du + m, vas, vus);
        float32x4_t x = vnegq_f32(g);
        float32x4_t e = bn_exp4(vbslq_f32(vcltq_f32(x, lim), x, lim));   /* x < 88 ? x : 88 */
        vst1q_f32(out + m, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), u));
    }
    for (; m < n; m++) {
        float g = bn_ternary_epilogue(dg[m], act_scale, gs);
        float u = bn_ternary_epilogue(du[m], act_scale, us);
        out[m] = (g / (1.0f + bn_silu_exp(g))) * u;
    }
}

const bn_glue_kernels bn_glue_neon = {
    .name = "neon",
    .sum_squares = neon_sum_squares,
    .norm_quantize_act = neon_norm_quantize_act,
    .epilogue = neon_epilogue,
    .epilogue_add = neon_epilogue_add,
    .relu2_glu = neon_relu2_glu,
    .silu_glu = neon_silu_glu,
};

#endif
