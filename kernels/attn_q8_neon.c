/* Attention over a q8_0 KV cache with NEON (ARMv8.0 Advanced SIMD): the
 * bits of attn_q8_ref.c (kernels.h, attn_q8_qk / attn_q8_pv; the layout
 * there). P·V is every NEON table's; the scores are the plain-NEON tables'
 * (the sdot tables take attn_q8_neon_dotprod.c's).
 * Scores: attn_q8_neon_qk.h, with vmull_s8 + vpadalq_s16 per 4 dims of 4
 * keys against the query's 4 bytes of those dims repeated.
 * P·V: per row, block of 32 dims and block of positions, p times V's
 * scales quantized to int16 (the reference's float steps, four lanes at a
 * time); vld2q_s8 splits a pair of positions' 16 dims into one vector per
 * position, widened to int16 and multiplied by each position's int16
 * probability into int32 lanes (vmlal_n_s16: exact), one FMA per block. */
#include "kernels.h"
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 4")

/* ---- scores -------------------------------------------------------------------- */

/* 4 dims of keys 0-7 (kc, 32 bytes) against qb (the query's 4 bytes of
 * those dims, repeated): acc[i] gets keys 2i, 2i+1, two dims per lane. */
INLINE void chunk_dot(const int8_t *kc, int8x16_t qb, int32x4_t acc[4]) {
    const int8x16_t k0 = vld1q_s8(kc), k1 = vld1q_s8(kc + 16);
    acc[0] = vpadalq_s16(acc[0], vmull_s8(vget_low_s8(k0), vget_low_s8(qb)));
    acc[1] = vpadalq_s16(acc[1], vmull_high_s8(k0, qb));
    acc[2] = vpadalq_s16(acc[2], vmull_s8(vget_low_s8(k1), vget_low_s8(qb)));
    acc[3] = vpadalq_s16(acc[3], vmull_high_s8(k1, qb));
}

#define DOT_CHUNK(c, qv, L) \
    chunk_dot(kb + (c) * 32, vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(qv), L)), acc)

INLINE void block_dot8(const int8_t *kb, int8x16_t q0, int8x16_t q1, int32x4_t *lo, int32x4_t *hi) {
    int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    DOT_CHUNK(0, q0, 0);
    DOT_CHUNK(1, q0, 1);
    DOT_CHUNK(2, q0, 2);
    DOT_CHUNK(3, q0, 3);
    DOT_CHUNK(4, q1, 0);
    DOT_CHUNK(5, q1, 1);
    DOT_CHUNK(6, q1, 2);
    DOT_CHUNK(7, q1, 3);
    *lo = vpaddq_s32(acc[0], acc[1]);
    *hi = vpaddq_s32(acc[2], acc[3]);
}

#define ATTN_Q8_QK bn_attn_q8_qk_neon
#include "attn_q8_neon_qk.h"

/* ---- P·V ------------------------------------------------------------------------- */

#define PB BN_KVQ8_PBLOCK

/* One row's p times V's scales of dim block b over positions [tb, te)
 * (te - tb <= PB), quantized as the reference does: pq[0 .. te-tb) and
 * zeros up to the end of the last group; returns the block's scale
 * m / 32767, or 0 when m is not > 0 (the block adds nothing). */
INLINE float quantize_p(const float *p, const uint16_t *vd, int b, int hd, int tb, int te, int16_t *pq) {
    float pp[PB];
    float32x4_t m4 = vdupq_n_f32(0.0f);
    int t = tb;
    for (; t + 4 <= te; t += 4) {
        /* four positions of one group: their scales are contiguous */
        const float32x4_t d4 = vcvt_f32_f16(vreinterpret_f16_u16(
            vld1_u16(vd + (size_t)(t / 8) * hd / 4 + b * 8 + t % 8)));
        const float32x4_t x = vmulq_f32(vld1q_f32(p + t), d4);
        vst1q_f32(pp + (t - tb), x);
        m4 = vmaxq_f32(m4, x);
    }
    float m = vmaxvq_f32(m4);
    int end = (te - tb + G - 1) / G * G;    /* whole groups, p = 0 past te */
    for (; t < tb + end; t++) {
        float x = t < te ? p[t] * bn_f16_to_f32(vd[bn_q8d_index(t, b, hd)]) : 0.0f;
        pp[t - tb] = x;
        if (x > m) m = x;
    }
    if (!(m > 0.0f)) return 0.0f;
    const float32x4_t id = vdupq_n_f32(32767.0f / m), top = vdupq_n_f32(32767.0f);
    for (int i = 0; i < end; i += 4) {
        const int32x4_t x = vcvtnq_s32_f32(vminq_f32(vmulq_f32(vld1q_f32(pp + i), id), top));
        vst1_s16(pq + i, vmovn_s32(x));
    }
    return m / 32767.0f;
}

/* R rows (R <= 4), 16 dims from ds, positions [tb, te) of one block: the
 * int32 sums, then acc = fma(sum, scale, acc) for the rows with a scale
 * (acc: the rows' outputs of those 16 dims, stride nd). */
INLINE void pv_block16(const int16_t *pq, const float *scale, int R, int tb, int te, const int8_t *v,
                       int hd, int ds, float *acc, int nd) {
    int32x4_t ia[4][4];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int x = 0; x < 4; x++) ia[r][x] = vdupq_n_s32(0);
    /* an even position t's pair starts at t * hd, across groups too */
    const int8_t *x = v + (size_t)tb * hd + 2 * (size_t)ds;
    for (int t = tb; t < te; t += 2, x += 2 * (size_t)hd) {
        const int8x16x2_t raw = vld2q_s8(x);   /* positions t, t+1 */
        const int16x8_t a0 = vmovl_s8(vget_low_s8(raw.val[0])), a1 = vmovl_high_s8(raw.val[0]);
        const int16x8_t b0 = vmovl_s8(vget_low_s8(raw.val[1])), b1 = vmovl_high_s8(raw.val[1]);
        UNROLL for (int r = 0; r < R; r++) {
            const int16_t pa = pq[r * PB + (t - tb)], pb = pq[r * PB + (t - tb) + 1];
            ia[r][0] = vmlal_n_s16(vmlal_n_s16(ia[r][0], vget_low_s16(a0), pa), vget_low_s16(b0), pb);
            ia[r][1] = vmlal_n_s16(vmlal_n_s16(ia[r][1], vget_high_s16(a0), pa), vget_high_s16(b0), pb);
            ia[r][2] = vmlal_n_s16(vmlal_n_s16(ia[r][2], vget_low_s16(a1), pa), vget_low_s16(b1), pb);
            ia[r][3] = vmlal_n_s16(vmlal_n_s16(ia[r][3], vget_high_s16(a1), pa), vget_high_s16(b1), pb);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (scale[r] == 0.0f) continue;
        float *a = acc + (size_t)r * nd;
        UNROLL for (int j = 0; j < 4; j++)
            vst1q_f32(a + 4 * j, vfmaq_n_f32(vld1q_f32(a + 4 * j), vcvtq_f32_s32(ia[r][j]), scale[r]));
    }
}

INLINE void pv_rows(const float *p, size_t ldp, int R, int t0, int t1, const int8_t *v, const uint16_t *vd,
                    int hd, int d0, int nd, float *acc) {
    int16_t pq[4 * PB];
    float scale[4];
    for (int b = d0 / QK; b < (d0 + nd) / QK; b++)
        for (int tb = t0; tb < t1; tb += PB) {
            const int te = tb + PB < t1 ? tb + PB : t1;
            int any = 0;
            for (int r = 0; r < R; r++) {
                scale[r] = quantize_p(p + (size_t)r * ldp, vd, b, hd, tb, te, pq + r * PB);
                any |= scale[r] != 0.0f;
            }
            if (!any) continue;
            for (int ds = b * QK; ds < (b + 1) * QK; ds += 16)
                pv_block16(pq, scale, R, tb, te, v, hd, ds, acc + (ds - d0), nd);
        }
}

void bn_attn_q8_pv_neon(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                        const uint16_t *vd, int hd, int d0, int nd, float *acc) {
    int r = 0;
    for (; r + 4 <= np; r += 4)
        pv_rows(p + (size_t)r * ldp, ldp, 4, t0, t1, v, vd, hd, d0, nd, acc + (size_t)r * nd);
    switch (np - r) {
    case 3: pv_rows(p + (size_t)r * ldp, ldp, 3, t0, t1, v, vd, hd, d0, nd, acc + (size_t)r * nd); break;
    case 2: pv_rows(p + (size_t)r * ldp, ldp, 2, t0, t1, v, vd, hd, d0, nd, acc + (size_t)r * nd); break;
    case 1: pv_rows(p + (size_t)r * ldp, ldp, 1, t0, t1, v, vd, hd, d0, nd, acc + (size_t)r * nd); break;
    default: break;
    }
}

#endif
