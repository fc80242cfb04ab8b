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
    /* tensors beyond the ones every architecture has (token_embd,
     * output_norm, attn_norm, ffn_norm, the seven projections) */
    enum bn_presence sub_norms;         /* attn_sub_norm [E], ffn_sub_norm [F] */
    enum bn_presence output;            /* untied head output.weight; absent or
                                           missing = tied to token_embd */
} bn_arch;

/* The entry for an architecture name (len bytes, not NUL-terminated), or
 * NULL. */
const bn_arch *bn_arch_find(const char *name, size_t len);
/* "a, b or c": the supported names, for error messages. */
const char *bn_arch_names(void);

/* One tensor of a layer: "blk.N.<suffix>.weight". */
typedef struct bn_layer_tensor {
    const char *suffix;
    int is_proj;                        /* 1: a ternary projection, 0: a norm */
    int index;                          /* enum bn_proj or enum bn_norm */
    enum bn_dim k, m;                   /* shape [k] (norm) or [k, m] (projection) */
} bn_layer_tensor;

/* Every tensor a layer may have, in a fixed order; n_out gets the count. */
const bn_layer_tensor *bn_layer_tensors(int *n_out);
/* Whether an architecture's layers have this tensor. */
enum bn_presence bn_arch_presence(const bn_arch *a, const bn_layer_tensor *t);

#endif
