/* Activation quantization and f16 loops for the aarch64 NEON variant, shared
 * by its lookup-table table (ternary_neon.c) and its sdot table
 * (ternary_neon_dotprod.c). Plain ARMv8.0 Advanced SIMD only. */
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

/* SPEC 4.5 steps 1-4, bit-exact with ternary_ref.c:
 *  - max|x| is taken in float (exact) and compared in double against the
 *    1e-5 floor; vmaxnm skips NaN like the reference's `a > amax`;
 *  - q = rne(x*s): the float product rounded once (no FMA: -ffp-contract=off
 *    and an explicit vmulq), then vcvtnq (ties to even, NaN -> 0, as the
 *    reference's magic-number rounding);
 *  - the clamp to [-128, 127] is the saturating narrow. */
float bn_neon_quantize_act(const float *x, int K, int8_t *q, int32_t *sum) {
    float32x4_t m0 = vdupq_n_f32(0.0f), m1 = m0;
    int i = 0;
    for (; i + 8 <= K; i += 8) {
        m0 = vmaxnmq_f32(m0, vabsq_f32(vld1q_f32(x + i)));
        m1 = vmaxnmq_f32(m1, vabsq_f32(vld1q_f32(x + i + 4)));
    }
    float fmax = vmaxnmvq_f32(vmaxnmq_f32(m0, m1));
    for (; i < K; i++) {
        float a = fabsf(x[i]);
        if (a > fmax) fmax = a;
    }
    double amax = 1e-5;
    if ((double)fmax > amax) amax = (double)fmax;
    const float s = (float)(127.0 / amax);

    const float32x4_t vs = vdupq_n_f32(s);
    int32x4_t acc = vdupq_n_s32(0);
    i = 0;
    for (; i + 16 <= K; i += 16) {
        int32x4_t r0 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i), vs));
        int32x4_t r1 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 4), vs));
        int32x4_t r2 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 8), vs));
        int32x4_t r3 = vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x + i + 12), vs));
        int16x8_t h0 = vcombine_s16(vqmovn_s32(r0), vqmovn_s32(r1));
        int16x8_t h1 = vcombine_s16(vqmovn_s32(r2), vqmovn_s32(r3));
        int8x16_t b = vcombine_s8(vqmovn_s16(h0), vqmovn_s16(h1));
        vst1q_s8(q + i, b);
        acc = vpadalq_s16(acc, vpaddlq_s8(b));
    }
    int32_t total = vaddvq_s32(acc);
    for (; i < K; i++) {
        float p = x[i] * s;
        /* vcvtns on one lane: the same rounding as the vector loop. */
        int32_t v = vcvtns_s32_f32(p);
        if (v > 127) v = 127;
        if (v < -128) v = -128;
        q[i] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

/* FCVTL / FCVTN are exact IEEE conversions (RNE, subnormals kept, NaNs
 * quieted with their payload), the same results as bn_f16_to_f32 and
 * bn_f32_to_f16 under the default FPCR. */
void bn_neon_f16_to_f32(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(src + i));
        vst1q_f32(dst + i, vcvt_f32_f16(vget_low_f16(h)));
        vst1q_f32(dst + i + 4, vcvt_high_f32_f16(h));
    }
    for (; i < n; i++) dst[i] = bn_f16_to_f32(src[i]);
}

void bn_neon_f32_to_f16(const float *src, uint16_t *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float16x4_t lo = vcvt_f16_f32(vld1q_f32(src + i));
        float16x8_t h = vcvt_high_f16_f32(lo, vld1q_f32(src + i + 4));
        vst1q_u16(dst + i, vreinterpretq_u16_f16(h));
    }
    for (; i < n; i++) dst[i] = bn_f32_to_f16(src[i]);
}

/* Products of two f16 values are exact in float (11 + 11 significant bits),
 * so vfmaq's single rounding equals multiply-then-add: only the summation
 * order differs from the reference (16 partial sums, then a fixed tree). */
static inline void f16x8_mac(float32x4_t *acc_lo, float32x4_t *acc_hi,
                             float16x8_t a, float16x8_t b) {
    *acc_lo = vfmaq_f32(*acc_lo, vcvt_f32_f16(vget_low_f16(a)), vcvt_f32_f16(vget_low_f16(b)));
    *acc_hi = vfmaq_f32(*acc_hi, vcvt_high_f32_f16(a), vcvt_high_f32_f16(b));
}

float bn_neon_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
    float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        f16x8_mac(&s0, &s1, vreinterpretq_f16_u16(vld1q_u16(a + i)),
                  vreinterpretq_f16_u16(vld1q_u16(b + i)));
        f16x8_mac(&s2, &s3, vreinterpretq_f16_u16(vld1q_u16(a + i + 8)),
                  vreinterpretq_f16_u16(vld1q_u16(b + i + 8)));
    }
    float acc = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) acc += bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]);
    return acc;
}

/* The LM head: four rows at a time share each converted chunk of x; the
 * per-row summation order is exactly bn_neon_dot_f16's, so gemv_f16 and
 * dot_f16 agree bit for bit. */
void bn_neon_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y) {
    int m = m0;
    for (; m + 4 <= m1; m += 4) {
        const uint16_t *w[4];
        float32x4_t s[4][4];
        for (int r = 0; r < 4; r++) {
            w[r] = W + (size_t)(m + r) * (size_t)K;
            for (int j = 0; j < 4; j++) s[r][j] = vdupq_n_f32(0.0f);
        }
        int i = 0;
        for (; i + 16 <= K; i += 16) {
            float16x8_t x0 = vreinterpretq_f16_u16(vld1q_u16(x + i));
            float16x8_t x1 = vreinterpretq_f16_u16(vld1q_u16(x + i + 8));
            float32x4_t xf0 = vcvt_f32_f16(vget_low_f16(x0)), xf1 = vcvt_high_f32_f16(x0);
            float32x4_t xf2 = vcvt_f32_f16(vget_low_f16(x1)), xf3 = vcvt_high_f32_f16(x1);
            for (int r = 0; r < 4; r++) {
                float16x8_t a0 = vreinterpretq_f16_u16(vld1q_u16(w[r] + i));
                float16x8_t a1 = vreinterpretq_f16_u16(vld1q_u16(w[r] + i + 8));
                s[r][0] = vfmaq_f32(s[r][0], vcvt_f32_f16(vget_low_f16(a0)), xf0);
                s[r][1] = vfmaq_f32(s[r][1], vcvt_high_f32_f16(a0), xf1);
                s[r][2] = vfmaq_f32(s[r][2], vcvt_f32_f16(vget_low_f16(a1)), xf2);
                s[r][3] = vfmaq_f32(s[r][3], vcvt_high_f32_f16(a1), xf3);
            }
        }
        for (int r = 0; r < 4; r++) {
            float acc = vaddvq_f32(vaddq_f32(vaddq_f32(s[r][0], s[r][1]),
                                             vaddq_f32(s[r][2], s[r][3])));
            for (int k = i; k < K; k++) acc += bn_f16_to_f32(w[r][k]) * bn_f16_to_f32(x[k]);
            y[m + r - m0] = acc;
        }
    }
    for (; m < m1; m++) y[m - m0] = bn_neon_dot_f16(W + (size_t)m * (size_t)K, x, K);
}

#endif /* __aarch64__ */
