/* The architecture table (arch.h). Facts: docs/FORMAT.md, "Tensors per
 * architecture", and docs/NUMERICS.md, "bitnet-b1.58 graph", "bitnet graph"
 * and "llama graph". */
#include <stddef.h>
#include <string.h>

#include "arch.h"

static const bn_arch archs[] = {
    /* BitNet-b1.58-2B-4T (llama.cpp's build_bitnet_158): ReLU^2 GLU,
     * sub-norms before the output and down projections, NEOX RoPE, head
     * tied to the embedding; attention biases added when present, FFN
     * biases loaded but unused upstream (so never bound here). */
    {
        .name = "bitnet-b1.58",
        .ffn_act = BN_FFN_RELU2,
        .rope = BN_ROPE_NEOX,
        .sub_norms = BN_REQUIRED,
        .output = BN_ABSENT,
        .attn_biases = BN_OPTIONAL,
    },
    /* The first 2B4T upload: the same graph; its output.weight is unused. */
    {
        .name = "bitnet-25",
        .ffn_act = BN_FFN_RELU2,
        .rope = BN_ROPE_NEOX,
        .sub_norms = BN_REQUIRED,
        .output = BN_ABSENT,
        .attn_biases = BN_OPTIONAL,
    },
    /* 1bitLLM bitnet_b1_58-large / -3B (build_bitnet): SiLU GLU, sub-norms,
     * NEOX RoPE, always tied (the fork creates no output tensor), optional
     * per-projection scales and attention biases. */
    {
        .name = "bitnet",
        .ffn_act = BN_FFN_SILU,
        .rope = BN_ROPE_NEOX,
        .sub_norms = BN_REQUIRED,
        .output = BN_ABSENT,
        .attn_biases = BN_OPTIONAL,
        .proj_scales = BN_OPTIONAL,
    },
    /* Llama3-8B-1.58, Falcon3-1.58bit, Falcon-E (stock build_llama): SiLU
     * GLU, no sub-norms, NORM RoPE, output.weight when untied, optional
     * biases, optional attention.scale. */
    {
        .name = "llama",
        .ffn_act = BN_FFN_SILU,
        .rope = BN_ROPE_NORM,
        .attn_scale_key = 1,
        .sub_norms = BN_ABSENT,
        .output = BN_OPTIONAL,
        .attn_biases = BN_OPTIONAL,
        .ffn_biases = BN_OPTIONAL,
    },
};

enum { N_ARCHS = sizeof archs / sizeof archs[0] };

const bn_arch *bn_arch_find(const char *name, size_t len) {
    for (int i = 0; i < N_ARCHS; i++)
        if (strlen(archs[i].name) == len && memcmp(archs[i].name, name, len) == 0)
            return &archs[i];
    return NULL;
}

const char *bn_arch_names(void) {
    return "bitnet-b1.58, bitnet-25, bitnet or llama";
}

static const bn_layer_tensor layer_tensors[] = {
    {"attn_norm", BN_T_NORM, BN_NORM_ATTN, BN_DIM_EMBD, BN_DIM_EMBD},
    {"attn_sub_norm", BN_T_NORM, BN_NORM_ATTN_SUB, BN_DIM_Q, BN_DIM_Q},
    {"ffn_norm", BN_T_NORM, BN_NORM_FFN, BN_DIM_EMBD, BN_DIM_EMBD},
    {"ffn_sub_norm", BN_T_NORM, BN_NORM_FFN_SUB, BN_DIM_FF, BN_DIM_FF},
    {"attn_q", BN_T_PROJ, BN_PROJ_Q, BN_DIM_EMBD, BN_DIM_Q},
    {"attn_k", BN_T_PROJ, BN_PROJ_K, BN_DIM_EMBD, BN_DIM_KV},
    {"attn_v", BN_T_PROJ, BN_PROJ_V, BN_DIM_EMBD, BN_DIM_KV},
    {"attn_output", BN_T_PROJ, BN_PROJ_O, BN_DIM_Q, BN_DIM_EMBD},
    {"ffn_gate", BN_T_PROJ, BN_PROJ_GATE, BN_DIM_EMBD, BN_DIM_FF},
    {"ffn_up", BN_T_PROJ, BN_PROJ_UP, BN_DIM_EMBD, BN_DIM_FF},
    {"ffn_down", BN_T_PROJ, BN_PROJ_DOWN, BN_DIM_FF, BN_DIM_EMBD},
    {"attn_q", BN_T_BIAS, BN_PROJ_Q, BN_DIM_Q, BN_DIM_Q},
    {"attn_k", BN_T_BIAS, BN_PROJ_K, BN_DIM_KV, BN_DIM_KV},
    {"attn_v", BN_T_BIAS, BN_PROJ_V, BN_DIM_KV, BN_DIM_KV},
    {"attn_output", BN_T_BIAS, BN_PROJ_O, BN_DIM_EMBD, BN_DIM_EMBD},
    {"ffn_gate", BN_T_BIAS, BN_PROJ_GATE, BN_DIM_FF, BN_DIM_FF},
    {"ffn_up", BN_T_BIAS, BN_PROJ_UP, BN_DIM_FF, BN_DIM_FF},
    {"ffn_down", BN_T_BIAS, BN_PROJ_DOWN, BN_DIM_EMBD, BN_DIM_EMBD},
    {"attn_q", BN_T_SCALE, BN_PROJ_Q, BN_DIM_ONE, BN_DIM_ONE},
    {"attn_k", BN_T_SCALE, BN_PROJ_K, BN_DIM_ONE, BN_DIM_ONE},
    {"attn_v", BN_T_SCALE, BN_PROJ_V, BN_DIM_ONE, BN_DIM_ONE},
    {"attn_output", BN_T_SCALE, BN_PROJ_O, BN_DIM_ONE, BN_DIM_ONE},
    {"ffn_gate", BN_T_SCALE, BN_PROJ_GATE, BN_DIM_ONE, BN_DIM_ONE},
    {"ffn_up", BN_T_SCALE, BN_PROJ_UP, BN_DIM_ONE, BN_DIM_ONE},
    {"ffn_down", BN_T_SCALE, BN_PROJ_DOWN, BN_DIM_ONE, BN_DIM_ONE},
};

const bn_layer_tensor *bn_layer_tensors(int *n_out) {
    *n_out = (int)(sizeof layer_tensors / sizeof layer_tensors[0]);
    return layer_tensors;
}

const char *bn_layer_tensor_ext(const bn_layer_tensor *t) {
    return t->kind == BN_T_BIAS ? "bias" : t->kind == BN_T_SCALE ? "scale" : "weight";
}

enum bn_presence bn_arch_presence(const bn_arch *a, const bn_layer_tensor *t) {
    switch (t->kind) {
    case BN_T_NORM:
        if (t->index == BN_NORM_ATTN_SUB || t->index == BN_NORM_FFN_SUB) return a->sub_norms;
        return BN_REQUIRED;
    case BN_T_PROJ:
        return BN_REQUIRED;
    case BN_T_BIAS:
        return t->index <= BN_PROJ_O ? a->attn_biases : a->ffn_biases;
    case BN_T_SCALE:
        return a->proj_scales;
    }
    return BN_ABSENT;
}
