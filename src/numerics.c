/* The numerics profiles (context.h, bn_numerics): where bitnet.cpp's prompt
 * batch rounds differently from its single-token path (docs/NUMERICS.md,
 * "Prompt batch and decode"), each way as functions the forward pass calls. */
#include <string.h>

#include "context.h"

/* Decode numerics: the probabilities rounded to f16 for an f16 dot product
 * in the fixed order of dot_f16. */
static void pv_f16(const bn_kernels *k, float *p, uint16_t *p16, int n_kv, int n_pad,
                   const uint16_t *vt, size_t ld, int head_dim, float *out) {
    k->f32_to_f16(p, p16, n_kv);
    memset(p16 + n_kv, 0, (size_t)(n_pad - n_kv) * sizeof *p16);
    k->dots_f16(vt, ld, p16, n_pad, head_dim, out);   /* = dot_f16(p16, V^T row d): products commute */
}

static enum bn_format head_as_is(enum bn_format model_head) {
    return model_head;
}

const bn_numerics bn_numerics_decode = {
    .attn_pv = pv_f16,
    .head_format = head_as_is,
};

/* bitnet.cpp's prompt batch: its P*V has >= 2 contiguous columns, so ggml
 * hands it to llamafile's tinyBLAS, which multiplies the f16 V by the float
 * probabilities as they are (no f16 rounding) in 16 fused multiply-add lanes
 * (kernels.h: dot_f32_f16_fma16). */
static void pv_tinyblas(const bn_kernels *k, float *p, uint16_t *p16, int n_kv, int n_pad,
                        const uint16_t *vt, size_t ld, int head_dim, float *out) {
    (void)p16;
    memset(p + n_kv, 0, (size_t)(n_pad - n_kv) * sizeof *p);
    for (int d = 0; d < head_dim; d++)
        out[d] = k->dot_f32_f16_fma16(p, vt + (size_t)d * ld, n_pad);
}

/* Its LM head with >= 2 output rows goes to tinyBLAS too: the F16 table
 * against the float final state. A quantized head has no such path. */
static enum bn_format head_tinyblas(enum bn_format model_head) {
    return model_head == BN_FMT_F16 ? BN_FMT_F16_TINYBLAS : model_head;
}

const bn_numerics bn_numerics_bitnet_cpp = {
    .attn_pv = pv_tinyblas,
    .head_format = head_tinyblas,
};
