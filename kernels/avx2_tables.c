/* The AVX2 variant's tables (x86-64 with AVX2 + FMA + F16C): "avx2" and its
 * two alternatives, which differ only in their ternary format. The pieces:
 * avx2_common.c (activations, f16), ternary_avx2_mad.c, ternary_avx2_lut.c,
 * head_q8_avx2.c; shared helpers in x86_common.h. */
#include "x86_common.h"

#ifdef BN_X86_AVX2

BN_DEFINE_F16_FORMATS(avx2, bn_avx2_f32_to_f16, bn_avx2_gemv_f16, bn_avx2_dot_f32_f16_fma16);

/* The tables differ only in their ternary format. */
#define AVX2_TABLE(label, ternary)                                      \
    {                                                                   \
        .name = label,                                                  \
        .quantize_act = bn_avx2_quantize_act,                           \
        .glue = &bn_glue_avx2,                                          \
        .f16_to_f32 = bn_avx2_f16_to_f32,                               \
        .f32_to_f16 = bn_avx2_f32_to_f16,                               \
        .dot_f16 = bn_avx2_dot_f16,                                     \
        .gemv_f16 = bn_avx2_gemv_f16,                                   \
        .dots_f16 = bn_avx2_dots_f16,                                   \
        .dot_f32_f16_fma16 = bn_avx2_dot_f32_f16_fma16,                 \
        .head_q8_row_norms = bn_avx2_head_q8_row_norms,                 \
        .fmt = {                                                        \
            [BN_FMT_TERNARY] = &ternary,                                \
            [BN_FMT_F16] = &avx2_fmt_f16,                               \
            [BN_FMT_F16_TINYBLAS] = &avx2_fmt_f16_tinyblas,             \
            [BN_FMT_Q8_HEAD] = &bn_avx2_fmt_q8_head,                    \
            [BN_FMT_Q8_0] = &bn_fmt_q8_0_avx2,                          \
            [BN_FMT_Q6_K] = &bn_fmt_q6_k_avx2,                               \
            [BN_FMT_F32] = &bn_fmt_f32_avx2,                                 \
        },                                                              \
        .attn_qk = bn_attn_qk_avx2,                                     \
        .attn_softmax = bn_attn_softmax_avx2,                           \
        .attn_pv = bn_attn_pv_avx2,                                     \
        .attn_q8_qk = bn_attn_q8_qk_avx2,                               \
        .attn_q8_pv = bn_attn_q8_pv_avx2,                               \
    }

static const bn_kernels avx2_mad_kernels = AVX2_TABLE("avx2-mad", bn_avx2_mad_fmt_ternary);
static const bn_kernels avx2_lut_kernels = AVX2_TABLE("avx2-lut", bn_avx2_lut_fmt_ternary);
static const bn_kernels avx2_tl_kernels = AVX2_TABLE("avx2-tl", bn_avx2_tl_fmt_ternary);
/* "avx2" is the multiply-add design, for decode and for batches. Measured
 * with the kernel bench (bitnet bench --kernels --variants
 * avx2-mad,avx2-lut,avx512 -t 1 -r 3, best of 3, shared 2-core EPYC Zen 5,
 * read bandwidth 31-33 GB/s), mad vs lut:
 *   N = 1 (>= 256 MB streamed), weight GB/s (% of read BW):
 *     2560x2560 29.9 (87-94%) vs 9.0 (28%), 2560x640 29.7 (87-94%) vs 7.8,
 *     2560x6912 30.2 (88-94%) vs 8.7,       6912x2560 31.0 (91-96%) vs 8.5;
 *     plus lut's act_prep, 15-86 us/token, against mad's 0.2-3 us (a copy).
 *   N = 128, GMAC/s: 2560x2560 160-164 vs 87, 2560x640 161-165 vs 79,
 *                    2560x6912 157-162 vs 87, 6912x2560 153-170 vs 84.
 * (Before the rewrite of the multiply-add kernels, the same bench gave mad
 * 3.2-4.9 GB/s at N = 1 and 50-79 GMAC/s at N = 128, and LUT was chosen.)
 * The LUT kernel spends 2 vpshufb + 2 unpacks + 2 adds per 32 pair lookups
 * (64 MACs) where vpmaddubsw does 32 MACs in one instruction plus an add;
 * multiply-add wins everywhere, so LUT stays only as a measured alternative. */
static const bn_kernels avx2_kernels = AVX2_TABLE("avx2", bn_avx2_mad_fmt_ternary);

const bn_kernels *bn_kernels_avx2_mad(void) {
    return &avx2_mad_kernels;
}

const bn_kernels *bn_kernels_avx2_lut(void) {
    return &avx2_lut_kernels;
}

const bn_kernels *bn_kernels_avx2(void) {
    return &avx2_kernels;
}

const bn_kernels *bn_kernels_avx2_tl(void) {
    return &avx2_tl_kernels;
}

#else   /* not an AVX2 build: the variant does not exist here */

const bn_kernels *bn_kernels_avx2_mad(void) {
    return NULL;
}

const bn_kernels *bn_kernels_avx2_lut(void) {
    return NULL;
}

const bn_kernels *bn_kernels_avx2(void) {
    return NULL;
}

const bn_kernels *bn_kernels_avx2_tl(void) {
    return NULL;
}

#endif
