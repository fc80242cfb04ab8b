/* The evaluation context: sizes every buffer once (KV cache, batch scratch,
 * logits), owns the worker pool, and checks each bn_decode before anything
 * is touched, so a refused call leaves the cache as it was. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"

#define DEFAULT_BATCH 512
#define MAX_THREADS 512
#define DOT_TILE 64         /* rows of a batch's dots kept in cache at once */

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

/* 64-byte aligned; count * size checked for overflow. */
static void *alloc_raw(size_t count, size_t size, size_t *bytes) {
    if (count == 0 || size == 0) count = size = 1;
    if (count > ((size_t)-1 - 64) / size) return NULL;
    *bytes = (count * size + 63) & ~(size_t)63;
    return aligned_alloc(64, *bytes);
}

/* Scratch: small, zeroed so no stale value can ever leak into a result. */
static void *alloc_zero(size_t count, size_t size) {
    size_t bytes;
    void *p = alloc_raw(count, size, &bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

/* The KV cache is left untouched: a cell is read only after it is written
 * (forward.c clears V blocks it pads into), so the pages of a large context
 * cost memory only as the context fills. */
static void *alloc_cache(size_t count, size_t size) {
    size_t bytes;
    return alloc_raw(count, size, &bytes);
}

bn_context_params bn_context_default_params(void) {
    bn_context_params p = {0};
    p.n_batch = DEFAULT_BATCH;
    p.n_outputs_max = 1;
    return p;
}

void bn_context_free(bn_context *c) {
    if (!c) return;
    bn_threadpool_free(c->pool);
    free(c->k_cache);
    free(c->v_cache);
    free(c->x);
    free(c->xn);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->ffn);
    free(c->act_q);
    free(c->act_scale);
    free(c->act_sum);
    free(c->act_prep);
    free(c->dot);
    free(c->scores);
    free(c->probs16);
    free(c->tmp16);
    free(c->rope);
    free(c->head_in);
    free(c->logits);
    free(c);
}

/* The forward pass assumes these shapes; a loader bug or an odd file must not
 * turn into an out-of-bounds access. */
static int check_shapes(const bn_model *m, char *err, size_t errlen) {
    const bn_hparams *hp = &m->hp;
    if (!m->kern || !m->layers || !m->tok_embd || !m->output_norm) {
        set_err(err, errlen, "model was loaded without weights (vocab only)");
        return -1;
    }
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 || hp->n_vocab <= 0 ||
        hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->head_dim <= 0 || hp->n_ctx_train <= 0) {
        set_err(err, errlen, "model has a zero or negative dimension");
        return -1;
    }
    if (hp->n_head * hp->head_dim != hp->n_embd || hp->n_head % hp->n_head_kv != 0) {
        set_err(err, errlen, "unsupported attention shape: %d heads x %d dims, %d kv heads, n_embd %d",
                hp->n_head, hp->head_dim, hp->n_head_kv, hp->n_embd);
        return -1;
    }
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0) {
        set_err(err, errlen, "unsupported rope dimension %d (head_dim %d)", hp->n_rot, hp->head_dim);
        return -1;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        const bn_ternary *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wgate, &L->wup, &L->wdown};
        const int K[7] = {hp->n_embd, hp->n_embd, hp->n_embd, hp->n_embd, hp->n_embd, hp->n_embd, hp->n_ff};
        const int M[7] = {hp->n_embd, hp->n_head_kv * hp->head_dim, hp->n_head_kv * hp->head_dim,
                          hp->n_embd, hp->n_ff, hp->n_ff, hp->n_embd};
        for (int i = 0; i < 7; i++) {
            if (w[i]->K != K[i] || w[i]->M != M[i] || !w[i]->packed) {
                set_err(err, errlen, "layer %d: projection %d has shape %dx%d, expected %dx%d",
                        l, i, w[i]->K, w[i]->M, K[i], M[i]);
                return -1;
            }
        }
    }
    return 0;
}

bn_context *bn_context_new(bn_model *m, const bn_context_params *p, char *err, size_t errlen) {
    if (!m) {
        set_err(err, errlen, "no model");
        return NULL;
    }
    bn_context_params dp = bn_context_default_params();
    if (!p) p = &dp;
    if (check_shapes(m, err, errlen) != 0) return NULL;
    if (p->n_ctx < 0 || p->n_threads < 0 || p->n_batch < 0 || p->n_outputs_max < 0) {
        set_err(err, errlen, "context parameters must not be negative");
        return NULL;
    }
    if (p->batch_numerics != BN_NUMERICS_DECODE && p->batch_numerics != BN_NUMERICS_BITNET_CPP) {
        set_err(err, errlen, "unknown batch numerics %d (expected %d = decode or %d = bitnet.cpp)",
                p->batch_numerics, BN_NUMERICS_DECODE, BN_NUMERICS_BITNET_CPP);
        return NULL;
    }
    if (p->n_threads > MAX_THREADS) {
        set_err(err, errlen, "too many threads: %d (at most %d)", p->n_threads, MAX_THREADS);
        return NULL;
    }

    bn_context *c = calloc(1, sizeof *c);
    if (!c) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->model = m;
    c->kern = m->kern;
    c->hp = m->hp;
    const bn_hparams *hp = &c->hp;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    c->n_ctx = p->n_ctx == 0 ? hp->n_ctx_train : imin(p->n_ctx, hp->n_ctx_train);
    c->n_threads = p->n_threads == 0 ? imin(bn_physical_cores(), MAX_THREADS) : p->n_threads;
    c->n_batch = imin(p->n_batch == 0 ? DEFAULT_BATCH : p->n_batch, c->n_ctx);
    c->n_outputs_max = imin(imax(p->n_outputs_max, 1), c->n_ctx);
    c->n_head_rows = imin(c->n_batch, c->n_outputs_max);
    c->batch_numerics = p->batch_numerics;

    size_t B = (size_t)c->n_batch, T = (size_t)c->n_threads, E = (size_t)hp->n_embd;
    size_t F = (size_t)hp->n_ff, KV = (size_t)c->kv_dim, CTX = (size_t)c->n_ctx;
    size_t wide = E > F ? E : F;
    size_t prep = c->kern->act_prep_size(hp->n_embd);
    size_t prep_ff = c->kern->act_prep_size(hp->n_ff);
    if (prep_ff > prep) prep = prep_ff;
    /* Dots: per part, two tiles (gate and up) of a batch, or two whole
     * outputs of one token (the widest projection is n_ff or n_embd). */
    int rb = c->kern->row_block > 0 ? c->kern->row_block : 1;
    c->dot_tile = DOT_TILE;
    size_t tile = (size_t)((DOT_TILE + rb - 1) / rb * rb);
    size_t widest = E > F ? E : F;
    c->dot_part = 2 * (B * tile > widest ? B * tile : widest);
    c->dot_part = (c->dot_part + 15) & ~(size_t)15;     /* parts on separate cache lines */
    size_t tmp16 = KV > (size_t)hp->head_dim ? KV : (size_t)hp->head_dim;
    size_t cache = (size_t)hp->n_layer * CTX * KV;

    c->k_cache = alloc_cache(cache, sizeof(uint16_t));
    c->v_cache = alloc_cache(cache, sizeof(uint16_t));
    c->x = alloc_zero(B * E, sizeof(float));
    c->xn = alloc_zero((B > T ? B : T) * wide, sizeof(float));
    c->q = alloc_zero(B * E, sizeof(float));
    c->k = alloc_zero(B * KV, sizeof(float));
    c->v = alloc_zero(B * KV, sizeof(float));
    c->att = alloc_zero(B * E, sizeof(float));
    c->ffn = alloc_zero(B * F, sizeof(float));
    c->act_q = alloc_zero(B * wide, sizeof(int8_t));
    c->act_scale = alloc_zero(B, sizeof(float));
    c->act_sum = alloc_zero(B, sizeof(int32_t));
    c->act_prep = alloc_zero(B, prep);
    c->dot = alloc_zero(T * c->dot_part, sizeof(int32_t));
    c->scores = alloc_zero(T * CTX, sizeof(float));
    c->probs16 = alloc_zero(T * CTX, sizeof(uint16_t));
    c->tmp16 = alloc_zero(T * tmp16, sizeof(uint16_t));
    c->rope = alloc_zero(T * (size_t)hp->n_rot, sizeof(float));
    /* f16 rows; float rows when bitnet.cpp's batch numerics may keep several
     * rows of one batch (its LM head then multiplies the float state). */
    size_t head_elt = p->batch_numerics == BN_NUMERICS_BITNET_CPP ? sizeof(float) : sizeof(uint16_t);
    c->head_in_stride = (E * head_elt + 63) & ~(size_t)63;
    if (m->head_type == BN_HEAD_Q8 && m->head_q8) {
        if (hp->n_embd % 32 != 0) {
            set_err(err, errlen, "the q8 head needs n_embd %% 32 == 0 (n_embd %d)", hp->n_embd);
            bn_context_free(c);
            return NULL;
        }
        c->head_in_stride = (bn_act_q8_size(hp->n_embd) + 63) & ~(size_t)63;
    }
    c->head_in = alloc_zero((size_t)c->n_head_rows, c->head_in_stride);
    c->logits = alloc_zero((size_t)c->n_outputs_max * (size_t)hp->n_vocab, sizeof(float));
    if (!c->k_cache || !c->v_cache || !c->x || !c->xn || !c->q || !c->k || !c->v || !c->att ||
        !c->ffn || !c->act_q || !c->act_scale || !c->act_sum || !c->act_prep || !c->dot ||
        !c->scores || !c->probs16 || !c->tmp16 || !c->rope || !c->head_in || !c->logits) {
        set_err(err, errlen, "out of memory for a context of %d tokens", c->n_ctx);
        bn_context_free(c);
        return NULL;
    }
    c->pool = bn_threadpool_new(c->n_threads);
    if (!c->pool) {
        set_err(err, errlen, "cannot start %d threads", c->n_threads);
        bn_context_free(c);
        return NULL;
    }
    return c;
}

int bn_context_n_ctx(const bn_context *c) { return c->n_ctx; }
int bn_context_n_past(const bn_context *c) { return c->n_past; }
int bn_context_n_threads(const bn_context *c) { return c->n_threads; }

void bn_context_reset(bn_context *c) {
    /* Positions >= n_past are never read, so the cache contents can stay. */
    c->n_past = 0;
    c->n_logits = 0;
}

int bn_decode(bn_context *c, const int32_t *tokens, int n, int all_logits,
              char *err, size_t errlen) {
    if (!c || !tokens || n <= 0) {
        set_err(err, errlen, "nothing to decode");
        return -1;
    }
    if (c->n_past >= c->n_ctx) {
        set_err(err, errlen, "context is full (%d tokens)", c->n_ctx);
        return -1;
    }
    if (n > c->n_ctx - c->n_past) {
        set_err(err, errlen, "context is full (%d tokens): %d tokens do not fit after %d",
                c->n_ctx, n, c->n_past);
        return -1;
    }
    if (all_logits && n > c->n_outputs_max) {
        set_err(err, errlen, "%d logit rows requested, the context keeps at most %d",
                n, c->n_outputs_max);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->hp.n_vocab) {
            set_err(err, errlen, "token id %d at index %d is out of range [0, %d)",
                    (int)tokens[i], i, c->hp.n_vocab);
            return -1;
        }
    }

    /* Batches of n_batch tokens; logits from every batch (all_logits) or only
     * from the one holding the last token. */
    size_t V = (size_t)c->hp.n_vocab;
    for (int done = 0; done < n;) {
        int chunk = imin(c->n_batch, n - done);
        int last = done + chunk == n;
        float *out = all_logits ? c->logits + (size_t)done * V : last ? c->logits : NULL;
        bn_forward(c, tokens + done, chunk, all_logits, out);
        c->n_past += chunk;
        done += chunk;
    }
    c->n_logits = all_logits ? n : 1;
    c->logits_all = all_logits != 0;
    return 0;
}

const float *bn_get_logits(const bn_context *c, int i) {
    if (!c || c->n_logits == 0) return NULL;
    if (i == -1 || (!c->logits_all && i == 0)) i = c->n_logits - 1;
    if (i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * (size_t)c->hp.n_vocab;
}
