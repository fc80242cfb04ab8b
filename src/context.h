/* The evaluation context: the KV cache, the scratch of one batch, the worker
 * pool and the numerics profile. context.c owns its lifetime and the checks
 * of bn_decode; forward.c does the arithmetic. */
#ifndef BN_CONTEXT_H
#define BN_CONTEXT_H

#include "bitnet.h"
#include "head_exact.h"
#include "model.h"
#include "threadpool.h"

/* The sizes the scratch is counted in (context.c fills them). */
typedef struct bn_scratch_dims {
    size_t B;           /* tokens per batch (n_batch) */
    size_t T;           /* threads */
    size_t E, F, KV;    /* n_embd, n_ff, n_head_kv * head_dim */
    size_t Q;           /* n_head * head_dim (n_embd but for wider heads) */
    size_t wide;        /* max(E, F, Q) in whole I2_S blocks: the widest
                           BitLinear input as the kernels see it */
    size_t ctx;         /* n_ctx */
    size_t rot;         /* n_rot */
    size_t tmp16;       /* max(head_dim, KV) */
    size_t prep;        /* bytes of one token's prepared ternary input (widest K) */
    size_t dot_part;    /* int32 dots of one part (see context.c) */
    size_t head_rows;   /* rows of head_in: min(n_batch, n_outputs_max) */
    size_t head_in;     /* bytes of one head_in row */
    size_t outputs;     /* n_outputs_max */
    size_t vocab;
    size_t hd;          /* head_dim */
    size_t att_rows;    /* query rows of a long-attention chunk (attention.c) */
    size_t att_acc;     /* floats of one part's P·V lane state */
    size_t q8_hd;       /* head_dim with a q8_0 K cache, else 0 */
} bn_scratch_dims;

/* Every scratch buffer, declared once: name, element type, element count
 * (an expression of bn_scratch_dims d). The context struct, the sizing,
 * the allocation and the freeing are all generated from this list. All are
 * 64-byte aligned; the X ones are zeroed, so no stale value can leak into a
 * result. U marks one left untouched: each step writes every byte it reads
 * before reading it, and pages it never writes never become resident (a
 * batch's t3 inputs skip their lookup tables: kernels.h, act_prep_batch). */
#define BN_SCRATCH_BUFFERS(X, U)                                                    \
    X(x, float, d.B * d.E)                    /* residual stream */                 \
    X(xn, float, (d.B > d.T ? d.B : d.T) * d.wide) /* normed BitLinear input; a    \
                                                 row per part for the final norm */ \
    X(q, float, d.B * d.Q)                                                          \
    X(k, float, d.B * d.KV)                                                         \
    X(v, float, d.B * d.KV)                                                         \
    X(att, float, d.B * d.Q)                  /* attention output, heads side by side */ \
    X(ffn, float, d.B * d.F)                  /* act(gate) * up */                  \
    X(act_q, int8_t, d.B * d.wide)            /* int8 activations */                \
    X(act_scale, float, d.B)                                                        \
    X(act_sum, int32_t, d.B)                                                        \
    U(act_prep, uint8_t, d.B * d.prep)        /* the ternary format's inputs */     \
    X(dot, int32_t, d.T * d.dot_part)         /* exact dots, one part per thread */ \
    X(scores, float, d.T * d.ctx)             /* attention scores, then probabilities */ \
    X(probs16, uint16_t, d.T * d.ctx)                                               \
    X(tmp16, uint16_t, d.T * d.tmp16)                                               \
    X(rope, float, d.T * d.rot)               /* cos, sin per pair */               \
    X(head_in, uint8_t, d.head_rows * d.head_in) /* final state, as the head format \
                                                    prepares it */                  \
    X(logits, float, d.outputs * d.vocab)                                           \
    X(att_q, float, d.att_rows * d.hd)        /* long attention: q rounded to f16 */ \
    X(att_p, float, d.att_rows * d.ctx)       /* scores, then probabilities */      \
    X(att_acc, float, d.T * d.att_acc)        /* P·V lanes, one part per thread */ \
    X(att_q8, int8_t, d.att_rows * d.q8_hd)   /* q8_0 K: the queries as int8 blocks */ \
    X(att_qd, float, d.att_rows * d.q8_hd / 32)   /* and their block scales */

/* How a context rounds where bitnet.cpp's prompt batch and its single-token
 * path differ (docs/NUMERICS.md, "Prompt batch and decode"). Chosen once, in
 * bn_context_new or bn_context_set_numerics; the forward pass calls through
 * it without asking which profile it is. */
typedef struct bn_numerics {
    /* P*V of one (token, head) over n_pad cells (p[t] = 0 for t >= n_kv):
     * out[d] = sum_t p[t] * vt[d * ld + t] for d < head_dim. p16 is
     * scratch for n_pad f16 values. */
    void (*attn_pv)(const bn_kernels *k, float *p, uint16_t *p16, int n_kv, int n_pad,
                    const uint16_t *vt, size_t ld, int head_dim, float *out);
    /* The LM head's format for a batch that keeps >= 2 rows of logits. */
    enum bn_format (*head_format)(enum bn_format model_head);
} bn_numerics;

struct bn_context {
    bn_model *model;
    const bn_kernels *kern;
    bn_hparams hp;
    int kv_dim;                     /* n_head_kv * head_dim */
    int q_dim;                      /* n_head * head_dim */
    int n_ctx, n_batch, n_threads, n_outputs_max;
    int n_past;                     /* tokens in the KV cache */
    bn_context *base;               /* bn_context_new_sequence: the context whose
                                       scratch and pool this one borrows; NULL
                                       when it owns them */
    bn_threadpool *pool;
    const bn_numerics *batch_numerics;  /* for batches of >= 2 tokens */
    const bn_numerics *decode_numerics; /* for one token */

    /* KV cache, f16. K (after RoPE) per KV head, one row per position, so
     * Q*K of a head is one f16 GEMV; V transposed so that P*V is one f16 dot
     * product per output dimension over positions. Not zeroed: a cell is
     * read only after it is written, so pages cost memory as the context
     * fills. */
    uint16_t *k_cache;              /* [n_layer][n_head_kv][n_ctx][head_dim] */
    uint16_t *v_cache;              /* [n_layer][kv_dim][n_ctx] */
    /* Or q8_0 (type_k / type_v = BN_KV_Q8_0; the f16 array is then NULL):
     * int8 values and one f16 scale per 32, per (layer, KV head) a series
     * of bn_kvq8_positions() positions in interleaved groups of 8
     * (kernels.h, BN_KVQ8_GROUP; docs/NUMERICS.md, "Quantized KV cache"). */
    int type_k, type_v;             /* enum bn_kv_type */
    int8_t *k_q8, *v_q8;            /* [n_layer][n_head_kv][series of head_dim values] */
    uint16_t *k_q8d, *v_q8d;        /* [n_layer][n_head_kv][series of head_dim / 32 scales] */

#define BN_SCRATCH_FIELD(name, type, count) type *name;
    BN_SCRATCH_BUFFERS(BN_SCRATCH_FIELD, BN_SCRATCH_FIELD)
#undef BN_SCRATCH_FIELD

    int dot_tile;                   /* rows per tile for batches (before rounding up
                                       to the format's tile_rows) */
    size_t dot_part;                /* int32 elements of one part's dots */
    int n_head_rows;                /* rows of head_in */
    int attn_chunk;                 /* tokens per long-attention chunk; 0: none */
    int n_logits;                   /* rows valid from the last bn_decode (0: none) */
    int logits_all;                 /* the last bn_decode kept every row */
    bn_head_exact hx;               /* what the exact head must compute (head_exact.h) */
};

/* Positions of a q8_0 series: n_ctx rounded up to whole groups. */
static inline size_t bn_kvq8_positions(const bn_context *c) {
    return ((size_t)c->n_ctx + BN_KVQ8_GROUP - 1) / BN_KVQ8_GROUP * BN_KVQ8_GROUP;
}

/* The first cell of the q8_0 series of (layer, KV head h): its values
 * start at cell * head_dim, its scales at cell * head_dim / 32. */
static inline size_t bn_kvq8_series(const bn_context *c, int layer, int h) {
    return ((size_t)layer * (size_t)c->hp.n_head_kv + (size_t)h) * bn_kvq8_positions(c);
}

/* The two profiles (numerics.c): one set of numerics for every batch size
 * (the default), and bitnet.cpp's prompt-batch rounding. */
extern const bn_numerics bn_numerics_decode;
extern const bn_numerics bn_numerics_bitnet_cpp;

/* Runs tokens[0..n) (n <= n_batch) at positions n_past .. n_past+n-1, writes
 * their K/V into the cache (n_past is not advanced here) and, when logits is
 * not NULL, the logits of every token (all != 0) or of the last token only. */
void bn_forward(bn_context *c, const int32_t *tokens, int n, int all, float *logits);

/* One token of each of n different sequences (bn_decode_multi): row i is
 * tokens[i] at position seqs[i]->n_past, its K/V stored in seqs[i]'s cache
 * and its attention over that cache; c's scratch and pool run the pass
 * (n <= n_batch, n <= n_outputs_max, every seqs[i] of c's model and n_ctx).
 * The logits of row i go to logits + i * n_vocab. n_past is not advanced. */
void bn_forward_multi(bn_context *c, bn_context *const *seqs, const int32_t *tokens, int n,
                      float *logits);

#endif
