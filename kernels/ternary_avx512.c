/* AVX-512 kernels (F/BW/VL/DQ + VNNI + VBMI; selected only when the CPU and
 * the OS support all of them). Ternary matmuls are multiply-add, not lookup
 * tables: vpdpbusd multiplies 64 unsigned codes (0..2) by signed int8
 * activations and adds groups of 4 straight into int32 lanes, which no
 * vpshufb/vpermb table path can match in work per instruction when every
 * table entry needs 16 bits to stay exact. Σ code·q − Σq is the exact dot.
 *
 * Layout: rows in tiles of 32 (the last tile padded with code 1 = weight 0),
 * each tile K/16 chunks of 128 bytes; chunk c (k = 16c..16c+15) holds two
 * 64-byte halves h = 0, 1 (rows 16h..16h+15), and in a half byte 4r + b has
 * at bits 2j+1..2j the code of row r, k = 16c + 4j + b. So (half >> 2j) & 3
 * is a vector whose int32 lane r holds row r's codes for k = 16c+4j..+3, the
 * operand vpdpbusd wants against one broadcast int32 of 4 activations: rows
 * land in lanes, no horizontal sums. 2 bits per weight, one stream per tile. */
#include "format_records.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
#include <string.h>

#include "head_q8_x86.h"

/* ---- activations (SPEC 4.5 steps 1-4), bit-exact with ternary_ref.c -------- */

static float avx512_quantize_act(const float *x, int K, int8_t *q, int32_t *sum) {
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < K; i += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    /* max in float is exact; the floor comparison in double equals the
     * reference's double loop. */
    double amax = 1e-5, m = (double)_mm512_reduce_max_ps(mx);
    if (m > amax) amax = m;
    const float s = (float)(127.0 / amax);
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

static void avx512_f16_to_f32(const uint16_t *src, float *dst, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    for (; i < n; i++) dst[i] = bn_f16_to_f32(src[i]);
}

static void avx512_f32_to_f16(const float *src, uint16_t *dst, int n) {
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
static float avx512_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
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
static float avx512_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n) {
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

static void avx512_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y) {
    for (int m = m0; m < m1; m++) y[m - m0] = avx512_dot_f16(W + (size_t)m * (size_t)K, x, K);
}

/* ---- ternary ------------------------------------------------------------------------ */

enum { TILE = 32, MAX_TOK = 8 };

static size_t v_packed_size(int K, int M) {
    return (size_t)(M + TILE - 1) / TILE * (size_t)K * TILE / 4;
}

/* The 128 codes of one I2_S block (32 bytes), code 3 already read as 1, as
 * four vectors of bytes 0..2: c[g] holds k = 32g..32g+31 of the block. */
static inline void i2s_block_codes(const uint8_t *blk, __m256i c[4]) {
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256i x = _mm256_loadu_si256((const __m256i *)blk);
    /* Low bit of every field that reads 3, then clear that field's high bit
     * (16-bit shifts: the 0x55 mask drops the bits that cross bytes). */
    const __m256i both = _mm256_and_si256(_mm256_and_si256(x, _mm256_srli_epi16(x, 1)),
                                          _mm256_set1_epi8(0x55));
    x = _mm256_andnot_si256(_mm256_slli_epi16(both, 1), x);
    c[0] = _mm256_and_si256(_mm256_srli_epi16(x, 6), m3);
    c[1] = _mm256_and_si256(_mm256_srli_epi16(x, 4), m3);
    c[2] = _mm256_and_si256(_mm256_srli_epi16(x, 2), m3);
    c[3] = _mm256_and_si256(x, m3);
}

/* Repack, a whole I2_S block (128 weights = 8 chunks of 16 k) of a row at a
 * time. In c[g], the 16 bytes of chunk 2g (low lane) / 2g+1 (high lane) are
 * four int32 lanes j = 0..3 holding codes k = 4j+b in byte b, so the chunk's
 * packed int32 (byte b = Σ_j code(4j+b) << 2j) is Σ_j lane_j << 2j: a
 * per-lane shift, then three horizontal adds (the fields never overlap, so
 * add = or). The 8 words of a block land in the tile 128 bytes apart. */
static void v_repack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const size_t tile_bytes = (size_t)K * TILE / 4;
    const int mp = (M + TILE - 1) / TILE * TILE, nb = K / 128;
    const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    /* hadd order is chunks 0,2,4,6 | 1,3,5,7: put them back in order. */
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int m = 0; m < mp; m++) {
        uint8_t *dst = out + (size_t)(m / TILE) * tile_bytes + 64 * ((m % TILE) / 16) + 4 * (m % 16);
        if (m >= M) {           /* padding rows: code 1 (weight 0) everywhere */
            const uint32_t pad = 0x55555555u;
            for (int c = 0; c < K / 16; c++) memcpy(dst + 128 * c, &pad, 4);
            continue;
        }
        const uint8_t *row = i2s + (size_t)m * K / 4;
        for (int b = 0; b < nb; b++, dst += 1024) {
            __m256i c[4];
            i2s_block_codes(row + 32 * b, c);
            const __m256i h01 = _mm256_hadd_epi32(_mm256_sllv_epi32(c[0], sh), _mm256_sllv_epi32(c[1], sh));
            const __m256i h23 = _mm256_hadd_epi32(_mm256_sllv_epi32(c[2], sh), _mm256_sllv_epi32(c[3], sh));
            const __m256i wv = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(h01, h23), order);
            const __m128i lo = _mm256_castsi256_si128(wv), hi = _mm256_extracti128_si256(wv, 1);
            _mm_storeu_si32(dst, lo);
            _mm_storeu_si32(dst + 128, _mm_shuffle_epi32(lo, 1));
            _mm_storeu_si32(dst + 256, _mm_shuffle_epi32(lo, 2));
            _mm_storeu_si32(dst + 384, _mm_shuffle_epi32(lo, 3));
            _mm_storeu_si32(dst + 512, hi);
            _mm_storeu_si32(dst + 640, _mm_shuffle_epi32(hi, 1));
            _mm_storeu_si32(dst + 768, _mm_shuffle_epi32(hi, 2));
            _mm_storeu_si32(dst + 896, _mm_shuffle_epi32(hi, 3));
        }
    }
}

static size_t v_prep_size(int K) {
    return (size_t)K + 64;      /* q, then Σq; keeps tokens 64-byte aligned */
}

static void v_act_prep(const int8_t *q, int K, void *prep) {
    memcpy(prep, q, (size_t)K);
    __m512i acc = _mm512_setzero_si512();
    for (int i = 0; i < K; i += 16)
        acc = _mm512_add_epi32(acc, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i))));
    int32_t s = _mm512_reduce_add_epi32(acc);
    memcpy((uint8_t *)prep + K, &s, sizeof s);
}

static int32_t prep_sum(const uint8_t *prep, int K) {
    int32_t s;
    memcpy(&s, prep + K, sizeof s);
    return s;
}

static inline __m512i bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

static void store_rows(__m512i v, int m, int m0, int m1, int32_t *dot) {
    if (m + 16 <= m1) {
        _mm512_storeu_si512(dot + (m - m0), v);
    } else if (m < m1) {
        _mm512_mask_storeu_epi32(dot + (m - m0), (__mmask16)((1u << (m1 - m)) - 1), v);
    }
}

/* One 32-row tile against T tokens: the four code vectors of each half are
 * unpacked once per chunk and used by every token. |dot| <= 2·128·K fits
 * int32 for any K the engine sees, so there is no intermediate width.
 * Always inlined with a constant T and its loops unrolled: otherwise GCC -O2
 * keeps acc[][] on the stack and every vpdpbusd waits on a store-to-load
 * round trip (measured: 35-57 GMAC/s before, see v_gemm). */
static inline __attribute__((always_inline)) void
tile_tokens(const uint8_t *w, int K, const uint8_t *prep, size_t ps, const int T,
            int m, int m0, int m1, int32_t *dot, int ldd) {
    const __m512i mask = _mm512_set1_epi8(3);
    __m512i acc[2][MAX_TOK];
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[0][t] = acc[1][t] = _mm512_setzero_si512();
    for (int c = 0; c < K / 16; c++) {
        const __m512i p0 = _mm512_loadu_si512(w + 128 * c), p1 = _mm512_loadu_si512(w + 128 * c + 64);
        __m512i c0[4], c1[4];
        c0[0] = _mm512_and_si512(p0, mask);
        c1[0] = _mm512_and_si512(p1, mask);
        c0[1] = _mm512_and_si512(_mm512_srli_epi16(p0, 2), mask);
        c1[1] = _mm512_and_si512(_mm512_srli_epi16(p1, 2), mask);
        c0[2] = _mm512_and_si512(_mm512_srli_epi16(p0, 4), mask);
        c1[2] = _mm512_and_si512(_mm512_srli_epi16(p1, 4), mask);
        c0[3] = _mm512_and_si512(_mm512_srli_epi16(p0, 6), mask);
        c1[3] = _mm512_and_si512(_mm512_srli_epi16(p1, 6), mask);
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const __m512i a = bcast4(prep + t * ps + 16 * c + 4 * j);
                acc[0][t] = _mm512_dpbusd_epi32(acc[0][t], c0[j], a);
                acc[1][t] = _mm512_dpbusd_epi32(acc[1][t], c1[j], a);
            }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const __m512i s = _mm512_set1_epi32(prep_sum(prep + t * ps, K));
        store_rows(_mm512_sub_epi32(acc[0][t], s), m, m0, m1, dot + (size_t)t * ldd);
        store_rows(_mm512_sub_epi32(acc[1][t], s), m + 16, m0, m1, dot + (size_t)t * ldd);
    }
}

/* Tokens of one group (T <= 8) against the tiles [m0, m1). */
static void group_tiles(const uint8_t *w, size_t tb, int K, const uint8_t *pn, size_t ps, int T,
                        int mt0, int mt1, int m0, int m1, int32_t *dn, int ldd) {
    for (int m = mt0; m < mt1; m += TILE) {
        const uint8_t *wt = w + (size_t)(m / TILE) * tb;
        switch (T) {    /* constant T: accumulators stay in registers */
        case 1: tile_tokens(wt, K, pn, ps, 1, m, m0, m1, dn, ldd); break;
        case 2: tile_tokens(wt, K, pn, ps, 2, m, m0, m1, dn, ldd); break;
        case 3: tile_tokens(wt, K, pn, ps, 3, m, m0, m1, dn, ldd); break;
        case 4: tile_tokens(wt, K, pn, ps, 4, m, m0, m1, dn, ldd); break;
        case 5: tile_tokens(wt, K, pn, ps, 5, m, m0, m1, dn, ldd); break;
        case 6: tile_tokens(wt, K, pn, ps, 6, m, m0, m1, dn, ldd); break;
        case 7: tile_tokens(wt, K, pn, ps, 7, m, m0, m1, dn, ldd); break;
        default: tile_tokens(wt, K, pn, ps, 8, m, m0, m1, dn, ldd); break;
        }
    }
}

/* Cache blocking: a block of tokens whose activations fit in half of L2
 * (NB·K <= 512 KB) meets each group of GEMM_TILES tiles (<= 4·8·K bytes of
 * weights, L1/L2-resident) once; inside, groups of 8 tokens run over those
 * tiles. Weights are read from memory once per token block and activations
 * from L2 once per tile group, instead of the whole matrix once per 8 tokens. */
enum { GEMM_ACT_BYTES = 512 * 1024, GEMM_TILES = 4 };

static void v_gemm(const void *packed, int K, int M, const void *prep, int N,
                   int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    const uint8_t *w = packed;
    const size_t tb = (size_t)K * TILE / 4, ps = v_prep_size(K);
    const uint8_t *pp = prep;
    int NB = GEMM_ACT_BYTES / K / MAX_TOK * MAX_TOK;
    if (NB < MAX_TOK) NB = MAX_TOK;
    for (int nb = 0; nb < N; nb += NB) {
        const int ne = N - nb < NB ? N : nb + NB;
        for (int mt = m0; mt < m1; mt += GEMM_TILES * TILE) {
            const int mte = mt + GEMM_TILES * TILE < m1 ? mt + GEMM_TILES * TILE : m1;
            for (int n = nb; n < ne; n += MAX_TOK) {
                const int T = ne - n < MAX_TOK ? ne - n : MAX_TOK;
                group_tiles(w, tb, K, pp + n * ps, ps, T, mt, mte, m0, m1, dot + (size_t)n * ldd, ldd);
            }
        }
    }
}

/* One token. Each code field j gets its own accumulator and is masked in
 * place instead of shifted down: (p & (3 << 2j)) holds code·4^j, so
 * accumulator j sums 4^j·Σ code·q exactly (|·| <= 64·2·128·K < 2^31 for
 * K <= 8192) and an exact arithmetic shift by 2j recovers Σ code·q. That
 * is 8 AND + 8 vpdpbusd + 2 loads + 4 broadcasts per 128 weight bytes,
 * written out so the 8 accumulators stay in registers. Software prefetch
 * runs GEMV_PF bytes ahead in the (contiguous) tile stream. */
enum { GEMV_PF = 4096 };

static void v_gemv(const void *packed, int K, int M, const void *prep,
                   int m0, int m1, int32_t *dot) {
    (void)M;
    const uint8_t *w = packed, *q = prep;
    const size_t tb = (size_t)K * TILE / 4;
    const __m512i k0 = _mm512_set1_epi8(0x03), k1 = _mm512_set1_epi8(0x0c);
    const __m512i k2 = _mm512_set1_epi8(0x30), k3 = _mm512_set1_epi8((char)0xc0);
    const __m512i s = _mm512_set1_epi32(prep_sum(q, K));
    for (int m = m0; m < m1; m += TILE) {
        const uint8_t *wt = w + (size_t)(m / TILE) * tb;
        __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00;
        __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        for (int c = 0; c < K / 16; c++) {
            const uint8_t *wc = wt + 128 * c, *qc = q + 16 * c;
            _mm_prefetch((const char *)(wc + GEMV_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(wc + GEMV_PF + 64), _MM_HINT_T0);
            const __m512i p0 = _mm512_loadu_si512(wc), p1 = _mm512_loadu_si512(wc + 64);
            const __m512i x0 = bcast4(qc), x1 = bcast4(qc + 4), x2 = bcast4(qc + 8), x3 = bcast4(qc + 12);
            a00 = _mm512_dpbusd_epi32(a00, _mm512_and_si512(p0, k0), x0);
            a10 = _mm512_dpbusd_epi32(a10, _mm512_and_si512(p1, k0), x0);
            a01 = _mm512_dpbusd_epi32(a01, _mm512_and_si512(p0, k1), x1);
            a11 = _mm512_dpbusd_epi32(a11, _mm512_and_si512(p1, k1), x1);
            a02 = _mm512_dpbusd_epi32(a02, _mm512_and_si512(p0, k2), x2);
            a12 = _mm512_dpbusd_epi32(a12, _mm512_and_si512(p1, k2), x2);
            a03 = _mm512_dpbusd_epi32(a03, _mm512_and_si512(p0, k3), x3);
            a13 = _mm512_dpbusd_epi32(a13, _mm512_and_si512(p1, k3), x3);
        }
        __m512i r0 = _mm512_add_epi32(_mm512_add_epi32(a00, _mm512_srai_epi32(a01, 2)),
                                      _mm512_add_epi32(_mm512_srai_epi32(a02, 4), _mm512_srai_epi32(a03, 6)));
        __m512i r1 = _mm512_add_epi32(_mm512_add_epi32(a10, _mm512_srai_epi32(a11, 2)),
                                      _mm512_add_epi32(_mm512_srai_epi32(a12, 4), _mm512_srai_epi32(a13, 6)));
        store_rows(_mm512_sub_epi32(r0, s), m, m0, m1, dot);
        store_rows(_mm512_sub_epi32(r1, s), m + 16, m0, m1, dot);
    }
}

/* ---- Q8 head (kernels.h), tile height 16 ------------------------------------------
 * A tile block (16 rows x 32 k) is 8 vectors of 64 bytes, vector j holding
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

static size_t v_head_size(int K, int M) {
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
static void v_head_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
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

static void v_act_q8_quantize(const float *x, int K, void *xq) {
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

static void v_gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
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
                                         bcast4(xb + 4 * j));
                s1 = _mm512_dpbusd_epi32(s1, _mm512_xor_si512(_mm512_loadu_si512(wb + 64 * j + 64), flip),
                                         bcast4(xb + 4 * j + 4));
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

BN_DEFINE_TERNARY_FORMAT(avx512, "i2s-avx512-vnni", TILE, v_packed_size, v_repack, v_prep_size,
                         v_act_prep, v_gemv, v_gemm);
BN_DEFINE_F16_FORMATS(avx512, avx512_f32_to_f16, avx512_gemv_f16, avx512_dot_f32_f16_fma16);
BN_DEFINE_Q8_HEAD_FORMAT(avx512, HR, v_head_size, v_head_quantize, v_act_q8_quantize,
                         v_gemv_head_q8);

static const bn_kernels avx512_kernels = {
    .name = "avx512",
    .quantize_act = avx512_quantize_act,
    .f16_to_f32 = avx512_f16_to_f32,
    .f32_to_f16 = avx512_f32_to_f16,
    .dot_f16 = avx512_dot_f16,
    .gemv_f16 = avx512_gemv_f16,
    .dot_f32_f16_fma16 = avx512_dot_f32_f16_fma16,
    .fmt = {
        [BN_FMT_TERNARY] = &avx512_fmt_ternary,
        [BN_FMT_F16] = &avx512_fmt_f16,
        [BN_FMT_F16_TINYBLAS] = &avx512_fmt_f16_tinyblas,
        [BN_FMT_Q8_HEAD] = &avx512_fmt_q8_head,
    },
    .attn_qk = bn_attn_qk_avx2,
    .attn_softmax = bn_attn_softmax_avx2,
    .attn_pv = bn_attn_pv_avx2,
};

const bn_kernels *bn_kernels_avx512(void) {
    return &avx512_kernels;
}

#else

const bn_kernels *bn_kernels_avx512(void) {
    return NULL;
}

#endif
