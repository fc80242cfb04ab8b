/* Internal to the aarch64 NEON variant: the pieces its two tables share
 * (activation quantization and f16 loops, neon_common.c). dispatch.c
 * chooses between the tables (kernels.h). */
#ifndef BN_NEON_COMMON_H
#define BN_NEON_COMMON_H

#include "format_records.h"

#if defined(__aarch64__)

float bn_neon_quantize_act(const float *x, int K, int8_t *q, int32_t *sum);

void bn_neon_f16_to_f32(const uint16_t *src, float *dst, int n);
void bn_neon_f32_to_f16(const float *src, uint16_t *dst, int n);
float bn_neon_dot_f16(const uint16_t *a, const uint16_t *b, int n);
void bn_neon_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y);
float bn_neon_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n);

/* The Q8 LM head with ref's row-major layout (head_q8_rows = 1): the same
 * bytes and the same float operations as ref, the block sums in NEON. */
size_t bn_neon_head_q8_size(int K, int M);
void bn_neon_head_q8_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst);
void bn_neon_gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y);

#endif
#endif
