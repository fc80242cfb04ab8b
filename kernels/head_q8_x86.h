/* Q8 head quantization pieces shared by head_q8_avx2.c and
 * head_q8_avx512.c (both compiled with AVX2 + F16C): 8 rows of one
 * 32-weight block at a time, with the numerics of bn_q8_block_quantize
 * (kernels.h) bit for bit. */
#ifndef BN_HEAD_Q8_X86_H
#define BN_HEAD_Q8_X86_H

#include <stddef.h>
#include <stdint.h>

#include "x86_common.h"

/* 8 x 8 int32 transpose: r[i] lane j -> r[j] lane i. */
static inline void bn_transpose8x8_epi32(__m256i r[8]) {
    __m256i t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);       /* lanes 0,1 | 4,5 */
        t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);   /* lanes 2,3 | 6,7 */
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);       /* lane 0 | 4 */
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);       /* lane 1 | 5 */
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);   /* lane 2 | 6 */
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);   /* lane 3 | 7 */
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
    }
}

/* One block of a whole tile (8 rows at row stride K): the 8 amax come out
 * of one transpose, so the scales are one vector division and conversion
 * (vcvtps2ph gives the f16 scales to store as they are); the q of the rows,
 * as 8 int32 groups of 4 weights, transposed are 8 vectors of 32 bytes
 * (group j of the 8 rows, stored at wdst + wstride·j); the 8 scales go to
 * sdst. Packs saturate to [-128, 127], max with -127 is the clamp. Returns 0
 * when some row's scale is 0 (the caller redoes those rows one by one). */
static inline int bn_head_q8_block8(const uint16_t *rows, int K, uint8_t *wdst, size_t wstride, uint8_t *sdst) {
    __m256i v[8];
    for (int r = 0; r < 8; r++) {
        const uint16_t *w = rows + (size_t)r * K;
        __m256 mx = bn_abs_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w)));
        for (int i = 1; i < 4; i++)
            mx = _mm256_max_ps(mx, bn_abs_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 8 * i)))));
        v[r] = _mm256_castps_si256(mx);
    }
    bn_transpose8x8_epi32(v);
    __m256 amax = _mm256_castsi256_ps(v[0]);
    for (int j = 1; j < 8; j++) amax = _mm256_max_ps(amax, _mm256_castsi256_ps(v[j]));
    const __m128i dh = _mm256_cvtps_ph(_mm256_div_ps(amax, _mm256_set1_ps(127.0f)), _MM_FROUND_TO_NEAREST_INT);
    const __m256 d = _mm256_cvtph_ps(dh);
    if (_mm256_movemask_ps(_mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ))) return 0;
    const __m256i m127 = _mm256_set1_epi8(-127);
    for (int r = 0; r < 8; r++) {
        const uint16_t *w = rows + (size_t)r * K;
        const __m256 vd = _mm256_permutevar8x32_ps(d, _mm256_set1_epi32(r));
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 8 * i))), vd));
        v[r] = _mm256_max_epi8(bn_pack_epi32_epi8(q[0], q[1], q[2], q[3]), m127);
    }
    bn_transpose8x8_epi32(v);
    for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)(wdst + wstride * j), v[j]);
    _mm_storeu_si128((__m128i *)sdst, dh);
    return 1;
}

#endif
