/* The AVX2 variant's activation quantization and f16 loops (x86-64 with
 * AVX2 + FMA + F16C), shared by its three tables (avx2_tables.c). */
#include "x86_common.h"

#ifdef BN_X86_AVX2

/* ---- activations (docs/NUMERICS.md, BitLinear, steps 1-4), bit-exact with
 * ternary_ref.c ------------------------------------------------------------- */

float bn_avx2_quantize_act(const float *x, int K, int8_t *q, int32_t *sum) {
    /* max|x| in float is exact (max does not round), so comparing it with
     * the 1e-5 floor in double afterwards equals the reference's double loop. */
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < K; i += 8) mx = _mm256_max_ps(mx, bn_abs_ps(_mm256_loadu_ps(x + i)));
    float lanes[8], m = 0.0f;
    _mm256_storeu_ps(lanes, mx);
    for (int i = 0; i < 8; i++)
        if (lanes[i] > m) m = lanes[i];
    const float s = bn_act_quant_scale(m);

    /* cvtps_epi32 rounds to nearest even (default MXCSR), the same as the
     * reference's 1.5*2^23 trick; the packs saturate, which is the clamp. */
    const __m256 vs = _mm256_set1_ps(s);
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < K; i += 32) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
        __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs));
        __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vs));
        __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vs));
        const __m256i bytes = bn_pack_epi32_epi8(a, b, c, d);
        _mm256_storeu_si256((__m256i *)(q + i), bytes);
        /* Sum the clamped bytes: pairs of int8 -> int16 -> int32. */
        __m256i w16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), bytes);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w16, _mm256_set1_epi16(1)));
    }
    *sum = bn_hsum_epi32(acc);
    return s;
}

/* ---- f16 (F16C) ------------------------------------------------------------------ */

void bn_avx2_f16_to_f32(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = bn_f16_to_f32(src[i]);
}

void bn_avx2_f32_to_f16(const float *src, uint16_t *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = bn_f32_to_f16(src[i]);
}

/* The product of two f16 values is exact in float (11+11 significant bits),
 * so fmadd equals multiply-then-add. The summation order is the reference's
 * (ternary_ref.c, bitnet.cpp's AVX-512 order) with each 16-lane accumulator
 * held as two ymm (lanes 0-7, 8-15), so the result equals ref bit for bit.
 * dot_f16_head sums the whole chunks of 64 down to one float and returns
 * where the tail starts; the tail is added in double, one product at a
 * time, in order. */
static float dot_f16_head(const uint16_t *a, const uint16_t *b, int n, int *tail) {
    __m256 lo0 = _mm256_setzero_ps(), lo1 = lo0, lo2 = lo0, lo3 = lo0;
    __m256 hi0 = lo0, hi1 = lo0, hi2 = lo0, hi3 = lo0;
    int i = 0;
#define LD(p, o) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((p) + i + (o))))
    for (; i + 64 <= n; i += 64) {
        lo0 = _mm256_fmadd_ps(LD(a, 0), LD(b, 0), lo0);
        hi0 = _mm256_fmadd_ps(LD(a, 8), LD(b, 8), hi0);
        lo1 = _mm256_fmadd_ps(LD(a, 16), LD(b, 16), lo1);
        hi1 = _mm256_fmadd_ps(LD(a, 24), LD(b, 24), hi1);
        lo2 = _mm256_fmadd_ps(LD(a, 32), LD(b, 32), lo2);
        hi2 = _mm256_fmadd_ps(LD(a, 40), LD(b, 40), hi2);
        lo3 = _mm256_fmadd_ps(LD(a, 48), LD(b, 48), lo3);
        hi3 = _mm256_fmadd_ps(LD(a, 56), LD(b, 56), hi3);
    }
#undef LD
    __m256 vlo = _mm256_add_ps(_mm256_add_ps(lo0, lo2), _mm256_add_ps(lo1, lo3));
    __m256 vhi = _mm256_add_ps(_mm256_add_ps(hi0, hi2), _mm256_add_ps(hi1, hi3));
    __m256 v8 = _mm256_add_ps(vlo, vhi);
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    *tail = i;
    return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}

/* The product a[i]·b[i] of 8 consecutive elements (exact in float). */
static inline __m256 mul8_f16(const uint16_t *a, const uint16_t *b) {
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)a)),
                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)b)));
}

float bn_avx2_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
    int i;
    double sum = (double)dot_f16_head(a, b, n, &i);
    /* Only the conversions and the exact products are vectorised (as in
     * avx512_common.c: attention's P·V dots often have a 32-element tail). */
    float prod[8];
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(prod, mul8_f16(a + i, b + i));
        for (int l = 0; l < 8; l++) sum += (double)prod[l];
    }
    for (; i < n; i++) sum += (double)(bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]));
    return (float)sum;
}

/* Four rows' tails at once: the double sums of rows r0..r3 as the lanes of
 * one vector, each gaining its row's products one at a time in order (the
 * same additions as bn_avx2_dot_f16, four independent chains in a vector
 * instead of four chains one after another: a 32-element tail, as head_dim
 * 96 leaves, is 32 dependent additions). */
static __m256d tails4_f16(const uint16_t *W, size_t K, const uint16_t *x, int i, int n, __m256d sum) {
    for (; i + 8 <= n; i += 8) {
        __m256 p0 = mul8_f16(W + i, x + i), p1 = mul8_f16(W + K + i, x + i);
        __m256 p2 = mul8_f16(W + 2 * K + i, x + i), p3 = mul8_f16(W + 3 * K + i, x + i);
        /* Transpose: t[l] = (p0[l], p1[l], p2[l], p3[l]), l = 0..7. */
        __m256 u0 = _mm256_unpacklo_ps(p0, p1), u1 = _mm256_unpackhi_ps(p0, p1);
        __m256 u2 = _mm256_unpacklo_ps(p2, p3), u3 = _mm256_unpackhi_ps(p2, p3);
        __m256 t0 = _mm256_shuffle_ps(u0, u2, 0x44), t1 = _mm256_shuffle_ps(u0, u2, 0xee);
        __m256 t2 = _mm256_shuffle_ps(u1, u3, 0x44), t3 = _mm256_shuffle_ps(u1, u3, 0xee);
        const __m256 t[4] = {t0, t1, t2, t3};
        for (int l = 0; l < 4; l++) sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_castps256_ps128(t[l])));
        for (int l = 0; l < 4; l++) sum = _mm256_add_pd(sum, _mm256_cvtps_pd(_mm256_extractf128_ps(t[l], 1)));
    }
    double s[4];
    _mm256_storeu_pd(s, sum);
    for (; i < n; i++)
        for (int r = 0; r < 4; r++)
            s[r] += (double)(bn_f16_to_f32(W[(size_t)r * K + i]) * bn_f16_to_f32(x[i]));
    return _mm256_loadu_pd(s);
}

void bn_avx2_dots_f16(const uint16_t *W, size_t ldw, const uint16_t *x, int n, int rows, float *y) {
    int r = 0;
    if (n % 64 != 0)    /* a tail: rows four at a time */
        for (; r + 4 <= rows; r += 4) {
            const uint16_t *w = W + (size_t)r * ldw;
            double h[4];
            int i = 0;
            for (int j = 0; j < 4; j++) h[j] = (double)dot_f16_head(w + (size_t)j * ldw, x, n, &i);
            __m256d sum = tails4_f16(w, ldw, x, i, n, _mm256_loadu_pd(h));
            _mm_storeu_ps(y + r, _mm256_cvtpd_ps(sum));
        }
    for (; r < rows; r++) y[r] = bn_avx2_dot_f16(W + (size_t)r * ldw, x, n);
}

void bn_avx2_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y) {
    bn_avx2_dots_f16(W + (size_t)m0 * (size_t)K, (size_t)K, x, K, m1 - m0, y);
}

/* bitnet.cpp's prompt-batch P·V order (ternary_ref.c): 16 fused
 * multiply-add lanes held as two ymm (lanes 0-7, 8-15), a partial last
 * group completed with zeros, then lanes l + l+8 (lo + hi), l + l+4,
 * l + l+2, 0 + 1; equals ref bit for bit. */
float bn_avx2_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n) {
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(p + i),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(p + i + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i + 8))), hi);
    }
    if (i < n) {
        float pt[16] = {0};
        uint16_t vt[16] = {0};
        memcpy(pt, p + i, (size_t)(n - i) * sizeof *pt);
        memcpy(vt, v + i, (size_t)(n - i) * sizeof *vt);
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(pt), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)vt)), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(pt + 8),
                             _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vt + 8))), hi);
    }
    __m256 v8 = _mm256_add_ps(lo, hi);
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}

#endif
