/* The Q8 LM head (kernels.h, numerics and layout) for AVX2, tile height 8:
 * the record bn_avx2_fmt_q8_head, shared by the three AVX2 tables. */
#include <math.h>

#include "x86_common.h"

#ifdef BN_X86_AVX2
#include "head_q8_x86.h"

/* A tile block (8 rows x 32 k) is 8 vectors of 32 bytes, vector j holding
 * k = 4j..4j+3 of row r in int32 lane r. vpmaddubsw(|w|, sign(x, w)) gives
 * exact int16 pairs (|w|, |x| <= 127: 2·127² < 2^15) and vpmaddwd with ones
 * their int32 sums per row: no horizontal work, exact block sums. */

/* Software prefetch distance in bytes: measured on the head stream (349 MB,
 * 1 thread, shared 2-core Zen 5): none 5-8 GB/s, 1 KB 5-9, 2 KB 8-11,
 * 4 KB 9-13, 8 KB 9-12. The hardware prefetchers alone do not run far
 * enough ahead of a stream this dense in instructions. */
enum { HEAD_PF = 4096 };
enum { HR = 8 };

static size_t head_size(int K, int M) {
    return bn_head_q8_size_tiled(HR, K, M);
}

static inline __m256i clamp127(__m256i v) {
    return _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
}

/* bn_q8_block_quantize with F16C (vcvtps2ph/vcvtph2ps are what
 * bn_f32_to_f16/bn_f16_to_f32 reproduce): the same float operations, so the
 * same q, returned as 32 int8 in order; *dh gets the scale. */
static inline __m256i head_block(const uint16_t *w, uint16_t *dh) {
    __m256 f[4];
    for (int i = 0; i < 4; i++) f[i] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 8 * i)));
    const float amax = bn_hmax_ps(_mm256_max_ps(_mm256_max_ps(bn_abs_ps(f[0]), bn_abs_ps(f[1])),
                                                _mm256_max_ps(bn_abs_ps(f[2]), bn_abs_ps(f[3]))));
    const __m128i h = _mm_cvtps_ph(_mm_set_ss(amax / 127.0f), _MM_FROUND_TO_NEAREST_INT);
    const float d = _mm_cvtss_f32(_mm_cvtph_ps(h));
    if (d == 0.0f) {
        *dh = 0;
        return _mm256_setzero_si256();
    }
    *dh = (uint16_t)_mm_extract_epi16(h, 0);
    const __m256 vd = _mm256_set1_ps(d);
    __m256i v[4];
    for (int i = 0; i < 4; i++) v[i] = clamp127(_mm256_cvtps_epi32(_mm256_div_ps(f[i], vd)));
    return bn_pack_epi32_epi8(v[0], v[1], v[2], v[3]);
}

/* Whole tiles (8 rows) a block at a time (bn_head_q8_block8); rows of a tile
 * only partly inside [m0, end), and blocks with a zero scale, go one row at
 * a time, so split calls never touch other rows. */
static void head_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
    uint8_t *out = dst;
    const size_t tb = (size_t)HR * K / 16 * 17;
    const int end = m1 == M ? (M + HR - 1) / HR * HR : m1;
    for (int m = m0; m < end;) {
        uint8_t *tile = out + (size_t)(m / HR) * tb;
        uint8_t *sc = tile + (size_t)HR * K;
        if (m % HR == 0 && m + HR <= end && m + HR <= M) {
            const uint16_t *rows = W + (size_t)m * K;
            for (int b = 0; b < K / 32; b++) {
                if (bn_head_q8_block8(rows + 32 * b, K, tile + 256 * (size_t)b, 32, sc + 2 * HR * (size_t)b)) continue;
                for (int r = 0; r < HR; r++) {
                    uint16_t dh;
                    int8_t q[32];
                    _mm256_storeu_si256((__m256i *)q, head_block(rows + (size_t)r * K + 32 * b, &dh));
                    for (int j = 0; j < 8; j++) memcpy(tile + 256 * (size_t)b + 32 * j + 4 * r, q + 4 * j, 4);
                    memcpy(sc + 2 * (HR * (size_t)b + r), &dh, 2);
                }
            }
            m += HR;
            continue;
        }
        const int r = m % HR;
        for (int b = 0; b < K / 32; b++) {
            int8_t q[32];
            uint16_t dh = 0;
            if (m < M) _mm256_storeu_si256((__m256i *)q, head_block(W + (size_t)m * K + 32 * b, &dh));
            else memset(q, 0, sizeof q);
            uint8_t *blk = tile + (size_t)32 * HR * b + 4 * r;
            for (int j = 0; j < 8; j++) memcpy(blk + 4 * HR * j, q + 4 * j, 4);
            memcpy(sc + 2 * ((size_t)HR * b + r), &dh, 2);
        }
        m++;
    }
}

static void act_q8_quantize(const float *x, int K, void *xq) {
    int8_t *q = xq;
    uint8_t *tail = (uint8_t *)xq + K;
    for (int b = 0; b < K / 32; b++) {
        __m256 f[4];
        for (int i = 0; i < 4; i++) f[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
        const float amax = bn_hmax_ps(_mm256_max_ps(_mm256_max_ps(bn_abs_ps(f[0]), bn_abs_ps(f[1])),
                                                    _mm256_max_ps(bn_abs_ps(f[2]), bn_abs_ps(f[3]))));
        const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i v[4];
        for (int i = 0; i < 4; i++) v[i] = clamp127(_mm256_cvtps_epi32(_mm256_mul_ps(f[i], vid)));
        _mm256_storeu_si256((__m256i *)(q + 32 * b), bn_pack_epi32_epi8(v[0], v[1], v[2], v[3]));
        const int32_t sum = bn_hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3])));
        memcpy(tail + 4 * b, &d, 4);
        memcpy(tail + 4 * (K / 32) + 4 * b, &sum, 4);
    }
}

static void gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
    const uint8_t *w = Wq, *qx = xq, *tail = (const uint8_t *)xq + K;
    const size_t tb = (size_t)HR * K / 16 * 17;
    const int nb = K / 32;
    const __m256i ones = _mm256_set1_epi16(1);
    for (int t = m0 / HR; t * HR < m1; t++) {
        const uint8_t *wt = w + (size_t)t * tb;
        const uint8_t *sc = wt + (size_t)HR * K;
        __m256 acc = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *wb = wt + 256 * b, *xb = qx + 32 * b;
            for (int l = 0; l < 256; l += 64) _mm_prefetch((const char *)(wb + HEAD_PF + l), _MM_HINT_T0);
            __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
            for (int j = 0; j < 8; j += 2) {
                int32_t x0, x1;
                memcpy(&x0, xb + 4 * j, 4);
                memcpy(&x1, xb + 4 * j + 4, 4);
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)(wb + 32 * j));
                const __m256i w1 = _mm256_loadu_si256((const __m256i *)(wb + 32 * j + 32));
                const __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(w0), _mm256_sign_epi8(_mm256_set1_epi32(x0), w0));
                const __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(w1), _mm256_sign_epi8(_mm256_set1_epi32(x1), w1));
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
            }
            float dx;
            memcpy(&dx, tail + 4 * b, 4);
            const __m256 scale = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + 16 * b))),
                                               _mm256_set1_ps(dx));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), scale));
        }
        const int r0 = t * HR;
        if (r0 >= m0 && r0 + HR <= m1) {
            _mm256_storeu_ps(y + (r0 - m0), acc);
        } else {
            float tmp[HR];
            _mm256_storeu_ps(tmp, acc);
            for (int r = 0; r < HR; r++)
                if (r0 + r >= m0 && r0 + r < m1) y[r0 + r - m0] = tmp[r];
        }
    }
}

/* Several tokens against one tile: each weight vector is loaded and its
 * |w| taken once for NT tokens (the gemv redoes both per token). Per token
 * the block sums are exact integers and the float steps are the gemv's:
 * scale = dw · dx, acc = acc + (float)isum · scale, block by block in
 * order, so every float is the gemv's bit for bit. NT is a constant at
 * each call (the switch in gemm_head_q8), so the per-token arrays below
 * live in registers. */
enum { GEMM_NT = 4 };

static inline __attribute__((always_inline)) void tile_tokens(const uint8_t *wt, int K, const uint8_t *xq,
                                                              size_t xstride, int NT, int prefetch,
                                                              __m256 acc[GEMM_NT]) {
    const uint8_t *sc = wt + (size_t)HR * K;
    const int nb = K / 32;
    const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
    for (int n = 0; n < NT; n++) acc[n] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *wb = wt + 256 * b;
        if (prefetch)
            for (int l = 0; l < 256; l += 64) _mm_prefetch((const char *)(wb + HEAD_PF + l), _MM_HINT_T0);
        __m256i s[GEMM_NT];
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++) s[n] = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const __m256i w = _mm256_loadu_si256((const __m256i *)(wb + 32 * j));
            const __m256i aw = _mm256_abs_epi8(w);
#pragma GCC unroll 4
            for (int n = 0; n < NT; n++) {
                int32_t x;
                memcpy(&x, xq + (size_t)n * xstride + 32 * b + 4 * j, 4);
                const __m256i p = _mm256_maddubs_epi16(aw, _mm256_sign_epi8(_mm256_set1_epi32(x), w));
                s[n] = _mm256_add_epi32(s[n], _mm256_madd_epi16(p, ones));
            }
        }
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(sc + 16 * b)));
#pragma GCC unroll 4
        for (int n = 0; n < NT; n++) {
            float dx;
            memcpy(&dx, xq + (size_t)n * xstride + K + 4 * b, 4);
            const __m256 scale = _mm256_mul_ps(dw, _mm256_set1_ps(dx));
            acc[n] = _mm256_add_ps(acc[n], _mm256_mul_ps(_mm256_cvtepi32_ps(s[n]), scale));
        }
    }
}

/* Rows [m0, m1) of a tile's 8 floats (r0: its first row) into y. */
static inline void store_tile(__m256 acc, int r0, int m0, int m1, float *y) {
    if (r0 >= m0 && r0 + HR <= m1) {
        _mm256_storeu_ps(y + (r0 - m0), acc);
    } else {
        float tmp[HR];
        _mm256_storeu_ps(tmp, acc);
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
            __m256 acc[GEMM_NT];
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

/* bn_head_q8_row_norms (head_q8.c) eight weights at a time: lanes 0-3 and
 * 4-7 of its eight double chains in two vectors, the same operations
 * (convert, q * dw, w - deq, squares, sums) on each lane in the same order,
 * so the same bits. F16C converts finite halves exactly, like the
 * definition; a row with an Inf or NaN weight gives Inf either way. Any
 * tile height R (the AVX-512 table's too). */
void bn_avx2_head_q8_row_norms(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                               double *deq2) {
    const size_t tile_bytes = (size_t)R * K / 16 * 17;
    const uint8_t *tile = (const uint8_t *)Wq + (size_t)(m / R) * tile_bytes;
    const int r = m % R;
    const __m128i exp_mask = _mm_set1_epi16(0x7c00);
    __m128i special = _mm_setzero_si128();
    __m256d e_lo = _mm256_setzero_pd(), e_hi = _mm256_setzero_pd();
    __m256d d_lo = _mm256_setzero_pd(), d_hi = _mm256_setzero_pd();
    for (int b = 0; b < K / 32; b++) {
        uint16_t dh;
        memcpy(&dh, tile + (size_t)R * K + 2 * ((size_t)R * b + r), 2);
        const __m256d dw = _mm256_set1_pd((double)_cvtsh_ss(dh));
        const uint8_t *qb = tile + (size_t)32 * R * b + (size_t)4 * r;   /* group g at + 4R g */
        for (int j = 0; j < 32; j += 8) {
            int32_t g0, g1;
            memcpy(&g0, qb + (size_t)R * j, 4);             /* k = j..j+3: group j/4 */
            memcpy(&g1, qb + (size_t)R * (j + 4), 4);
            const __m256i q32 = _mm256_cvtepi8_epi32(_mm_set_epi32(0, 0, g1, g0));
            const __m128i wh = _mm_loadu_si128((const __m128i *)(w + 32 * b + j));
            special = _mm_or_si128(special, _mm_cmpeq_epi16(_mm_and_si128(wh, exp_mask), exp_mask));
            const __m256 wf = _mm256_cvtph_ps(wh);
            const __m256d q_lo = _mm256_cvtepi32_pd(_mm256_castsi256_si128(q32));
            const __m256d q_hi = _mm256_cvtepi32_pd(_mm256_extracti128_si256(q32, 1));
            const __m256d deq_lo = _mm256_mul_pd(q_lo, dw), deq_hi = _mm256_mul_pd(q_hi, dw);
            const __m256d el = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(wf)), deq_lo);
            const __m256d eh = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(wf, 1)), deq_hi);
            e_lo = _mm256_add_pd(e_lo, _mm256_mul_pd(el, el));
            e_hi = _mm256_add_pd(e_hi, _mm256_mul_pd(eh, eh));
            d_lo = _mm256_add_pd(d_lo, _mm256_mul_pd(deq_lo, deq_lo));
            d_hi = _mm256_add_pd(d_hi, _mm256_mul_pd(deq_hi, deq_hi));
        }
    }
    double e[8], d[8];
    _mm256_storeu_pd(e, e_lo);
    _mm256_storeu_pd(e + 4, e_hi);
    _mm256_storeu_pd(d, d_lo);
    _mm256_storeu_pd(d + 4, d_hi);
    const int bad = !_mm_testz_si128(special, special);
    *err2 = bad ? (double)INFINITY : bn_head_q8_sum_lanes(e);
    *deq2 = bad ? (double)INFINITY : bn_head_q8_sum_lanes(d);
}

BN_EXPORT_Q8_HEAD_FORMAT_GEMM(bn_avx2, HR, head_size, head_quantize, act_q8_quantize, gemv_head_q8,
                              gemm_head_q8);

#endif
