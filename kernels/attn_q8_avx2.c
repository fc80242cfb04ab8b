/* Attention over a q8_0 KV cache with AVX2 + FMA + F16C: the bits of
 * attn_q8_ref.c (kernels.h, attn_q8_qk / attn_q8_pv; the layout there).
 *
 * Scores: one group of 8 keys at a time. A 32-byte load of K is 8 keys x 4
 * dims; the query's 4 bytes of those dims, broadcast, multiply it with
 * vpsignb + vpmaddubsw (|q| times k with q's sign: pairs of products at
 * most 2 * 127 * 127, no int16 saturation) + vpmaddwd, which leaves each
 * key's partial sum in its own lane: eight exact isums per block with no
 * horizontal adds, and every row of the tile shares each K load. The float
 * steps then run per key lane exactly as the reference does them.
 * P·V: per row, block of 32 dims and block of positions, p times V's
 * scales is quantized to int16 (vectorised, the reference's float steps);
 * a 32-byte load of V is 16 dims x 2 positions, widened to int16 and
 * multiplied by the broadcast pair of int16 probabilities with vpmaddwd:
 * 16 multiply-adds per instruction, exact int32 sums, one FMA per block. */
#include "kernels.h"
#include "x86_common.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 8")
#define QK 32
#define G BN_KVQ8_GROUP
#define PB BN_KVQ8_PBLOCK

/* Four bytes at x, in every 32-bit lane (vpbroadcastd from memory). */
INLINE __m256i bcast32(const void *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm256_set1_epi32(v);
}

/* ---- scores -------------------------------------------------------------------- */

/* R rows (R <= 4) of q (|q| in qa, same layout) against the keys of one
 * group; out[r * 8 + j] = the score of row r and key j. */
INLINE void qk_group(const int8_t *q, const int8_t *qa, const float *qd, int R, const int8_t *kg,
                     const uint16_t *kdg, int hd, __m256 out[4]) {
    const int nb = hd / QK;
    const __m256i ones = _mm256_set1_epi16(1);
    UNROLL for (int r = 0; r < R; r++) out[r] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i acc[4];
        UNROLL for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_si256();
        UNROLL for (int c = 0; c < QK / 4; c++) {
            const __m256i kv = _mm256_loadu_si256((const __m256i *)(kg + (size_t)(b * 8 + c) * 32));
            UNROLL for (int r = 0; r < R; r++) {
                const size_t at = (size_t)r * hd + (size_t)(b * QK + c * 4);
                __m256i p16 = _mm256_maddubs_epi16(bcast32(qa + at), _mm256_sign_epi8(kv, bcast32(q + at)));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p16, ones));
            }
        }
        const __m256 kd8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kdg + b * 8)));
        UNROLL for (int r = 0; r < R; r++) {
            __m256 scale = _mm256_mul_ps(_mm256_set1_ps(qd[(size_t)r * nb + b]), kd8);
            out[r] = _mm256_add_ps(out[r], _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r]), scale));
        }
    }
}

INLINE void qk_rows(const int8_t *q, const float *qd, int R, const int8_t *k, const uint16_t *kd, int nk,
                    int hd, float *s, size_t lds) {
    int8_t qa[4 * BN_KVQ8_MAX_HD];      /* |q| of the R rows */
    for (int i = 0; i < R * hd; i += 32)
        _mm256_storeu_si256((__m256i *)(qa + i), _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(q + i))));
    for (int j = 0; j < nk; j += G) {
        __m256 out[4];
        qk_group(q, qa, qd, R, k + (size_t)j * hd, kd + (size_t)j * (hd / QK), hd, out);
        if (j + G <= nk) {
            UNROLL for (int r = 0; r < R; r++) _mm256_storeu_ps(s + (size_t)r * lds + j, out[r]);
            continue;
        }
        /* the last group's keys past nk are dropped */
        float tmp[G];
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(tmp, out[r]);
            memcpy(s + (size_t)r * lds + j, tmp, (size_t)(nk - j) * sizeof *tmp);
        }
    }
}

void bn_attn_q8_qk_avx2(const int8_t *q, const float *qd, int nq, const int8_t *k,
                        const uint16_t *kd, int nk, int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    int r = 0;
    for (; r + 4 <= nq; r += 4)
        qk_rows(q + (size_t)r * hd, qd + (size_t)r * nb, 4, k, kd, nk, hd, s + (size_t)r * lds, lds);
    switch (nq - r) {
    case 3: qk_rows(q + (size_t)r * hd, qd + (size_t)r * nb, 3, k, kd, nk, hd, s + (size_t)r * lds, lds); break;
    case 2: qk_rows(q + (size_t)r * hd, qd + (size_t)r * nb, 2, k, kd, nk, hd, s + (size_t)r * lds, lds); break;
    case 1: qk_rows(q + (size_t)r * hd, qd + (size_t)r * nb, 1, k, kd, nk, hd, s + (size_t)r * lds, lds); break;
    default: break;
    }
}

/* ---- P·V ------------------------------------------------------------------------- */

/* One row's probabilities over positions [tb, te) (te - tb <= PB) times V's
 * scales of dim block b, quantized as the reference does: pq[0 .. te-tb)
 * and zeros up to the end of the last group; returns the block's scale
 * m / 32767, or 0 when m is not > 0 (the block adds nothing). */
INLINE float quantize_p(const float *p, const uint16_t *vd, int b, int hd, int tb, int te, int16_t *pq) {
    float pp[PB] __attribute__((aligned(32)));
    __m256 m8 = _mm256_setzero_ps();
    int t = tb;
    for (; t + G <= te; t += G) {
        /* the group's 8 scales of block b (bn_q8d_index at t % 8 == 0) */
        __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vd + (size_t)t * hd / 32 + b * 8)));
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(p + t), d8);
        _mm256_store_ps(pp + (t - tb), x);
        m8 = _mm256_max_ps(m8, x);
    }
    float m = bn_hmax_ps(m8);
    if (t < te) {                       /* a partial group: p = 0 past te */
        for (int i = 0; i < G; i++) {
            float x = t + i < te ? p[t + i] * bn_f16_to_f32(vd[bn_q8d_index(t + i, b, hd)]) : 0.0f;
            pp[t - tb + i] = x;
            if (x > m) m = x;
        }
        t += G;
    }
    if (!(m > 0.0f)) return 0.0f;
    const __m256 id = _mm256_set1_ps(32767.0f / m), top = _mm256_set1_ps(32767.0f);
    for (int i = 0; i < t - tb; i += G) {
        __m256i x = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_load_ps(pp + i), id), top));
        _mm_storeu_si128((__m128i *)(pq + i),
                         _mm_packs_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1)));
    }
    return m / 32767.0f;
}

/* R rows (R <= 4), 16 dims from ds, positions [tb, te) of one block: the
 * int32 sums, then acc = fma(sum, scale, acc) for the rows with a scale
 * (acc: the rows' outputs of those 16 dims, stride nd). */
INLINE void pv_block16(const int16_t *pq, const float *scale, int R, int tb, int te, const int8_t *v,
                       int hd, int ds, float *acc, int nd) {
    __m256i ia[4][2];
    UNROLL for (int r = 0; r < R; r++) ia[r][0] = ia[r][1] = _mm256_setzero_si256();
    /* an even position t's pair starts at t * hd, across groups too */
    const int8_t *x = v + (size_t)tb * hd + 2 * (size_t)ds;
    for (int t = tb; t < te; t += 2, x += 2 * (size_t)hd) {
        const __m256i v0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x));
        const __m256i v1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 16)));
        UNROLL for (int r = 0; r < R; r++) {
            const __m256i pr = bcast32(pq + r * PB + (t - tb));
            ia[r][0] = _mm256_add_epi32(ia[r][0], _mm256_madd_epi16(v0, pr));
            ia[r][1] = _mm256_add_epi32(ia[r][1], _mm256_madd_epi16(v1, pr));
        }
    }
    UNROLL for (int r = 0; r < R; r++) {
        if (scale[r] == 0.0f) continue;
        const __m256 sc = _mm256_set1_ps(scale[r]);
        float *a = acc + (size_t)r * nd;
        _mm256_storeu_ps(a, _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][0]), sc, _mm256_loadu_ps(a)));
        _mm256_storeu_ps(a + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(ia[r][1]), sc, _mm256_loadu_ps(a + 8)));
    }
}

INLINE void pv_rows(const float *p, size_t ldp, int R, int t0, int t1, const int8_t *v, const uint16_t *vd,
                    int hd, int d0, int nd, float *acc) {
    int16_t pq[4 * PB] __attribute__((aligned(32)));
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
            /* the next block's lines of these 32 dims (one per pair of
             * positions) are on their way while this block computes */
            for (int t = te; t < te + PB && t < t1; t += 2)
                _mm_prefetch((const char *)(v + (size_t)t * hd + 2 * (size_t)(b * QK)), _MM_HINT_T0);
            for (int ds = b * QK; ds < (b + 1) * QK; ds += 16)
                pv_block16(pq, scale, R, tb, te, v, hd, ds, acc + (ds - d0), nd);
        }
}

void bn_attn_q8_pv_avx2(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
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
