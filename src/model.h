/* The loaded model: hyperparameters, tensor bindings into the mapping, the
 * ternary weights repacked for the selected kernel variant, the tokenizer.
 * Filled by model.c; read by forward.c, info.c and the CLI. */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include "bitnet.h"
#include "gguf.h"
#include "kernels.h"

/* One ternary (I2_S) projection: M output rows of K inputs. */
typedef struct bn_ternary {
    int K, M;
    float scale;                    /* the tensor's float scale (SPEC 2.3) */
    const uint8_t *i2s;             /* K*M/4 payload bytes in the mapping */
    void *packed;                   /* kernel layout (owned; NULL when vocab_only) */
} bn_ternary;

typedef struct bn_layer {
    const float *attn_norm;         /* [n_embd] */
    const float *attn_sub_norm;     /* [n_embd] */
    const float *ffn_norm;          /* [n_embd] */
    const float *ffn_sub_norm;      /* [n_ff] */
    bn_ternary wq, wk, wv, wo;      /* q: M=n_embd; k,v: M=n_head_kv*head_dim; o: K=M=n_embd */
    bn_ternary wgate, wup, wdown;   /* gate/up: K=n_embd, M=n_ff; down: K=n_ff, M=n_embd */
} bn_layer;

struct bn_model {
    gguf_file gguf;
    bn_hparams hp;
    const bn_kernels *kern;
    const uint16_t *tok_embd;       /* [n_vocab][n_embd] F16, in the mapping (never copied) */
    const float *output_norm;       /* [n_embd] */
    bn_layer *layers;               /* n_layer */
    int head_type;                  /* enum bn_head_type actually in use */
    void *head_q8;                  /* quantized LM head when head_type == BN_HEAD_Q8 */
    bn_tokenizer *tok;
    float *norms_arena;             /* owned copies of every norm vector */
    int embd_fd;                    /* >= 0: embedding rows are read with pread
                                       (the F16 table was released, see model.c) */
    uint64_t embd_file_offset;      /* file offset of token_embd's data */
    uint64_t n_params;
    uint64_t packed_bytes;          /* bytes of repacked ternary weights */
    void *packed_arena;             /* one 64-byte aligned block holding every
                                       ternary's packed layout (owned) */
};

/* Copies the F16 embedding row of `token` (n_embd halves) to dst. */
void bn_model_embedding_row(const bn_model *m, int32_t token, uint16_t *dst);

#endif
