/* The Q8_0 head's dot products (format_ggml.c) with AVX2 + FMA, for the x86
 * variants' tables: the shape of ggml's own AVX2 kernel, so the same
 * integers, the same fused multiply-adds lane by lane and the same
 * horizontal sum, hence the same bits as the plain C record (tests compare
 * them exactly). bitnet_b1_58-3B's 109 MB Q8_0 head is the reason. */
#include "format_records.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#include <string.h>

#define Q8_0_BYTES 34

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
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
    /* hsum8 of format_ggml.c: high half + low half, then (0+2) + (1+3) */
    __m128 r = _mm_add_ps(_mm256_extractf128_ps(acc, 1), _mm256_castps256_ps128(acc));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

static void gemv(const void *W, int K, int M, const void *act, int m0, int m1, void *y) {
    (void)M;
    const size_t row = (size_t)(K / 32) * Q8_0_BYTES;
    for (int m = m0; m < m1; m++)
        ((float *)y)[m - m0] = dot((const uint8_t *)W + (size_t)m * row, act, K / 32);
}

static void gemm(const void *W, int K, int M, const void *act, int N, int m0, int m1, void *y,
                 int ldy) {
    bn_gemm_by_row_tiles(gemv, bn_q8_0_act_size(K), BN_FLOAT_GEMM_ROWS, W, K, M, act, N, m0, m1,
                         y, ldy);
}

const bn_format_traits bn_fmt_q8_0_avx2 = {
    .name = "q8_0", .out_int32 = 0, .tile_rows = BN_FLOAT_GEMM_ROWS,
    .act_size = bn_q8_0_act_size, .act_prep = bn_q8_0_act_prep,
    .gemv = gemv, .gemm = gemm,
};

#endif
