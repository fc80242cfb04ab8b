/* NEON lookup-table kernels for plain ARMv8.0 Advanced SIMD (CPUs with the
 * ARMv8.2 dot-product instructions get ternary_neon_dotprod.c instead).
 *
 * Layout ("nibble tiles"): rows are taken 32 at a time (a tile; the last one
 * padded with zero weights). Weights are taken in pairs along K; a pair
 * (c0, c1) of I2_S codes becomes the 4-bit index 3*c0 + c1 (0..8). For step s
 * of a tile (weights 4s..4s+3) two 16-byte vectors hold rows 0-15 and 16-31:
 * byte r = index(pair 2s) | index(pair 2s+1) << 4. So 2 bits per weight, as
 * in the file, and one vector load feeds 16 rows x 4 weights.
 *
 * Tables: one vqtbl1q_s8 looks up 16 rows against the same activation pair,
 * so the lanes are rows and the accumulators are per row (no horizontal sums).
 * A pair sum w0*a0 + w1*a1 spans [-256, 256] and does not fit a byte, so each
 * activation is split a = 16*hi + lo (hi = a >> 4 in [-8, 7], lo = a & 15) and
 * each pair gets two 16-byte tables, w0*lo0 + w1*lo1 in [-30, 30] and
 * w0*hi0 + w1*hi1 in [-16, 16]. Those add in int8 lanes for 4 lookups
 * (|sum| <= 120), in int16 for a 128-weight block (|lo| <= 1920,
 * |16*hi| <= 16384) and in int32 beyond: exact for every int8 input and K. */
#include "i2s.h"
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

enum { TILE = 32 };

static size_t lut_packed_size(int K, int M) {
    size_t tiles = (size_t)(M + TILE - 1) / TILE;
    return tiles * TILE * (size_t)K / 4;
}

/* Row r of a tile, one 128-weight block: decode the 32 I2_S bytes into codes
 * w + 1 (0..2: the canonical form of src/i2s.h, code 3 read as weight 0)
 * and write the block's 32 step bytes, which lie TILE bytes apart. */
static void repack_block(const uint8_t *src, uint8_t *dst) {
    uint8_t blk[32], c[128];
    for (int p = 0; p < 32; p++) blk[p] = bn_i2s_canonical_byte(src[p]);
    for (int k = 0; k < 128; k++) c[k] = (uint8_t)bn_i2s_code(blk, (uint64_t)k);
    for (int s = 0; s < 32; s++) {
        const uint8_t *k = c + 4 * s;
        dst[s * TILE] = (uint8_t)((3 * k[0] + k[1]) | (3 * k[2] + k[3]) << 4);
    }
}

static void lut_repack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const size_t row_bytes = (size_t)K / 4;
    const size_t tile_bytes = TILE * row_bytes;
    const int tiles = (M + TILE - 1) / TILE;
    for (int t = 0; t < tiles; t++) {
        uint8_t *dst = out + (size_t)t * tile_bytes;
        for (int r = 0; r < TILE; r++) {
            const int m = t * TILE + r;
            if (m >= M) {       /* padding rows: index 4 = (0, 0), table entry 0 */
                for (int s = 0; s < K / 4; s++) dst[(size_t)s * TILE + r] = 4 | 4 << 4;
                continue;
            }
            const uint8_t *row = i2s + (size_t)m * row_bytes;
            for (int b = 0; b < K / 128; b++)
                repack_block(row + 32 * (size_t)b, dst + (size_t)b * 32 * TILE + r);
        }
    }
}

/* Per step: lo and hi tables of pair 2s, then of pair 2s+1 (64 bytes). */
static size_t lut_act_prep_size(int K) {
    return (size_t)K * 16;
}

/* Weight of the first / second element of index i = 3*c0 + c1 (i < 9); the
 * unused entries 9-15 are 0. */
static const int8_t W_FIRST[16] = {-1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
static const int8_t W_SECOND[16] = {-1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0, 0, 0, 0, 0, 0};

static void lut_act_prep(const int8_t *q, int K, void *prep) {
    int8_t *t = prep;
    const int8x16_t w0 = vld1q_s8(W_FIRST), w1 = vld1q_s8(W_SECOND);
    for (int j = 0; j < K / 2; j++) {
        const int a0 = q[2 * j], a1 = q[2 * j + 1];
        /* a = 16*(a >> 4) + (a & 15): arithmetic shift of a negative int */
        int8x16_t lo = vmulq_s8(w0, vdupq_n_s8((int8_t)(a0 & 15)));
        lo = vmlaq_s8(lo, w1, vdupq_n_s8((int8_t)(a1 & 15)));
        int8x16_t hi = vmulq_s8(w0, vdupq_n_s8((int8_t)(a0 >> 4)));
        hi = vmlaq_s8(hi, w1, vdupq_n_s8((int8_t)(a1 >> 4)));
        vst1q_s8(t + 32 * j, lo);
        vst1q_s8(t + 32 * j + 16, hi);
    }
}

/* Two pair lookups for 16 rows (one weight vector) in the lo and hi tables
 * of a step: T = {lo(2s), hi(2s), lo(2s+1), hi(2s+1)}. */
static inline void lookup16(const int8x16x4_t *T, uint8x16_t v, int8x16_t *lo, int8x16_t *hi) {
    const uint8x16_t i0 = vandq_u8(v, vdupq_n_u8(0x0f)), i1 = vshrq_n_u8(v, 4);
    *lo = vaddq_s8(vqtbl1q_s8(T->val[0], i0), vqtbl1q_s8(T->val[2], i1));
    *hi = vaddq_s8(vqtbl1q_s8(T->val[1], i0), vqtbl1q_s8(T->val[3], i1));
}

/* lo + 16*hi of 8 rows (exact in int16, see the top), added into int32. */
static inline void flush8(int32x4_t *a, int32x4_t *b, int16x8_t lo, int16x8_t hi) {
    const int16x8_t v = vaddq_s16(lo, vshlq_n_s16(hi, 4));
    *a = vaddw_s16(*a, vget_low_s16(v));
    *b = vaddw_high_s16(*b, v);
}

/* One tile of 32 rows against one prepared token: out[r] for r < 32.
 * Written out by hand (no small arrays or 2-trip loops) so that every
 * accumulator stays in a register. */
static void lut_tile(const uint8_t *w, int K, const int8_t *tab, int32_t out[TILE]) {
    int32x4_t c0 = vdupq_n_s32(0), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (int b = 0; b < K / 128; b++) {
        /* int16 sums of rows 0-7, 8-15, 16-23, 24-31: lo tables (l) and hi (h) */
        int16x8_t l0 = vdupq_n_s16(0), l1 = l0, l2 = l0, l3 = l0;
        int16x8_t h0 = l0, h1 = l0, h2 = l0, h3 = l0;
        for (int s = b * 32; s < b * 32 + 32; s += 2) {
            const int8x16x4_t T0 = vld1q_s8_x4(tab + (size_t)s * 64);
            const int8x16x4_t T1 = vld1q_s8_x4(tab + (size_t)s * 64 + 64);
            const uint8_t *ws = w + (size_t)s * TILE;
            int8x16_t la, ga, lb, gb, lx, gx;      /* a: rows 0-15, b: rows 16-31 */
            lookup16(&T0, vld1q_u8(ws), &la, &ga);
            lookup16(&T0, vld1q_u8(ws + 16), &lb, &gb);
            lookup16(&T1, vld1q_u8(ws + 32), &lx, &gx);
            la = vaddq_s8(la, lx);                 /* 4 lookups: |lo| <= 120 */
            ga = vaddq_s8(ga, gx);                 /*            |hi| <= 64  */
            lookup16(&T1, vld1q_u8(ws + 48), &lx, &gx);
            lb = vaddq_s8(lb, lx);
            gb = vaddq_s8(gb, gx);
            l0 = vaddw_s8(l0, vget_low_s8(la));
            l1 = vaddw_high_s8(l1, la);
            l2 = vaddw_s8(l2, vget_low_s8(lb));
            l3 = vaddw_high_s8(l3, lb);
            h0 = vaddw_s8(h0, vget_low_s8(ga));
            h1 = vaddw_high_s8(h1, ga);
            h2 = vaddw_s8(h2, vget_low_s8(gb));
            h3 = vaddw_high_s8(h3, gb);
        }
        flush8(&c0, &c1, l0, h0);
        flush8(&c2, &c3, l1, h1);
        flush8(&c4, &c5, l2, h2);
        flush8(&c6, &c7, l3, h3);
    }
    vst1q_s32(out, c0);
    vst1q_s32(out + 4, c1);
    vst1q_s32(out + 8, c2);
    vst1q_s32(out + 12, c3);
    vst1q_s32(out + 16, c4);
    vst1q_s32(out + 20, c5);
    vst1q_s32(out + 24, c6);
    vst1q_s32(out + 28, c7);
}

static void lut_gemm(const void *packed, int K, int M, const void *prep, int N,
                     int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    const size_t tile_bytes = TILE * (size_t)K / 4;
    const size_t prep_bytes = lut_act_prep_size(K);
    int32_t out[TILE];
    /* Tile outer, token inner: a tile's weights stay in cache for all N. */
    for (int m = m0; m < m1; m += TILE) {
        const uint8_t *w = (const uint8_t *)packed + (size_t)(m / TILE) * tile_bytes;
        const int rows = m1 - m < TILE ? m1 - m : TILE;
        for (int n = 0; n < N; n++) {
            lut_tile(w, K, (const int8_t *)prep + (size_t)n * prep_bytes, out);
            memcpy(dot + (size_t)n * (size_t)ldd + (m - m0), out, (size_t)rows * sizeof *out);
        }
    }
}

static void lut_gemv(const void *packed, int K, int M, const void *prep,
                     int m0, int m1, int32_t *dot) {
    lut_gemm(packed, K, M, prep, 1, m0, m1, dot, 0);
}

BN_DEFINE_TERNARY_FORMAT(neon_lut, "i2s-neon-lut", TILE, lut_packed_size, lut_repack,
                         lut_act_prep_size, lut_act_prep, lut_gemv, lut_gemm);
BN_NEON_TABLE(neon_lut, neon_lut_kernels, "neon-lut");

const bn_kernels *bn_kernels_neon_lut(void) {
    return &neon_lut_kernels;
}

#else /* not aarch64: this variant does not exist */

const bn_kernels *bn_kernels_neon_lut(void) {
    return NULL;
}

#endif
