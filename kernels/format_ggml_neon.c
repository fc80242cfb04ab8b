/* The Q8_0, Q6_K and F32 heads' dot products (format_ggml.c) with NEON, for
 * the aarch64 variants' tables: per lane the same exact integers, the same
 * fused multiply-adds and the same horizontal sums as the plain C records,
 * hence the same bits (tests/test_format_ggml.c compares them exactly).
 * bitnet_b1_58-3B's tied Q8_0 head (109 MB, read every token) is the
 * reason; plain ARMv8.0 NEON, so every aarch64 CPU takes it. */
#include "format_records.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#define Q8_0_BYTES 34
#define Q6_K_BYTES 210

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_f16_to_f32(h);
}

/* hsum8 of format_ggml.c on lanes 0-3 (lo) and 4-7 (hi): high half + low
 * half, then (0 + 2) + (1 + 3). */
static float hsum8(float32x4_t lo, float32x4_t hi) {
    const float32x4_t r = vaddq_f32(hi, lo);
    return (vgetq_lane_f32(r, 0) + vgetq_lane_f32(r, 2)) + (vgetq_lane_f32(r, 1) + vgetq_lane_f32(r, 3));
}

/* The exact sums of products 4l..4l+3 of 16 int8 pairs, lanes l = 0..3. */
static inline int32x4_t dot4x4(int8x16_t a, int8x16_t b) {
    const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    const int32x4_t hi = vpaddlq_s16(vmull_high_s8(a, b));
    return vpaddq_s32(lo, hi);
}

/* ---- Q8_0 ---------------------------------------------------------------------- */

/* Lane l gets the exact sum of products 4l..4l+3, times dw * dx fused into
 * the accumulator (lanes 0-3 in lo, 4-7 in hi). */
static float q8_0_dot(const uint8_t *w, const uint8_t *x, int nb) {
    float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
    for (int b = 0; b < nb; b++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        const float d = f16_at(w) * f16_at(x);
        const int8x16_t w0 = vld1q_s8((const int8_t *)(w + 2)), w1 = vld1q_s8((const int8_t *)(w + 18));
        const int8x16_t x0 = vld1q_s8((const int8_t *)(x + 2)), x1 = vld1q_s8((const int8_t *)(x + 18));
        lo = vfmaq_n_f32(lo, vcvtq_f32_s32(dot4x4(w0, x0)), d);
        hi = vfmaq_n_f32(hi, vcvtq_f32_s32(dot4x4(w1, x1)), d);
    }
    return hsum8(lo, hi);
}


/* ---- Q6_K ---------------------------------------------------------------------- */

static float q6_k_dot(const uint8_t *w, const uint8_t *dx, const int8_t *q, int nb) {
    const uint8x16_t m4 = vdupq_n_u8(15), m3 = vdupq_n_u8(3);
    float32x4_t lo = vdupq_n_f32(0.0f), hi = lo;
    for (int b = 0; b < nb; b++, w += Q6_K_BYTES, q += 256) {
        float d8;
        memcpy(&d8, dx + 4 * b, 4);
        const float d = d8 * f16_at(w + 208);
        const int8_t *sc = (const int8_t *)(w + 192);
        int32x4_t sum[2] = {vdupq_n_s32(0), vdupq_n_s32(0)};
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            const int8_t *qq = q + 128 * h, *s = sc + 8 * h;
            for (int part = 0; part < 2; part++) {      /* values l = 16·part .. +15 of each group */
                const uint8x16_t l0 = vld1q_u8(ql + 16 * part), l1 = vld1q_u8(ql + 32 + 16 * part);
                const uint8x16_t hb = vld1q_u8(qh + 16 * part);
                /* the codes of the four groups (docs/FORMAT.md, Q6_K) */
                const uint8x16_t c[4] = {
                    vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)),
                    vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)),
                    vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)),
                    vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)),
                };
                for (int g = 0; g < 4; g++) {
                    const int8x16_t v = vsubq_s8(vreinterpretq_s8_u8(c[g]), vdupq_n_s8(32));
                    const int32x4_t dd = dot4x4(v, vld1q_s8(qq + 32 * g + 16 * part));
                    sum[part] = vmlaq_n_s32(sum[part], dd, s[2 * g + part]);
                }
            }
        }
        lo = vfmaq_n_f32(lo, vcvtq_f32_s32(sum[0]), d);
        hi = vfmaq_n_f32(hi, vcvtq_f32_s32(sum[1]), d);
    }
    return hsum8(lo, hi);
}


/* ---- F32 ----------------------------------------------------------------------- */

/* format_ggml.c's order: four 16-lane accumulators (here sixteen 4-lane
 * quarters, lane for lane the same fused multiply-adds) over chunks of 64,
 * (a0 + a2) + (a1 + a3), the 16 lanes halved down to one, then the tail one
 * fused product at a time. */
static float f32_dot(const float *w, const float *x, int K) {
    float32x4_t a[16];
    for (int r = 0; r < 16; r++) a[r] = vdupq_n_f32(0.0f);
    const int n64 = K & ~63;
    for (int i = 0; i < n64; i += 64)
        for (int r = 0; r < 16; r++) a[r] = vfmaq_f32(a[r], vld1q_f32(w + i + 4 * r), vld1q_f32(x + i + 4 * r));
    /* accumulator r of 16 lanes is quarters a[4r..4r+3] (lanes 0-3 .. 12-15) */
    float32x4_t v[4];
    for (int p = 0; p < 4; p++) v[p] = vaddq_f32(vaddq_f32(a[p], a[8 + p]), vaddq_f32(a[4 + p], a[12 + p]));
    const float32x4_t v8a = vaddq_f32(v[0], v[2]), v8b = vaddq_f32(v[1], v[3]);   /* l + l+8 */
    const float32x4_t v4 = vaddq_f32(v8a, v8b);                                     /* l + l+4 */
    const float32x4_t v2 = vaddq_f32(v4, vextq_f32(v4, v4, 2));                     /* l + l+2 */
    float sum = vgetq_lane_f32(v2, 0) + vgetq_lane_f32(v2, 1);                      /* 0 + 1 */
    for (int i = n64; i < K; i++) sum = fmaf(w[i], x[i], sum);
    return sum;
}


BN_GGML_HEAD_RECORDS(_neon, q8_0_dot, q6_k_dot, f32_dot);

#endif
