/* Activation quantization and f16 loops for the aarch64 NEON variant, shared
 * by its lookup-table table (ternary_neon.c) and its sdot table
 * (ternary_neon_dotprod.c). Plain ARMv8.0 Advanced SIMD only. */
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>
#include <string.h>

/* docs/NUMERICS.md, BitLinear, steps 1-4, bit-exact with ternary_ref.c:
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
    const float s = bn_act_quant_scale(fmax);

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
 * so vfmaq's single rounding equals multiply-then-add. The summation order
 * is the reference's (ternary_ref.c: bitnet.cpp's AVX-512 order): 4 chunks
 * of 16 lanes per 64 elements, (c0+c2)+(c1+c3), lanes halved 16->8->4->2,
 * lane 0 + lane 1, tail in double. A 16-lane accumulator is 4 float32x4. */
static inline void f16x16_mac(float32x4_t acc[4], const uint16_t *a, const uint16_t *b) {
    for (int h = 0; h < 2; h++) {
        float16x8_t va = vreinterpretq_f16_u16(vld1q_u16(a + 8 * h));
        float16x8_t vb = vreinterpretq_f16_u16(vld1q_u16(b + 8 * h));
        acc[2 * h] = vfmaq_f32(acc[2 * h], vcvt_f32_f16(vget_low_f16(va)), vcvt_f32_f16(vget_low_f16(vb)));
        acc[2 * h + 1] = vfmaq_f32(acc[2 * h + 1], vcvt_high_f32_f16(va), vcvt_high_f32_f16(vb));
    }
}

/* The whole chunks of 64 summed down to one float; *tail = where the tail
 * starts (added in double, one product at a time, in order). */
static float dot_f16_head(const uint16_t *a, const uint16_t *b, int n, int *tail) {
    float32x4_t acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = vdupq_n_f32(0.0f);
    const int n64 = n & ~63;
    for (int i = 0; i < n64; i += 64)
        for (int r = 0; r < 4; r++) f16x16_mac(acc[r], a + i + 16 * r, b + i + 16 * r);
    float32x4_t v[4];
    for (int q = 0; q < 4; q++)
        v[q] = vaddq_f32(vaddq_f32(acc[0][q], acc[2][q]), vaddq_f32(acc[1][q], acc[3][q]));
    float32x4_t w = vaddq_f32(vaddq_f32(v[0], v[2]), vaddq_f32(v[1], v[3]));
    /* lanes l + l+8 above; now l + l+4 is w itself (one vector of 4). */
    float32x4_t x = vaddq_f32(w, vextq_f32(w, w, 2));   /* l + l+2 */
    *tail = n64;
    return vgetq_lane_f32(x, 0) + vgetq_lane_f32(x, 1);
}

/* a[i]·b[i] of 8 consecutive elements (exact in float), as two vectors. */
static inline void mul8_f16(const uint16_t *a, const uint16_t *b, float32x4_t p[2]) {
    float16x8_t va = vreinterpretq_f16_u16(vld1q_u16(a));
    float16x8_t vb = vreinterpretq_f16_u16(vld1q_u16(b));
    p[0] = vmulq_f32(vcvt_f32_f16(vget_low_f16(va)), vcvt_f32_f16(vget_low_f16(vb)));
    p[1] = vmulq_f32(vcvt_high_f32_f16(va), vcvt_high_f32_f16(vb));
}

float bn_neon_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
    int i;
    double sum = (double)dot_f16_head(a, b, n, &i);
    /* Only the conversions and the exact products are vectorised
     * (attention's P·V dots often have a 32-element tail). */
    float prod[8];
    for (; i + 8 <= n; i += 8) {
        float32x4_t p[2];
        mul8_f16(a + i, b + i, p);
        vst1q_f32(prod, p[0]);
        vst1q_f32(prod + 4, p[1]);
        for (int l = 0; l < 8; l++) sum += (double)prod[l];
    }
    for (; i < n; i++) sum += (double)(bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]));
    return (float)sum;
}

/* Two rows' products p (row 0), q (row 1) of 4 elements added to the
 * rows' double sums (lanes of s) one element at a time, in order. */
static inline float64x2_t add_tail4(float64x2_t s, float32x4_t p, float32x4_t q) {
    const float32x4_t z0 = vzip1q_f32(p, q), z1 = vzip2q_f32(p, q);   /* elements 0,1 | 2,3 */
    s = vaddq_f64(s, vcvt_f64_f32(vget_low_f32(z0)));
    s = vaddq_f64(s, vcvt_high_f64_f32(z0));
    s = vaddq_f64(s, vcvt_f64_f32(vget_low_f32(z1)));
    return vaddq_f64(s, vcvt_high_f64_f32(z1));
}

/* Rows four at a time when there is a tail (head_dim 96 leaves 32
 * elements): the same additions as bn_neon_dot_f16 per row, in two
 * independent vector chains instead of four chains one after another. */
void bn_neon_dots_f16(const uint16_t *W, size_t ldw, const uint16_t *x, int n, int rows, float *y) {
    int m = 0;
    if (n % 64 != 0)
        for (; m + 4 <= rows; m += 4) {
            const uint16_t *w = W + (size_t)m * ldw;
            double h[4];
            int i = 0;
            for (int r = 0; r < 4; r++) h[r] = (double)dot_f16_head(w + (size_t)r * ldw, x, n, &i);
            float64x2_t s01 = vld1q_f64(h), s23 = vld1q_f64(h + 2);
            for (; i + 8 <= n; i += 8) {
                float32x4_t p[4][2];
                for (int r = 0; r < 4; r++) mul8_f16(w + (size_t)r * ldw + i, x + i, p[r]);
                for (int hf = 0; hf < 2; hf++) {
                    s01 = add_tail4(s01, p[0][hf], p[1][hf]);
                    s23 = add_tail4(s23, p[2][hf], p[3][hf]);
                }
            }
            vst1q_f64(h, s01);
            vst1q_f64(h + 2, s23);
            for (int r = 0; r < 4; r++) {
                for (int j = i; j < n; j++)
                    h[r] += (double)(bn_f16_to_f32(w[(size_t)r * ldw + j]) * bn_f16_to_f32(x[j]));
                y[m + r] = (float)h[r];
            }
        }
    for (; m < rows; m++) y[m] = bn_neon_dot_f16(W + (size_t)m * ldw, x, n);
}

void bn_neon_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y) {
    bn_neon_dots_f16(W + (size_t)m0 * (size_t)K, (size_t)K, x, K, m1 - m0, y);
}

/* bitnet.cpp's prompt-batch P·V order (ternary_ref.c): 16 fused
 * multiply-add lanes as four float32x4 (lanes 0-3, 4-7, 8-11, 12-15), a
 * partial last group completed with zeros, then l + l+8, l + l+4, l + l+2,
 * 0 + 1; equals ref bit for bit. */
static inline void fma16(float32x4_t acc[4], const float *p, const uint16_t *v) {
    float16x8_t v0 = vreinterpretq_f16_u16(vld1q_u16(v));
    float16x8_t v1 = vreinterpretq_f16_u16(vld1q_u16(v + 8));
    acc[0] = vfmaq_f32(acc[0], vld1q_f32(p), vcvt_f32_f16(vget_low_f16(v0)));
    acc[1] = vfmaq_f32(acc[1], vld1q_f32(p + 4), vcvt_high_f32_f16(v0));
    acc[2] = vfmaq_f32(acc[2], vld1q_f32(p + 8), vcvt_f32_f16(vget_low_f16(v1)));
    acc[3] = vfmaq_f32(acc[3], vld1q_f32(p + 12), vcvt_high_f32_f16(v1));
}

float bn_neon_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n) {
    float32x4_t acc[4];
    for (int q = 0; q < 4; q++) acc[q] = vdupq_n_f32(0.0f);
    int i = 0;
    for (; i + 16 <= n; i += 16) fma16(acc, p + i, v + i);
    if (i < n) {
        float pt[16] = {0};
        uint16_t vt[16] = {0};
        memcpy(pt, p + i, (size_t)(n - i) * sizeof *pt);
        memcpy(vt, v + i, (size_t)(n - i) * sizeof *vt);
        fma16(acc, pt, vt);
    }
    float32x4_t w = vaddq_f32(vaddq_f32(acc[0], acc[2]), vaddq_f32(acc[1], acc[3]));
    float32x4_t x = vaddq_f32(w, vextq_f32(w, w, 2));   /* l + l+2 */
    return vgetq_lane_f32(x, 0) + vgetq_lane_f32(x, 1);
}

/* ---- Q8 LM head ------------------------------------------------------------- */

size_t bn_neon_head_q8_size(int K, int M) {
    return bn_head_q8_size_tiled(1, K, M);
}

void bn_neon_head_q8_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
    bn_head_q8_quantize_tiled(1, W, K, M, m0, m1, dst);
}

/* bn_head_q8_row_norms (head_q8.c) with rows laid out one after another (R
 * = 1 here; any R works): its eight double lanes as four vectors of two,
 * the same operations on each lane in the same order, so the same bits.
 * vcvt_f32_f16 converts finite halves exactly; a row with an Inf or NaN
 * weight gives Inf either way. */
void bn_neon_head_q8_row_norms(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                               double *deq2) {
    const size_t tile_bytes = (size_t)R * K / 16 * 17;
    const uint8_t *tile = (const uint8_t *)Wq + (size_t)(m / R) * tile_bytes;
    const int r = m % R;
    const uint16x8_t exp_mask = vdupq_n_u16(0x7c00);
    uint16x8_t special = vdupq_n_u16(0);
    float64x2_t e[4], d[4];
    for (int l = 0; l < 4; l++) e[l] = d[l] = vdupq_n_f64(0.0);
    for (int b = 0; b < K / 32; b++) {
        uint16_t dh;
        memcpy(&dh, tile + (size_t)R * K + 2 * ((size_t)R * b + r), 2);
        const float64x2_t dw = vdupq_n_f64((double)bn_f16_to_f32(dh));
        const uint8_t *qb = tile + (size_t)32 * R * b + (size_t)4 * r;   /* group g at + 4R g */
        for (int j = 0; j < 32; j += 8) {
            int8_t q8[8];
            memcpy(q8, qb + (size_t)R * j, 4);
            memcpy(q8 + 4, qb + (size_t)R * (j + 4), 4);
            const int16x8_t q16 = vmovl_s8(vld1_s8(q8));
            const int32x4_t q_lo = vmovl_s16(vget_low_s16(q16)), q_hi = vmovl_s16(vget_high_s16(q16));
            const uint16x8_t wh = vld1q_u16(w + 32 * b + j);
            special = vorrq_u16(special, vceqq_u16(vandq_u16(wh, exp_mask), exp_mask));
            const float32x4_t w_lo = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(wh)));
            const float32x4_t w_hi = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(wh)));
            const float64x2_t qd[4] = {
                vcvtq_f64_s64(vmovl_s32(vget_low_s32(q_lo))), vcvtq_f64_s64(vmovl_s32(vget_high_s32(q_lo))),
                vcvtq_f64_s64(vmovl_s32(vget_low_s32(q_hi))), vcvtq_f64_s64(vmovl_s32(vget_high_s32(q_hi))),
            };
            const float64x2_t wd[4] = {
                vcvt_f64_f32(vget_low_f32(w_lo)), vcvt_high_f64_f32(w_lo),
                vcvt_f64_f32(vget_low_f32(w_hi)), vcvt_high_f64_f32(w_hi),
            };
            for (int l = 0; l < 4; l++) {     /* lanes 2l, 2l+1 */
                const float64x2_t deq = vmulq_f64(qd[l], dw);
                const float64x2_t err = vsubq_f64(wd[l], deq);
                e[l] = vaddq_f64(e[l], vmulq_f64(err, err));
                d[l] = vaddq_f64(d[l], vmulq_f64(deq, deq));
            }
        }
    }
    double el[8], dl[8];
    for (int l = 0; l < 4; l++) {
        vst1q_f64(el + 2 * l, e[l]);
        vst1q_f64(dl + 2 * l, d[l]);
    }
    const int bad = vmaxvq_u16(special) != 0;
    *err2 = bad ? (double)INFINITY : bn_head_q8_sum_lanes(el);
    *deq2 = bad ? (double)INFINITY : bn_head_q8_sum_lanes(dl);
}

/* Row m is K int8 weights then K/32 f16 scales; xq is q[K], dx[K/32]. Per
 * block the 32 products are summed exactly (two int8 products per int16
 * lane: at most 2 · 127 · 127 = 32258), then y = y + (float)isum · (dw · dx)
 * in order, as in head_q8.c. */
void bn_neon_gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
    const int8_t *qx = xq;
    const uint8_t *dxs = (const uint8_t *)xq + K;
    const size_t row_bytes = (size_t)K / 16 * 17;
    const int nb = K / 32;
    for (int m = m0; m < m1; m++) {
        const uint8_t *row = (const uint8_t *)Wq + (size_t)m * row_bytes;
        const uint8_t *scales = row + K;
        __builtin_prefetch(row + 4 * row_bytes);
        float acc = 0.0f;
        for (int b = 0; b < nb; b++) {
            int8x16_t w0 = vld1q_s8((const int8_t *)row + 32 * b);
            int8x16_t w1 = vld1q_s8((const int8_t *)row + 32 * b + 16);
            int8x16_t x0 = vld1q_s8(qx + 32 * b), x1 = vld1q_s8(qx + 32 * b + 16);
            int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
            p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));
            int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
            p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
            int32_t isum = vaddvq_s32(vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
            uint16_t dh;
            float dx;
            memcpy(&dh, scales + 2 * b, 2);
            memcpy(&dx, dxs + 4 * b, 4);
            const float scale = bn_f16_to_f32(dh) * dx;
            acc = acc + (float)isum * scale;
        }
        y[m - m0] = acc;
    }
}

/* Several tokens against each row: the row's blocks and scales are loaded
 * once for up to 4 tokens, and a call does all of them (the generic gemm
 * calls the gemv once per row and token). Per token the block sums and the
 * float steps are the gemv's above, so the floats are its bits. */
void bn_neon_gemm_head_q8(const void *Wq, int K, const void *xq, size_t xstride, int N, int m0, int m1,
                          float *y, int ldy) {
    const size_t row_bytes = (size_t)K / 16 * 17;
    const int nb = K / 32;
    for (int m = m0; m < m1; m++) {
        const uint8_t *row = (const uint8_t *)Wq + (size_t)m * row_bytes;
        const uint8_t *scales = row + K;
        __builtin_prefetch(row + 4 * row_bytes);
        for (int n0 = 0; n0 < N; n0 += 4) {
            const int nt = N - n0 < 4 ? N - n0 : 4;
            const int8_t *qx[4];
            float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int n = 0; n < nt; n++) qx[n] = (const int8_t *)xq + (size_t)(n0 + n) * xstride;
            for (int b = 0; b < nb; b++) {
                const int8x16_t w0 = vld1q_s8((const int8_t *)row + 32 * b);
                const int8x16_t w1 = vld1q_s8((const int8_t *)row + 32 * b + 16);
                uint16_t dh;
                memcpy(&dh, scales + 2 * b, 2);
                const float dw = bn_f16_to_f32(dh);
                for (int n = 0; n < nt; n++) {
                    const int8x16_t x0 = vld1q_s8(qx[n] + 32 * b), x1 = vld1q_s8(qx[n] + 32 * b + 16);
                    int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
                    p0 = vmlal_s8(p0, vget_high_s8(w0), vget_high_s8(x0));
                    int16x8_t p1 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
                    p1 = vmlal_s8(p1, vget_high_s8(w1), vget_high_s8(x1));
                    const int32_t isum = vaddvq_s32(vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
                    float dx;
                    memcpy(&dx, (const uint8_t *)qx[n] + K + 4 * b, 4);
                    const float scale = dw * dx;
                    acc[n] = acc[n] + (float)isum * scale;
                }
            }
            for (int n = 0; n < nt; n++) y[(size_t)(n0 + n) * (size_t)ldy + (m - m0)] = acc[n];
        }
    }
}

#endif /* __aarch64__ */
