/* The Q8 LM head (kernels.h, numerics and layout) for AVX-512, tile height
 * 16: the record bn_avx512_fmt_q8_head. */
#include "x86_common.h"

#ifdef BN_X86_AVX512
#include "head_q8_x86.h"

/* A tile block (16 rows x 32 k) is 8 vectors of 64 bytes, vector j holding
 * k = 4j..4j+3 of row r in int32 lane r: vpdpbusd against a broadcast of 4
 * activations gives 16 rows' partial sums with no horizontal work. vpdpbusd
 * wants unsigned x signed: w ^ 0x80 = w + 128 as unsigned, so
 * Σ (w+128)·x − 128·Σx = Σ w·x, exact in int32. */

/* Software prefetch distance in bytes: measured on the head stream (349 MB,
 * 1 thread, shared 2-core Zen 5): none 5-8 GB/s, 1 KB 5-9, 2 KB 8-11,
 * 4 KB 9-13, 8 KB 9-12. The hardware prefetchers alone do not run far
 * enough ahead of a stream this dense in instructions. */
enum { HEAD_PF = 4096 };
enum { HR = 16 };

static size_t head_size(int K, int M) {
    return bn_head_q8_size_tiled(HR, K, M);
}

/* One block of 32 f16 weights: the rule of bn_q8_block_quantize (division
 * and cvtps_epi32 round exactly as its scalar float code does). */
static inline uint16_t head_block(const uint16_t *w, int8_t q[32]) {
    const __m512 f0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)w));
    const __m512 f1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 16)));
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(f0), _mm512_abs_ps(f1)));
    const uint16_t dh = bn_f32_to_f16(amax / 127.0f);
    const float d = bn_f16_to_f32(dh);
    if (d == 0.0f) {
        memset(q, 0, 32);
        return 0;
    }
    const __m512 vd = _mm512_set1_ps(d);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    __m512i i0 = _mm512_cvtps_epi32(_mm512_div_ps(f0, vd)), i1 = _mm512_cvtps_epi32(_mm512_div_ps(f1, vd));
    i0 = _mm512_min_epi32(_mm512_max_epi32(i0, lo), hi);
    i1 = _mm512_min_epi32(_mm512_max_epi32(i1, lo), hi);
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
    return dh;
}

/* One row's block the slow way (tile rows only partly in range, zero
 * scales): 8 groups of 4 bytes, 64 bytes apart. */
static void head_row_block(const uint16_t *w, uint8_t *tile, int K, int r, int b) {
    int8_t q[32];
    const uint16_t dh = w ? head_block(w, q) : 0;
    if (!w) memset(q, 0, sizeof q);
    uint8_t *blk = tile + (size_t)32 * HR * b + 4 * r;
    for (int j = 0; j < 8; j++) memcpy(blk + 4 * HR * j, q + 4 * j, 4);
    memcpy(tile + (size_t)HR * K + 2 * ((size_t)HR * b + r), &dh, 2);
}

/* Whole tiles (16 rows) a block at a time, as two halves of 8 rows
 * (bn_head_q8_block8: rows 0-7 fill bytes 0-31 of each 64-byte group, rows
 * 8-15 bytes 32-63); other rows one at a time, so split calls never touch
 * rows outside their range. */
static void head_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
    uint8_t *out = dst;
    const size_t tb = (size_t)HR * K / 16 * 17;
    const int end = m1 == M ? (M + HR - 1) / HR * HR : m1;
    for (int m = m0; m < end;) {
        uint8_t *tile = out + (size_t)(m / HR) * tb;
        if (m % HR == 0 && m + HR <= end && m + HR <= M) {
            const uint16_t *rows = W + (size_t)m * K;
            uint8_t *sc = tile + (size_t)HR * K;
            for (int b = 0; b < K / 32; b++)
                for (int h = 0; h < 2; h++) {
                    const uint16_t *hr = rows + (size_t)8 * h * K + 32 * b;
                    if (bn_head_q8_block8(hr, K, tile + 512 * (size_t)b + 32 * h, 64, sc + 32 * (size_t)b + 16 * h))
                        continue;
                    for (int r = 0; r < 8; r++) head_row_block(hr + (size_t)r * K, tile, K, 8 * h + r, b);
                }
            m += HR;
            continue;
        }
        for (int b = 0; b < K / 32; b++)
            head_row_block(m < M ? W + (size_t)m * K + 32 * b : NULL, tile, K, m % HR, b);
        m++;
    }
}

static void act_q8_quantize(const float *x, int K, void *xq) {
    int8_t *q = xq;
    uint8_t *tail = (uint8_t *)xq + K;
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int b = 0; b < K / 32; b++) {
        const __m512 f0 = _mm512_loadu_ps(x + 32 * b), f1 = _mm512_loadu_ps(x + 32 * b + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(f0), _mm512_abs_ps(f1)));
        const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        const __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(f0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(f1, vid));
        i0 = _mm512_min_epi32(_mm512_max_epi32(i0, lo), hi);
        i1 = _mm512_min_epi32(_mm512_max_epi32(i1, lo), hi);
        _mm_storeu_si128((__m128i *)(q + 32 * b), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(q + 32 * b + 16), _mm512_cvtepi32_epi8(i1));
        const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        memcpy(tail + 4 * b, &d, 4);
        memcpy(tail + 4 * (K / 32) + 4 * b, &sum, 4);
    }
}

static void gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
    const uint8_t *w = Wq, *qx = xq, *tail = (const uint8_t *)xq + K;
    const size_t tb = (size_t)HR * K / 16 * 17;
    const int nb = K / 32;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    for (int t = m0 / HR; t * HR < m1; t++) {
        const uint8_t *wt = w + (size_t)t * tb;
        const uint8_t *sc = wt + (size_t)HR * K;
        __m512 acc = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *wb = wt + 512 * b, *xb = qx + 32 * b;
            for (int l = 0; l < 512; l += 64) _mm_prefetch((const char *)(wb + HEAD_PF + l), _MM_HINT_T0);
            __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
            for (int j = 0; j < 8; j += 2) {
                s0 = _mm512_dpbusd_epi32(s0, _mm512_xor_si512(_mm512_loadu_si512(wb + 64 * j), flip),
                                         bn_bcast4_epi32(xb + 4 * j));
                s1 = _mm512_dpbusd_epi32(s1, _mm512_xor_si512(_mm512_loadu_si512(wb + 64 * j + 64), flip),
                                         bn_bcast4_epi32(xb + 4 * j + 4));
            }
            int32_t xs;
            float dx;
            memcpy(&dx, tail + 4 * b, 4);
            memcpy(&xs, tail + 4 * nb + 4 * b, 4);
            const __m512i isum = _mm512_sub_epi32(_mm512_add_epi32(s0, s1), _mm512_set1_epi32(128 * xs));
            const __m512 scale = _mm512_mul_ps(
                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc + 32 * b))), _mm512_set1_ps(dx));
            acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_cvtepi32_ps(isum), scale));
        }
        const int r0 = t * HR;
        if (r0 >= m0 && r0 + HR <= m1) {
            _mm512_storeu_ps(y + (r0 - m0), acc);
        } else {
            float tmp[HR];
            _mm512_storeu_ps(tmp, acc);
            for (int r = 0; r < HR; r++)
                if (r0 + r >= m0 && r0 + r < m1) y[r0 + r - m0] = tmp[r];
        }
    }
}

/* Several tokens against one tile: each weight vector is loaded and
 * flipped once for NT tokens. Per token the block sums are exact integers
 * and the float steps are the gemv's (scale = dw · dx, acc = acc +
 * (float)isum · scale, block by block in order): bit for bit the gemv's.
 * NT is a constant at each call (the switch in gemm_head_q8), so the
 * per-token arrays live in registers. */
enum { GEMM_NT = 4 };

static inline __attribute__((always_inline)) void tile_tokens(const uint8_t *wt, int K, const uint8_t *xq,
                                                              size_t xstride, int NT, int prefetch,
                                                              __m512 acc[GEMM_NT]) {
    const uint8_t *sc = wt + (size_t)HR * K;
    const int nb = K / 32;
    const __m512i flip = _mm512_set1_epi8((char)0x80);
#pragma GCC unroll 4
    for (int n = 0; n < NT; n++) acc[n] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = wt + 512 * b;
        if (prefetch)
            for (int l = 0; l < 512; l += 64) _mm_prefetch((const char *)(wb + HEAD_PF + l), _MM_HINT_T0);
        __m512i s[GEMM_NT];
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++) s[n] = _mm512_setzero_si512();
        for (int j = 0; j < 8; j++) {
            const __m512i w = _mm512_xor_si512(_mm512_loadu_si512(wb + 64 * j), flip);
#pragma GCC unroll 4
            for (int n = 0; n < NT; n++)
                s[n] = _mm512_dpbusd_epi32(s[n], w, bn_bcast4_epi32(xq + (size_t)n * xstride + 32 * b + 4 * j));
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sc + 32 * b)));
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++) {
            const uint8_t *tail = xq + (size_t)n * xstride + K;
            int32_t xs;
            float dx;
            memcpy(&dx, tail + 4 * b, 4);
            memcpy(&xs, tail + 4 * nb + 4 * b, 4);
            const __m512i isum = _mm512_sub_epi32(s[n], _mm512_set1_epi32(128 * xs));
            const __m512 scale = _mm512_mul_ps(dw, _mm512_set1_ps(dx));
            acc[n] = _mm512_add_ps(acc[n], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), scale));
        }
    }
}

/* Rows [m0, m1) of a tile's 16 floats (r0: its first row) into y. */
static inline void store_tile(__m512 acc, int r0, int m0, int m1, float *y) {
    if (r0 >= m0 && r0 + HR <= m1) {
        _mm512_storeu_ps(y + (r0 - m0), acc);
    } else {
        float tmp[HR];
        _mm512_storeu_ps(tmp, acc);
        for (int r = 0; r < HR; r++)
            if (r0 + r >= m0 && r0 + r < m1) y[r0 + r - m0] = tmp[r];
    }
}

/* A tile at a time (it stays in L1 while every token passes over it), the
 * tokens GEMM_NT at a time; the first group prefetches the next tiles. */
static void gemm_head_q8(const void *Wq, int K, const void *xq, size_t xstride, int N, int m0, int m1,
                         float *y, int ldy) {
    if (N == 1) {               /* decode: the gemv's two chains per block are faster */
        gemv_head_q8(Wq, K, xq, m0, m1, y);
        return;
    }
    const uint8_t *w = Wq, *x = xq;
    const size_t tb = (size_t)HR * K / 16 * 17;
    for (int t = m0 / HR; t * HR < m1; t++) {
        const uint8_t *wt = w + (size_t)t * tb;
        for (int n0 = 0; n0 < N; n0 += GEMM_NT) {
            const uint8_t *xn = x + (size_t)n0 * xstride;
            const int nt = N - n0 < GEMM_NT ? N - n0 : GEMM_NT, pf = n0 == 0;
            __m512 acc[GEMM_NT];
            switch (nt) {
            case 1: tile_tokens(wt, K, xn, xstride, 1, pf, acc); break;
            case 2: tile_tokens(wt, K, xn, xstride, 2, pf, acc); break;
            case 3: tile_tokens(wt, K, xn, xstride, 3, pf, acc); break;
            default: tile_tokens(wt, K, xn, xstride, 4, pf, acc); break;
            }
            for (int n = 0; n < nt; n++) store_tile(acc[n], t * HR, m0, m1, y + (size_t)(n0 + n) * (size_t)ldy);
        }
    }
}

BN_EXPORT_Q8_HEAD_FORMAT_GEMM(bn_avx512, HR, head_size, head_quantize, act_q8_quantize, gemv_head_q8,
                              gemm_head_q8);

#endif
