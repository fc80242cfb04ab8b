/* Attention over long contexts with AVX2 + FMA + F16C: the order of
 * attn_ref.c, bit for bit (kernels.h). The eight lanes of the definition are
 * the eight floats of a ymm register; a product of two f16 values is exact,
 * so fmadd gives the reference's multiply-then-add. Register blocks: scores
 * 4 query rows x 2 keys, P·V 4 rows x 2 dims (8 accumulators), so every
 * loaded K or V vector serves 4 rows. */
#include "kernels.h"
#include "x86_common.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <math.h>

#define INLINE static inline __attribute__((always_inline))
/* The register blocks' small loops must unroll, or their accumulators
 * live in memory (-O2 does not unroll by itself). */
#define UNROLL _Pragma("GCC unroll 4")

/* ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) */
INLINE float lanes_sum(__m256 v) {
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 c = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(c, _mm_movehdup_ps(c)));
}

/* lanes_sum of four vectors at once, in the same order: r[j] = sum of vj. */
INLINE void lanes_sum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3, float r[4]) {
    /* b_j = (a_l + a_l+4): vj's halves added, two vectors per register */
    __m256 b01 = _mm256_add_ps(_mm256_permute2f128_ps(v0, v1, 0x20), _mm256_permute2f128_ps(v0, v1, 0x31));
    __m256 b23 = _mm256_add_ps(_mm256_permute2f128_ps(v2, v3, 0x20), _mm256_permute2f128_ps(v2, v3, 0x31));
    /* c = (b_l + b_l+2) for l = 0, 1: [c0 c0' c2 c2' | c1 c1' c3 c3'] */
    __m256 c = _mm256_add_ps(_mm256_shuffle_ps(b01, b23, 0x44), _mm256_shuffle_ps(b01, b23, 0xee));
    /* c_l + c_l' */
    __m256 d = _mm256_add_ps(_mm256_shuffle_ps(c, c, 0x08), _mm256_shuffle_ps(c, c, 0x0d));
    __m128 lo = _mm256_castps256_ps128(d), hi = _mm256_extractf128_ps(d, 1);
    r[0] = _mm_cvtss_f32(lo);
    r[2] = _mm_cvtss_f32(_mm_movehdup_ps(lo));
    r[1] = _mm_cvtss_f32(hi);
    r[3] = _mm_cvtss_f32(_mm_movehdup_ps(hi));
}

INLINE __m256 load_f16(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* ---- scores ------------------------------------------------------------------- */

/* R rows x J keys (R <= 4, J <= 3; constants after inlining). */
INLINE void qk_block(const float *q, size_t ldq, int R, const uint16_t *k, int J, int hd, float *s,
                     size_t lds) {
    __m256 acc[4][3];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int j = 0; j < J; j++) acc[r][j] = _mm256_setzero_ps();
    for (int x = 0; x < hd; x += 8) {
        __m256 kv[3];
        UNROLL for (int j = 0; j < J; j++) kv[j] = load_f16(k + (size_t)j * hd + x);
        UNROLL for (int r = 0; r < R; r++) {
            __m256 qv = _mm256_loadu_ps(q + (size_t)r * ldq + x);
            UNROLL for (int j = 0; j < J; j++) acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
        }
    }
    if (R == 4) {
        UNROLL for (int j = 0; j < J; j++) {
            float sum[4];
            lanes_sum4(acc[0][j], acc[1][j], acc[2][j], acc[3][j], sum);
            UNROLL for (int r = 0; r < 4; r++) s[(size_t)r * lds + j] = sum[r];
        }
        return;
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int j = 0; j < J; j++) s[(size_t)r * lds + j] = lanes_sum(acc[r][j]);
}

/* The rows of a block, for a constant R. */
INLINE void qk_rows(const float *q, size_t ldq, int R, const uint16_t *k, int nk, int hd,
                    float *s, size_t lds) {
    int j = 0;
    for (; j + 3 <= nk; j += 3) qk_block(q, ldq, R, k + (size_t)j * hd, 3, hd, s + j, lds);
    if (nk - j == 2) qk_block(q, ldq, R, k + (size_t)j * hd, 2, hd, s + j, lds);
    if (nk - j == 1) qk_block(q, ldq, R, k + (size_t)j * hd, 1, hd, s + j, lds);
}

void bn_attn_qk_avx2(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
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

void bn_attn_softmax_avx2(float *s, int n, int n_pad, float scale) {
    const __m256 vscale = _mm256_set1_ps(scale);
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int t = 0;
    for (; t + 8 <= n; t += 8) {
        __m256 w = _mm256_mul_ps(_mm256_loadu_ps(s + t), vscale);
        _mm256_storeu_ps(s + t, w);
        vmax = _mm256_max_ps(vmax, w);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    float m = _mm_cvtss_f32(_mm_max_ss(m4, _mm_movehdup_ps(m4)));
    for (; t < n; t++) {
        s[t] *= scale;
        if (s[t] > m) m = s[t];
    }

    const __m256 vm = _mm256_set1_ps(m);
    __m256d lo = _mm256_setzero_pd(), hi = lo;      /* lanes 0-3, 4-7 */
    for (t = 0; t + 8 <= n; t += 8) {
        __m256 e = bn_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + t), vm));
        _mm256_storeu_ps(s + t, e);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lane[8];
    _mm256_storeu_pd(lane, lo);
    _mm256_storeu_pd(lane + 4, hi);
    for (; t < n; t++) {
        s[t] = bn_attn_exp(s[t] - m);
        lane[t % 8] += (double)s[t];
    }
    double sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    const float inv = (float)(1.0 / sum);

    const __m256 vinv = _mm256_set1_ps(inv);
    for (t = 0; t + 8 <= n; t += 8) {
        __m256 p = _mm256_mul_ps(_mm256_loadu_ps(s + t), vinv);
        _mm256_storeu_ps(s + t, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
    }
    for (; t < n; t++) s[t] = bn_f16_to_f32(bn_f32_to_f16(s[t] * inv));
    for (; t < n_pad; t++) s[t] = 0.0f;
}

/* ---- P·V -------------------------------------------------------------------------- */

/* R rows x D dims (R <= 4, D <= 2) over [t0, t1); acc as in kernels.h. */
INLINE void pv_block(const float *p, size_t ldp, int R, int t0, int t1, const uint16_t *vt,
                     size_t ldv, int D, float *acc, int nd) {
    __m256 a[4][3];
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int d = 0; d < D; d++) a[r][d] = _mm256_loadu_ps(acc + ((size_t)r * nd + d) * 8);
    for (int t = t0; t < t1; t += 8) {
        __m256 v[3];
        UNROLL for (int d = 0; d < D; d++) v[d] = load_f16(vt + (size_t)d * ldv + t);
        UNROLL for (int r = 0; r < R; r++) {
            __m256 pr = _mm256_loadu_ps(p + (size_t)r * ldp + t);
            UNROLL for (int d = 0; d < D; d++) a[r][d] = _mm256_fmadd_ps(pr, v[d], a[r][d]);
        }
    }
    UNROLL for (int r = 0; r < R; r++)
        UNROLL for (int d = 0; d < D; d++) _mm256_storeu_ps(acc + ((size_t)r * nd + d) * 8, a[r][d]);
}

INLINE void pv_rows(const float *p, size_t ldp, int R, int t0, int t1, const uint16_t *vt,
                    size_t ldv, int nd, float *acc) {
    int d = 0;
    for (; d + 3 <= nd; d += 3) pv_block(p, ldp, R, t0, t1, vt + (size_t)d * ldv, ldv, 3, acc + (size_t)d * 8, nd);
    if (nd - d == 2) pv_block(p, ldp, R, t0, t1, vt + (size_t)d * ldv, ldv, 2, acc + (size_t)d * 8, nd);
    if (nd - d == 1) pv_block(p, ldp, R, t0, t1, vt + (size_t)d * ldv, ldv, 1, acc + (size_t)d * 8, nd);
}

void bn_attn_pv_avx2(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
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
