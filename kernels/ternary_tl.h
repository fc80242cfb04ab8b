/* The 1.67-bit ternary layout "t3" (docs/FORMAT.md, T3 lookup layout),
 * made at load time from I2_S, and its prepared input: what every "-tl"
 * variant (ternary_tl.c: ref-tl, ternary_avx2_tl.c: avx2-tl,
 * ternary_neon_tl.c: neon-tl, ternary_neon_tl_dotprod.c: neon-tl-sdot)
 * shares. Internal to kernels/.
 *
 * Weights, per row: groups of 3 along K (group g = k 3g, 3g+1, 3g+2; K is
 * padded with zero weights to BN_T3_CHUNK_K). A group (w0, w1, w2) is
 * v = 9(w0+1) + 3(w1+1) + (w2+1) in 0..26; the 27 combinations pair up as
 * ± around v = 13 (all zero), so it is stored as index |v − 13| (0..13, 4
 * bits) and sign v < 13 (1 bit): 5 bits for 3 weights.
 *
 * Rows are tiled BN_T3_ROWS = 32 at a time (the last tile padded with zero
 * rows). A tile is a run of chunks, one per 8 groups (24 weights), of
 * BN_T3_CHUNK_BYTES = 160 bytes:
 *     bytes 32p + r (p = 0..3, r = row of the tile): index of group 2p in
 *         bits 0-3, of group 2p + 1 in bits 4-7;
 *     byte 128 + r: bit j = sign of group j (1 = negative).
 * So one 32-byte load gives 32 rows' indices of two groups and a vector
 * lane is a row: a table lookup (vpshufb, vqtbl1q) turns 32 indices into
 * 32 rows' partial sums at once.
 *
 * Prepared input (act_size bytes): q[K] zero-padded to bn_t3_q_bytes(K),
 * then Σ q (int32) in a 64-byte slot, then per group g the table of its 14
 * partial sums T[i] = w0·q0 + w1·q1 + w2·q2 (i = v − 13 >= 0, entries 14 and
 * 15 zero), |T| <= 384, split so that it fits bytes: H = round(T / 31)
 * (|H| <= 12) and L = T − 31·H (|L| <= 15): 16 bytes of L then 16 of H,
 * 32 bytes per group. T = 31·H + L exactly; a negative group contributes
 * −L and −H. Only the one-token gemv reads the tables: a batch's inputs
 * (act_prep_batch) end with the Σ q slot and leave the table bytes alone. */
#ifndef BN_TERNARY_TL_H
#define BN_TERNARY_TL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

enum {
    BN_T3_ROWS = 32,            /* rows per tile (tile_rows of every t3 record) */
    BN_T3_CHUNK_GROUPS = 8,     /* groups per chunk: one sign byte per row */
    BN_T3_CHUNK_K = 24,         /* weights per chunk */
    BN_T3_CHUNK_BYTES = 160,    /* 32 rows x (8 x 4 index bits + 8 sign bits) */
    BN_T3_TABLE_BYTES = 32,     /* per group: L[16], H[16] */
    BN_T3_BASE = 31,            /* T = 31·H + L */
};

/* Chunks per row (K padded to a multiple of 24). */
static inline int bn_t3_chunks(int K) {
    return (K + BN_T3_CHUNK_K - 1) / BN_T3_CHUNK_K;
}

/* Bytes of a tile and of the packed matrix. */
static inline size_t bn_t3_tile_bytes(int K) {
    return (size_t)bn_t3_chunks(K) * BN_T3_CHUNK_BYTES;
}

static inline size_t bn_t3_packed_size(int K, int M) {
    return (size_t)((M + BN_T3_ROWS - 1) / BN_T3_ROWS) * bn_t3_tile_bytes(K);
}

/* The prepared input's parts: q padded with zeros to whole chunks and to
 * 64 bytes (SIMD reads run past K into the zeros), Σ q, then the tables. */
static inline size_t bn_t3_q_bytes(int K) {
    size_t kt = (size_t)bn_t3_chunks(K) * BN_T3_CHUNK_K;
    return (kt + 63) & ~(size_t)63;
}

static inline size_t bn_t3_table_offset(int K) {
    return bn_t3_q_bytes(K) + 64;
}

static inline size_t bn_t3_act_size(int K) {
    return bn_t3_table_offset(K) +
           (size_t)bn_t3_chunks(K) * BN_T3_CHUNK_GROUPS * BN_T3_TABLE_BYTES;
}

static inline int32_t bn_t3_act_sum(const void *act, int K) {
    int32_t s;
    const uint8_t *p = (const uint8_t *)act + bn_t3_q_bytes(K);
    memcpy(&s, p, sizeof s);
    return s;
}

/* The three weights (-1, 0, +1 each) of index i (0..13) with sign
 * neg: the inverse of the encoding above. */
static inline void bn_t3_decode(int i, int neg, int w[3]) {
    const int v = neg ? 13 - i : 13 + i;
    w[0] = v / 9 - 1;
    w[1] = v / 3 % 3 - 1;
    w[2] = v % 3 - 1;
}

/* ternary_tl.c: the layout in plain C, shared by the t3 records. pack
 * reads I2_S rows (whole tensor); act_prep writes the prepared input;
 * act_prep_batch only its first bn_t3_table_offset(K) bytes, q and Σ q,
 * all that a t3 gemm reads (kernels.h, act_prep_batch), never the tables. */
void bn_t3_pack(const uint8_t *i2s, int K, int M, void *packed);
void bn_t3_act_prep_ref(const int8_t *q, int K, void *act);
void bn_t3_act_prep_batch(const int8_t *q, int K, void *act);
/* Rows [m0, m1) of the packed matrix against one prepared input, by
 * table lookups in plain C (the reference of the t3 kernels); a batch by
 * weights decoded from the layout, without the tables. */
void bn_t3_gemv_ref(const void *packed, int K, int M, const void *act, int m0, int m1,
                    int32_t *dot);
void bn_t3_gemm_ref(const void *packed, int K, int M, const void *act, int N, int m0, int m1,
                    int32_t *dot, int ldd);

/* The ref-tl record (ternary_tl.c). */
extern const bn_format_traits bn_t3_ref_fmt_ternary;

#if defined(__aarch64__)
/* The vqtbl1q gemv (ternary_neon_tl.c), shared by both NEON t3 tables. */
void bn_t3_neon_gemv(const void *packed, int K, int M, const void *act, int m0, int m1,
                     int32_t *dot);
/* Their pack and prepared inputs (ternary_neon_tl.c): bn_t3_pack's,
 * bn_t3_act_prep_ref's and bn_t3_act_prep_batch's bytes. */
void bn_t3_neon_pack(const uint8_t *i2s, int K, int M, void *packed);
void bn_t3_neon_act_prep(const int8_t *q, int K, void *act);
void bn_t3_neon_act_prep_batch(const int8_t *q, int K, void *act);
#endif

#endif
