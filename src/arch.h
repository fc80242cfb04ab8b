/* The architecture table: per GGUF architecture (general.architecture),
 * which tensors a layer has and which switches of the graph apply. The
 * loader binds tensors from it, the context sizes from it, and the forward
 * pass reads the switches, never the architecture's name.
 *
 * Adding an architecture = one entry in arch.c, plus a switch here and its
 * few lines in forward.c if the graph does something new
 * (docs/ARCHITECTURE.md, "Adding an architecture"). */
#ifndef BN_ARCH_H
#define BN_ARCH_H

#include <stddef.h>

/* The seven ternary projections of a layer, in the order they run. */
enum bn_proj {
    BN_PROJ_Q, BN_PROJ_K, BN_PROJ_V, BN_PROJ_O, BN_PROJ_GATE, BN_PROJ_UP, BN_PROJ_DOWN,
    BN_PROJ_COUNT
};

/* The RMSNorm weights of a layer. */
enum bn_norm { BN_NORM_ATTN, BN_NORM_ATTN_SUB, BN_NORM_FFN, BN_NORM_FFN_SUB, BN_NORM_COUNT };

/* Width of a tensor dimension, from the hyperparameters. */
enum bn_dim {
    BN_DIM_EMBD,        /* n_embd */
    BN_DIM_FF,          /* n_ff */
    BN_DIM_Q,           /* n_head * head_dim */
    BN_DIM_KV,          /* n_head_kv * head_dim */
    BN_DIM_ONE,         /* 1 (a per-tensor scale) */
};

/* Whether the file has a tensor. An absent tensor is never bound (a file
 * that has it anyway still loads: bitnet-25's unused output.weight). */
enum bn_presence { BN_ABSENT = 0, BN_REQUIRED, BN_OPTIONAL };

enum bn_ffn_act {
    BN_FFN_RELU2,       /* relu(gate)^2 * up */
    BN_FFN_SILU,        /* silu(gate) * up */
};

enum bn_rope_style {
    BN_ROPE_NEOX,       /* rotate pairs (i, i + n_rot/2) */
    BN_ROPE_NORM,       /* rotate adjacent pairs (2i, 2i + 1) */
};

typedef struct bn_arch {
    const char *name;                   /* general.architecture */
    /* graph switches */
    enum bn_ffn_act ffn_act;
    enum bn_rope_style rope;
    int attn_scale_key;                 /* 1: <arch>.attention.scale, when present,
                                           replaces 1/sqrt(head_dim) */
    /* tensors beyond the ones every architecture has (token_embd,
     * output_norm, attn_norm, ffn_norm, the seven projections) */
    enum bn_presence sub_norms;         /* attn_sub_norm [H*D], ffn_sub_norm [F] */
    enum bn_presence output;            /* untied head output.weight: BN_OPTIONAL =
                                           the head when present; BN_ABSENT = the
                                           head is token_embd even if it exists */
    enum bn_presence attn_biases;       /* blk.N.attn_{q,k,v,output}.bias [M], added
                                           after the projection */
    enum bn_presence ffn_biases;        /* blk.N.ffn_{gate,up,down}.bias [M] */
    enum bn_presence proj_scales;       /* blk.N.<projection>.scale F32 [1], multiplied
                                           into the projection's output (before a bias) */
} bn_arch;

/* The entry for an architecture name (len bytes, not NUL-terminated), or
 * NULL. */
const bn_arch *bn_arch_find(const char *name, size_t len);
/* "a, b or c": the supported names, for error messages. */
const char *bn_arch_names(void);

/* What a layer tensor is. */
enum bn_tensor_kind {
    BN_T_NORM,                          /* "blk.N.<suffix>.weight" [k], F32 or F16 */
    BN_T_PROJ,                          /* "blk.N.<suffix>.weight" [k, m], I2_S */
    BN_T_BIAS,                          /* "blk.N.<suffix>.bias" [m] of projection index */
    BN_T_SCALE,                         /* "blk.N.<suffix>.scale" [1] of projection index */
};

/* One tensor of a layer. */
typedef struct bn_layer_tensor {
    const char *suffix;
    enum bn_tensor_kind kind;
    int index;                          /* enum bn_norm (norms), else enum bn_proj */
    enum bn_dim k, m;                   /* shape [k] (norm) or [k, m] (projection) */
} bn_layer_tensor;

/* "weight", "bias" or "scale": the last part of a layer tensor's name. */
const char *bn_layer_tensor_ext(const bn_layer_tensor *t);
/* Every tensor a layer may have, in a fixed order; n_out gets the count. */
const bn_layer_tensor *bn_layer_tensors(int *n_out);
/* Whether an architecture's layers have this tensor. */
enum bn_presence bn_arch_presence(const bn_arch *a, const bn_layer_tensor *t);

#endif
