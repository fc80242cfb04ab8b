/* The "neon-tl" table (plain ARMv8.0 Advanced SIMD): the 1.67-bit t3 layout
 * (ternary_tl.h; docs/FORMAT.md, T3 lookup layout) with vqtbl1q table
 * lookups. A 16-byte vector is 16 rows of a tile, so a tile is two halves.
 * gemv: per chunk and half, each group's indices are looked up in the
 * group's L and H tables, negated where the sign bit is set, and summed in
 * int8 over the chunk's 8 groups (|ΣL| <= 120, |ΣH| <= 96), then widened:
 * int16 ΣL + 31·ΣH (<= 3096 per chunk, 8 chunks <= 24768), then int32.
 * gemm: the tile stays in cache while every token of the batch runs the
 * same lookups (the tables are in each token's prepared input); with sdot,
 * ternary_neon_tl_dotprod.c expands tiles instead. Pack (bn_t3_pack's
 * bytes) and the prepared input (bn_t3_act_prep_ref's) are built here for
 * both. */
#include "neon_common.h"
#include "ternary_tl.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* ---- the prepared input (bn_t3_act_prep_ref's bytes) ------------------------------ */

void bn_t3_neon_act_prep_batch(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    const size_t qb = bn_t3_q_bytes(K);     /* a multiple of 64 */
    memcpy(a, q, (size_t)K);
    memset(a + K, 0, bn_t3_table_offset(K) - (size_t)K);
    int32x4_t acc = vdupq_n_s32(0);
    for (size_t i = 0; i < qb; i += 16)
        acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8((const int8_t *)a + i)));
    const int32_t sum = vaddvq_s32(acc);
    memcpy(a + qb, &sum, sizeof sum);
}

/* A group's 16 entries in two int16x8: T = w0·q0 + w1·q1 + w2·q2 with the
 * weights of index i (bn_t3_decode, sign +; entries 14, 15 zero) in W.
 * H = round(T / 31) by vqrdmulh with 1057: (2·T·1057 + 2^15) >> 16 =
 * (T·1057 + 2^14) >> 15, the vpmulhrsw of ternary_avx2_tl.c, whose comment
 * shows it is round(T / 31) for |T| <= 384; L = T − 31·H. */
void bn_t3_neon_act_prep(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    bn_t3_neon_act_prep_batch(q, K, a);
    int16_t wv[3][16];
    for (int i = 0; i < 16; i++) {
        int w[3] = {0, 0, 0};
        if (i < 14) bn_t3_decode(i, 0, w);
        for (int j = 0; j < 3; j++) wv[j][i] = (int16_t)w[j];
    }
    const int16x8_t w0l = vld1q_s16(wv[0]), w0h = vld1q_s16(wv[0] + 8);
    const int16x8_t w1l = vld1q_s16(wv[1]), w1h = vld1q_s16(wv[1] + 8);
    const int16x8_t w2l = vld1q_s16(wv[2]), w2h = vld1q_s16(wv[2] + 8);
    const int8_t *qp = (const int8_t *)a;   /* zero-padded to whole chunks */
    int8_t *tab = (int8_t *)(a + bn_t3_table_offset(K));
    const int groups = bn_t3_chunks(K) * BN_T3_CHUNK_GROUPS;
    for (int g = 0; g < groups; g++, tab += BN_T3_TABLE_BYTES) {
        const int16_t q0 = qp[3 * g], q1 = qp[3 * g + 1], q2 = qp[3 * g + 2];
        const int16x8_t tl = vmlaq_n_s16(vmlaq_n_s16(vmulq_n_s16(w0l, q0), w1l, q1), w2l, q2);
        const int16x8_t th = vmlaq_n_s16(vmlaq_n_s16(vmulq_n_s16(w0h, q0), w1h, q1), w2h, q2);
        const int16x8_t hl = vqrdmulhq_n_s16(tl, 1057), hh = vqrdmulhq_n_s16(th, 1057);
        const int16x8_t ll = vmlsq_n_s16(tl, hl, BN_T3_BASE), lh = vmlsq_n_s16(th, hh, BN_T3_BASE);
        vst1q_s8(tab, vcombine_s8(vmovn_s16(ll), vmovn_s16(lh)));
        vst1q_s8(tab + 16, vcombine_s8(vmovn_s16(hl), vmovn_s16(hh)));
    }
}

/* ---- pack: I2_S to the t3 layout, 16 rows (half a tile) at a time ----------------- */

/* As ternary_avx2_tl.c's pack: where K % 128 == 0 every row is whole I2_S
 * blocks, byte p of a block holding the codes of k = p, 32 + p, 64 + p,
 * 96 + p in bits 7-6 down to 1-0 (src/i2s.h). 16 rows' blocks are
 * transposed so that a vector holds one k of 16 rows (the layout's lanes
 * in one half of a tile); a group's v = 9·w0 + 3·w1 + w2 gives index |v|
 * and sign v < 0, bn_t3_pack's bytes (test_kernels_tl.c). Other K take
 * bn_t3_pack. */

/* y[j] byte i = x[i] byte j: butterflies of trn on 1, 2, 4, 8 bytes. */
static inline void transpose16(uint8x16_t x[16]) {
    for (int k = 0; k < 16; k += 2) {
        const uint8x16_t a = x[k], b = x[k + 1];
        x[k] = vtrn1q_u8(a, b);
        x[k + 1] = vtrn2q_u8(a, b);
    }
    for (int k = 0; k < 16; k++) {
        if (k & 2) continue;
        const uint16x8_t a = vreinterpretq_u16_u8(x[k]), b = vreinterpretq_u16_u8(x[k + 2]);
        x[k] = vreinterpretq_u8_u16(vtrn1q_u16(a, b));
        x[k + 2] = vreinterpretq_u8_u16(vtrn2q_u16(a, b));
    }
    for (int k = 0; k < 16; k++) {
        if (k & 4) continue;
        const uint32x4_t a = vreinterpretq_u32_u8(x[k]), b = vreinterpretq_u32_u8(x[k + 4]);
        x[k] = vreinterpretq_u8_u32(vtrn1q_u32(a, b));
        x[k + 4] = vreinterpretq_u8_u32(vtrn2q_u32(a, b));
    }
    for (int k = 0; k < 8; k++) {
        const uint64x2_t a = vreinterpretq_u64_u8(x[k]), b = vreinterpretq_u64_u8(x[k + 8]);
        x[k] = vreinterpretq_u8_u64(vtrn1q_u64(a, b));
        x[k + 8] = vreinterpretq_u8_u64(vtrn2q_u64(a, b));
    }
}

/* An I2_S code's weight: 0 -> -1, 1 -> 0, 2 -> +1, 3 -> 0. */
static const int8_t code_weight[16] = {-1, 0, 1, 0};

/* One block (128 k) of 16 rows: blk[r] = row r's 32 bytes. w[k] lane r =
 * the weight of row r at k. */
static void block_weights(const uint8_t *const blk[16], int8x16_t *w) {
    const int8x16_t cw = vld1q_s8(code_weight);
    const uint8x16_t three = vdupq_n_u8(3);
    for (int h = 0; h < 2; h++) {       /* bytes p = 16h .. 16h + 15 */
        uint8x16_t t[16];
        for (int r = 0; r < 16; r++) t[r] = vld1q_u8(blk[r] + 16 * h);
        transpose16(t);
        for (int i = 0; i < 16; i++) {
            const int p = 16 * h + i;
            w[p] = vqtbl1q_s8(cw, vshrq_n_u8(t[i], 6));
            w[32 + p] = vqtbl1q_s8(cw, vandq_u8(vshrq_n_u8(t[i], 4), three));
            w[64 + p] = vqtbl1q_s8(cw, vandq_u8(vshrq_n_u8(t[i], 2), three));
            w[96 + p] = vqtbl1q_s8(cw, vandq_u8(t[i], three));
        }
    }
}

/* Chunks [0, n) of a segment's weights w (24 k each) into half h of the
 * tile's chunks at out. */
static void segment_chunks(const int8x16_t *w, int n, int h, uint8_t *out) {
    for (int c = 0; c < n; c++, w += BN_T3_CHUNK_K, out += BN_T3_CHUNK_BYTES) {
        uint8x16_t idx[BN_T3_CHUNK_GROUPS], signs = vdupq_n_u8(0);
        for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
            const int8x16_t t =
                vaddq_s8(vaddq_s8(w[3 * j], w[3 * j]), vaddq_s8(w[3 * j], w[3 * j + 1]));
            const int8x16_t v = vaddq_s8(vaddq_s8(t, t), vaddq_s8(t, w[3 * j + 2]));
            idx[j] = vreinterpretq_u8_s8(vabsq_s8(v));
            signs = vorrq_u8(signs, vandq_u8(vcltzq_s8(v), vdupq_n_u8((uint8_t)(1u << j))));
        }
        for (int p = 0; p < 4; p++)     /* index <= 13 fits 4 bits */
            vst1q_u8(out + 32 * p + 16 * h, vorrq_u8(idx[2 * p], vshlq_n_u8(idx[2 * p + 1], 4)));
        vst1q_u8(out + 128 + 16 * h, signs);
    }
}

/* Segments of 3 blocks: 384 k = 16 whole chunks. Rows past M read a block
 * of code 1 (weight 0): the padding rows come out as bn_t3_pack's zeros. */
enum { PACK_SEG_BLOCKS = 3, PACK_SEG_K = PACK_SEG_BLOCKS * 128 };

void bn_t3_neon_pack(const uint8_t *i2s, int K, int M, void *packed) {
    if (K % 128 != 0) {
        bn_t3_pack(i2s, K, M, packed);
        return;
    }
    uint8_t zero_block[32];
    memset(zero_block, 0x55, sizeof zero_block);
    const int nc = bn_t3_chunks(K);
    const size_t tile_bytes = bn_t3_tile_bytes(K), row_bytes = (size_t)K / 4;
    int8x16_t w[PACK_SEG_K];    /* 6 KB: a segment's weights, k by k */
    for (int m = 0; m < M; m += BN_T3_ROWS) {
        uint8_t *tile = (uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        for (int h = 0; h < 2; h++)
            for (int k0 = 0; k0 < K; k0 += PACK_SEG_K) {
                for (int b = 0; b < PACK_SEG_BLOCKS; b++) {
                    int8x16_t *wb = w + 128 * b;
                    if (k0 + 128 * b >= K) {
                        for (int k = 0; k < 128; k++) wb[k] = vdupq_n_s8(0);
                        continue;
                    }
                    const uint8_t *blk[16];
                    const size_t off = (size_t)(k0 + 128 * b) / 4;
                    for (int r = 0; r < 16; r++) {
                        const int row = m + 16 * h + r;
                        blk[r] = row < M ? i2s + (size_t)row * row_bytes + off : zero_block;
                    }
                    block_weights(blk, wb);
                }
                const int c0 = k0 / BN_T3_CHUNK_K;
                const int seg_chunks = PACK_SEG_K / BN_T3_CHUNK_K;
                segment_chunks(w, nc - c0 < seg_chunks ? nc - c0 : seg_chunks, h,
                               tile + (size_t)c0 * BN_T3_CHUNK_BYTES);
            }
    }
}

/* ---- gemv and the table gemm ------------------------------------------------------- */

/* Rows [0, 32) of one tile against one prepared input: out[r] = dot. */
static void tile_dots(const uint8_t *wt, int nc, const int8_t *tabs, int32_t out[BN_T3_ROWS]) {
    const uint8x16_t lo4 = vdupq_n_u8(0x0f);
    const int8x16_t base = vdupq_n_s8(BN_T3_BASE);
    for (int half = 0; half < 2; half++) {
        int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0;
        for (int c0 = 0; c0 < nc; c0 += 8) {
            const int c1 = c0 + 8 < nc ? c0 + 8 : nc;
            int16x8_t s_lo = vdupq_n_s16(0), s_hi = s_lo;
            for (int c = c0; c < c1; c++) {
                const uint8_t *wc = wt + (size_t)c * BN_T3_CHUNK_BYTES + 16 * half;
                const int8_t *tc = tabs + (size_t)c * BN_T3_CHUNK_GROUPS * BN_T3_TABLE_BYTES;
                __builtin_prefetch(wc + 4096);
                __builtin_prefetch(wc + 4096 + 64);
                __builtin_prefetch(wc + 4096 + 128);
                const uint8x16_t S = vld1q_u8(wc + 128);
                int8x16_t L = vdupq_n_s8(0), H = L;
                /* unrolled: the sign masks and table offsets become constants
                 * (rolled, each group rebuilt its mask with a shift and a dup) */
#pragma GCC unroll 8
                for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
                    const uint8x16_t x = vld1q_u8(wc + 32 * (j / 2));
                    const uint8x16_t idx = j % 2 ? vshrq_n_u8(x, 4) : vandq_u8(x, lo4);
                    /* 0xff where the group is negative: (v ^ m) - m = -v */
                    const int8x16_t m = vreinterpretq_s8_u8(vtstq_u8(S, vdupq_n_u8((uint8_t)(1u << j))));
                    const int8x16_t l = vqtbl1q_s8(vld1q_s8(tc + 32 * j), idx);
                    const int8x16_t h = vqtbl1q_s8(vld1q_s8(tc + 32 * j + 16), idx);
                    L = vaddq_s8(L, vsubq_s8(veorq_s8(l, m), m));
                    H = vaddq_s8(H, vsubq_s8(veorq_s8(h, m), m));
                }
                s_lo = vmlal_s8(vaddw_s8(s_lo, vget_low_s8(L)), vget_low_s8(H), vget_low_s8(base));
                s_hi = vmlal_high_s8(vaddw_high_s8(s_hi, L), H, base);
            }
            a0 = vaddw_s16(a0, vget_low_s16(s_lo));
            a1 = vaddw_high_s16(a1, s_lo);
            a2 = vaddw_s16(a2, vget_low_s16(s_hi));
            a3 = vaddw_high_s16(a3, s_hi);
        }
        vst1q_s32(out + 16 * half, a0);
        vst1q_s32(out + 16 * half + 4, a1);
        vst1q_s32(out + 16 * half + 8, a2);
        vst1q_s32(out + 16 * half + 12, a3);
    }
}

static void tl_gemm(const void *packed, int K, int M, const void *act, int N, int m0, int m1,
                    int32_t *dot, int ldd) {
    (void)M;
    const int nc = bn_t3_chunks(K);
    const size_t tile_bytes = bn_t3_tile_bytes(K), as = bn_t3_act_size(K);
    const size_t toff = bn_t3_table_offset(K);
    int32_t out[BN_T3_ROWS];
    for (int m = m0; m < m1; m += BN_T3_ROWS) {
        const uint8_t *wt = (const uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        const int rows = m1 - m < BN_T3_ROWS ? m1 - m : BN_T3_ROWS;
        for (int n = 0; n < N; n++) {
            tile_dots(wt, nc, (const int8_t *)act + (size_t)n * as + toff, out);
            memcpy(dot + (size_t)n * (size_t)ldd + (m - m0), out, (size_t)rows * sizeof *out);
        }
    }
}

void bn_t3_neon_gemv(const void *packed, int K, int M, const void *act, int m0, int m1,
                     int32_t *dot) {
    tl_gemm(packed, K, M, act, 1, m0, m1, dot, 0);
}

static size_t tl_act_size(int K) {
    return bn_t3_act_size(K);
}

/* No act_prep_batch: this gemm runs the tables' lookups for every token. */
BN_DEFINE_TERNARY_FORMAT(neon_tl, "t3-neon", BN_T3_ROWS, bn_t3_packed_size, bn_t3_neon_pack,
                         tl_act_size, bn_t3_neon_act_prep, bn_t3_neon_gemv, tl_gemm);
BN_NEON_TABLE(neon_tl, neon_tl_kernels, "neon-tl");

const bn_kernels *bn_kernels_neon_tl(void) {
    return &neon_tl_kernels;
}

#else /* not aarch64: this variant does not exist */

const bn_kernels *bn_kernels_neon_tl(void) {
    return NULL;
}

#endif
