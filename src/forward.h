/* The evaluation context (KV cache, scratch, worker pool) and the entry point
 * of the transformer. Internal: context.c owns the lifetime and the checks of
 * bn_decode, forward.c the arithmetic. */
#ifndef BN_FORWARD_H
#define BN_FORWARD_H

#include "bitnet.h"
#include "model.h"
#include "threadpool.h"

struct bn_context {
    bn_model *model;
    const bn_kernels *kern;
    bn_hparams hp;
    int kv_dim;                     /* n_head_kv * head_dim */
    int n_ctx, n_batch, n_threads, n_outputs_max;
    int batch_numerics;             /* enum bn_batch_numerics */
    int n_past;                     /* tokens in the KV cache */
    bn_threadpool *pool;

    /* KV cache, f16. K (after RoPE) per KV head, one row per position, so
     * Q·K of a head is one f16 GEMV; V transposed so that P·V is one f16 dot
     * product per output dimension over positions. */
    uint16_t *k_cache;              /* [n_layer][n_head_kv][n_ctx][head_dim] */
    uint16_t *v_cache;              /* [n_layer][kv_dim][n_ctx] */

    /* Scratch for one batch of up to n_batch tokens. */
    float *x;                       /* [n_batch][n_embd] residual stream */
    float *xn;                      /* [max(n_batch, n_threads)][max(n_embd, n_ff)] normed
                                       input of a BitLinear; a row per thread for the final norm */
    float *q;                       /* [n_batch][n_embd] */
    float *k, *v;                   /* [n_batch][kv_dim] */
    float *att;                     /* [n_batch][n_embd] attention output (heads concatenated) */
    float *ffn;                     /* [n_batch][n_ff] relu(gate)^2 * up */
    int8_t *act_q;                  /* [n_batch][max K] int8 activations */
    float *act_scale;               /* [n_batch] */
    int32_t *act_sum;               /* [n_batch] */
    void *act_prep;                 /* [n_batch][act_prep_size(max K)], 64-byte aligned */
    int32_t *dot;                   /* [n_threads][dot_part] exact dots, per part: two
                                       tiles of [n_batch][dot_tile], or two whole rows
                                       of outputs for a single token */
    int dot_tile;                   /* rows per tile for batches (before rounding up
                                       to the kernel's row_block) */
    size_t dot_part;

    /* Per-thread attention scratch. */
    float *scores;                  /* [n_threads][n_ctx]: scores, then probabilities */
    uint16_t *probs16;              /* [n_threads][n_ctx] */
    uint16_t *tmp16;                /* [n_threads][max(head_dim, kv_dim)] */
    float *rope;                    /* [n_threads][n_rot]: cos, sin per pair */

    /* LM head. */
    int n_head_rows;                /* rows of head_in: min(n_batch, n_outputs_max) */
    void *head_in;                  /* [n_head_rows][head_in_stride] final normed state:
                                       f16 for the F16 head, act_q8 blocks for the Q8 head */
    size_t head_in_stride;          /* bytes per row */
    float *logits;                  /* [n_outputs_max][n_vocab] */
    int n_logits;                   /* rows valid from the last bn_decode (0: none) */
    int logits_all;                 /* the last bn_decode kept every row */
};

/* Runs tokens[0..n) (n <= n_batch) at positions n_past .. n_past+n-1, writes
 * their K/V into the cache (n_past is not advanced here) and, when logits is
 * not NULL, the logits of every token (all != 0) or of the last token only. */
void bn_forward(bn_context *c, const int32_t *tokens, int n, int all, float *logits);

#endif
