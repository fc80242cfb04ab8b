/* The Q8_0, Q6_K and F32 heads' dot products (format_ggml.c) with AVX2 +
 * FMA, for the x86 variants' tables: per lane the same exact integers, the
 * same fused multiply-adds and the same horizontal sums as the plain C
 * records, hence the same bits (tests/test_format_ggml.c compares them
 * exactly). bitnet_b1_58-3B's 109 MB Q8_0 head, and Q6_K / F32 heads of
 * 128K-token vocabularies (Llama-3 shapes: 0.4-2 GB), are the reason. */
#include "format_records.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define Q8_0_BYTES 34

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* hsum8 of format_ggml.c: high half + low half, then (0+2) + (1+3). */
static float hsum8(__m256 acc) {
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* Lane l gets the exact sum of products 4l..4l+3 (|qw| * sign-adjusted qx
 * fits maddubs' 16-bit pairs: at most 2 * 128 * 127), times dw * dx fused
 * into the accumulator. */
static float dot(const uint8_t *w, const uint8_t *x, int nb) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        const __m256 d = _mm256_set1_ps(f16_at(w) * f16_at(x));
        const __m256i qw = _mm256_loadu_si256((const __m256i *)(w + 2));
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(x + 2));
        const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
        const __m256i p32 = _mm256_madd_epi16(p16, ones);
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p32), acc);
    }
    return hsum8(acc);
}


/* ---- Q6_K ------------------------------------------------------------------------ */

#define Q6_K_BYTES 210

/* One 32-value group against the activations: int32 lane u gets values
 * 4u..4u+3 of the group, each (code - 32) * q, times the group's scale
 * (lanes 0-3: the first 16 values' scale, 4-7: the second's). maddubs
 * takes the unsigned code: |code * q| pairs stay within 2 * 63 * 127, and
 * subtracting 32 * (q pair sums) keeps |result| < 2^15, so no int16 step
 * saturates and every lane is the exact integer of format_ggml.c. */
static inline __m256i q6_group(__m256i code, __m256i q, __m256i scales16) {
    const __m256i m32 = _mm256_set1_epi8(32);
    const __m256i p = _mm256_maddubs_epi16(code, q);
    const __m256i bias = _mm256_maddubs_epi16(m32, q);
    return _mm256_madd_epi16(_mm256_sub_epi16(p, bias), scales16);
}

/* The int16 scales of group g of half h: the low 128 bits get scale
 * 8h + 2g, the high 128 bits 8h + 2g + 1. */
static inline __m256i q6_scales(const int8_t *sc) {
    return _mm256_setr_m128i(_mm_set1_epi16(sc[0]), _mm_set1_epi16(sc[1]));
}

static float q6_k_dot(const uint8_t *w, const uint8_t *dx, const int8_t *q, int nb) {
    const __m256i m4 = _mm256_set1_epi8(15), m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, w += Q6_K_BYTES, q += 256) {
        float d8;
        memcpy(&d8, dx + 4 * b, 4);
        const __m256 d = _mm256_set1_ps(d8 * f16_at(w + 208));
        const int8_t *sc = (const int8_t *)(w + 192);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w + 64 * h, *qh = w + 128 + 32 * h;
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)qh);
            /* codes of the four groups (docs/FORMAT.md, Q6_K); epi16 shifts
             * are fine since the masks drop what crosses a byte */
            const __m256i c0 = _mm256_or_si256(_mm256_and_si256(l0, m4),
                                               _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
            const __m256i c1 = _mm256_or_si256(
                _mm256_and_si256(l1, m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), m3), 4));
            const __m256i c2 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), m3), 4));
            const __m256i c3 = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), m3), 4));
            const int8_t *qq = q + 128 * h, *s = sc + 8 * h;
            sumi = _mm256_add_epi32(sumi, q6_group(c0, _mm256_loadu_si256((const __m256i *)qq),
                                                   q6_scales(s)));
            sumi = _mm256_add_epi32(sumi, q6_group(c1, _mm256_loadu_si256((const __m256i *)(qq + 32)),
                                                   q6_scales(s + 2)));
            sumi = _mm256_add_epi32(sumi, q6_group(c2, _mm256_loadu_si256((const __m256i *)(qq + 64)),
                                                   q6_scales(s + 4)));
            sumi = _mm256_add_epi32(sumi, q6_group(c3, _mm256_loadu_si256((const __m256i *)(qq + 96)),
                                                   q6_scales(s + 6)));
        }
        acc = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}


/* ---- F32 -------------------------------------------------------------------------- */

/* format_ggml.c's order: four 16-lane accumulators (here eight 8-lane
 * halves, lane for lane the same fused multiply-adds) over chunks of 64,
 * (a0 + a2) + (a1 + a3), the 16 lanes halved down to one, then the tail one
 * fused product at a time. */
static float f32_dot(const float *w, const float *x, int K) {
    __m256 a[8];
    for (int r = 0; r < 8; r++) a[r] = _mm256_setzero_ps();
    const int n64 = K & ~63;
    for (int i = 0; i < n64; i += 64)
        for (int r = 0; r < 8; r++)
            a[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * r), _mm256_loadu_ps(x + i + 8 * r), a[r]);
    /* accumulator r of 16 lanes is halves a[2r] (lanes 0-7), a[2r+1] (8-15) */
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7]));
    __m256 v8 = _mm256_add_ps(lo, hi);                                       /* l + l+8 */
    __m128 v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps(v8, 1)); /* l + l+4 */
    __m128 v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));                       /* l + l+2 */
    float sum = _mm_cvtss_f32(_mm_add_ss(v2, _mm_movehdup_ps(v2)));          /* 0 + 1 */
    for (int i = n64; i < K; i++) sum = fmaf(w[i], x[i], sum);
    return sum;
}


BN_GGML_HEAD_RECORDS(_avx2, dot, q6_k_dot, f32_dot);

#endif
