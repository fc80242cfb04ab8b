/* The t3 layout in plain C (ternary_tl.h; docs/FORMAT.md, T3 lookup layout):
 * the load-time pack from I2_S that every t3 record uses, the prepared input
 * whose bytes every variant's act_prep reproduces (and its table-less
 * prefix for batches), and products written for clarity: the "ref-tl"
 * record, which the SIMD t3 kernels are tested against (and ternary_ref.c
 * against them all). */
#include "ternary_tl.h"

#include <string.h>

#include "format_records.h"
#include "i2s.h"

/* I2_S weights are decoded 3 blocks at a time: 384 = 128 groups = 16
 * chunks, so a segment never splits a group or a chunk. */
enum { SEG_K = 3 * 128 };

/* I2_S codes (0..3; 3 reads as 0) of weights [k0, k0 + SEG_K) of the row
 * starting at flat index row, code 1 (zero) past K: whole blocks byte by
 * byte where the row lies on the block grid (K % 128 == 0, as the forward
 * pass gives), else one by one (src/i2s.h). */
static void decode_segment(const uint8_t *i2s, uint64_t row, int K, int k0, uint8_t *c) {
    int k = 0;
    if (row % 128 == 0) {
        for (; k + 128 <= SEG_K && k0 + k + 128 <= K; k += 128) {
            const uint8_t *blk = i2s + bn_i2s_byte_index(row + (uint64_t)(k0 + k));
            for (int p = 0; p < 32; p++) {
                c[k + p] = blk[p] >> 6;
                c[k + 32 + p] = blk[p] >> 4 & 3;
                c[k + 64 + p] = blk[p] >> 2 & 3;
                c[k + 96 + p] = blk[p] & 3;
            }
        }
    }
    for (; k < SEG_K; k++)
        c[k] = k0 + k < K ? (uint8_t)bn_i2s_code(i2s, row + (uint64_t)(k0 + k)) : 1;
}

/* The t3 code of three I2_S codes c0 c1 c2 (at c0 << 4 | c1 << 2 | c2;
 * code 3 reads as 0): index | sign << 4 as ternary_tl.h defines them
 * (test_kernels_tl.c decodes every packed weight back). */
static const uint8_t code_of_triple[64] = {
    29, 28, 27, 28, 26, 25, 24, 25, 23, 22, 21, 22, 26, 25, 24, 25,
    20, 19, 18, 19, 17, 0, 1, 0, 2, 3, 4, 3, 17, 0, 1, 0,
    5, 6, 7, 6, 8, 9, 10, 9, 11, 12, 13, 12, 8, 9, 10, 9,
    20, 19, 18, 19, 17, 0, 1, 0, 2, 3, 4, 3, 17, 0, 1, 0,
};

void bn_t3_pack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const size_t tile_bytes = bn_t3_tile_bytes(K);
    const int nc = bn_t3_chunks(K);
    memset(out, 0, bn_t3_packed_size(K, M));   /* padding rows: index 0 = zero weights */
    uint8_t c[SEG_K];
    for (int m = 0; m < M; m++) {
        uint8_t *tile = out + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        const int r = m % BN_T3_ROWS;
        for (int ch = 0; ch < nc; ch++) {
            const int k0 = ch * BN_T3_CHUNK_K;
            if (k0 % SEG_K == 0) decode_segment(i2s, (uint64_t)m * (uint64_t)K, K, k0, c);
            const uint8_t *g3 = c + k0 % SEG_K;
            uint8_t *chunk = tile + (size_t)ch * BN_T3_CHUNK_BYTES;
            unsigned signs = 0;
            for (int p = 0; p < 4; p++, g3 += 6) {
                const unsigned a = code_of_triple[g3[0] << 4 | g3[1] << 2 | g3[2]];
                const unsigned b = code_of_triple[g3[3] << 4 | g3[4] << 2 | g3[5]];
                chunk[32 * p + r] = (uint8_t)((a & 15) | (b & 15) << 4);
                signs |= (a >> 4) << (2 * p) | (b >> 4) << (2 * p + 1);
            }
            chunk[128 + r] = (uint8_t)signs;
        }
    }
}

/* H = round(T / 31) (never a tie: 31 is odd), L = T − 31·H. */
static void split_sum(int T, int8_t *L, int8_t *H) {
    const int h = T >= 0 ? (T + 15) / BN_T3_BASE : -((-T + 15) / BN_T3_BASE);
    *H = (int8_t)h;
    *L = (int8_t)(T - BN_T3_BASE * h);
}

void bn_t3_act_prep_batch(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    memcpy(a, q, (size_t)K);
    memset(a + K, 0, bn_t3_table_offset(K) - (size_t)K);
    int32_t sum = 0;
    for (int k = 0; k < K; k++) sum += q[k];
    memcpy(a + bn_t3_q_bytes(K), &sum, sizeof sum);
}

void bn_t3_act_prep_ref(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    bn_t3_act_prep_batch(q, K, a);
    const int8_t *qp = (const int8_t *)a;   /* zero-padded to whole chunks */
    int8_t *tab = (int8_t *)(a + bn_t3_table_offset(K));
    const int groups = bn_t3_chunks(K) * BN_T3_CHUNK_GROUPS;
    for (int g = 0; g < groups; g++, tab += BN_T3_TABLE_BYTES) {
        for (int i = 0; i < 16; i++) {
            int T = 0;
            if (i < 14) {
                int w[3];
                bn_t3_decode(i, 0, w);
                T = w[0] * qp[3 * g] + w[1] * qp[3 * g + 1] + w[2] * qp[3 * g + 2];
            }
            split_sum(T, &tab[i], &tab[16 + i]);
        }
    }
}

void bn_t3_gemv_ref(const void *packed, int K, int M, const void *act, int m0, int m1,
                    int32_t *dot) {
    (void)M;
    const uint8_t *w = packed;
    const int8_t *tab = (const int8_t *)act + bn_t3_table_offset(K);
    const int nc = bn_t3_chunks(K);
    for (int m = m0; m < m1; m++) {
        const uint8_t *tile = w + (size_t)(m / BN_T3_ROWS) * bn_t3_tile_bytes(K);
        const int r = m % BN_T3_ROWS;
        int32_t acc = 0;
        for (int c = 0; c < nc; c++) {
            const uint8_t *chunk = tile + (size_t)c * BN_T3_CHUNK_BYTES;
            for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++) {
                const int idx = chunk[32 * (j / 2) + r] >> (4 * (j % 2)) & 15;
                const int neg = chunk[128 + r] >> j & 1;
                const int8_t *t = tab + (size_t)(c * BN_T3_CHUNK_GROUPS + j) * BN_T3_TABLE_BYTES;
                const int T = BN_T3_BASE * t[16 + idx] + t[idx];
                acc += neg ? -T : T;
            }
        }
        dot[m - m0] = acc;
    }
}

/* A batch reads no tables (its inputs may come from bn_t3_act_prep_batch):
 * each chunk of a row is decoded to its 24 weights once, then multiplied
 * with every token's q, as the SIMD gemms expand tiles. So ref-tl's gemm
 * and gemv reach the same dots by different routes. */
void bn_t3_gemm_ref(const void *packed, int K, int M, const void *act, int N, int m0, int m1,
                    int32_t *dot, int ldd) {
    (void)M;
    const uint8_t *a = act;
    const size_t as = bn_t3_act_size(K);
    const int nc = bn_t3_chunks(K);
    for (int m = m0; m < m1; m++) {
        const uint8_t *tile =
            (const uint8_t *)packed + (size_t)(m / BN_T3_ROWS) * bn_t3_tile_bytes(K);
        const int r = m % BN_T3_ROWS;
        for (int n = 0; n < N; n++) dot[(size_t)n * (size_t)ldd + (m - m0)] = 0;
        for (int c = 0; c < nc; c++) {
            const uint8_t *chunk = tile + (size_t)c * BN_T3_CHUNK_BYTES;
            int w[BN_T3_CHUNK_K];
            for (int j = 0; j < BN_T3_CHUNK_GROUPS; j++)
                bn_t3_decode(chunk[32 * (j / 2) + r] >> (4 * (j % 2)) & 15, chunk[128 + r] >> j & 1,
                             w + 3 * j);
            for (int n = 0; n < N; n++) {
                const int8_t *q = (const int8_t *)(a + (size_t)n * as) + (size_t)c * BN_T3_CHUNK_K;
                int32_t acc = 0;
                for (int k = 0; k < BN_T3_CHUNK_K; k++) acc += w[k] * q[k];  /* q is 0 past K */
                dot[(size_t)n * (size_t)ldd + (m - m0)] += acc;
            }
        }
    }
}

static size_t t3_act_size(int K) {
    return bn_t3_act_size(K);
}

BN_EXPORT_TERNARY_FORMAT_BATCH(bn_t3_ref, "t3-ref", BN_T3_ROWS, bn_t3_packed_size, bn_t3_pack,
                               t3_act_size, bn_t3_act_prep_ref, bn_t3_act_prep_batch,
                               bn_t3_gemv_ref, bn_t3_gemm_ref);
