/* The AVX-512 variant's activation quantization and f16 loops
 * (avx512_tables.c puts them in its table). */
#include "x86_common.h"

#ifdef BN_X86_AVX512

/* ---- activations (docs/NUMERICS.md, BitLinear, steps 1-4), bit-exact with
 * ternary_ref.c ------------------------------------------------------------- */

float bn_avx512_quantize_act(const float *x, int K, int8_t *q, int32_t *sum) {
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < K; i += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    /* max in float is exact; the floor comparison in double equals the
     * reference's double loop. */
    const float s = bn_act_quant_scale(_mm512_reduce_max_ps(mx));
    const __m512 vs = _mm512_set1_ps(s);
    const __m512i lo = _mm512_set1_epi32(-128), hi = _mm512_set1_epi32(127);
    __m512i acc = _mm512_setzero_si512();
    for (int i = 0; i < K; i += 16) {
        /* cvtps_epi32: round to nearest even under the default MXCSR. */
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs));
        v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
        acc = _mm512_add_epi32(acc, v);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtepi32_epi8(v));
    }
    *sum = _mm512_reduce_add_epi32(acc);
    return s;
}

/* ---- f16 -------------------------------------------------------------------------- */

void bn_avx512_f16_to_f32(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = bn_f16_to_f32(src[i]);
}

void bn_avx512_f32_to_f16(const float *src, uint16_t *dst, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = bn_f32_to_f16(src[i]);
}

/* f16 x f16 products are exact in float, so fmadd = multiply then add. The
 * summation order is the reference's (ternary_ref.c, bitnet.cpp's AVX-512
 * order): 4 x 16 lanes per 64 elements, (s0+s2)+(s1+s3), halves 16->8->4->2,
 * lane 0 + lane 1, tail in double; so the result equals ref bit for bit. */
float bn_avx512_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int i = 0;
#define LD(p, o) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((p) + i + (o))))
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(LD(a, 0), LD(b, 0), s0);
        s1 = _mm512_fmadd_ps(LD(a, 16), LD(b, 16), s1);
        s2 = _mm512_fmadd_ps(LD(a, 32), LD(b, 32), s2);
        s3 = _mm512_fmadd_ps(LD(a, 48), LD(b, 48), s3);
    }
#undef LD
    __m512 v = _mm512_add_ps(_mm512_add_ps(s0, s2), _mm512_add_ps(s1, s3));
    __m256 v8 = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    double sum = (double)_mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
    /* The tail is added in double one product at a time, in order (that is
     * the reference's order); only the conversions and the exact products
     * are vectorised. Attention's P·V runs over multiples of 32 cells, so
     * half of its dots have a 32-element tail. */
    float prod[16];
    for (; i + 16 <= n; i += 16) {
        __m512 pa = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(a + i)));
        __m512 pb = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + i)));
        _mm512_storeu_ps(prod, _mm512_mul_ps(pa, pb));
        for (int l = 0; l < 16; l++) sum += (double)prod[l];
    }
    for (; i < n; i++) sum += (double)(bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]));
    return (float)sum;
}

/* bitnet.cpp's prompt-batch P·V order (ternary_ref.c): one 16-lane fused
 * multiply-add chain, a partial last group loaded with zeros, then the lanes
 * halved 16->8->4->2->1; equals ref bit for bit. */
float bn_avx512_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(p + i),
                              _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(v + i))), acc);
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + i),
                              _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + i)), acc);
    }
    __m256 v8 = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1));
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
    return _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));
}

void bn_avx512_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y) {
    for (int m = m0; m < m1; m++) y[m - m0] = bn_avx512_dot_f16(W + (size_t)m * (size_t)K, x, K);
}

#endif
