/* Attention over a q8_0 KV cache with NEON (ARMv8.0 Advanced SIMD): the
 * bits of attn_q8_ref.c (kernels.h, attn_q8_qk / attn_q8_pv). P·V is every
 * NEON table's; the scores are the plain-NEON tables' (the sdot tables take
 * attn_q8_neon_dotprod.c's).
 * Scores: attn_q8_neon_qk.h, with vmull_s8 block dots.
 * P·V: 4 rows x 16 dims per register block; each position's 16 values are
 * dequantized once (exact) and feed the rows' vfmaq, in position order. */
#include "kernels.h"
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")

/* ---- scores -------------------------------------------------------------------- */

/* 4 int32 partial sums of q . k over one block of 32: four vmull_s8 (int16
 * products, |p| <= 127 * 127, so two of them add without overflow) widened
 * into int32 lanes. */
INLINE int32x4_t block_dot(int8x16_t q0, int8x16_t q1, const int8_t *k) {
    int8x16_t k0 = vld1q_s8(k), k1 = vld1q_s8(k + 16);
    int16x8_t a = vaddq_s16(vmull_s8(vget_low_s8(q0), vget_low_s8(k0)), vmull_high_s8(q0, k0));
    int16x8_t b = vaddq_s16(vmull_s8(vget_low_s8(q1), vget_low_s8(k1)), vmull_high_s8(q1, k1));
    return vpadalq_s16(vpaddlq_s16(a), b);
}

#define ATTN_Q8_QK bn_attn_q8_qk_neon
#include "attn_q8_neon_qk.h"

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
