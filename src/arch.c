/* The architecture table (arch.h). Facts: docs/FORMAT.md, "Tensors per
 * architecture", and docs/NUMERICS.md, "bitnet-b1.58 graph" and the two after it. */
#include <stddef.h>
#include <string.h>

#include "arch.h"

static const bn_arch archs[] = {
    /* BitNet-b1.58-2B-4T (llama.cpp's build_bitnet_158): ReLU^2 GLU,
     * sub-norms before the output and down projections, NEOX RoPE, head
     * tied to the embedding. */
    {
        .name = "bitnet-b1.58",
        .ffn_act = BN_FFN_RELU2,
        .rope = BN_ROPE_NEOX,
        .sub_norms = BN_REQUIRED,
        .output = BN_ABSENT,
    },
    /* The first 2B4T upload: the same graph; its output.weight is unused. */
    {
        .name = "bitnet-25",
        .ffn_act = BN_FFN_RELU2,
        .rope = BN_ROPE_NEOX,
        .sub_norms = BN_REQUIRED,
        .output = BN_ABSENT,
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
    return "bitnet-b1.58 or bitnet-25";
}

static const bn_layer_tensor layer_tensors[] = {
    {"attn_norm", 0, BN_NORM_ATTN, BN_DIM_EMBD, BN_DIM_EMBD},
    {"attn_sub_norm", 0, BN_NORM_ATTN_SUB, BN_DIM_Q, BN_DIM_Q},
    {"ffn_norm", 0, BN_NORM_FFN, BN_DIM_EMBD, BN_DIM_EMBD},
    {"ffn_sub_norm", 0, BN_NORM_FFN_SUB, BN_DIM_FF, BN_DIM_FF},
    {"attn_q", 1, BN_PROJ_Q, BN_DIM_EMBD, BN_DIM_Q},
    {"attn_k", 1, BN_PROJ_K, BN_DIM_EMBD, BN_DIM_KV},
    {"attn_v", 1, BN_PROJ_V, BN_DIM_EMBD, BN_DIM_KV},
    {"attn_output", 1, BN_PROJ_O, BN_DIM_Q, BN_DIM_EMBD},
    {"ffn_gate", 1, BN_PROJ_GATE, BN_DIM_EMBD, BN_DIM_FF},
    {"ffn_up", 1, BN_PROJ_UP, BN_DIM_EMBD, BN_DIM_FF},
    {"ffn_down", 1, BN_PROJ_DOWN, BN_DIM_FF, BN_DIM_EMBD},
};

const bn_layer_tensor *bn_layer_tensors(int *n_out) {
    *n_out = (int)(sizeof layer_tensors / sizeof layer_tensors[0]);
    return layer_tensors;
}

enum bn_presence bn_arch_presence(const bn_arch *a, const bn_layer_tensor *t) {
    if (!t->is_proj && (t->index == BN_NORM_ATTN_SUB || t->index == BN_NORM_FFN_SUB))
        return a->sub_norms;
    return BN_REQUIRED;
}
