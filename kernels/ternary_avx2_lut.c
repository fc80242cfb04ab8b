/* The "avx2-lut" ternary kernels (record bn_avx2_lut_fmt_ternary), kept as
 * a measured alternative to multiply-add (avx2_tables.c says why "avx2" is
 * not this one). Weights are repacked into 4-bit indices over the 9 sums of
 * a pair of weights; per token, act_prep builds for every pair of
 * activations the 9 exact int16 sums, split into a low-byte and a high-byte
 * 16-entry table, looked up 32 rows at a time with vpshufb. 2 bits per
 * weight, as in the file. */
#include "x86_common.h"

#ifdef BN_X86_AVX2

/* Layout: rows in tiles of 16 (the last tile padded with zero weights). A
 * tile is K/8 chunks of 32 bytes; chunk c covers k = 8c..8c+7:
 *   byte r      (r < 16): low nibble = pair (8c+0, 8c+1), high = (8c+2, 8c+3)
 *   byte 16 + r         : low nibble = pair (8c+4, 8c+5), high = (8c+6, 8c+7)
 * of row r, a pair index being 3·code(k) + code(k+1) (0..8, codes 0..2).
 * So one load gives 16 rows x 8 weights, and the two 128-bit lanes look up
 * different pairs, each in its own table.
 *
 * Prepared activations: per chunk 4 x 32 bytes, tables of the 16 entries
 * v[3a+b] = (a−1)·q[k] + (b−1)·q[k+1] (entries 9..15 are 0):
 *   T0 = low bytes  [pair 8c+0 | pair 8c+4],  T1 = high bytes of the same,
 *   T2 = low bytes  [pair 8c+2 | pair 8c+6],  T3 = high bytes of the same.
 * |v| <= 256, so low byte + 256·(signed high byte) restores v exactly.
 */
enum { LUT_ROWS = 16 };

static size_t lut_packed_size(int K, int M) {
    size_t tiles = (size_t)(M + LUT_ROWS - 1) / LUT_ROWS;
    return tiles * (size_t)K * LUT_ROWS / 4;
}

/* The 32 packed bytes of one row for one I2_S block (16 chunks of 8 k):
 * byte n = 2c + h is chunk c's byte "16h + r". Pair indices 3a + b come
 * from vpmaddubsw with (3, 1), two of them per byte (lo | hi << 4) from
 * vpmaddwd with (1, 16); in c[g], int32 lane e covers k = 32g + 4e..+3,
 * which is byte 8g + e. */
static inline __m256i lut_row_block(const uint8_t *blk) {
    const __m256i w31 = _mm256_set1_epi16(0x0103), w161 = _mm256_set1_epi32(0x00100001);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i c[4];
    bn_i2s_block_codes(blk, c);
    for (int g = 0; g < 4; g++) c[g] = _mm256_madd_epi16(_mm256_maddubs_epi16(c[g], w31), w161);
    const __m256i bytes = _mm256_packus_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
    return _mm256_permutevar8x32_epi32(bytes, order);   /* undo the lane-wise packs */
}

/* Repack a tile's 16 rows one I2_S block at a time: the rows' 32-byte
 * vectors (lut_row_block) form a 16 x 32 byte matrix whose transpose is the
 * block's 512 contiguous tile bytes (byte n of row r at 16n + r). The
 * transpose runs in each 128-bit lane (columns 0-15 | 16-31) in four unpack
 * stages; stage s splits on bit 3 - s of the column. */
static void lut_repack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const int tiles = (M + LUT_ROWS - 1) / LUT_ROWS, nb = K / 128;
    const size_t rb = (size_t)K / 4;
    for (int t = 0; t < tiles; t++) {
        uint8_t *tile = out + (size_t)t * K * LUT_ROWS / 4;
        const uint8_t *rows = i2s + (size_t)t * LUT_ROWS * rb;
        const int nr = M - t * LUT_ROWS < LUT_ROWS ? M - t * LUT_ROWS : LUT_ROWS;
        for (int b = 0; b < nb; b++) {
            __m256i a[16], x[16];
            for (int r = 0; r < LUT_ROWS; r++)     /* 0x44: pair (0, 0) for padding rows */
                a[r] = r < nr ? lut_row_block(rows + r * rb + 32 * b) : _mm256_set1_epi8(0x44);
            for (int i = 0; i < 8; i++) {
                x[i] = _mm256_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
                x[8 + i] = _mm256_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
            }
            for (int h = 0; h < 2; h++)
                for (int i = 0; i < 4; i++) {
                    a[8 * h + i] = _mm256_unpacklo_epi16(x[8 * h + 2 * i], x[8 * h + 2 * i + 1]);
                    a[8 * h + 4 + i] = _mm256_unpackhi_epi16(x[8 * h + 2 * i], x[8 * h + 2 * i + 1]);
                }
            for (int h = 0; h < 4; h++)
                for (int i = 0; i < 2; i++) {
                    x[4 * h + i] = _mm256_unpacklo_epi32(a[4 * h + 2 * i], a[4 * h + 2 * i + 1]);
                    x[4 * h + 2 + i] = _mm256_unpackhi_epi32(a[4 * h + 2 * i], a[4 * h + 2 * i + 1]);
                }
            for (int h = 0; h < 8; h++) {
                a[2 * h] = _mm256_unpacklo_epi64(x[2 * h], x[2 * h + 1]);
                a[2 * h + 1] = _mm256_unpackhi_epi64(x[2 * h], x[2 * h + 1]);
            }
            /* a[n]: column n (low lane) and 16 + n (high lane), rows 0-15 */
            uint8_t *dst = tile + 512 * (size_t)b;
            for (int n = 0; n < 16; n += 2) {
                _mm256_storeu_si256((__m256i *)(dst + 16 * n), _mm256_permute2x128_si256(a[n], a[n + 1], 0x20));
                _mm256_storeu_si256((__m256i *)(dst + 256 + 16 * n), _mm256_permute2x128_si256(a[n], a[n + 1], 0x31));
            }
        }
    }
}

static size_t lut_prep_size(int K) {
    return (size_t)K / 8 * 128 + 64;    /* tables, then Σq (unused here, kept for symmetry) */
}

/* Builds the 16 int16 sums for one pair as [16 low bytes | 16 high bytes]. */
static inline __m256i pair_table(int8_t qa, int8_t qb) {
    const __m256i wa = _mm256_setr_epi16(-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i wb = _mm256_setr_epi16(-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0);
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                           0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256i v = _mm256_add_epi16(_mm256_mullo_epi16(wa, _mm256_set1_epi16(qa)),
                                 _mm256_mullo_epi16(wb, _mm256_set1_epi16(qb)));
    v = _mm256_shuffle_epi8(v, split);              /* per lane: lows, highs */
    return _mm256_permute4x64_epi64(v, 0xd8);       /* lows 0-15 | highs 0-15 */
}

static void lut_act_prep(const int8_t *q, int K, void *prep) {
    uint8_t *t = prep;
    for (int c = 0; c < K / 8; c++, t += 128) {
        const int8_t *a = q + 8 * c;
        __m256i p0 = pair_table(a[0], a[1]), p1 = pair_table(a[2], a[3]);
        __m256i p2 = pair_table(a[4], a[5]), p3 = pair_table(a[6], a[7]);
        /* T0 = lows p0|p2, T1 = highs p0|p2, T2 = lows p1|p3, T3 = highs p1|p3 */
        _mm256_store_si256((__m256i *)(t + 0), _mm256_permute2x128_si256(p0, p2, 0x20));
        _mm256_store_si256((__m256i *)(t + 32), _mm256_permute2x128_si256(p0, p2, 0x31));
        _mm256_store_si256((__m256i *)(t + 64), _mm256_permute2x128_si256(p1, p3, 0x20));
        _mm256_store_si256((__m256i *)(t + 96), _mm256_permute2x128_si256(p1, p3, 0x31));
    }
    int32_t s = 0;
    for (int i = 0; i < K; i++) s += q[i];
    memcpy((uint8_t *)prep + (size_t)K / 8 * 128, &s, sizeof s);
}

/* Adds the int16 accumulator of one tile (lane 0 and lane 1 hold different
 * pairs of the same 8 rows) into 8 int32 row sums. */
static inline __m256i widen_rows(__m256i acc16) {
    return _mm256_add_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc16)),
                            _mm256_cvtepi16_epi32(_mm256_extracti128_si256(acc16, 1)));
}

/* Dot products of NT tiles (16 rows each) with T tokens' tables. Each int16
 * lane gains at most 2 x 256 per chunk; widening every 32 chunks (16384)
 * cannot overflow. */
static inline void lut_tile(const uint8_t *w, size_t tile_stride, int NT, int K,
                            const uint8_t *tab, size_t tab_stride, int T, __m256i out[2][4][2]) {
    const __m256i lo4 = _mm256_set1_epi8(0x0f);
    for (int i = 0; i < NT; i++)
        for (int t = 0; t < T; t++) out[i][t][0] = out[i][t][1] = _mm256_setzero_si256();
    const int nc = K / 8;
    for (int c0 = 0; c0 < nc; c0 += 32) {
        const int c1 = c0 + 32 < nc ? c0 + 32 : nc;
        __m256i acc[2][4][2];
        for (int i = 0; i < NT; i++)
            for (int t = 0; t < T; t++) acc[i][t][0] = acc[i][t][1] = _mm256_setzero_si256();
        for (int c = c0; c < c1; c++) {
            __m256i ilo[2], ihi[2];
            for (int i = 0; i < NT; i++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(w + i * tile_stride + 32 * c));
                ilo[i] = _mm256_and_si256(x, lo4);
                ihi[i] = _mm256_and_si256(_mm256_srli_epi16(x, 4), lo4);
            }
            for (int t = 0; t < T; t++) {
                const uint8_t *tc = tab + t * tab_stride + 128 * c;
                const __m256i t0 = _mm256_load_si256((const __m256i *)tc);
                const __m256i t1 = _mm256_load_si256((const __m256i *)(tc + 32));
                const __m256i t2 = _mm256_load_si256((const __m256i *)(tc + 64));
                const __m256i t3 = _mm256_load_si256((const __m256i *)(tc + 96));
                for (int i = 0; i < NT; i++) {
                    __m256i al = _mm256_shuffle_epi8(t0, ilo[i]), ah = _mm256_shuffle_epi8(t1, ilo[i]);
                    __m256i bl = _mm256_shuffle_epi8(t2, ihi[i]), bh = _mm256_shuffle_epi8(t3, ihi[i]);
                    acc[i][t][0] = _mm256_add_epi16(acc[i][t][0],
                        _mm256_add_epi16(_mm256_unpacklo_epi8(al, ah), _mm256_unpacklo_epi8(bl, bh)));
                    acc[i][t][1] = _mm256_add_epi16(acc[i][t][1],
                        _mm256_add_epi16(_mm256_unpackhi_epi8(al, ah), _mm256_unpackhi_epi8(bl, bh)));
                }
            }
        }
        /* unpacklo gives rows 0-7, unpackhi rows 8-15 (per lane). */
        for (int i = 0; i < NT; i++)
            for (int t = 0; t < T; t++) {
                out[i][t][0] = _mm256_add_epi32(out[i][t][0], widen_rows(acc[i][t][0]));
                out[i][t][1] = _mm256_add_epi32(out[i][t][1], widen_rows(acc[i][t][1]));
            }
    }
}

static void store_rows(const __m256i v[2], int m, int m0, int m1, int32_t *dot) {
    int32_t rows[16];
    _mm256_storeu_si256((__m256i *)rows, v[0]);
    _mm256_storeu_si256((__m256i *)(rows + 8), v[1]);
    for (int r = 0; r < 16 && m + r < m1; r++) dot[m + r - m0] = rows[r];
}

static void lut_gemm(const void *packed, int K, int M, const void *prep, int N,
                     int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    const uint8_t *w = packed;
    const uint8_t *tab = prep;
    const size_t ts = (size_t)K * LUT_ROWS / 4, ps = lut_prep_size(K);
    __m256i out[2][4][2];
    for (int n = 0; n < N; n += 4) {
        const int T = N - n < 4 ? N - n : 4;
        int m = m0;
        for (; m + LUT_ROWS < m1; m += 2 * LUT_ROWS) {
            /* Two tiles per pass share every table load. The tail tile of
             * M may be partial: it is padded in the packed data. */
            const uint8_t *wt = w + (size_t)(m / LUT_ROWS) * ts;
            switch (T) {
            case 1: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 1, out); break;
            case 2: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 2, out); break;
            case 3: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 3, out); break;
            default: lut_tile(wt, ts, 2, K, tab + n * ps, ps, 4, out); break;
            }
            for (int t = 0; t < T; t++) {
                store_rows(out[0][t], m, m0, m1, dot + (size_t)(n + t) * ldd);
                store_rows(out[1][t], m + LUT_ROWS, m0, m1, dot + (size_t)(n + t) * ldd);
            }
        }
        for (; m < m1; m += LUT_ROWS) {
            const uint8_t *wt = w + (size_t)(m / LUT_ROWS) * ts;
            switch (T) {
            case 1: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 1, out); break;
            case 2: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 2, out); break;
            case 3: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 3, out); break;
            default: lut_tile(wt, ts, 1, K, tab + n * ps, ps, 4, out); break;
            }
            for (int t = 0; t < T; t++) store_rows(out[0][t], m, m0, m1, dot + (size_t)(n + t) * ldd);
        }
    }
}

static void lut_gemv(const void *packed, int K, int M, const void *prep,
                     int m0, int m1, int32_t *dot) {
    lut_gemm(packed, K, M, prep, 1, m0, m1, dot, 0);
}

BN_EXPORT_TERNARY_FORMAT(bn_avx2_lut, "i2s-avx2-lut", LUT_ROWS, lut_packed_size, lut_repack,
                         lut_prep_size, lut_act_prep, lut_gemv, lut_gemm);

#endif
