/* The "avx2-tl" ternary kernels (record bn_avx2_tl_fmt_ternary): the
 * 1.67-bit t3 layout (ternary_tl.h; docs/FORMAT.md, T3 lookup layout),
 * vpshufb table lookups for one token, and for a batch the tile expanded
 * once to int8 codes for vpmaddubsw, which reads only q and Σ q of its
 * inputs (a batch is prepared without the tables). Pack transposes a
 * tile's I2_S blocks; it and the prepared input give exactly the bytes of
 * bn_t3_pack and bn_t3_act_prep_ref. */
#include "ternary_tl.h"
#include "x86_common.h"

#ifdef BN_X86_AVX2

/* An empty asm the value passes through: GCC then does not reassociate the
 * chain of additions into trees that need more registers than AVX2 has
 * (it spilled partial sums to the stack). */
static inline __m256i keep(__m256i v) {
    __asm__("" : "+x"(v));
    return v;
}

static inline __m256i ld(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* ---- the prepared input: q, Σ q, and a table per group ---------------------- */

/* q and Σ q: all that tl_gemm reads, and so a batch's whole preparation. */
static void tl_act_prep_batch(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    const size_t qb = bn_t3_q_bytes(K);
    memcpy(a, q, (size_t)K);
    memset(a + K, 0, bn_t3_table_offset(K) - (size_t)K);
    __m256i acc = _mm256_setzero_si256();
    for (size_t i = 0; i < qb; i += 32) {
        const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), ld(a + i));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s16, _mm256_set1_epi16(1)));
    }
    const int32_t sum = bn_hsum_epi32(acc);
    memcpy(a + qb, &sum, sizeof sum);
}

/* A group's 16 table entries in int16 lanes: T = w0·q0 + w1·q1 + w2·q2 with
 * the weights of index i (bn_t3_decode, sign +) as ±1/0 in W0, W1, W2
 * (vpsignw multiplies by them). H = round(T / 31) by vpmulhrsw with 1057:
 * (T·1057 + 2^14) >> 15 = floor(T·1057/32768 + 1/2), and T·1057/32768
 * differs from T/31 by |T|/1015808 <= 0.0004, while T/31 + 1/2 is never
 * closer than 1/62 to an integer (2T + 31 is odd): the same integer. */
static void tl_act_prep(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    tl_act_prep_batch(q, K, a);
    int16_t wv[3][16];
    for (int i = 0; i < 16; i++) {
        int w[3] = {0, 0, 0};
        if (i < 14) bn_t3_decode(i, 0, w);
        for (int j = 0; j < 3; j++) wv[j][i] = (int16_t)w[j];
    }
    const __m256i W0 = ld(wv[0]), W1 = ld(wv[1]), W2 = ld(wv[2]);
    const __m256i inv31 = _mm256_set1_epi16(1057), base = _mm256_set1_epi16(BN_T3_BASE);
    const int8_t *qp = (const int8_t *)a;
    uint8_t *tab = a + bn_t3_table_offset(K);
    const int groups = bn_t3_chunks(K) * BN_T3_CHUNK_GROUPS;
    for (int g = 0; g < groups; g++) {
        const __m256i T = _mm256_add_epi16(
            _mm256_add_epi16(_mm256_sign_epi16(_mm256_set1_epi16(qp[3 * g]), W0),
                             _mm256_sign_epi16(_mm256_set1_epi16(qp[3 * g + 1]), W1)),
            _mm256_sign_epi16(_mm256_set1_epi16(qp[3 * g + 2]), W2));
        const __m256i H = _mm256_mulhrs_epi16(T, inv31);
        const __m256i L = _mm256_sub_epi16(T, _mm256_mullo_epi16(H, base));
        /* packs works per 128-bit lane: L0-7 H0-7 | L8-15 H8-15 -> L | H */
        const __m256i lh = _mm256_permute4x64_epi64(_mm256_packs_epi16(L, H), 0xd8);
        _mm256_storeu_si256((__m256i *)(tab + (size_t)g * BN_T3_TABLE_BYTES), lh);
    }
}

/* ---- gemv: table lookups ------------------------------------------------------------ */

/* One group of 32 rows: indices idx (bytes 0..13), sign byte sg (bit 7 set
 * = negative, never zero), table t (16 bytes L, 16 bytes H, broadcast to
 * both 128-bit lanes for vpshufb). */
static inline __attribute__((always_inline)) void lookup(const uint8_t *t, __m256i idx, __m256i sg,
                                                         __m256i *L, __m256i *H) {
    const __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)t));
    const __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(t + 16)));
    *L = keep(_mm256_add_epi8(*L, _mm256_sign_epi8(_mm256_shuffle_epi8(tl, idx), sg)));
    *H = keep(_mm256_add_epi8(*H, _mm256_sign_epi8(_mm256_shuffle_epi8(th, idx), sg)));
}

/* Sums, per row lane: a chunk's 8 signed L (|L| <= 15) and H (|H| <= 12)
 * add in int8 to |ΣL| <= 120 and |ΣH| <= 96. vpmaddubsw with the byte pair
 * (1, 31) on (ΣL, ΣH) interleaved gives ΣL + 31·ΣH, |.| <= 3096, without
 * saturation; CHUNKS_16 = 8 chunks of that stay within int16 (24768),
 * then the sums widen to int32. So the dot is exact for every int8 input
 * and K (test_kernels_tl.c runs all +127 / all -128 against all ±1).
 * Software prefetch GEMV_PF bytes ahead in the weight stream. */
enum { CHUNKS_16 = 8, GEMV_PF = 8192 };

static void tl_gemv(const void *packed, int K, int M, const void *act, int m0, int m1,
                    int32_t *dot) {
    (void)M;
    const int nc = bn_t3_chunks(K);
    const size_t tile_bytes = bn_t3_tile_bytes(K);
    const uint8_t *tabs = (const uint8_t *)act + bn_t3_table_offset(K);
    const __m256i lo4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    const __m256i mix = _mm256_set1_epi16(BN_T3_BASE << 8 | 1);     /* bytes 1, 31 */
    for (int m = m0; m < m1; m += BN_T3_ROWS) {
        const uint8_t *wt = (const uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int c0 = 0; c0 < nc; c0 += CHUNKS_16) {
            const int c1 = c0 + CHUNKS_16 < nc ? c0 + CHUNKS_16 : nc;
            __m256i s_lo = _mm256_setzero_si256(), s_hi = s_lo;
            for (int c = c0; c < c1; c++) {
                const uint8_t *wc = wt + (size_t)c * BN_T3_CHUNK_BYTES;
                const uint8_t *tc = tabs + (size_t)c * BN_T3_CHUNK_GROUPS * BN_T3_TABLE_BYTES;
                _mm_prefetch((const char *)(wc + GEMV_PF), _MM_HINT_T0);
                _mm_prefetch((const char *)(wc + GEMV_PF + 64), _MM_HINT_T0);
                _mm_prefetch((const char *)(wc + GEMV_PF + 128), _MM_HINT_T0);
                const __m256i S = ld(wc + 128);
                __m256i L = _mm256_setzero_si256(), H = L;
                /* group j's sign to bit 7 (16-bit shifts: the bits that
                 * cross into the next byte land below bit 7); | 1 keeps
                 * the byte non-zero, as vpsignb needs */
#define GROUP_PAIR(p)                                                                           \
    do {                                                                                        \
        const __m256i x = ld(wc + 32 * (p));                                                    \
        const __m256i i0 = _mm256_and_si256(x, lo4);                                            \
        const __m256i i1 = _mm256_and_si256(_mm256_srli_epi16(x, 4), lo4);                     \
        lookup(tc + 64 * (p), i0, _mm256_or_si256(_mm256_slli_epi16(S, 7 - 2 * (p)), one), &L, &H); \
        lookup(tc + 64 * (p) + 32, i1, _mm256_or_si256(_mm256_slli_epi16(S, 6 - 2 * (p)), one), &L, &H); \
    } while (0)
                GROUP_PAIR(0);
                GROUP_PAIR(1);
                GROUP_PAIR(2);
                GROUP_PAIR(3);
#undef GROUP_PAIR
                /* rows 0-7 | 16-23 and 8-15 | 24-31 */
                s_lo = _mm256_add_epi16(s_lo, _mm256_maddubs_epi16(mix, _mm256_unpacklo_epi8(L, H)));
                s_hi = _mm256_add_epi16(s_hi, _mm256_maddubs_epi16(mix, _mm256_unpackhi_epi8(L, H)));
            }
            a0 = _mm256_add_epi32(a0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s_lo)));
            a1 = _mm256_add_epi32(a1, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(s_hi)));
            a2 = _mm256_add_epi32(a2, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s_lo, 1)));
            a3 = _mm256_add_epi32(a3, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(s_hi, 1)));
        }
        int32_t out[BN_T3_ROWS];
        _mm256_storeu_si256((__m256i *)out, a0);
        _mm256_storeu_si256((__m256i *)(out + 8), a1);
        _mm256_storeu_si256((__m256i *)(out + 16), a2);
        _mm256_storeu_si256((__m256i *)(out + 24), a3);
        const int rows = m1 - m < BN_T3_ROWS ? m1 - m : BN_T3_ROWS;
        memcpy(dot + (m - m0), out, (size_t)rows * sizeof *out);
    }
}

/* ---- gemm: a tile expanded to rows of codes, then vpmaddubsw ---------------------- */

/* A batch decodes each tile once per call into codes w + 1 (0..2), each
 * row's codes contiguous in k, so that 32 of them meet a token's 32 inputs
 * as they lie in memory: the inner loop is the multiply-add kernel's
 * (ternary_avx2_mad.c) without its unpack, vpmaddubsw(codes, q) and vpaddw,
 * and Σ code·q − Σ q is the dot.
 *
 * The decode goes a segment of two tiles at a time (PASS_ROWS = 64 rows,
 * the forward pass's calls): at most SEG_K = 2016 k (63 steps of 32),
 * 126 KB on the stack, which stays in L2 while every token runs over it;
 * two tiles per pass halve the times a token's inputs come back from L3
 * (measured: 0.94-0.96x the time of one tile per pass at N = 512).
 * Per int16 lane a step adds c0·q0 + c1·q1 in [−512, 508],
 * so 64 steps stay within [−32768, 32512], every prefix sum too: a
 * segment's sums are exact in int16, then widen and go to dot. Segments
 * are whole blocks of 4 chunks (96 k = 3 steps), so steps never straddle
 * a chunk; a token's inputs are zero from K up to bn_t3_q_bytes(K), which
 * covers the last step. */
enum {
    BLOCK_CHUNKS = 4,
    BLOCK_K = BLOCK_CHUNKS * BN_T3_CHUNK_K,
    SEG_BLOCKS = 21,
    SEG_K = SEG_BLOCKS * BLOCK_K,
    QUADS_PER_CHUNK = BN_T3_CHUNK_K / 4,
};

static const int8_t digit_table[3][16] = {
    /* w0, w1, w2 of index i (sign +), bn_t3_decode */
    {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
    {0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0},
    {0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0},
};

/* One chunk to codes in "quads": for k = 4s..4s+3 of the chunk, four
 * vectors V0..V3, each 8 rows x 4 codes (row r's 4 bytes together):
 *     V0 rows 0-3 | 16-19, V1 4-7 | 20-23, V2 8-11 | 24-27, V3 12-15 | 28-31
 * (the orders unpack gives). Unrolled whole, so that every shift count
 * is a constant and the codes stay in registers. */
static inline __attribute__((always_inline)) void expand_chunk(const uint8_t *wc, __m256i *quads) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    const __m256i d0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)digit_table[0]));
    const __m256i d1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)digit_table[1]));
    const __m256i d2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)digit_table[2]));
    const __m256i S = ld(wc + 128);
    __m256i kv[BN_T3_CHUNK_K];      /* kv[k]: byte r = code of row r at k */
#pragma GCC unroll 8
    for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
        const __m256i x = ld(wc + 32 * (j / 2));
        const __m256i idx = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(x, 4) : x, lo4);
        /* bit j of S to bit 7 (16-bit shifts: the bits that cross into
         * the next byte land below bit 7); | 1 keeps the byte non-zero,
         * as vpsignb needs */
        const __m256i sg = _mm256_or_si256(_mm256_slli_epi16(S, 7 - j), one);
        kv[3 * j] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(d0, idx), sg), one);
        kv[3 * j + 1] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(d1, idx), sg), one);
        kv[3 * j + 2] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(d2, idx), sg), one);
    }
#pragma GCC unroll 6
    for (int s = 0; s < QUADS_PER_CHUNK; s++) {
        const __m256i *k4 = kv + 4 * s;
        const __m256i a = _mm256_unpacklo_epi8(k4[0], k4[1]), b = _mm256_unpacklo_epi8(k4[2], k4[3]);
        const __m256i c = _mm256_unpackhi_epi8(k4[0], k4[1]), d = _mm256_unpackhi_epi8(k4[2], k4[3]);
        quads[4 * s] = _mm256_unpacklo_epi16(a, b);
        quads[4 * s + 1] = _mm256_unpackhi_epi16(a, b);
        quads[4 * s + 2] = _mm256_unpacklo_epi16(c, d);
        quads[4 * s + 3] = _mm256_unpackhi_epi16(c, d);
    }
}

/* The 8 x 8 transpose of 32-bit lanes: y[i] lane s = x[s] lane i. */
static inline __attribute__((always_inline)) void transpose8x32(const __m256i x[8], __m256i y[8]) {
    __m256i t[8], u[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_epi32(x[2 * i], x[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_epi32(x[2 * i], x[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        y[i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x20);
        y[4 + i] = _mm256_permute2x128_si256(u[i], u[4 + i], 0x31);
    }
}

/* A block of a tile, chunks [0, n) at wc (n <= BLOCK_CHUNKS), to rows:
 * row r's 96 codes at out + r·SEG_K (the missing chunks' codes 0: their
 * inputs are zero). Eight quads of one vector position are 32
 * consecutive k of 8 rows; transposed, each lane is one row's 32 k. */
static __attribute__((noinline)) void expand_block(const uint8_t *wc, int n, uint8_t *out) {
    __m256i quads[BLOCK_CHUNKS * QUADS_PER_CHUNK * 4];
    for (int c = 0; c < BLOCK_CHUNKS; c++) {
        __m256i *qc = quads + c * QUADS_PER_CHUNK * 4;
        if (c < n)
            expand_chunk(wc + (size_t)c * BN_T3_CHUNK_BYTES, qc);
        else
            for (int i = 0; i < QUADS_PER_CHUNK * 4; i++) qc[i] = _mm256_setzero_si256();
    }
#pragma GCC unroll 3
    for (int j = 0; j < BLOCK_K / 32; j++) {
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m256i x[8], y[8];
#pragma GCC unroll 8
            for (int s = 0; s < 8; s++) x[s] = quads[4 * (8 * j + s) + v];
            transpose8x32(x, y);
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const int r = 4 * v + (i & 3) + (i >= 4 ? 16 : 0);
                _mm256_store_si256((__m256i *)(out + (size_t)r * SEG_K + 32 * j), y[i]);
            }
        }
    }
}

/* The register tile: one row of codes against GEMM_T tokens, whose
 * inputs (GEMM_T x a segment, 16 KB at most) stay in L1 while the rows'
 * codes stream past from L2, one load per GEMM_T multiply-adds (1 x 12
 * tokens measured no faster; 2 rows x 4 tokens slower). */
enum { GEMM_T = 8, PASS_ROWS = 2 * BN_T3_ROWS };

/* One row of an expanded segment (codes at c) against T tokens (inputs at
 * q, token stride as) over `steps` steps: acc[t], int16 lanes. */
static inline __attribute__((always_inline)) void
row_tokens(const uint8_t *c, const int8_t *q, size_t as, int steps, const int T, __m256i *acc) {
#pragma GCC unroll 16
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_si256();
    for (int s = 0; s < steps; s++) {     /* (unrolled x2: GCC spills, 1.23x the time) */
        const __m256i cv = _mm256_load_si256((const __m256i *)(c + 32 * (size_t)s));
#pragma GCC unroll 16
        for (int t = 0; t < T; t++)
            acc[t] = keep(_mm256_add_epi16(acc[t], _mm256_maddubs_epi16(cv, ld(q + (size_t)t * as + 32 * (size_t)s))));
    }
}

/* Lane i of the result: the sum of the 16 int16 lanes of a[i]: vpmaddwd
 * to int32 pairs, then unpack + add (measured about 1% faster overall
 * than a vphaddd tree on Zen 3). */
static inline __attribute__((always_inline)) __m256i hsum8_epi16(const __m256i a[8]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i w[8], p[4], h[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) w[i] = _mm256_madd_epi16(a[i], ones);
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)     /* lanes a0 a1 a0 a1 | ... of pair i */
        p[i] = _mm256_add_epi32(_mm256_unpacklo_epi32(w[2 * i], w[2 * i + 1]),
                                _mm256_unpackhi_epi32(w[2 * i], w[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)     /* lanes a0 a1 a2 a3 | a0 a1 a2 a3 of quad i */
        h[i] = _mm256_add_epi32(_mm256_unpacklo_epi64(p[2 * i], p[2 * i + 1]),
                                _mm256_unpackhi_epi64(p[2 * i], p[2 * i + 1]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(h[0], h[1], 0x20),
                            _mm256_permute2x128_si256(h[0], h[1], 0x31));
}

/* Rows [0, rows) of an expanded segment against T tokens: res[r] lane t
 * = the segment's part of row r's dot with token t (lanes >= T zero). */
static inline __attribute__((always_inline)) void
segment_tokens(const uint8_t *codes, int rows, const int8_t *q, size_t as, int steps, const int T,
               __m256i *res) {
    for (int r = 0; r < rows; r++) {
        __m256i acc[GEMM_T];
        row_tokens(codes + (size_t)r * SEG_K, q, as, steps, T, acc);
#pragma GCC unroll 8
        for (int t = T; t < GEMM_T; t++) acc[t] = _mm256_setzero_si256();
        res[r] = hsum8_epi16(acc);
    }
}

static void tl_gemm(const void *packed, int K, int M, const void *act, int N, int m0, int m1,
                    int32_t *dot, int ldd) {
    (void)M;
    const int nc = bn_t3_chunks(K), nblocks = (nc + BLOCK_CHUNKS - 1) / BLOCK_CHUNKS;
    const int nseg = (nblocks + SEG_BLOCKS - 1) / SEG_BLOCKS;
    const int seg_blocks = (nblocks + nseg - 1) / nseg;     /* balanced segments */
    const int ksteps = (nc * BN_T3_CHUNK_K + 31) / 32;      /* inputs zero-padded up to here */
    const size_t tile_bytes = bn_t3_tile_bytes(K), as = bn_t3_act_size(K);
    _Alignas(64) uint8_t codes[PASS_ROWS * SEG_K];
    __m256i res[PASS_ROWS];
    for (int m = m0; m < m1; m += PASS_ROWS) {
        const uint8_t *wt = (const uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        const int rows = m1 - m < PASS_ROWS ? m1 - m : PASS_ROWS;
        const int rows8 = (rows + 7) / 8 * 8;
        for (int b0 = 0; b0 < nblocks; b0 += seg_blocks) {
            const int b1 = b0 + seg_blocks < nblocks ? b0 + seg_blocks : nblocks;
            for (int r = 0; r < rows; r += BN_T3_ROWS)
                for (int b = b0; b < b1; b++) {
                    const int c = b * BLOCK_CHUNKS;
                    expand_block(wt + (size_t)(r / BN_T3_ROWS) * tile_bytes + (size_t)c * BN_T3_CHUNK_BYTES,
                                 nc - c < BLOCK_CHUNKS ? nc - c : BLOCK_CHUNKS,
                                 codes + (size_t)r * SEG_K + (size_t)(b - b0) * BLOCK_K);
                }
            const int s0 = b0 * (BLOCK_K / 32);
            const int steps = (b1 * (BLOCK_K / 32) < ksteps ? b1 * (BLOCK_K / 32) : ksteps) - s0;
            for (int n = 0; n < N; n += GEMM_T) {
                const int T = N - n < GEMM_T ? N - n : GEMM_T;
                const uint8_t *an = (const uint8_t *)act + (size_t)n * as;
                const int8_t *q = (const int8_t *)an + 32 * (size_t)s0;
                switch (T) {    /* constant T: the sums stay in registers */
                case 1: segment_tokens(codes, rows8, q, as, steps, 1, res); break;
                case 2: segment_tokens(codes, rows8, q, as, steps, 2, res); break;
                case 3: segment_tokens(codes, rows8, q, as, steps, 3, res); break;
                case 4: segment_tokens(codes, rows8, q, as, steps, 4, res); break;
                case 5: segment_tokens(codes, rows8, q, as, steps, 5, res); break;
                case 6: segment_tokens(codes, rows8, q, as, steps, 6, res); break;
                case 7: segment_tokens(codes, rows8, q, as, steps, 7, res); break;
                default: segment_tokens(codes, rows8, q, as, steps, GEMM_T, res); break;
                }
                /* 8 rows x 8 tokens at a time, transposed: d[t] lane i =
                 * row r0 + i, token t; written minus Σ q by the first
                 * segment, added by the others */
                for (int r0 = 0; r0 < rows8; r0 += 8) {
                    __m256i d[8];
                    transpose8x32(res + r0, d);
                    const int nr = rows - r0 < 8 ? rows - r0 : 8;
                    for (int t = 0; t < T; t++) {
                        int32_t *y = dot + (size_t)(n + t) * (size_t)ldd + (m - m0) + r0;
                        if (b0 == 0)
                            d[t] = _mm256_sub_epi32(d[t], _mm256_set1_epi32(bn_t3_act_sum(an + (size_t)t * as, K)));
                        if (nr == 8) {
                            if (b0 > 0) d[t] = _mm256_add_epi32(d[t], _mm256_loadu_si256((const __m256i *)y));
                            _mm256_storeu_si256((__m256i *)y, d[t]);
                        } else {
                            int32_t v[8];
                            _mm256_storeu_si256((__m256i *)v, d[t]);
                            for (int i = 0; i < nr; i++) y[i] = b0 > 0 ? y[i] + v[i] : v[i];
                        }
                    }
                }
            }
        }
    }
}

/* ---- pack: I2_S to the t3 layout, a tile of 32 rows at a time ---------------------- */

/* Where K % 128 == 0 (the forward pass's rows), every row is whole I2_S
 * blocks, and byte p of a block holds the codes of its k = p, 32 + p,
 * 64 + p, 96 + p in bits 7-6, 5-4, 3-2, 1-0 (src/i2s.h). The 32 rows'
 * blocks are transposed so that a vector holds one k of the tile's 32 rows,
 * the layout's lanes; a group's v = 9·w0 + 3·w1 + w2 then gives index |v|
 * and sign v < 0, as bn_t3_pack's table does: the same bytes
 * (test_kernels_tl.c). Other K take bn_t3_pack. */

/* Per 128-bit lane, 4 rows x 4 bytes to 4 bytes x 4 rows: byte 4s + e to 4e + s. */
static const int8_t transpose4x4[32] = {
    0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
    0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,
};

/* An I2_S code's weight: 0 -> -1, 1 -> 0, 2 -> +1, 3 -> 0. */
static const int8_t code_weight[32] = {
    -1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    -1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* One block (128 k) of a tile: blk[r] = row r's 32 bytes. Out: w[k] byte r
 * = the weight of row r at k. Each transpose8x32 takes rows 4j..4j+3 and
 * 16 + 4j..16 + 4j + 3 (j = 0..3): its output d holds their bytes 4d..4d+3,
 * which transpose4x4 turns into dwords e = p − 4d of 4 rows each; the last
 * unpacks gather a p's 8 dwords in row order. */
static __attribute__((noinline)) void block_weights(const uint8_t *const blk[BN_T3_ROWS],
                                                     __m256i *w) {
    const __m256i t44 = ld(transpose4x4), cw = ld(code_weight), three = _mm256_set1_epi8(3);
    __m256i y[4][8];
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        __m256i x[8];
#pragma GCC unroll 8
        for (int s = 0; s < 8; s++) x[s] = ld(blk[(s < 4 ? 0 : 16) + 4 * j + s % 4]);
        transpose8x32(x, y[j]);
#pragma GCC unroll 8
        for (int d = 0; d < 8; d++) y[j][d] = _mm256_shuffle_epi8(y[j][d], t44);
    }
    for (int d = 0; d < 8; d++) {
        const __m256i a = _mm256_unpacklo_epi32(y[0][d], y[1][d]);
        const __m256i b = _mm256_unpacklo_epi32(y[2][d], y[3][d]);
        const __m256i c = _mm256_unpackhi_epi32(y[0][d], y[1][d]);
        const __m256i e = _mm256_unpackhi_epi32(y[2][d], y[3][d]);
        const __m256i t[4] = {_mm256_unpacklo_epi64(a, b), _mm256_unpackhi_epi64(a, b),
                              _mm256_unpacklo_epi64(c, e), _mm256_unpackhi_epi64(c, e)};
        /* p = 4d + i: its 4 codes (16-bit shifts: & 3 drops what crosses) */
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
#pragma GCC unroll 4
            for (int f = 0; f < 4; f++) {
                const __m256i code = _mm256_and_si256(_mm256_srli_epi16(t[i], 6 - 2 * f), three);
                w[32 * f + 4 * d + i] = _mm256_shuffle_epi8(cw, code);
            }
    }
}

/* Chunks [0, n) of a segment's weights w (24 k each) into the layout at out. */
static void segment_chunks(const __m256i *w, int n, uint8_t *out) {
    const __m256i zero = _mm256_setzero_si256();
    for (int c = 0; c < n; c++, w += BN_T3_CHUNK_K, out += BN_T3_CHUNK_BYTES) {
        __m256i idx[BN_T3_CHUNK_GROUPS], signs = zero;
#pragma GCC unroll 8
        for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
            const __m256i t = _mm256_add_epi8(_mm256_add_epi8(w[3 * j], w[3 * j]),
                                              _mm256_add_epi8(w[3 * j], w[3 * j + 1]));
            const __m256i v =
                _mm256_add_epi8(_mm256_add_epi8(t, t), _mm256_add_epi8(t, w[3 * j + 2]));
            idx[j] = _mm256_abs_epi8(v);
            signs = _mm256_or_si256(signs, _mm256_and_si256(_mm256_cmpgt_epi8(zero, v),
                                                            _mm256_set1_epi8((char)(1 << j))));
        }
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++)     /* index <= 13: << 4 stays in its byte */
            _mm256_storeu_si256((__m256i *)(out + 32 * p),
                                _mm256_or_si256(idx[2 * p], _mm256_slli_epi16(idx[2 * p + 1], 4)));
        _mm256_storeu_si256((__m256i *)(out + 128), signs);
    }
}

/* Segments of 3 blocks: 384 k = 16 whole chunks. Rows past M read a block
 * of code 1 (weight 0): the padding rows come out as bn_t3_pack's zeros. */
enum { PACK_SEG_BLOCKS = 3, PACK_SEG_K = PACK_SEG_BLOCKS * 128 };

static void tl_pack(const uint8_t *i2s, int K, int M, void *packed) {
    if (K % 128 != 0) {
        bn_t3_pack(i2s, K, M, packed);
        return;
    }
    uint8_t zero_block[32];
    memset(zero_block, 0x55, sizeof zero_block);
    const int nc = bn_t3_chunks(K);
    const size_t tile_bytes = bn_t3_tile_bytes(K), row_bytes = (size_t)K / 4;
    __m256i w[PACK_SEG_K];      /* 12 KB: a segment's weights, k by k */
    for (int m = 0; m < M; m += BN_T3_ROWS) {
        uint8_t *tile = (uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        for (int k0 = 0; k0 < K; k0 += PACK_SEG_K) {
            for (int b = 0; b < PACK_SEG_BLOCKS; b++) {
                __m256i *wb = w + 128 * b;
                if (k0 + 128 * b >= K) {
                    for (int k = 0; k < 128; k++) wb[k] = _mm256_setzero_si256();
                    continue;
                }
                const uint8_t *blk[BN_T3_ROWS];
                const size_t off = (size_t)(k0 + 128 * b) / 4;
                for (int r = 0; r < BN_T3_ROWS; r++)
                    blk[r] = m + r < M ? i2s + (size_t)(m + r) * row_bytes + off : zero_block;
                block_weights(blk, wb);
            }
            const int c0 = k0 / BN_T3_CHUNK_K;
            const int seg_chunks = PACK_SEG_K / BN_T3_CHUNK_K;
            segment_chunks(w, nc - c0 < seg_chunks ? nc - c0 : seg_chunks,
                           tile + (size_t)c0 * BN_T3_CHUNK_BYTES);
        }
    }
}

static size_t tl_act_size(int K) {
    return bn_t3_act_size(K);
}

BN_EXPORT_TERNARY_FORMAT_BATCH(bn_avx2_tl, "t3-avx2", BN_T3_ROWS, bn_t3_packed_size, tl_pack,
                               tl_act_size, tl_act_prep, tl_act_prep_batch, tl_gemv, tl_gemm);

#endif
