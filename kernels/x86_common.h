/* Internal to the x86 variants: the small vector helpers their files share,
 * and what each file hands to its variant's tables (avx2_tables.c,
 * avx512_tables.c). Every x86 kernel file is compiled with at least
 * AVX2 + FMA + F16C (CMakeLists.txt: files named *avx2* or *avx512*);
 * dispatch.c calls them only on CPUs that have those. */
#ifndef BN_X86_COMMON_H
#define BN_X86_COMMON_H

#include <string.h>

#include "format_records.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define BN_X86_AVX2 1
#include <immintrin.h>

/* ---- helpers ---------------------------------------------------------------- */

/* bn_attn_exp (attn_ref.c) on eight lanes: the same float steps. */
static inline __m256 bn_exp8(__m256 x) {
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269502f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_sub_ps(_mm256_sub_ps(x, _mm256_mul_ps(n, _mm256_set1_ps(0.693359375f))),
                                   _mm256_mul_ps(n, _mm256_set1_ps(-2.12194442e-4f)));
    __m256 p = _mm256_set1_ps(0.000198412701f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.00138888892f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.00833333377f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.0416666679f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.166666672f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(0.5f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_and_ps(y, _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_GE_OQ));
}


static inline int32_t bn_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline __m256 bn_abs_ps(__m256 v) {
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

static inline float bn_hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 32 int32 in four vectors -> 32 int8 in order, saturated to [-128, 127]
 * (the packs work per 128-bit lane; the permutation puts the lanes back). */
static inline __m256i bn_pack_epi32_epi8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    return _mm256_permutevar8x32_epi32(bytes, order);
}

/* I2_S in vectors: the layout and code values of src/i2s.h (bn_i2s_code,
 * bn_i2s_weight), 32 payload bytes = one 128-weight block at a time.
 *
 * bn_i2s_canonical_byte on 32 bytes: code 3 rewritten as 1, so that every
 * 2-bit field is w + 1 in 0..2 and Σ code·q − Σ q is the exact dot (16-bit
 * shifts; the 0x55 mask drops the bits that cross bytes). */
static inline __m256i bn_i2s_canonical_codes(__m256i x) {
    const __m256i both = _mm256_and_si256(_mm256_and_si256(x, _mm256_srli_epi16(x, 1)),
                                          _mm256_set1_epi8(0x55));
    return _mm256_andnot_si256(_mm256_slli_epi16(both, 1), x);
}

/* The 128 codes of one block (bn_i2s_canonical_codes applied) as four
 * vectors of bytes 0..2: c[g] holds k = 32g..32g+31 of the block (byte p of
 * the block holds k = p, 32 + p, 64 + p, 96 + p in bits 7-6 .. 1-0). */
static inline void bn_i2s_block_codes(const uint8_t *blk, __m256i c[4]) {
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m256i x = bn_i2s_canonical_codes(_mm256_loadu_si256((const __m256i *)blk));
    c[0] = _mm256_and_si256(_mm256_srli_epi16(x, 6), m3);
    c[1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m3);
    c[2] = _mm256_and_si256(_mm256_srli_epi16(x, 2), m3);
    c[3] = _mm256_and_si256(x, m3);
}

/* Prepared ternary input of the multiply-add kernels (avx2-mad, avx512):
 * q[K], then Σ q as an int32 at byte K, in K + 64 bytes so that consecutive
 * tokens stay 64-byte aligned. */
static inline size_t bn_x86_mad_prep_size(int K) {
    return (size_t)K + 64;
}

static inline int32_t bn_x86_mad_prep_sum(const void *prep, int K) {
    int32_t s;
    memcpy(&s, (const uint8_t *)prep + K, sizeof s);
    return s;
}

/* ---- AVX2 (avx2_common.c, ternary_avx2_mad.c, ternary_avx2_lut.c,
 * head_q8_avx2.c), put together in avx2_tables.c ---------------------------- */

float bn_avx2_quantize_act(const float *x, int K, int8_t *q, int32_t *sum);
void bn_avx2_f16_to_f32(const uint16_t *src, float *dst, int n);
void bn_avx2_f32_to_f16(const float *src, uint16_t *dst, int n);
float bn_avx2_dot_f16(const uint16_t *a, const uint16_t *b, int n);
void bn_avx2_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y);
void bn_avx2_dots_f16(const uint16_t *W, size_t ldw, const uint16_t *x, int n, int rows, float *y);
float bn_avx2_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n);

extern const bn_format_traits bn_avx2_mad_fmt_ternary;     /* "i2s-avx2-mad" */
extern const bn_format_traits bn_avx2_lut_fmt_ternary;     /* "i2s-avx2-lut" */
extern const bn_format_traits bn_avx2_tl_fmt_ternary;      /* "t3-avx2" (ternary_avx2_tl.c) */
extern const bn_format_traits bn_avx2_fmt_q8_head;         /* tile height 8 */

#endif /* AVX2 */

#if defined(BN_X86_AVX2) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__)
#define BN_X86_AVX512 1

/* 4 bytes at p (any alignment) broadcast to every int32 lane. */
static inline __m512i bn_bcast4_epi32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* ---- AVX-512 (avx512_common.c, ternary_avx512.c, head_q8_avx512.c), put
 * together in avx512_tables.c ----------------------------------------------- */

float bn_avx512_quantize_act(const float *x, int K, int8_t *q, int32_t *sum);
void bn_avx512_f16_to_f32(const uint16_t *src, float *dst, int n);
void bn_avx512_f32_to_f16(const float *src, uint16_t *dst, int n);
float bn_avx512_dot_f16(const uint16_t *a, const uint16_t *b, int n);
void bn_avx512_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y);
float bn_avx512_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n);

extern const bn_format_traits bn_avx512_fmt_ternary;       /* "i2s-avx512-vnni" */
extern const bn_format_traits bn_avx512_fmt_q8_head;       /* tile height 16 */

#endif /* AVX-512 */

#endif
