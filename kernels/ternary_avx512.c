/* The AVX-512 ternary kernels (record bn_avx512_fmt_ternary; AVX-512
 * F/BW/VL/DQ + VNNI + VBMI, selected only when the CPU and the OS support
 * all of them). Multiply-add, not lookup tables: vpdpbusd multiplies 64
 * unsigned codes (0..2) by signed int8 activations and adds groups of 4
 * straight into int32 lanes, which no vpshufb/vpermb table path can match
 * in work per instruction when every table entry needs 16 bits to stay
 * exact. Σ code·q − Σq is the exact dot.
 *
 * Layout: rows in tiles of 32 (the last tile padded with code 1 = weight 0),
 * each tile K/16 chunks of 128 bytes; chunk c (k = 16c..16c+15) holds two
 * 64-byte halves h = 0, 1 (rows 16h..16h+15), and in a half byte 4r + b has
 * at bits 2j+1..2j the code of row r, k = 16c + 4j + b. So (half >> 2j) & 3
 * is a vector whose int32 lane r holds row r's codes for k = 16c+4j..+3, the
 * operand vpdpbusd wants against one broadcast int32 of 4 activations: rows
 * land in lanes, no horizontal sums. 2 bits per weight, one stream per tile. */
#include "x86_common.h"

#ifdef BN_X86_AVX512

enum { TILE = 32, MAX_TOK = 8 };

static size_t v_packed_size(int K, int M) {
    return (size_t)(M + TILE - 1) / TILE * (size_t)K * TILE / 4;
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
            bn_i2s_block_codes(row + 32 * b, c);
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

/* The prepared input: q, then Σ q at byte K (bn_x86_mad_prep_size). */
static void v_act_prep(const int8_t *q, int K, void *prep) {
    memcpy(prep, q, (size_t)K);
    __m512i acc = _mm512_setzero_si512();
    for (int i = 0; i < K; i += 16)
        acc = _mm512_add_epi32(acc, _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i))));
    int32_t s = _mm512_reduce_add_epi32(acc);
    memcpy((uint8_t *)prep + K, &s, sizeof s);
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
                const __m512i a = bn_bcast4_epi32(prep + t * ps + 16 * c + 4 * j);
                acc[0][t] = _mm512_dpbusd_epi32(acc[0][t], c0[j], a);
                acc[1][t] = _mm512_dpbusd_epi32(acc[1][t], c1[j], a);
            }
    }
#pragma GCC unroll 8
    for (int t = 0; t < T; t++) {
        const __m512i s = _mm512_set1_epi32(bn_x86_mad_prep_sum(prep + t * ps, K));
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
    const size_t tb = (size_t)K * TILE / 4, ps = bn_x86_mad_prep_size(K);
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
    const __m512i s = _mm512_set1_epi32(bn_x86_mad_prep_sum(q, K));
    for (int m = m0; m < m1; m += TILE) {
        const uint8_t *wt = w + (size_t)(m / TILE) * tb;
        __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00;
        __m512i a10 = a00, a11 = a00, a12 = a00, a13 = a00;
        for (int c = 0; c < K / 16; c++) {
            const uint8_t *wc = wt + 128 * c, *qc = q + 16 * c;
            _mm_prefetch((const char *)(wc + GEMV_PF), _MM_HINT_T0);
            _mm_prefetch((const char *)(wc + GEMV_PF + 64), _MM_HINT_T0);
            const __m512i p0 = _mm512_loadu_si512(wc), p1 = _mm512_loadu_si512(wc + 64);
            const __m512i x0 = bn_bcast4_epi32(qc), x1 = bn_bcast4_epi32(qc + 4), x2 = bn_bcast4_epi32(qc + 8), x3 = bn_bcast4_epi32(qc + 12);
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

BN_EXPORT_TERNARY_FORMAT(bn_avx512, "i2s-avx512-vnni", TILE, v_packed_size, v_repack,
                         bn_x86_mad_prep_size, v_act_prep, v_gemv, v_gemm);

#endif
