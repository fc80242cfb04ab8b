/* The public accessors over the model's and the kernels' internals: what a
 * model holds (bn_model_describe), which kernel variants this CPU runs, and
 * the numerics switch of a context. The command line sees nothing but these;
 * every read of an internal field on its behalf lives here (and in info.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "forward.h"
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
    out->embd_bytes = E * V * 2;                        /* F16 */
    /* output_norm, then per layer attn_norm, attn_sub_norm, ffn_norm
     * (n_embd each) and ffn_sub_norm (n_ff), F32 */
    out->norm_bytes = (E + L * (3 * E + F)) * 4;
    out->kv_bytes_per_pos = 2 * L * KVD * 2;            /* K and V, f16 */
    if (out->vocab_only) {
        out->head = "none";
        return;
    }
    if (m->head_type == BN_HEAD_Q8 && m->head_q8) {
        out->head = "q8";
        out->head_bytes = m->kern->head_q8_size(hp->n_embd, hp->n_vocab);
    } else {
        out->head = "f16";                              /* the tied token_embd */
        out->head_bytes = out->embd_bytes;
    }
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

int bn_context_set_numerics(bn_context *c, int numerics, char *err, size_t errlen) {
    if (numerics != BN_NUMERICS_DECODE && numerics != BN_NUMERICS_BITNET_CPP) {
        if (err && errlen)
            snprintf(err, errlen, "unknown batch numerics %d (expected %d = decode or %d = bitnet.cpp)",
                     numerics, BN_NUMERICS_DECODE, BN_NUMERICS_BITNET_CPP);
        return -1;
    }
    /* bitnet.cpp's batch numerics feed the F16 head float rows (the Q8
     * head's rows are act_q8 blocks either way): widen head_in if needed. */
    const bn_model *m = c->model;
    const int q8 = m->head_type == BN_HEAD_Q8 && m->head_q8;
    size_t need = ((size_t)c->hp.n_embd * sizeof(float) + 63) & ~(size_t)63;
    if (numerics == BN_NUMERICS_BITNET_CPP && !q8 && c->head_in_stride < need) {
        size_t bytes = (size_t)c->n_head_rows * need;
        void *p = aligned_alloc(64, bytes);
        if (!p) {
            if (err && errlen) snprintf(err, errlen, "out of memory");
            return -1;
        }
        memset(p, 0, bytes);
        free(c->head_in);
        c->head_in = p;
        c->head_in_stride = need;
    }
    c->batch_numerics = numerics;
    return 0;
}
