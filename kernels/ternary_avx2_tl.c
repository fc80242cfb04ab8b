/* The "avx2-tl" ternary kernels (record bn_avx2_tl_fmt_ternary): the
 * 1.67-bit t3 layout (ternary_tl.h; docs/FORMAT.md, T3 lookup layout),
 * vpshufb table lookups for one token, and for a batch the tile expanded
 * once to int8 codes for vpmaddubsw. Pack is the shared plain-C one; the
 * prepared input has exactly the bytes of bn_t3_act_prep_ref. */
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

/* A group's 16 table entries in int16 lanes: T = w0·q0 + w1·q1 + w2·q2 with
 * the weights of index i (bn_t3_decode, sign +) as ±1/0 in W0, W1, W2
 * (vpsignw multiplies by them). H = round(T / 31) by vpmulhrsw with 1057:
 * (T·1057 + 2^14) >> 15 = floor(T·1057/32768 + 1/2), and T·1057/32768
 * differs from T/31 by |T|/1015808 <= 0.0004, while T/31 + 1/2 is never
 * closer than 1/62 to an integer (2T + 31 is odd): the same integer. */
static void tl_act_prep(const int8_t *q, int K, void *act) {
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

/* ---- gemm: a tile expanded to codes, then vpmaddubsw ------------------------------ */

/* Expansion: EXP_CHUNKS chunks of a tile at a time become codes w + 1
 * (0..2) in "quads": for k = 4s..4s+3 of the expansion, four vectors
 * V0..V3, each 8 rows x 4 codes (row r's 4 bytes together):
 *     V0 rows 0-3 | 16-19, V1 4-7 | 20-23, V2 8-11 | 24-27, V3 12-15 | 28-31
 * (the orders unpack gives). vpmaddubsw of V with the token's 4 inputs
 * broadcast and vpmaddwd with ones is then one row's 4-term dot per int32
 * lane. Σ code·q − Σ q is the dot. */
enum { EXP_CHUNKS = 16, QUADS_PER_CHUNK = BN_T3_CHUNK_K / 4, TOK = 4, TOK_BLOCK = 64 };

static const int8_t digit_table[3][16] = {
    /* w0, w1, w2 of index i (sign +), bn_t3_decode */
    {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
    {0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0},
    {0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0},
};

static void expand_chunk(const uint8_t *wc, uint8_t *quads) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    const __m256i d0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)digit_table[0]));
    const __m256i d1 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)digit_table[1]));
    const __m256i d2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)digit_table[2]));
    const __m256i S = ld(wc + 128);
    __m256i kv[BN_T3_CHUNK_K];      /* kv[k]: byte r = code of row r at k */
    for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
        const __m256i x = ld(wc + 32 * (j / 2));
        const __m256i idx = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(x, 4) : x, lo4);
        /* bit j of S to bit 7 (a 16-bit shift by a count in a register) */
        const __m256i sg = _mm256_or_si256(_mm256_sll_epi16(S, _mm_cvtsi32_si128(7 - j)), one);
        kv[3 * j] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(d0, idx), sg), one);
        kv[3 * j + 1] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(d1, idx), sg), one);
        kv[3 * j + 2] = _mm256_add_epi8(_mm256_sign_epi8(_mm256_shuffle_epi8(d2, idx), sg), one);
    }
    for (int s = 0; s < QUADS_PER_CHUNK; s++) {
        const __m256i *k4 = kv + 4 * s;
        const __m256i a = _mm256_unpacklo_epi8(k4[0], k4[1]), b = _mm256_unpacklo_epi8(k4[2], k4[3]);
        const __m256i c = _mm256_unpackhi_epi8(k4[0], k4[1]), d = _mm256_unpackhi_epi8(k4[2], k4[3]);
        __m256i *v = (__m256i *)(quads + 128 * (size_t)s);
        _mm256_store_si256(v, _mm256_unpacklo_epi16(a, b));
        _mm256_store_si256(v + 1, _mm256_unpackhi_epi16(a, b));
        _mm256_store_si256(v + 2, _mm256_unpacklo_epi16(c, d));
        _mm256_store_si256(v + 3, _mm256_unpackhi_epi16(c, d));
    }
}

/* Per int16 lane a quad adds c0·q0 + c1·q1, |.| <= 2·2·128 = 512, so
 * QUADS_16 = 48 quads stay within int16 (24576) before vpmaddwd widens
 * them into part (int32). */
enum { QUADS_16 = 48 };

/* Half h of the tile's rows (quads' vectors 2h, 2h + 1) against T tokens,
 * quads [0, nq) of the expansion; q points at the tokens' inputs for the
 * expansion's first k (token t at q + t·as). part[t][0..15] += dots. */
static inline __attribute__((always_inline)) void
quad_kernel(const uint8_t *quads, int nq, int h, const int8_t *q, size_t as, const int T,
            int32_t part[][16]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int s0 = 0; s0 < nq; s0 += QUADS_16) {
        const int s1 = s0 + QUADS_16 < nq ? s0 + QUADS_16 : nq;
        __m256i acc[TOK][2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
        for (int s = s0; s < s1; s++) {
            const __m256i va = _mm256_load_si256((const __m256i *)(quads + 128 * (size_t)s + 64 * h));
            const __m256i vb = _mm256_load_si256((const __m256i *)(quads + 128 * (size_t)s + 64 * h + 32));
#pragma GCC unroll 4
            for (int t = 0; t < T; t++) {
                int32_t q4;
                memcpy(&q4, q + (size_t)t * as + 4 * (size_t)s, 4);
                const __m256i qv = _mm256_set1_epi32(q4);
                const __m256i p0 = _mm256_maddubs_epi16(va, qv), p1 = _mm256_maddubs_epi16(vb, qv);
                /* the adds in asm, in place: with keep() GCC still copied
                 * every accumulator once per step (8 extra instructions
                 * per 25, measured with callgrind) */
                __asm__("vpaddw %2, %0, %0\n\tvpaddw %3, %1, %1"
                        : "+x"(acc[t][0]), "+x"(acc[t][1])
                        : "x"(p0), "x"(p1));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            __m256i *p = (__m256i *)part[t];
            _mm256_storeu_si256(p, _mm256_add_epi32(_mm256_loadu_si256(p), _mm256_madd_epi16(acc[t][0], ones)));
            _mm256_storeu_si256(p + 1, _mm256_add_epi32(_mm256_loadu_si256(p + 1), _mm256_madd_epi16(acc[t][1], ones)));
        }
    }
}

/* Lane l of part half h, vector v (v = 0, 1): its row in the tile. */
static inline int part_row(int h, int v, int l) {
    return 8 * h + 4 * v + (l & 3) + (l >= 4 ? 16 : 0);
}

static void tl_gemm(const void *packed, int K, int M, const void *act, int N, int m0, int m1,
                    int32_t *dot, int ldd) {
    (void)M;
    const int nc = bn_t3_chunks(K);
    const size_t tile_bytes = bn_t3_tile_bytes(K), as = bn_t3_act_size(K);
    _Alignas(64) uint8_t quads[EXP_CHUNKS * QUADS_PER_CHUNK * 128];
    int32_t part[2][TOK_BLOCK][16];     /* per half, token, lane */
    for (int m = m0; m < m1; m += BN_T3_ROWS) {
        const uint8_t *wt = (const uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        const int rows = m1 - m < BN_T3_ROWS ? m1 - m : BN_T3_ROWS;
        for (int n0 = 0; n0 < N; n0 += TOK_BLOCK) {
            const int nb = N - n0 < TOK_BLOCK ? N - n0 : TOK_BLOCK;
            memset(part, 0, sizeof part);
            for (int c0 = 0; c0 < nc; c0 += EXP_CHUNKS) {
                const int ce = c0 + EXP_CHUNKS < nc ? c0 + EXP_CHUNKS : nc;
                for (int c = c0; c < ce; c++)
                    expand_chunk(wt + (size_t)c * BN_T3_CHUNK_BYTES,
                                 quads + (size_t)(c - c0) * QUADS_PER_CHUNK * 128);
                const int nq = (ce - c0) * QUADS_PER_CHUNK;
                const int8_t *qk = (const int8_t *)act + (size_t)n0 * as + (size_t)c0 * BN_T3_CHUNK_K;
                for (int h = 0; h < 2; h++) {
                    for (int t = 0; t < nb; t += TOK) {
                        const int8_t *qt = qk + (size_t)t * as;
                        int32_t(*pt)[16] = part[h] + t;
                        switch (nb - t < TOK ? nb - t : TOK) {  /* constant T: registers */
                        case 1: quad_kernel(quads, nq, h, qt, as, 1, pt); break;
                        case 2: quad_kernel(quads, nq, h, qt, as, 2, pt); break;
                        case 3: quad_kernel(quads, nq, h, qt, as, 3, pt); break;
                        default: quad_kernel(quads, nq, h, qt, as, TOK, pt); break;
                        }
                    }
                }
            }
            for (int t = 0; t < nb; t++) {
                const int32_t sum = bn_t3_act_sum((const uint8_t *)act + (size_t)(n0 + t) * as, K);
                int32_t *y = dot + (size_t)(n0 + t) * (size_t)ldd + (m - m0);
                for (int h = 0; h < 2; h++)
                    for (int l = 0; l < 16; l++) {
                        const int r = part_row(h, l / 8, l % 8);
                        if (r < rows) y[r] = part[h][t][l] - sum;
                    }
            }
        }
    }
}

static size_t tl_act_size(int K) {
    return bn_t3_act_size(K);
}

BN_EXPORT_TERNARY_FORMAT(bn_avx2_tl, "t3-avx2", BN_T3_ROWS, bn_t3_packed_size, bn_t3_pack,
                         tl_act_size, tl_act_prep, tl_gemv, tl_gemm);

#endif
