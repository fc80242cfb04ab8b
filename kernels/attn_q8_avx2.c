/* Attention over a q8_0 KV cache with AVX2 + FMA + F16C: the bits of
 * attn_q8_ref.c (kernels.h, attn_q8_qk / attn_q8_pv).
 *
 * Scores: eight keys at a time. A block's int8 dot is vpsignb + vpmaddubsw
 * (|q| times k with q's sign: pairs of products at most 2 * 127 * 127, no
 * int16 saturation, as the values stay within +-127) + vpmaddwd, then the
 * eight keys' partial sums are reduced into one vector of eight exact isums
 * (integer adds: any order gives the same sums), and the float steps run
 * per key lane exactly as the reference does them.
 * P·V: 4 rows x 16 dims per register block; each position's 16 values are
 * dequantized once (exact) and feed the 4 rows' FMAs, in position order. */
#include "kernels.h"
#include "x86_common.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define QK 32

/* ---- scores -------------------------------------------------------------------- */

/* 8 int32 partial sums of q . k over one block of 32 */
INLINE __m256i block_dot(__m256i q, __m256i q_abs, const int8_t *k) {
    __m256i kv = _mm256_loadu_si256((const __m256i *)k);
    __m256i p16 = _mm256_maddubs_epi16(q_abs, _mm256_sign_epi8(kv, q));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* The totals of eight vectors, lane j = the sum of d[j]'s lanes. */
INLINE __m256i sum8(const __m256i d[8]) {
    __m256i h01 = _mm256_hadd_epi32(d[0], d[1]), h23 = _mm256_hadd_epi32(d[2], d[3]);
    __m256i h45 = _mm256_hadd_epi32(d[4], d[5]), h67 = _mm256_hadd_epi32(d[6], d[7]);
    __m256i a = _mm256_hadd_epi32(h01, h23), b = _mm256_hadd_epi32(h45, h67);
    return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

/* Keys j0 .. j0+7 against every query row. */
INLINE void qk_group8(const int8_t *q, const float *qd, int nq, const int8_t *k, const uint16_t *kd,
                      int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    /* the eight keys' scales per block, as floats: kdt[b * 8 + j]
     * (nb <= 64: head_dim up to 2048, checked by the caller) */
    float kdt[8 * 64];
    for (int j = 0; j < 8; j++)
        for (int b = 0; b < nb; b++) kdt[b * 8 + j] = _cvtsh_ss(kd[(size_t)j * nb + b]);
    for (int r = 0; r < nq; r++) {
        const int8_t *qr = q + (size_t)r * hd;
        __m256 sum = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            __m256i qv = _mm256_loadu_si256((const __m256i *)(qr + b * QK));
            __m256i qa = _mm256_abs_epi8(qv);
            __m256i d[8];
            UNROLL for (int j = 0; j < 8; j++) d[j] = block_dot(qv, qa, k + (size_t)j * hd + b * QK);
            __m256 isum = _mm256_cvtepi32_ps(sum8(d));
            __m256 scale = _mm256_mul_ps(_mm256_set1_ps(qd[(size_t)r * nb + b]), _mm256_loadu_ps(kdt + b * 8));
            sum = _mm256_add_ps(sum, _mm256_mul_ps(isum, scale));
        }
        _mm256_storeu_ps(s + (size_t)r * lds, sum);
    }
}

void bn_attn_q8_qk_avx2(const int8_t *q, const float *qd, int nq, const int8_t *k,
                        const uint16_t *kd, int nk, int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    if (nb > 64) {                      /* wider than any model's head: the plain loop */
        bn_attn_q8_qk_ref(q, qd, nq, k, kd, nk, hd, s, lds);
        return;
    }
    int j = 0;
    for (; j + 8 <= nk; j += 8)
        qk_group8(q, qd, nq, k + (size_t)j * hd, kd + (size_t)j * nb, hd, s + j, lds);
    /* the last few keys: the reference computes the same bits */
    if (j < nk) bn_attn_q8_qk_ref(q, qd, nq, k + (size_t)j * hd, kd + (size_t)j * nb, nk - j, hd, s + j, lds);
}

/* ---- P·V ------------------------------------------------------------------------- */

/* 16 values of row t from dims dv.. (within one block), dequantized. */
INLINE void load16(const int8_t *v, uint16_t scale, __m256 *lo, __m256 *hi) {
    __m256 d = _mm256_set1_ps(_cvtsh_ss(scale));
    __m256i a = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)v));
    __m256i b = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(v + 8)));
    *lo = _mm256_mul_ps(_mm256_cvtepi32_ps(a), d);
    *hi = _mm256_mul_ps(_mm256_cvtepi32_ps(b), d);
}

/* R rows (R <= 4) x 16 dims from dim ds, positions [t0, t1). */
INLINE void pv_block(const float *p, size_t ldp, int R, int t0, int t1, const int8_t *v,
                     const uint16_t *vd, int hd, int ds, float *acc, int nd) {
    const int nb = hd / QK;
    __m256 a[4][2];
    UNROLL for (int r = 0; r < R; r++) {
        a[r][0] = _mm256_loadu_ps(acc + (size_t)r * nd + ds);
        a[r][1] = _mm256_loadu_ps(acc + (size_t)r * nd + ds + 8);
    }
    for (int t = t0; t < t1; t++) {
        __m256 lo, hi;
        load16(v + (size_t)t * hd + ds, vd[(size_t)t * nb + ds / QK], &lo, &hi);
        UNROLL for (int r = 0; r < R; r++) {
            __m256 pr = _mm256_broadcast_ss(p + (size_t)r * ldp + t);
            a[r][0] = _mm256_fmadd_ps(pr, lo, a[r][0]);
            a[r][1] = _mm256_fmadd_ps(pr, hi, a[r][1]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        _mm256_storeu_ps(acc + (size_t)r * nd + ds, a[r][0]);
        _mm256_storeu_ps(acc + (size_t)r * nd + ds + 8, a[r][1]);
    }
}

INLINE void pv_rows(const float *p, size_t ldp, int R, int t0, int t1, const int8_t *v,
                    const uint16_t *vd, int hd, int nd, float *acc) {
    for (int ds = 0; ds < nd; ds += 16) pv_block(p, ldp, R, t0, t1, v, vd, hd, ds, acc, nd);
}

void bn_attn_q8_pv_avx2(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
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
