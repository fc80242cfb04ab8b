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
    int Kp;                         /* K rounded up to whole I2_S blocks: the width the
                                       kernels see (bn_ternary_kpad; rows whose K is not
                                       a multiple of 128 are re-laid at load with zero
                                       weights, docs/FORMAT.md, Unaligned I2_S rows) */
    float scale;                    /* the tensor's float scale (docs/FORMAT.md, I2_S) */
    float out_scale;                /* blk.N.<proj>.scale (arch `bitnet`), else 1 */
    const float *bias;              /* [M] blk.N.<proj>.bias (owned copy), or NULL */
    const uint8_t *i2s;             /* the I2_S payload in the mapping */
    void *packed;                   /* the kernel format's layout (in packed_arena;
                                       NULL when vocab_only) */
} bn_ternary;

/* The width a kernel sees for K inputs: whole I2_S blocks of 128. The
 * activations beyond K are zero, so the products are those of K inputs. */
static inline int bn_ternary_kpad(int K) {
    return (K + 127) / 128 * 128;
}

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
    bn_matrix head;                 /* the LM head as the forward pass reads it (the
                                       screen, for BN_HEAD_EXACT) */
    int head_type;                  /* enum bn_head_type in use (BN_HEAD_DEFAULT: a
                                       Q8_0, Q6_K or F32 table used as stored) */
    /* BN_HEAD_EXACT (src/head_exact.c; docs/NUMERICS.md, Exact head): the F16
     * table as stored, whose rows are recomputed exactly, and per row r the
     * screen's error bounds head_norms[2r] >= ||w - deq(w)||_2 and
     * head_norms[2r + 1] >= ||deq(w)||_2 (owned). Else head_f16.W = NULL. */
    bn_matrix head_f16;
    float *head_norms;
    const char *head_tensor;        /* "output.weight" or "token_embd.weight" */
    const gguf_tensor *head_src;    /* that tensor (the Q8 head is made from it) */
    uint32_t head_file_type;        /* its ggml type in the file */
    float attn_scale;               /* softmax scale: 1/sqrt(head_dim) or the
                                       file's attention.scale */

    /* token_embd: rows are read one token at a time */
    uint32_t embd_type;             /* GGML_F16, GGML_F32, GGML_Q8_0 or GGML_Q6_K */
    size_t embd_row_bytes;          /* bytes of one stored row */
    const uint8_t *tok_embd;        /* [n_vocab] stored rows in the mapping */
    int embd_fd;                    /* >= 0: rows are read with pread (the table's
                                       pages are not kept resident, see model.c) */
    uint64_t embd_file_offset;      /* file offset of token_embd's data */
    uint64_t head_file_offset;      /* file offset of head_src's data (the exact
                                       head's rows are read with pread too) */

    bn_tokenizer *tok;
    float *norms_arena;             /* owned F32 copies of every norm, bias and scale */
    void *packed_arena;             /* one 64-byte aligned block holding every
                                       ternary's packed layout (owned) */
    uint64_t packed_bytes;          /* bytes of packed ternary weights */
    uint64_t n_params;
};

/* Repacks every weight for another kernel variant (tests, benches: the
 * alternatives bn_kernels_all lists but dispatch never picks). */
int bn_model_use_kernels(bn_model *m, const bn_kernels *k, char *err, size_t errlen);

/* Copies the stored row of `token` (embd_row_bytes) to raw. */
void bn_model_embedding_raw(const bn_model *m, int32_t token, void *raw);
/* The embedding of `token` as n_embd floats (docs/NUMERICS.md, Embedding);
 * raw is scratch of embd_row_bytes (may be dst itself when the row is F32). */
void bn_model_embedding_row(const bn_model *m, int32_t token, void *raw, float *dst);

/* Row `row` of the exact head's F16 table (head_f16) into dst (n_embd
 * values): pread from the file where embd_fd is open, so rescored rows do
 * not map the table's pages (model.c), else from the mapping. */
void bn_model_head_row_f16(const bn_model *m, int32_t row, uint16_t *dst);

#endif
