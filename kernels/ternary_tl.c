/* The t3 layout in plain C (ternary_tl.h; docs/FORMAT.md, T3 lookup layout):
 * the load-time pack from I2_S that every t3 record uses, the prepared input
 * whose bytes every variant's act_prep reproduces, and lookup-table
 * products written for clarity: the "ref-tl" record, which the SIMD t3
 * kernels are tested against (and ternary_ref.c against them all). */
#include "ternary_tl.h"

#include <string.h>

#include "format_records.h"
#include "i2s.h"

/* I2_S weights are decoded 3 blocks at a time: 384 = 128 groups = 16
 * chunks, so a segment never splits a group. */
enum { SEG_K = 3 * 128 };

void bn_t3_pack(const uint8_t *i2s, int K, int M, void *packed) {
    uint8_t *out = packed;
    const size_t tile_bytes = bn_t3_tile_bytes(K);
    memset(out, 0, bn_t3_packed_size(K, M));   /* index 0, sign + = zero weights */
    int8_t w[SEG_K];
    for (int m = 0; m < M; m++) {
        uint8_t *tile = out + (size_t)(m / BN_T3_ROWS) * tile_bytes;
        const int r = m % BN_T3_ROWS;
        const uint64_t row = (uint64_t)m * (uint64_t)K;
        for (int k0 = 0; k0 < K; k0 += SEG_K) {
            /* whole I2_S blocks where they lie on the row, else one by one
             * (rows that do not start on a block) */
            for (int k = 0; k < SEG_K; k++) {
                const int kk = k0 + k;
                if (kk >= K) {
                    w[k] = 0;
                } else if ((row + (uint64_t)kk) % 128 == 0 && kk + 128 <= K) {
                    bn_i2s_decode(i2s + bn_i2s_byte_index(row + (uint64_t)kk), 128, w + k);
                    k += 127;
                } else {
                    w[k] = (int8_t)bn_i2s_weight(i2s, row + (uint64_t)kk);
                }
            }
            for (int gs = 0; gs < SEG_K / 3 && k0 + 3 * gs < K; gs++) {
                const int g = k0 / 3 + gs;
                const int v = 9 * (w[3 * gs] + 1) + 3 * (w[3 * gs + 1] + 1) + (w[3 * gs + 2] + 1);
                const int idx = v >= 13 ? v - 13 : 13 - v, neg = v < 13;
                uint8_t *chunk = tile + (size_t)(g / BN_T3_CHUNK_GROUPS) * BN_T3_CHUNK_BYTES;
                const int j = g % BN_T3_CHUNK_GROUPS;
                chunk[32 * (j / 2) + r] |= (uint8_t)(idx << (4 * (j % 2)));
                chunk[128 + r] |= (uint8_t)(neg << j);
            }
        }
    }
}

/* H = round(T / 31) (never a tie: 31 is odd), L = T − 31·H. */
static void split_sum(int T, int8_t *L, int8_t *H) {
    const int h = T >= 0 ? (T + 15) / BN_T3_BASE : -((-T + 15) / BN_T3_BASE);
    *H = (int8_t)h;
    *L = (int8_t)(T - BN_T3_BASE * h);
}

void bn_t3_act_prep_ref(const int8_t *q, int K, void *act) {
    uint8_t *a = act;
    const size_t qb = bn_t3_q_bytes(K);
    memcpy(a, q, (size_t)K);
    memset(a + K, 0, bn_t3_table_offset(K) - (size_t)K);
    int32_t sum = 0;
    for (int k = 0; k < K; k++) sum += q[k];
    memcpy(a + qb, &sum, sizeof sum);
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

void bn_t3_gemm_ref(const void *packed, int K, int M, const void *act, int N, int m0, int m1,
                    int32_t *dot, int ldd) {
    const size_t as = bn_t3_act_size(K);
    for (int n = 0; n < N; n++)
        bn_t3_gemv_ref(packed, K, M, (const uint8_t *)act + (size_t)n * as, m0, m1,
                       dot + (size_t)n * (size_t)ldd);
}

static size_t t3_act_size(int K) {
    return bn_t3_act_size(K);
}

BN_EXPORT_TERNARY_FORMAT(bn_t3_ref, "t3-ref", BN_T3_ROWS, bn_t3_packed_size, bn_t3_pack,
                         t3_act_size, bn_t3_act_prep_ref, bn_t3_gemv_ref, bn_t3_gemm_ref);
