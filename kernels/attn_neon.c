/* Attention over long contexts with NEON (ARMv8.0 Advanced SIMD): the order
 * of attn_ref.c, bit for bit (kernels.h). The eight lanes of the definition
 * are two float32x4 (lanes 0-3, 4-7); a product of two f16 values is exact,
 * so vfmaq gives the reference's multiply-then-add. Register blocks of 4
 * rows x 2 keys (scores) and 4 rows x 2 dims (P·V), as on AVX2. */
#include "kernels.h"
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

#define INLINE static inline __attribute__((always_inline))
/* The register blocks' small loops must unroll, or their accumulators
 * live in memory (-O2 does not unroll by itself). */
#define UNROLL _Pragma("GCC unroll 4")

typedef struct f8 {
    float32x4_t lo, hi;
} f8;

INLINE f8 f8_zero(void) {
    f8 v = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    return v;
}

INLINE f8 f8_load(const float *p) {
    f8 v = {vld1q_f32(p), vld1q_f32(p + 4)};
    return v;
}

INLINE void f8_store(float *p, f8 v) {
    vst1q_f32(p, v.lo);
    vst1q_f32(p + 4, v.hi);
}

INLINE f8 f8_load_f16(const uint16_t *p) {
    float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(p));
    f8 v = {vcvt_f32_f16(vget_low_f16(h)), vcvt_high_f32_f16(h)};
    return v;
}

INLINE f8 f8_fma(f8 acc, f8 a, f8 b) {
    f8 v = {vfmaq_f32(acc.lo, a.lo, b.lo), vfmaq_f32(acc.hi, a.hi, b.hi)};
    return v;
}

/* ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) */
INLINE float lanes_sum(f8 v) {
    float32x4_t b = vaddq_f32(v.lo, v.hi);
    float32x2_t c = vadd_f32(vget_low_f32(b), vget_high_f32(b));
    return vget_lane_f32(c, 0) + vget_lane_f32(c, 1);
}

/* ---- scores ------------------------------------------------------------------- */

INLINE void qk_block(const float *q, size_t ldq, int R, const uint16_t *k, int J, int hd, float *s,
                     size_t lds) {
    f8 acc[4][2];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int j = 0; j < J; j++) acc[r][j] = f8_zero();
    for (int x = 0; x < hd; x += 8) {
        f8 kv[2];
        UNROLL for (int j = 0; j < J; j++) kv[j] = f8_load_f16(k + (size_t)j * hd + x);
        UNROLL for (int r = 0; r < R; r++) {
            f8 qv = f8_load(q + (size_t)r * ldq + x);
            UNROLL for (int j = 0; j < J; j++) acc[r][j] = f8_fma(acc[r][j], qv, kv[j]);
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int j = 0; j < J; j++) s[(size_t)r * lds + j] = lanes_sum(acc[r][j]);
}

INLINE void qk_rows(const float *q, size_t ldq, int R, const uint16_t *k, int nk, int hd,
                    float *s, size_t lds) {
    int j = 0;
    for (; j + 2 <= nk; j += 2) qk_block(q, ldq, R, k + (size_t)j * hd, 2, hd, s + j, lds);
    if (j < nk) qk_block(q, ldq, R, k + (size_t)j * hd, 1, hd, s + j, lds);
}

void bn_attn_qk_neon(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
                     float *s, size_t lds) {
    int r = 0;
    for (; r + 4 <= nq; r += 4) qk_rows(q + (size_t)r * ldq, ldq, 4, k, nk, hd, s + (size_t)r * lds, lds);
    switch (nq - r) {
    case 3: qk_rows(q + (size_t)r * ldq, ldq, 3, k, nk, hd, s + (size_t)r * lds, lds); break;
    case 2: qk_rows(q + (size_t)r * ldq, ldq, 2, k, nk, hd, s + (size_t)r * lds, lds); break;
    case 1: qk_rows(q + (size_t)r * ldq, ldq, 1, k, nk, hd, s + (size_t)r * lds, lds); break;
    default: break;
    }
}

/* ---- softmax -------------------------------------------------------------------- */

INLINE float32x4_t round_f16(float32x4_t x) {
    return vcvt_f32_f16(vcvt_f16_f32(x));
}

void bn_attn_softmax_neon(float *s, int n, int n_pad, float scale) {
    float m = -INFINITY;
    int t = 0;
    float32x4_t vmax = vdupq_n_f32(-INFINITY);
    for (; t + 4 <= n; t += 4) {
        float32x4_t w = vmulq_f32(vld1q_f32(s + t), vdupq_n_f32(scale));
        vst1q_f32(s + t, w);
        vmax = vmaxq_f32(vmax, w);
    }
    m = vmaxvq_f32(vmax);
    for (; t < n; t++) {
        s[t] *= scale;
        if (s[t] > m) m = s[t];
    }

    const float32x4_t vm = vdupq_n_f32(m);
    float64x2_t d[4] = {vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0), vdupq_n_f64(0.0)};
    for (t = 0; t + 8 <= n; t += 8) {
        float32x4_t e0 = bn_exp4(vsubq_f32(vld1q_f32(s + t), vm));
        float32x4_t e1 = bn_exp4(vsubq_f32(vld1q_f32(s + t + 4), vm));
        vst1q_f32(s + t, e0);
        vst1q_f32(s + t + 4, e1);
        d[0] = vaddq_f64(d[0], vcvt_f64_f32(vget_low_f32(e0)));    /* lanes 0, 1 */
        d[1] = vaddq_f64(d[1], vcvt_high_f64_f32(e0));             /* lanes 2, 3 */
        d[2] = vaddq_f64(d[2], vcvt_f64_f32(vget_low_f32(e1)));    /* lanes 4, 5 */
        d[3] = vaddq_f64(d[3], vcvt_high_f64_f32(e1));             /* lanes 6, 7 */
    }
    double lane[8];
    for (int i = 0; i < 4; i++) vst1q_f64(lane + 2 * i, d[i]);
    for (; t < n; t++) {
        s[t] = bn_attn_exp(s[t] - m);
        lane[t % 8] += (double)s[t];
    }
    double sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    const float inv = (float)(1.0 / sum);

    const float32x4_t vinv = vdupq_n_f32(inv);
    for (t = 0; t + 4 <= n; t += 4) vst1q_f32(s + t, round_f16(vmulq_f32(vld1q_f32(s + t), vinv)));
    for (; t < n; t++) s[t] = bn_f16_to_f32(bn_f32_to_f16(s[t] * inv));
    for (; t < n_pad; t++) s[t] = 0.0f;
}

/* ---- P·V -------------------------------------------------------------------------- */

INLINE void pv_block(const float *p, size_t ldp, int R, int t0, int t1, const uint16_t *vt,
                     size_t ldv, int D, float *acc, int nd) {
    f8 a[4][2];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int d = 0; d < D; d++) a[r][d] = f8_load(acc + ((size_t)r * nd + d) * 8);
    for (int t = t0; t < t1; t += 8) {
        f8 v[2];
        UNROLL for (int d = 0; d < D; d++) v[d] = f8_load_f16(vt + (size_t)d * ldv + t);
        UNROLL for (int r = 0; r < R; r++) {
            f8 pr = f8_load(p + (size_t)r * ldp + t);
            UNROLL for (int d = 0; d < D; d++) a[r][d] = f8_fma(a[r][d], pr, v[d]);
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int d = 0; d < D; d++) f8_store(acc + ((size_t)r * nd + d) * 8, a[r][d]);
}

INLINE void pv_rows(const float *p, size_t ldp, int R, int t0, int t1, const uint16_t *vt,
                    size_t ldv, int nd, float *acc) {
    int d = 0;
    for (; d + 2 <= nd; d += 2) pv_block(p, ldp, R, t0, t1, vt + (size_t)d * ldv, ldv, 2, acc + (size_t)d * 8, nd);
    if (d < nd) pv_block(p, ldp, R, t0, t1, vt + (size_t)d * ldv, ldv, 1, acc + (size_t)d * 8, nd);
}

void bn_attn_pv_neon(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
                     size_t ldv, int nd, float *acc) {
    int r = 0;
    size_t row_acc = (size_t)nd * 8;
    for (; r + 4 <= np; r += 4)
        pv_rows(p + (size_t)r * ldp, ldp, 4, t0, t1, vt, ldv, nd, acc + r * row_acc);
    switch (np - r) {
    case 3: pv_rows(p + (size_t)r * ldp, ldp, 3, t0, t1, vt, ldv, nd, acc + r * row_acc); break;
    case 2: pv_rows(p + (size_t)r * ldp, ldp, 2, t0, t1, vt, ldv, nd, acc + r * row_acc); break;
    case 1: pv_rows(p + (size_t)r * ldp, ldp, 1, t0, t1, vt, ldv, nd, acc + r * row_acc); break;
    default: break;
    }
}

#endif
