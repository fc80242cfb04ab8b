/* The "avx2-mad" ternary kernels (record bn_avx2_mad_fmt_ternary; the
 * "avx2" table's ternary format): multiply-add, bitnet.cpp's approach
 * (docs/NUMERICS.md, bitnet.cpp kernels). Weights stay in I2_S blocks (rows
 * interleaved in pairs); each 128-weight block is unpacked with shifts and
 * masks into codes 0..2 and multiplied with vpmaddubsw against the int8
 * activations; Σ code·q − Σ q gives the exact dot. The prepared input is q
 * then Σ q (x86_common.h, bn_x86_mad_prep_size). */
#include "x86_common.h"

#ifdef BN_X86_AVX2

/* Layout: I2_S blocks (32 bytes = 128 weights; byte i holds at bits 7-6,
 * 5-4, 3-2, 1-0 the codes of k = i, 32 + i, 64 + i, 96 + i) with the unused
 * code 3 turned into 1 (bn_i2s_canonical_codes: weight 0), rows in tiles
 * of MR = 2 with their blocks interleaved: block b of row r of tile t at
 * byte (t·(K/128)·MR + MR·b + r)·32. A tile's block pair is one 64-byte
 * line, so gemv reads one sequential stream (the last tile of an odd M is
 * padded with code 1). Σ code·q − Σ q gives the exact dot.
 */
enum { MR = 2 };

static size_t mad_packed_size(int K, int M) {
    return (size_t)(M + MR - 1) / MR * MR * (size_t)K / 4;
}

static void mad_repack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const int nb = K / 128, mp = (M + MR - 1) / MR * MR;
    const size_t rb = (size_t)K / 4;
    const __m256i zero_codes = _mm256_set1_epi8(0x55);  /* code 1 = weight 0 */
    for (int m = 0; m < mp; m++) {
        uint8_t *dst = out + (size_t)(m / MR) * MR * rb + 32 * (m % MR);
        const uint8_t *row = i2s + (size_t)m * rb;
        for (int b = 0; b < nb; b++) {
            if (m >= M) {
                _mm256_storeu_si256((__m256i *)(dst + 32 * MR * (size_t)b), zero_codes);
                continue;
            }
            const __m256i x = _mm256_loadu_si256((const __m256i *)(row + 32 * (size_t)b));
            _mm256_storeu_si256((__m256i *)(dst + 32 * MR * (size_t)b), bn_i2s_canonical_codes(x));
        }
    }
}

/* The prepared input: q, then Σ q at byte K. */
static void mad_act_prep(const int8_t *q, int K, void *prep) {
    memcpy(prep, q, (size_t)K);
    __m256i acc = _mm256_setzero_si256();
    for (int i = 0; i < K; i += 32) {
        __m256i w16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1),
                                           _mm256_loadu_si256((const __m256i *)(q + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(w16, _mm256_set1_epi16(1)));
    }
    int32_t s = bn_hsum_epi32(acc);
    memcpy((uint8_t *)prep + K, &s, sizeof s);
}

/* An empty asm the value passes through: GCC cannot reassociate a chain of
 * additions across it (see mad_rows_tokens). No instruction is emitted. */
static inline __m256i keep(__m256i v) {
    __asm__("" : "+x"(v));
    return v;
}

static inline __m256i ld(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* gemv: one tile (2 rows) at a time, one sequential weight stream. Code
 * fields are masked in place, not shifted down: with h = x >> 4 (16-bit
 * shift; the masks keep bits 0-3 only),
 *     x & 0x03 = code(96+i),  x & 0x0c = 4·code(64+i),
 *     h & 0x03 = code(32+i),  h & 0x0c = 4·code(i),
 * so a block is 1 shift + 4 AND + 4 vpmaddubsw + 4 vpaddw per row. The
 * unscaled products go to accumulator u, the ×4 ones to s (int16):
 * a vpmaddubsw pair is at most 2·2·128 = 512 (unscaled) / 2048 (×4) in
 * magnitude, a block adds two pairs, so after 8 blocks |u| <= 8192 and
 * s ∈ [−32768, 32512] (−128·8·2·2·8, 127·8·2·2·8): every prefix sum is in
 * int16 range, nothing wraps. Then int32 4u + s (vpmaddwd with 4 and 1)
 * is exactly 4·Σ code·q in every lane; >> 2 is exact.
 * Software prefetch runs GEMV_PF bytes ahead in the stream, measured on
 * the kernel bench (N = 1, 1 thread, % of read BW on the four 2B4T
 * shapes, two runs each): none 72-84%, 2 KB 70-81%, 4 KB 81-88%,
 * 8 KB 87-96%, 16 KB 89-96%. At ~26 vector ops per 64-byte line the
 * kernel runs ~8 bytes/cycle, close to the stream, so the hardware
 * prefetchers alone fall behind. */
enum { GEMV_PF = 8192 };

static void mad_gemv(const void *packed, int K, int M, const void *prep,
                     int m0, int m1, int32_t *dot) {
    (void)M;
    const uint8_t *w = packed;
    const int8_t *q = prep;
    const int nb = K / 128;
    const size_t tb = (size_t)MR * K / 4;
    const __m256i k3 = _mm256_set1_epi8(0x03), kc = _mm256_set1_epi8(0x0c);
    const __m256i ones = _mm256_set1_epi16(1), fours = _mm256_set1_epi16(4);
    const int32_t asum = bn_x86_mad_prep_sum(prep, K);
    for (int m = m0; m < m1; m += MR) {
        const uint8_t *wt = w + (size_t)(m / MR) * tb;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (int b0 = 0; b0 < nb; b0 += 8) {
            const int b1 = b0 + 8 < nb ? b0 + 8 : nb;
            __m256i u0 = _mm256_setzero_si256(), s0 = u0, u1 = u0, s1 = u0;
            for (int b = b0; b < b1; b++) {
                const uint8_t *wb = wt + 64 * (size_t)b;
                const int8_t *qb = q + 128 * (size_t)b;
                _mm_prefetch((const char *)(wb + GEMV_PF), _MM_HINT_T0);
                const __m256i x0 = ld(wb), x1 = ld(wb + 32);
                const __m256i h0 = _mm256_srli_epi16(x0, 4), h1 = _mm256_srli_epi16(x1, 4);
                const __m256i q0 = ld(qb), q1 = ld(qb + 32), q2 = ld(qb + 64), q3 = ld(qb + 96);
                u0 = _mm256_add_epi16(u0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h0, k3), q1),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x0, k3), q3)));
                s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h0, kc), q0),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x0, kc), q2)));
                u1 = _mm256_add_epi16(u1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h1, k3), q1),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x1, k3), q3)));
                s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(h1, kc), q0),
                                                           _mm256_maddubs_epi16(_mm256_and_si256(x1, kc), q2)));
            }
            a0 = _mm256_add_epi32(a0, _mm256_add_epi32(_mm256_madd_epi16(u0, fours), _mm256_madd_epi16(s0, ones)));
            a1 = _mm256_add_epi32(a1, _mm256_add_epi32(_mm256_madd_epi16(u1, fours), _mm256_madd_epi16(s1, ones)));
        }
        dot[m - m0] = bn_hsum_epi32(_mm256_srai_epi32(a0, 2)) - asum;
        if (m + 1 < m1) dot[m + 1 - m0] = bn_hsum_epi32(_mm256_srai_epi32(a1, 2)) - asum;
    }
}

/* gemm: the two rows of a tile (MAD_R) against T <= MAD_TOK tokens. Each
 * block of a row is unpacked field by field into codes 0..2 and multiplied
 * with every token's activations; each activation load feeds both rows.
 * Per block a lane of an int16 accumulator gains four pairs, each in
 * [−512, 508] (codes <= 2), so 16 blocks stay within [−32768, 32512] and
 * so does every prefix sum: exact; then one vpmaddwd widens to int32.
 * Always inlined with a constant T and its loops unrolled so the 8
 * accumulators stay in registers (GCC -O2 otherwise keeps arrays on the
 * stack); keep() stops GCC from reassociating the additions into trees
 * that need more registers than AVX2 has. out[r][t] gets Σ code·q.
 * Measured (kernel bench, N = 128, 1 thread, GMAC/s on the four 2B4T
 * shapes): 1 row x 8 tokens 144-148 (vpaddsw) / 141-164 (keep(), 8 x 6912
 * activation bytes spill L1 on 6912x2560), 2 x 3 144-152, 2 x 4 161-168.
 * The vector ALUs are the limit: a microbenchmark on this Zen 5 sustains
 * 1.6 vpmaddubsw + 1.6 vpaddw per cycle (51 MAC/cycle); 2 x 4 is 64
 * multiply-add pairs + 14 unpack ops per 1024 MACs. */
enum { MAD_R = 2, MAD_TOK = 4 };

/* R rows of one tile (R = 1 or 2) against T tokens. */
static inline __attribute__((always_inline)) void
mad_rows_tokens(const uint8_t *wr, int K, const int8_t *q, size_t ps, const int R, const int T,
                int32_t out[2][MAD_TOK]) {
    const __m256i k3 = _mm256_set1_epi8(0x03), ones = _mm256_set1_epi16(1);
    const int nb = K / 128;
    __m256i acc[2][MAD_TOK];
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_si256();
    for (int b0 = 0; b0 < nb; b0 += 16) {
        const int b1 = b0 + 16 < nb ? b0 + 16 : nb;
        __m256i s[2][MAD_TOK];
#pragma GCC unroll 2
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) s[r][t] = _mm256_setzero_si256();
        for (int b = b0; b < b1; b++) {
            /* Field by field, so only R code vectors are live. vpaddsw
             * (never saturates here, see above) instead of vpaddw: GCC
             * does not reassociate it into trees that need more
             * registers and spill the accumulators. */
            const int8_t *a = q + 128 * (size_t)b;
            __m256i x[2];
#pragma GCC unroll 2
            for (int r = 0; r < R; r++) x[r] = ld(wr + 32 * MR * (size_t)b + 32 * r);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                __m256i c[2];
#pragma GCC unroll 2
                for (int r = 0; r < R; r++) c[r] = _mm256_and_si256(_mm256_srli_epi16(x[r], 6 - 2 * j), k3);
#pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    const __m256i qa = ld(a + (size_t)t * ps + 32 * j);
#pragma GCC unroll 2
                    for (int r = 0; r < R; r++)
                        s[r][t] = keep(_mm256_add_epi16(s[r][t], _mm256_maddubs_epi16(c[r], qa)));
                }
            }
        }
#pragma GCC unroll 2
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(s[r][t], ones));
    }
#pragma GCC unroll 2
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) out[r][t] = bn_hsum_epi32(acc[r][t]);
}

/* Cache blocking as in the AVX-512 gemm: a block of tokens whose
 * activations fit in L2 (NB·K <= MAD_ACT_BYTES) meets each group of
 * MAD_ROWS rows (<= MAD_ROWS·K/4 bytes of weights, L1-resident) once;
 * inside, groups of MAD_TOK tokens run over those rows. */
enum { MAD_ACT_BYTES = 256 * 1024, MAD_ROWS = 64 };

static void mad_gemm(const void *packed, int K, int M, const void *prep, int N,
                     int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    const uint8_t *w = packed;
    const int8_t *q = prep;
    const size_t ps = bn_x86_mad_prep_size(K), tb = (size_t)MR * K / 4;
    int NB = MAD_ACT_BYTES / K / MAD_TOK * MAD_TOK;
    if (NB < MAD_TOK) NB = MAD_TOK;
    for (int nb = 0; nb < N; nb += NB) {
        const int ne = N - nb < NB ? N : nb + NB;
        for (int mt = m0; mt < m1; mt += MAD_ROWS) {
            const int mte = mt + MAD_ROWS < m1 ? mt + MAD_ROWS : m1;
            for (int n = nb; n < ne; n += MAD_TOK) {
                const int T = ne - n < MAD_TOK ? ne - n : MAD_TOK;
                const int8_t *qn = q + (size_t)n * ps;
                int32_t sums[MAD_TOK];
                for (int t = 0; t < T; t++) sums[t] = bn_x86_mad_prep_sum(qn + (size_t)t * ps, K);
                for (int m = mt; m < mte; m += MAD_R) {
                    const uint8_t *wr = w + (size_t)(m / MR) * tb + 32 * (m % MR);
                    int32_t out[2][MAD_TOK];
                    switch (T) {    /* constant T: accumulators stay in registers */
                    case 1: mad_rows_tokens(wr, K, qn, ps, MAD_R, 1, out); break;
                    case 2: mad_rows_tokens(wr, K, qn, ps, MAD_R, 2, out); break;
                    case 3: mad_rows_tokens(wr, K, qn, ps, MAD_R, 3, out); break;
                    default: mad_rows_tokens(wr, K, qn, ps, MAD_R, MAD_TOK, out); break;
                    }
                    for (int r = 0; r < MAD_R && m + r < mte; r++)
                        for (int t = 0; t < T; t++) dot[(size_t)(n + t) * ldd + (m + r - m0)] = out[r][t] - sums[t];
                }
            }
        }
    }
}

BN_EXPORT_TERNARY_FORMAT(bn_avx2_mad, "i2s-avx2-mad", MR, mad_packed_size, mad_repack,
                         bn_x86_mad_prep_size, mad_act_prep, mad_gemv, mad_gemm);

#endif
