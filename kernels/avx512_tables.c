/* The AVX-512 variant's table. The pieces: avx512_common.c (activations,
 * f16), ternary_avx512.c, head_q8_avx512.c; shared helpers in x86_common.h. */
#include "x86_common.h"

#ifdef BN_X86_AVX512

BN_DEFINE_F16_FORMATS(avx512, bn_avx512_f32_to_f16, bn_avx512_gemv_f16,
                      bn_avx512_dot_f32_f16_fma16);

static const bn_kernels avx512_kernels = {
    .name = "avx512",
    .quantize_act = bn_avx512_quantize_act,
    .glue = &bn_glue_avx2,
    .f16_to_f32 = bn_avx512_f16_to_f32,
    .f32_to_f16 = bn_avx512_f32_to_f16,
    .dot_f16 = bn_avx512_dot_f16,
    .gemv_f16 = bn_avx512_gemv_f16,
    .dots_f16 = bn_avx2_dots_f16,   /* ref's order too; its tails four rows at a time */
    .dot_f32_f16_fma16 = bn_avx512_dot_f32_f16_fma16,
    .head_q8_row_norms = bn_avx2_head_q8_row_norms,
    .fmt = {
        [BN_FMT_TERNARY] = &bn_avx512_fmt_ternary,
        [BN_FMT_F16] = &avx512_fmt_f16,
        [BN_FMT_F16_TINYBLAS] = &avx512_fmt_f16_tinyblas,
        [BN_FMT_Q8_HEAD] = &bn_avx512_fmt_q8_head,
        [BN_FMT_Q8_0] = &bn_fmt_q8_0_avx2,
        [BN_FMT_Q6_K] = &bn_fmt_q6_k_avx2,
        [BN_FMT_F32] = &bn_fmt_f32_avx2,
    },
    .attn_qk = bn_attn_qk_avx2,
    .attn_softmax = bn_attn_softmax_avx2,
    .attn_pv = bn_attn_pv_avx2,
    .attn_q8_qk = bn_attn_q8_qk_avx2,
    .attn_q8_pv = bn_attn_q8_pv_avx2,
};

const bn_kernels *bn_kernels_avx512(void) {
    return &avx512_kernels;
}

#else

const bn_kernels *bn_kernels_avx512(void) {
    return NULL;
}

#endif
