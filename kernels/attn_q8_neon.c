/* Attention over a q8_0 KV cache with NEON (ARMv8.0 Advanced SIMD): the
 * bits of attn_q8_ref.c (kernels.h, attn_q8_qk / attn_q8_pv), in both NEON
 * tables.
 *
 * Scores: four keys at a time. A block's int8 dot is four vmull_s8 (int16
 * products, |p| <= 127 * 127, so two of them add without overflow) widened
 * into int32 lanes; pairwise adds turn the four keys' lanes into one vector
 * of four exact isums, and the float steps run per key lane as the
 * reference does them (a multiply, then an add: no fused step).
 * P·V: 4 rows x 16 dims per register block; each position's 16 values are
 * dequantized once (exact) and feed the rows' vfmaq, in position order. */
#include "kernels.h"
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")
#define QK 32

/* ---- scores -------------------------------------------------------------------- */

/* 4 int32 partial sums of q . k over one block of 32 */
INLINE int32x4_t block_dot(int8x16_t q0, int8x16_t q1, const int8_t *k) {
    int8x16_t k0 = vld1q_s8(k), k1 = vld1q_s8(k + 16);
    int16x8_t a = vaddq_s16(vmull_s8(vget_low_s8(q0), vget_low_s8(k0)), vmull_high_s8(q0, k0));
    int16x8_t b = vaddq_s16(vmull_s8(vget_low_s8(q1), vget_low_s8(k1)), vmull_high_s8(q1, k1));
    return vpadalq_s16(vpaddlq_s16(a), b);
}

/* Keys j0 .. j0+3 against every query row. */
INLINE void qk_group4(const int8_t *q, const float *qd, int nq, const int8_t *k, const uint16_t *kd,
                      int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    float kdt[4 * 64];                  /* kdt[b * 4 + j]; nb <= 64, checked by the caller */
    for (int j = 0; j < 4; j++)
        for (int b = 0; b < nb; b++) kdt[b * 4 + j] = bn_f16_to_f32(kd[(size_t)j * nb + b]);
    for (int r = 0; r < nq; r++) {
        const int8_t *qr = q + (size_t)r * hd;
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (int b = 0; b < nb; b++) {
            int8x16_t q0 = vld1q_s8(qr + b * QK), q1 = vld1q_s8(qr + b * QK + 16);
            int32x4_t d0 = block_dot(q0, q1, k + b * QK);
            int32x4_t d1 = block_dot(q0, q1, k + (size_t)hd + b * QK);
            int32x4_t d2 = block_dot(q0, q1, k + (size_t)2 * hd + b * QK);
            int32x4_t d3 = block_dot(q0, q1, k + (size_t)3 * hd + b * QK);
            int32x4_t isum = vpaddq_s32(vpaddq_s32(d0, d1), vpaddq_s32(d2, d3));
            float32x4_t scale = vmulq_f32(vdupq_n_f32(qd[(size_t)r * nb + b]), vld1q_f32(kdt + b * 4));
            sum = vaddq_f32(sum, vmulq_f32(vcvtq_f32_s32(isum), scale));
        }
        vst1q_f32(s + (size_t)r * lds, sum);
    }
}

void bn_attn_q8_qk_neon(const int8_t *q, const float *qd, int nq, const int8_t *k,
                        const uint16_t *kd, int nk, int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    if (nb > 64) {                      /* wider than any model's head: the plain loop */
        bn_attn_q8_qk_ref(q, qd, nq, k, kd, nk, hd, s, lds);
        return;
    }
    int j = 0;
    for (; j + 4 <= nk; j += 4)
        qk_group4(q, qd, nq, k + (size_t)j * hd, kd + (size_t)j * nb, hd, s + j, lds);
    /* the last few keys: the reference computes the same bits */
    if (j < nk) bn_attn_q8_qk_ref(q, qd, nq, k + (size_t)j * hd, kd + (size_t)j * nb, nk - j, hd, s + j, lds);
}

/* ---- P·V ------------------------------------------------------------------------- */

/* R rows (R <= 4) x 16 dims from dim ds, positions [t0, t1). */
INLINE void pv_block(const float *p, size_t ldp, int R, int t0, int t1, const int8_t *v,
                     const uint16_t *vd, int hd, int ds, float *acc, int nd) {
    const int nb = hd / QK;
    float32x4_t a[4][4];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int x = 0; x < 4; x++) a[r][x] = vld1q_f32(acc + (size_t)r * nd + ds + 4 * x);
    for (int t = t0; t < t1; t++) {
        const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(vd[(size_t)t * nb + ds / QK])));
        int8x16_t raw = vld1q_s8(v + (size_t)t * hd + ds);
        int16x8_t lo = vmovl_s8(vget_low_s8(raw)), hi = vmovl_high_s8(raw);
        float32x4_t x[4] = {
            vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), d),
            vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(lo)), d),
            vmulq_f32(vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), d),
            vmulq_f32(vcvtq_f32_s32(vmovl_high_s16(hi)), d),
        };
        UNROLL for (int r = 0; r < R; r++) {
            const float32x4_t pr = vdupq_n_f32(p[(size_t)r * ldp + t]);
            UNROLL for (int k = 0; k < 4; k++) a[r][k] = vfmaq_f32(a[r][k], pr, x[k]);
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int x = 0; x < 4; x++) vst1q_f32(acc + (size_t)r * nd + ds + 4 * x, a[r][x]);
}

INLINE void pv_rows(const float *p, size_t ldp, int R, int t0, int t1, const int8_t *v,
                    const uint16_t *vd, int hd, int nd, float *acc) {
    for (int ds = 0; ds < nd; ds += 16) pv_block(p, ldp, R, t0, t1, v, vd, hd, ds, acc, nd);
}

void bn_attn_q8_pv_neon(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                        const uint16_t *vd, int hd, int nd, float *acc) {
    int r = 0;
    for (; r + 4 <= np; r += 4)
        pv_rows(p + (size_t)r * ldp, ldp, 4, t0, t1, v, vd, hd, nd, acc + (size_t)r * nd);
    switch (np - r) {
    case 3: pv_rows(p + (size_t)r * ldp, ldp, 3, t0, t1, v, vd, hd, nd, acc + (size_t)r * nd); break;
    case 2: pv_rows(p + (size_t)r * ldp, ldp, 2, t0, t1, v, vd, hd, nd, acc + (size_t)r * nd); break;
    case 1: pv_rows(p + (size_t)r * ldp, ldp, 1, t0, t1, v, vd, hd, nd, acc + (size_t)r * nd); break;
    default: break;
    }
}

#endif
