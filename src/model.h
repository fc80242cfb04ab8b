/* The loaded model: hyperparameters, its architecture's entry, tensor
 * bindings into the mapping, the weights in their kernel formats, the
 * tokenizer. Filled by model.c; read by context.c, forward.c, info.c and
 * describe.c. */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "arch.h"
#include "bitnet.h"
#include "gguf.h"
#include "kernels.h"

/* One ternary (I2_S) projection: M output rows of K inputs. */
typedef struct bn_ternary {
    int K, M;
    float scale;                    /* the tensor's float scale (docs/FORMAT.md, I2_S) */
    const uint8_t *i2s;             /* the I2_S payload in the mapping */
    void *packed;                   /* the kernel format's layout (in packed_arena;
                                       NULL when vocab_only) */
} bn_ternary;

typedef struct bn_layer {
    const float *norm[BN_NORM_COUNT];   /* NULL where the architecture has none */
    bn_ternary proj[BN_PROJ_COUNT];
} bn_layer;

/* A float-output matrix (the LM head) in one weight format. */
typedef struct bn_matrix {
    enum bn_format fmt;
    int K, M;
    const void *W;                  /* the format's bytes: owned or in the mapping */
    void *owned;                    /* W when it was made at load (freed with the model) */
    uint64_t bytes;                 /* bytes read by one pass over W */
} bn_matrix;

struct bn_model {
    gguf_file gguf;
    bn_hparams hp;
    const bn_arch *arch;
    const bn_kernels *kern;
    bn_layer *layers;               /* n_layer */
    const float *output_norm;       /* [n_embd] */
    bn_matrix head;                 /* the LM head as the forward pass reads it */
    int head_type;                  /* enum bn_head_type in use */

    /* token_embd: rows are read one token at a time */
    const uint16_t *tok_embd;       /* [n_vocab][n_embd] F16 in the mapping */
    int embd_fd;                    /* >= 0: rows are read with pread (the F16
                                       table's pages were released, see model.c) */
    uint64_t embd_file_offset;      /* file offset of token_embd's data */

    bn_tokenizer *tok;
    float *norms_arena;             /* owned copies of every norm vector */
    void *packed_arena;             /* one 64-byte aligned block holding every
                                       ternary's packed layout (owned) */
    uint64_t packed_bytes;          /* bytes of packed ternary weights */
    uint64_t n_params;
};

/* Copies the F16 embedding row of `token` (n_embd halves) to dst. */
void bn_model_embedding_row(const bn_model *m, int32_t token, uint16_t *dst);

#endif
