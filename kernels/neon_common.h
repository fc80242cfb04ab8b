/* Internal to the aarch64 NEON variants: the pieces their tables share
 * (activation quantization and f16 loops, neon_common.c). dispatch.c
 * chooses between the tables (kernels.h). */
#ifndef BN_NEON_COMMON_H
#define BN_NEON_COMMON_H

#include "format_records.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* bn_attn_exp (attn_ref.c) on four lanes: the same float steps; vrndnq
 * rounds to nearest even like rintf in the default mode. */
static inline float32x4_t bn_exp4(float32x4_t x) {
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269502f)));
    const float32x4_t r = vsubq_f32(vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(0.693359375f))),
                                    vmulq_f32(n, vdupq_n_f32(-2.12194442e-4f)));
    float32x4_t p = vdupq_n_f32(0.000198412701f);
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.00138888892f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.00833333377f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.0416666679f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.166666672f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.5f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t y = vmulq_f32(p, vreinterpretq_f32_s32(e));
    const uint32x4_t keep = vcgeq_f32(x, vdupq_n_f32(-87.0f));
    return vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(y), keep));
}

float bn_neon_quantize_act(const float *x, int K, int8_t *q, int32_t *sum);

void bn_neon_f16_to_f32(const uint16_t *src, float *dst, int n);
void bn_neon_f32_to_f16(const float *src, uint16_t *dst, int n);
float bn_neon_dot_f16(const uint16_t *a, const uint16_t *b, int n);
void bn_neon_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y);
void bn_neon_dots_f16(const uint16_t *W, size_t ldw, const uint16_t *x, int n, int rows, float *y);
float bn_neon_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n);

/* The Q8 LM head with ref's row-major layout (head_q8_rows = 1): the same
 * bytes and the same float operations as ref, the block sums in NEON. */
size_t bn_neon_head_q8_size(int K, int M);
void bn_neon_head_q8_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst);
void bn_neon_gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y);
void bn_neon_gemm_head_q8(const void *Wq, int K, const void *xq, size_t xstride, int N, int m0, int m1,
                          float *y, int ldy);

/* The q8_0 KV scores of each table: sdot where the table is an sdot one. */
#define BN_NEON_Q8_QK_neon_lut bn_attn_q8_qk_neon
#define BN_NEON_Q8_QK_neon_tl bn_attn_q8_qk_neon
#define BN_NEON_Q8_QK_neon_dp bn_attn_q8_qk_neon_dotprod
#define BN_NEON_Q8_QK_neon_tl_dp bn_attn_q8_qk_neon_dotprod

/* The rest of a NEON variant's records (its f16 formats and the Q8 head,
 * made here under prefix P) and its table NAME, given P's ternary record
 * (P##_fmt_ternary, from BN_DEFINE_TERNARY_FORMAT in the variant's file):
 * the four NEON tables differ only in the ternary kernels. */
#define BN_NEON_TABLE(P, NAME, LABEL)                                                          \
    BN_DEFINE_F16_FORMATS(P, bn_neon_f32_to_f16, bn_neon_gemv_f16, bn_neon_dot_f32_f16_fma16); \
    BN_DEFINE_Q8_HEAD_FORMAT_GEMM(P, 1, bn_neon_head_q8_size, bn_neon_head_q8_quantize,        \
                                  bn_act_q8_quantize_ref, bn_neon_gemv_head_q8,               \
                                  bn_neon_gemm_head_q8);                                      \
    static const bn_kernels NAME = {                                                           \
        .name = LABEL,                                                                         \
        .quantize_act = bn_neon_quantize_act,                                                  \
        .glue = &bn_glue_neon,                                                                 \
        .f16_to_f32 = bn_neon_f16_to_f32,                                                      \
        .f32_to_f16 = bn_neon_f32_to_f16,                                                      \
        .dot_f16 = bn_neon_dot_f16,                                                            \
        .gemv_f16 = bn_neon_gemv_f16,                                                          \
        .dots_f16 = bn_neon_dots_f16,                                                          \
        .dot_f32_f16_fma16 = bn_neon_dot_f32_f16_fma16,                                        \
        .head_q8_row_norms = bn_neon_head_q8_row_norms,                                        \
        .fmt = {                                                                               \
            [BN_FMT_TERNARY] = &P##_fmt_ternary,                                               \
            [BN_FMT_F16] = &P##_fmt_f16,                                                       \
            [BN_FMT_F16_TINYBLAS] = &P##_fmt_f16_tinyblas,                                     \
            [BN_FMT_Q8_HEAD] = &P##_fmt_q8_head,                                               \
            [BN_FMT_Q8_0] = &bn_fmt_q8_0_neon,                                                 \
            [BN_FMT_Q6_K] = &bn_fmt_q6_k_neon,                                                 \
            [BN_FMT_F32] = &bn_fmt_f32_neon,                                                   \
        },                                                                                     \
        .attn_qk = bn_attn_qk_neon,                                                            \
        .attn_softmax = bn_attn_softmax_neon,                                                  \
        .attn_pv = bn_attn_pv_neon,                                                            \
        .attn_q8_qk = BN_NEON_Q8_QK_##P,                                                       \
        .attn_q8_pv = bn_attn_q8_pv_neon,                                                      \
    }

#endif
#endif
