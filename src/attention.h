/* Attention over the KV cache and the operations on the cache itself
 * (docs/NUMERICS.md, Attention, Quantized KV cache and Context shift). The
 * cache layout is context.h's: f16 K after RoPE [layer][kv_head][n_ctx]
 * [head_dim], f16 V transposed [layer][kv_dim][n_ctx]; a q8_0 K or V is
 * position-major [layer][kv_head][n_ctx][head_dim] with its block scales. */
#ifndef BN_ATTENTION_H
#define BN_ATTENTION_H

#include "context.h"

/* Tokens per chunk of the long-context attention for this shape (the
 * context sizes its scratch from it: attn_chunk x n_head rows of n_ctx
 * probabilities), or 0 when every row takes the short path (a context of at
 * most 256 cells, or a head_dim that is not a multiple of 8). every_row: all
 * rows take the chunked path (a q8_0 cache), whatever n_ctx. */
int bn_attention_chunk(const bn_hparams *hp, int n_ctx, int n_batch, int every_row);
/* Floats of one part's P·V lane state (att_acc) for that chunk. */
size_t bn_attention_acc_floats(const bn_hparams *hp, int chunk);

/* Before a batch of n tokens at positions pos0.. is stored: clears the V
 * cells of the KV_PAD blocks it enters for the first time (attention reads
 * whole blocks; see attention.c). */
void bn_kv_prepare(bn_context *c, int pos0, int n);
/* The cache keeps positions < n_keep only (bn_context_truncate): clears the
 * V cells from n_keep to the end of its KV_PAD block, which the next batch
 * enters without bn_kv_prepare clearing it, so the cache is as if the
 * forgotten tokens had never been written. */
void bn_kv_truncate(bn_context *c, int n_keep);

/* The attention output c->att of tokens 0..n-1 of the batch (positions
 * pos0..pos0+n-1, their q in c->q, their K/V already in the cache) in
 * layer `layer`, with the numerics profile num. Runs on the context's pool. */
void bn_attention(bn_context *c, int layer, int pos0, int n, const bn_numerics *num);

/* The same for a batch of n rows that each belong to a different sequence
 * (bn_forward_multi): row i's q in c->q, its K/V already in seqs[i]'s cache
 * at position seqs[i]->n_past, which it attends (every seqs[i] has c's
 * n_ctx). c's scratch and pool do the work. */
void bn_attention_multi(bn_context *c, bn_context *const *seqs, int layer, int n,
                        const bn_numerics *num);

/* Removes cells [keep, keep + n_discard) of every layer and moves cells
 * [keep + n_discard, n_past) down by n_discard, their K re-rotated to the new
 * positions (f16 -> float, rotate by -n_discard, round back to f16, as
 * llama.cpp's K shift does). Arguments checked by the caller
 * (bn_context_shift); n_past is not changed here. Runs on the pool. */
void bn_kv_shift(bn_context *c, int keep, int n_discard);

#endif
