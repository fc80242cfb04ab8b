/* The public accessors over the model's and the kernels' internals: what a
 * model holds (bn_model_describe) and which kernel variants this CPU runs.
 * The command line sees nothing but these;
 * every read of an internal field on its behalf lives here (and in info.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "kernels.h"
#include "model.h"

void bn_model_describe(const bn_model *m, bn_model_desc *out) {
    const bn_hparams *hp = &m->hp;
    const uint64_t E = (uint64_t)hp->n_embd, L = (uint64_t)hp->n_layer;
    const uint64_t V = (uint64_t)hp->n_vocab, F = (uint64_t)hp->n_ff;
    const uint64_t KVD = (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim;
    memset(out, 0, sizeof *out);
    out->arch = hp->arch;
    out->vocab_only = m->kern == NULL;
    out->kernel = m->kern ? m->kern->name : "none";
    out->file_bytes = m->gguf.size;
    out->n_params = m->n_params;
    const gguf_tensor *emb = gguf_find_tensor(&m->gguf, "token_embd.weight");
    out->embd_bytes = emb ? emb->nbytes : E * V * 2;
    /* output_norm, then per layer attn_norm and ffn_norm (n_embd each) and,
     * where the architecture has them, attn_sub_norm (n_head * head_dim) and
     * ffn_sub_norm (n_ff), F32 */
    const uint64_t Q = (uint64_t)hp->n_head * (uint64_t)hp->head_dim;
    int subs = m->arch && m->arch->sub_norms != BN_ABSENT;
    out->norm_bytes = (E + L * (2 * E + (subs ? Q + F : 0))) * 4;
    out->kv_bytes_per_pos = 2 * L * KVD * 2;            /* K and V, f16 */
    if (out->vocab_only) {
        out->head = "none";
        return;
    }
    out->head = m->kern->fmt[m->head.fmt]->name;        /* "f16", "q8_0", "q6_k", "f32" */
    if (m->head.fmt == BN_FMT_Q8_HEAD) out->head = m->head_type == BN_HEAD_EXACT ? "exact" : "q8";
    out->head_bytes = m->head.bytes;
    out->ternary_bytes = m->packed_bytes;
}

int bn_kernel_variants(const char **names, int max) {
    const bn_kernels *k[16];
    int n = bn_kernels_available(k, 16);
    if (n > 16) n = 16;
    for (int i = 0; i < n && i < max; i++) names[i] = k[i]->name;
    return n;
}

const char *bn_kernel_resolve(const char *name, char *err, size_t errlen) {
    const bn_kernels *k = bn_kernels_select(name, err, errlen);
    return k ? k->name : NULL;
}
