/* The "neon-tl-sdot" table (ARMv8.2 dot product): the t3 layout's
 * vqtbl1q gemv of ternary_neon_tl.c, and for a batch each tile expanded
 * once to int8 weights that sdot multiplies with every token's inputs (no
 * second copy of the weights: an expansion is 12 KB on the stack), which
 * reads only the tokens' q: a batch is prepared without the tables.
 * dispatch.c offers it only where the CPU has ASIMDDP. */
#include "neon_common.h"
#include "ternary_tl.h"

#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#include <arm_neon.h>

/* Expansions of EXP_CHUNKS chunks: per "quad" s (k = 4s..4s+3 of the
 * expansion) eight vectors V0..V7, V_v holding rows 4v..4v+3 of the tile,
 * 4 weights (-1..1) each, row by row: sdot with the token's 4 inputs
 * broadcast is then one row's 4-term dot per int32 lane, exact. */
enum { EXP_CHUNKS = 16, QUADS_PER_CHUNK = BN_T3_CHUNK_K / 4, TOK = 2, TOK_BLOCK = 64 };

static const int8_t digit_table[3][16] = {
    /* w0, w1, w2 of index i (sign +), bn_t3_decode */
    {0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0},
    {0, 0, 1, 1, 1, -1, -1, -1, 0, 0, 0, 1, 1, 1, 0, 0},
    {0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, -1, 0, 1, 0, 0},
};

static void expand_chunk(const uint8_t *wc, int8_t *quads) {
    const uint8x16_t lo4 = vdupq_n_u8(0x0f);
    const int8x16_t d0 = vld1q_s8(digit_table[0]), d1 = vld1q_s8(digit_table[1]);
    const int8x16_t d2 = vld1q_s8(digit_table[2]);
    for (int half = 0; half < 2; half++) {
        const uint8x16_t S = vld1q_u8(wc + 128 + 16 * half);
        int8x16_t kv[BN_T3_CHUNK_K];    /* kv[k]: lane r = weight of row 16·half + r */
        for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
            const uint8x16_t x = vld1q_u8(wc + 32 * (j / 2) + 16 * half);
            const uint8x16_t idx = j % 2 ? vshrq_n_u8(x, 4) : vandq_u8(x, lo4);
            const int8x16_t m = vreinterpretq_s8_u8(vtstq_u8(S, vdupq_n_u8((uint8_t)(1u << j))));
            kv[3 * j] = vsubq_s8(veorq_s8(vqtbl1q_s8(d0, idx), m), m);
            kv[3 * j + 1] = vsubq_s8(veorq_s8(vqtbl1q_s8(d1, idx), m), m);
            kv[3 * j + 2] = vsubq_s8(veorq_s8(vqtbl1q_s8(d2, idx), m), m);
        }
        for (int s = 0; s < QUADS_PER_CHUNK; s++) {
            const int8x16_t *k4 = kv + 4 * s;
            const int16x8_t a = vreinterpretq_s16_s8(vzip1q_s8(k4[0], k4[1]));
            const int16x8_t b = vreinterpretq_s16_s8(vzip1q_s8(k4[2], k4[3]));
            const int16x8_t c = vreinterpretq_s16_s8(vzip2q_s8(k4[0], k4[1]));
            const int16x8_t d = vreinterpretq_s16_s8(vzip2q_s8(k4[2], k4[3]));
            int8_t *v = quads + 128 * (size_t)s + 64 * half;
            vst1q_s8(v, vreinterpretq_s8_s16(vzip1q_s16(a, b)));
            vst1q_s8(v + 16, vreinterpretq_s8_s16(vzip2q_s16(a, b)));
            vst1q_s8(v + 32, vreinterpretq_s8_s16(vzip1q_s16(c, d)));
            vst1q_s8(v + 48, vreinterpretq_s8_s16(vzip2q_s16(c, d)));
        }
    }
}

/* The tile's 32 rows against T tokens over quads [0, nq); q: the tokens'
 * inputs at the expansion's first k (token t at q + t·as);
 * part[t][r] += dots. */
static inline __attribute__((always_inline)) void
quad_kernel(const int8_t *quads, int nq, const int8_t *q, size_t as, const int T,
            int32_t part[][BN_T3_ROWS]) {
    int32x4_t acc[TOK][8];
#pragma GCC unroll 2
    for (int t = 0; t < T; t++)
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) acc[t][v] = vdupq_n_s32(0);
    for (int s = 0; s < nq; s++) {
        int8x16_t w[8];
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++) w[v] = vld1q_s8(quads + 128 * (size_t)s + 16 * v);
#pragma GCC unroll 2
        for (int t = 0; t < T; t++) {
            int32_t q4;
            memcpy(&q4, q + (size_t)t * as + 4 * (size_t)s, 4);
            const int8x16_t qv = vreinterpretq_s8_s32(vdupq_n_s32(q4));
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) acc[t][v] = vdotq_s32(acc[t][v], w[v], qv);
        }
    }
#pragma GCC unroll 2
    for (int t = 0; t < T; t++)
#pragma GCC unroll 8
        for (int v = 0; v < 8; v++)
            vst1q_s32(part[t] + 4 * v, vaddq_s32(vld1q_s32(part[t] + 4 * v), acc[t][v]));
}

static void tl_gemm_sdot(const void *packed, int K, int M, const void *act, int N, int m0,
                         int m1, int32_t *dot, int ldd) {
    (void)M;
    const int nc = bn_t3_chunks(K);
    const size_t tile_bytes = bn_t3_tile_bytes(K), as = bn_t3_act_size(K);
    int8_t quads[EXP_CHUNKS * QUADS_PER_CHUNK * 128];
    int32_t part[TOK_BLOCK][BN_T3_ROWS];
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
                for (int t = 0; t < nb; t += TOK) {
                    if (nb - t >= TOK)
                        quad_kernel(quads, nq, qk + (size_t)t * as, as, TOK, part + t);
                    else
                        quad_kernel(quads, nq, qk + (size_t)t * as, as, 1, part + t);
                }
            }
            for (int t = 0; t < nb; t++)
                memcpy(dot + (size_t)(n0 + t) * (size_t)ldd + (m - m0), part[t],
                       (size_t)rows * sizeof(int32_t));
        }
    }
}

static size_t tl_act_size(int K) {
    return bn_t3_act_size(K);
}

BN_DEFINE_TERNARY_FORMAT_BATCH(neon_tl_dp, "t3-neon-sdot", BN_T3_ROWS, bn_t3_packed_size,
                               bn_t3_neon_pack, tl_act_size, bn_t3_neon_act_prep,
                               bn_t3_neon_act_prep_batch,
                               bn_t3_neon_gemv, tl_gemm_sdot);
BN_NEON_TABLE(neon_tl_dp, neon_tl_dp_kernels, "neon-tl-sdot");

const bn_kernels *bn_kernels_neon_tl_sdot(void) {
    return &neon_tl_dp_kernels;
}

#else

const bn_kernels *bn_kernels_neon_tl_sdot(void) {
    return NULL;
}

#endif
