/* Building a variant's weight-format records (kernels.h, bn_format_traits)
 * from its typed kernels. Each variant writes its loops with the types they
 * work on (int8 in, int32 out for ternary; f16 or int8 blocks for the LM
 * head); these macros wrap them into the records' uniform signatures, so
 * that the wrapping is written once, not once per variant and format.
 * Include from a variant's .c file only. */
#ifndef BN_FORMAT_RECORDS_H
#define BN_FORMAT_RECORDS_H

#include <string.h>

#include "kernels.h"

/* Rows of a float-output table done at a time against every token of a
 * batch, so each slice of the table is read from memory once per batch. */
#define BN_FLOAT_GEMM_ROWS 16

typedef void (*bn_gemv_fn)(const void *W, int K, int M, const void *act, int m0, int m1,
                           void *y);

/* gemm of a float-output format from its gemv: a tile of rows at a time,
 * every token against it. Per row the numbers are gemv's. */
static inline void bn_gemm_by_row_tiles(bn_gemv_fn gemv, size_t act_bytes, int rows,
                                        const void *W, int K, int M, const void *act, int N,
                                        int m0, int m1, void *y, int ldy) {
    for (int r = m0; r < m1; r += rows) {
        int r1 = r + rows < m1 ? r + rows : m1;
        for (int n = 0; n < N; n++)
            gemv(W, K, M, (const char *)act + (size_t)n * act_bytes, r, r1,
                 (float *)y + (size_t)n * (size_t)ldy + (r - m0));
    }
}

static inline size_t bn_round64(size_t n) {
    return (n + 63) & ~(size_t)63;
}

/* ---- ternary ------------------------------------------------------------- */
/* P##_fmt_ternary from: packed_size(K, M), repack(i2s, K, M, packed),
 * prep_size(K), act_prep(q, K, prep), gemv(..., int32_t *dot),
 * gemm(..., int32_t *dot, int ldd), with tile height ROWS. DEFINE makes a
 * record of this file (static); EXPORT one with external linkage, for a
 * table in another file (declared in the variant's header). The _BATCH
 * forms add act_prep_batch(q, K, prep), the preparation for gemm alone
 * (kernels.h); without it a batch gets act_prep's. */
#define BN_DEFINE_TERNARY_FORMAT(P, NAME, ROWS, SIZE, REPACK, PREP_SIZE, PREP, GEMV, GEMM)    \
    BN_TERNARY_WRAPPERS_(P, REPACK, PREP, GEMV, GEMM)                                          \
    BN_TERNARY_RECORD_(static, P, NAME, ROWS, SIZE, PREP_SIZE, NULL)
#define BN_EXPORT_TERNARY_FORMAT(P, NAME, ROWS, SIZE, REPACK, PREP_SIZE, PREP, GEMV, GEMM)    \
    BN_TERNARY_WRAPPERS_(P, REPACK, PREP, GEMV, GEMM)                                          \
    BN_TERNARY_RECORD_(, P, NAME, ROWS, SIZE, PREP_SIZE, NULL)
#define BN_DEFINE_TERNARY_FORMAT_BATCH(P, NAME, ROWS, SIZE, REPACK, PREP_SIZE, PREP, PREP_BATCH, \
                                       GEMV, GEMM)                                              \
    BN_TERNARY_WRAPPERS_(P, REPACK, PREP, GEMV, GEMM)                                          \
    BN_TERNARY_BATCH_PREP_(P, PREP_BATCH)                                                      \
    BN_TERNARY_RECORD_(static, P, NAME, ROWS, SIZE, PREP_SIZE, P##_ternary_prep_batch)
#define BN_EXPORT_TERNARY_FORMAT_BATCH(P, NAME, ROWS, SIZE, REPACK, PREP_SIZE, PREP, PREP_BATCH, \
                                       GEMV, GEMM)                                              \
    BN_TERNARY_WRAPPERS_(P, REPACK, PREP, GEMV, GEMM)                                          \
    BN_TERNARY_BATCH_PREP_(P, PREP_BATCH)                                                      \
    BN_TERNARY_RECORD_(, P, NAME, ROWS, SIZE, PREP_SIZE, P##_ternary_prep_batch)
#define BN_TERNARY_WRAPPERS_(P, REPACK, PREP, GEMV, GEMM)                                      \
    static void P##_ternary_pack(const void *src, int K, int M, int m0, int m1, void *dst) {  \
        (void)m0;                                                                               \
        (void)m1; /* whole tensors only (kernels.h) */                                          \
        REPACK((const uint8_t *)src, K, M, dst);                                                \
    }                                                                                           \
    static void P##_ternary_prep(const void *x, int K, void *act) {                           \
        PREP((const int8_t *)x, K, act);                                                        \
    }                                                                                           \
    static void P##_ternary_gemv(const void *W, int K, int M, const void *act, int m0, int m1, \
                                 void *y) {                                                     \
        GEMV(W, K, M, act, m0, m1, (int32_t *)y);                                               \
    }                                                                                           \
    static void P##_ternary_gemm(const void *W, int K, int M, const void *act, int N, int m0,  \
                                 int m1, void *y, int ldy) {                                    \
        GEMM(W, K, M, act, N, m0, m1, (int32_t *)y, ldy);                                       \
    }
#define BN_TERNARY_BATCH_PREP_(P, PREP_BATCH)                                                  \
    static void P##_ternary_prep_batch(const void *x, int K, void *act) {                     \
        PREP_BATCH((const int8_t *)x, K, act);                                                  \
    }
#define BN_TERNARY_RECORD_(LINKAGE, P, NAME, ROWS, SIZE, PREP_SIZE, PREP_BATCH_FN)             \
    LINKAGE const bn_format_traits P##_fmt_ternary = {                                         \
        .name = NAME, .out_int32 = 1, .tile_rows = ROWS,                                        \
        .packed_size = SIZE, .pack = P##_ternary_pack,                                          \
        .act_size = PREP_SIZE, .act_prep = P##_ternary_prep,                                    \
        .act_prep_batch = PREP_BATCH_FN,                                                        \
        .gemv = P##_ternary_gemv, .gemm = P##_ternary_gemm,                                     \
    }

/* ---- F16 tables (the tied head or an untied F16 output) ------------------- */
/* P##_fmt_f16 and P##_fmt_f16_tinyblas from the variant's f32_to_f16,
 * gemv_f16 and dot_f32_f16_fma16. */
#define BN_DEFINE_F16_FORMATS(P, TO_F16, GEMV_F16, DOT_FMA16)                                  \
    static size_t P##_f16_act_size(int K) {                                                    \
        return bn_round64((size_t)K * 2);                                                       \
    }                                                                                           \
    static void P##_f16_prep(const void *x, int K, void *act) {                                \
        TO_F16((const float *)x, (uint16_t *)act, K);                                           \
    }                                                                                           \
    static void P##_f16_gemv(const void *W, int K, int M, const void *act, int m0, int m1,     \
                             void *y) {                                                         \
        (void)M;                                                                                \
        GEMV_F16((const uint16_t *)W, K, (const uint16_t *)act, m0, m1, (float *)y);            \
    }                                                                                           \
    static void P##_f16_gemm(const void *W, int K, int M, const void *act, int N, int m0,      \
                             int m1, void *y, int ldy) {                                        \
        bn_gemm_by_row_tiles(P##_f16_gemv, P##_f16_act_size(K), BN_FLOAT_GEMM_ROWS, W, K, M,  \
                             act, N, m0, m1, y, ldy);                                           \
    }                                                                                           \
    static const bn_format_traits P##_fmt_f16 = {                                              \
        .name = "f16", .out_int32 = 0, .tile_rows = BN_FLOAT_GEMM_ROWS,                         \
        .act_size = P##_f16_act_size, .act_prep = P##_f16_prep,                                 \
        .gemv = P##_f16_gemv, .gemm = P##_f16_gemm,                                             \
    };                                                                                          \
    static size_t P##_f32in_act_size(int K) {                                                  \
        return bn_round64((size_t)K * 4);                                                       \
    }                                                                                           \
    static void P##_f32in_prep(const void *x, int K, void *act) {                              \
        memcpy(act, x, (size_t)K * sizeof(float));                                              \
    }                                                                                           \
    static void P##_f32in_gemv(const void *W, int K, int M, const void *act, int m0, int m1,   \
                               void *y) {                                                       \
        (void)M;                                                                                \
        const uint16_t *w = W;                                                                  \
        for (int m = m0; m < m1; m++)                                                           \
            ((float *)y)[m - m0] = DOT_FMA16((const float *)act, w + (size_t)m * (size_t)K, K); \
    }                                                                                           \
    static void P##_f32in_gemm(const void *W, int K, int M, const void *act, int N, int m0,    \
                               int m1, void *y, int ldy) {                                      \
        bn_gemm_by_row_tiles(P##_f32in_gemv, P##_f32in_act_size(K), BN_FLOAT_GEMM_ROWS, W, K, \
                             M, act, N, m0, m1, y, ldy);                                        \
    }                                                                                           \
    static const bn_format_traits P##_fmt_f16_tinyblas = {                                     \
        .name = "f16-tinyblas", .out_int32 = 0, .tile_rows = BN_FLOAT_GEMM_ROWS,                \
        .act_size = P##_f32in_act_size, .act_prep = P##_f32in_prep,                             \
        .gemv = P##_f32in_gemv, .gemm = P##_f32in_gemm,                                         \
    }

/* ---- the Q8 head ------------------------------------------------------------ */
/* P##_fmt_q8_head from: size(K, M), quantize(W_f16, K, M, m0, m1, dst),
 * act_q8(x, K, xq), gemv(Wq, K, xq, m0, m1, y), tile height ROWS; DEFINE
 * and EXPORT as for the ternary records. The _GEMM forms add a multi-token
 * kernel gemm(Wq, K, xq, xstride, N, m0, m1, y, ldy): token n's input at
 * xq + n·xstride, its row m at y[n·ldy + m - m0], each float bit for bit
 * the gemv's; without one, gemm calls the gemv per tile and token. */
#define BN_DEFINE_Q8_HEAD_FORMAT(P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV)                        \
    static void P##_q8_gemv_tile(const void *W, int K, int M, const void *act, int m0, int m1, \
                                 void *y) {                                                     \
        (void)M;                                                                                \
        GEMV(W, K, act, m0, m1, (float *)y);                                                    \
    }                                                                                           \
    static void P##_q8_gemm_by_tiles(const void *W, int K, const void *act, size_t xstride,    \
                                     int N, int m0, int m1, float *y, int ldy) {                \
        bn_gemm_by_row_tiles(P##_q8_gemv_tile, xstride, ROWS, W, K, 0, act, N, m0, m1, y, ldy); \
    }                                                                                           \
    BN_Q8_HEAD_FORMAT_(static, P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV, P##_q8_gemm_by_tiles)
#define BN_DEFINE_Q8_HEAD_FORMAT_GEMM(P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV, GEMM)             \
    BN_Q8_HEAD_FORMAT_(static, P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV, GEMM)
#define BN_EXPORT_Q8_HEAD_FORMAT_GEMM(P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV, GEMM)             \
    BN_Q8_HEAD_FORMAT_(, P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV, GEMM)
#define BN_Q8_HEAD_FORMAT_(LINKAGE, P, ROWS, SIZE, QUANTIZE, ACT_Q8, GEMV, GEMM)               \
    static size_t P##_q8_act_size(int K) {                                                     \
        return bn_round64(bn_act_q8_size(K));                                                   \
    }                                                                                           \
    static void P##_q8_pack(const void *src, int K, int M, int m0, int m1, void *dst) {        \
        QUANTIZE((const uint16_t *)src, K, M, m0, m1, dst);                                     \
    }                                                                                           \
    static void P##_q8_prep(const void *x, int K, void *act) {                                 \
        ACT_Q8((const float *)x, K, act);                                                       \
    }                                                                                           \
    static void P##_q8_gemv(const void *W, int K, int M, const void *act, int m0, int m1,      \
                            void *y) {                                                          \
        (void)M;                                                                                \
        GEMV(W, K, act, m0, m1, (float *)y);                                                    \
    }                                                                                           \
    static void P##_q8_gemm(const void *W, int K, int M, const void *act, int N, int m0,       \
                            int m1, void *y, int ldy) {                                         \
        (void)M;                                                                                \
        GEMM(W, K, act, P##_q8_act_size(K), N, m0, m1, (float *)y, ldy);                        \
    }                                                                                           \
    LINKAGE const bn_format_traits P##_fmt_q8_head = {                                         \
        .name = "q8-head", .out_int32 = 0, .tile_rows = ROWS,                                   \
        .packed_size = SIZE, .pack = P##_q8_pack,                                               \
        .act_size = P##_q8_act_size, .act_prep = P##_q8_prep,                                   \
        .gemv = P##_q8_gemv, .gemm = P##_q8_gemm,                                               \
    }


/* ---- ggml's head types (format_ggml.c and its SIMD forms) ----------------- */
/* The Q8_0, Q6_K and F32 records bn_fmt_q8_0##SUFFIX, bn_fmt_q6_k##SUFFIX and
 * bn_fmt_f32##SUFFIX from a variant's row dots: Q8_0_DOT(w, x, nb) over nb
 * blocks of 34 bytes, Q6_K_DOT(w, dx, q, nb) over nb blocks of 210 bytes (dx
 * the activations' block scales, q their int8 values), F32_DOT(w, x, K). A
 * batch is gemv per row tile and token: ggml's batch kernels for these types
 * do the same arithmetic per output (or there are none). */
#define BN_GGML_HEAD_RECORDS(SUFFIX, Q8_0_DOT, Q6_K_DOT, F32_DOT)                                \
    static void q8_0_gemv##SUFFIX(const void *W, int K, int M, const void *act, int m0, int m1,  \
                                  void *y) {                                                     \
        (void)M;                                                                                 \
        const size_t row = (size_t)(K / 32) * 34;                                                \
        for (int m = m0; m < m1; m++)                                                            \
            ((float *)y)[m - m0] = Q8_0_DOT((const uint8_t *)W + (size_t)m * row, act, K / 32);  \
    }                                                                                            \
    static void q8_0_gemm##SUFFIX(const void *W, int K, int M, const void *act, int N, int m0,   \
                                  int m1, void *y, int ldy) {                                    \
        bn_gemm_by_row_tiles(q8_0_gemv##SUFFIX, bn_q8_0_act_size(K), BN_FLOAT_GEMM_ROWS, W, K,  \
                             M, act, N, m0, m1, y, ldy);                                         \
    }                                                                                            \
    const bn_format_traits bn_fmt_q8_0##SUFFIX = {                                               \
        .name = "q8_0", .out_int32 = 0, .tile_rows = BN_FLOAT_GEMM_ROWS,                         \
        .act_size = bn_q8_0_act_size, .act_prep = bn_q8_0_act_prep,                              \
        .gemv = q8_0_gemv##SUFFIX, .gemm = q8_0_gemm##SUFFIX,                                    \
    };                                                                                           \
    static void q6_k_gemv##SUFFIX(const void *W, int K, int M, const void *act, int m0, int m1,  \
                                  void *y) {                                                     \
        (void)M;                                                                                 \
        const size_t row = (size_t)(K / 256) * 210;                                              \
        const int8_t *q = (const int8_t *)act + (size_t)(K / 256) * 4;                           \
        for (int m = m0; m < m1; m++)                                                            \
            ((float *)y)[m - m0] = Q6_K_DOT((const uint8_t *)W + (size_t)m * row,                \
                                            (const uint8_t *)act, q, K / 256);                   \
    }                                                                                            \
    static void q6_k_gemm##SUFFIX(const void *W, int K, int M, const void *act, int N, int m0,   \
                                  int m1, void *y, int ldy) {                                    \
        bn_gemm_by_row_tiles(q6_k_gemv##SUFFIX, bn_q6_k_act_size(K), BN_FLOAT_GEMM_ROWS, W, K,  \
                             M, act, N, m0, m1, y, ldy);                                         \
    }                                                                                            \
    const bn_format_traits bn_fmt_q6_k##SUFFIX = {                                               \
        .name = "q6_k", .out_int32 = 0, .tile_rows = BN_FLOAT_GEMM_ROWS,                         \
        .act_size = bn_q6_k_act_size, .act_prep = bn_q6_k_act_prep,                              \
        .gemv = q6_k_gemv##SUFFIX, .gemm = q6_k_gemm##SUFFIX,                                    \
    };                                                                                           \
    static void f32_gemv##SUFFIX(const void *W, int K, int M, const void *act, int m0, int m1,   \
                                 void *y) {                                                      \
        (void)M;                                                                                 \
        for (int m = m0; m < m1; m++)                                                            \
            ((float *)y)[m - m0] = F32_DOT((const float *)W + (size_t)m * (size_t)K,             \
                                           (const float *)act, K);                               \
    }                                                                                            \
    static void f32_gemm##SUFFIX(const void *W, int K, int M, const void *act, int N, int m0,    \
                                 int m1, void *y, int ldy) {                                     \
        bn_gemm_by_row_tiles(f32_gemv##SUFFIX, bn_f32_act_size(K), BN_FLOAT_GEMM_ROWS, W, K, M,  \
                             act, N, m0, m1, y, ldy);                                            \
    }                                                                                            \
    const bn_format_traits bn_fmt_f32##SUFFIX = {                                                \
        .name = "f32", .out_int32 = 0, .tile_rows = BN_FLOAT_GEMM_ROWS,                          \
        .act_size = bn_f32_act_size, .act_prep = bn_f32_act_prep,                                \
        .gemv = f32_gemv##SUFFIX, .gemm = f32_gemm##SUFFIX,                                      \
    }

#endif
