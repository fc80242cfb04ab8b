/* The evaluation context: sizes every buffer once (KV cache, batch scratch,
 * logits) from the scratch table (context.h), owns the worker pool, and
 * checks each bn_decode before anything is touched, so a refused call
 * leaves the cache as it was. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "context.h"
#include "util.h"

#define DEFAULT_BATCH 512
#define MAX_THREADS 512
#define DOT_TILE 64         /* rows of a batch's dots kept in cache at once */


/* 64-byte aligned; count * size checked for overflow. */
static void *alloc_raw(size_t count, size_t size, size_t *bytes) {
    if (count == 0 || size == 0) count = size = 1;
    if (count > ((size_t)PTRDIFF_MAX - 64) / size) return NULL;   /* no object is larger */
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

/* ---- the KV cache ---------------------------------------------------------- */

const char *bn_kv_type_name(int type) {
    switch (type) {
    case BN_KV_F16: return "f16";
    case BN_KV_Q8_0: return "q8_0";
    default: return NULL;
    }
}

int bn_kv_type_from_name(const char *name) {
    for (int t = BN_KV_F16; t <= BN_KV_Q8_0; t++)
        if (name && strcmp(name, bn_kv_type_name(t)) == 0) return t;
    return -1;
}

/* Bytes one position takes in one layer, K or V, at a type: f16 halves, or
 * q8_0's int8 values plus an f16 scale per 32. */
static size_t kv_bytes(int type, int kv_dim) {
    return type == BN_KV_Q8_0 ? (size_t)kv_dim + (size_t)kv_dim / 32 * 2 : (size_t)kv_dim * 2;
}

uint64_t bn_context_kv_bytes_per_pos(const bn_context *c) {
    return (uint64_t)c->hp.n_layer * (kv_bytes(c->type_k, c->kv_dim) + kv_bytes(c->type_v, c->kv_dim));
}

static void free_kv(bn_context *c) {
    free(c->k_cache);
    free(c->v_cache);
    free(c->k_q8);
    free(c->k_q8d);
    free(c->v_q8);
    free(c->v_q8d);
    c->k_cache = c->v_cache = NULL;
    c->k_q8 = c->v_q8 = NULL;
    c->k_q8d = c->v_q8d = NULL;
}

/* One cache (K or V) of c's shape at its type: the f16 array, or the q8_0
 * values and scales (each series whole groups of positions, context.h).
 * 0, or -1 when out of memory. */
static int alloc_kv_one(const bn_context *c, int type, uint16_t **f16, int8_t **q8, uint16_t **q8d) {
    size_t cells = (size_t)c->hp.n_layer * (size_t)c->n_ctx * (size_t)c->kv_dim;
    *f16 = NULL;
    *q8 = NULL;
    *q8d = NULL;
    if (type == BN_KV_Q8_0) {
        cells = (size_t)c->hp.n_layer * bn_kvq8_positions(c) * (size_t)c->kv_dim;
        *q8 = alloc_cache(cells, sizeof **q8);
        *q8d = alloc_cache(cells / 32, sizeof **q8d);
        return *q8 && *q8d ? 0 : -1;
    }
    *f16 = alloc_cache(cells, sizeof **f16);
    return *f16 ? 0 : -1;
}

static int alloc_kv(bn_context *c) {
    int k = alloc_kv_one(c, c->type_k, &c->k_cache, &c->k_q8, &c->k_q8d);
    int v = alloc_kv_one(c, c->type_v, &c->v_cache, &c->v_q8, &c->v_q8d);
    return k == 0 && v == 0 ? 0 : -1;
}

void bn_context_free(bn_context *c) {
    if (!c) return;
    bn_head_exact_free(&c->hx);
    free_kv(c);
    if (c->base) {                  /* only the cache, the logits and hx are its own */
        free(c->logits);
        free(c);
        return;
    }
    bn_threadpool_free(c->pool);
#define BN_SCRATCH_FREE(name, type, count) free(c->name);
    BN_SCRATCH_BUFFERS(BN_SCRATCH_FREE, BN_SCRATCH_FREE)
#undef BN_SCRATCH_FREE
    free(c);
}

/* Allocates every scratch buffer of the table; 0, or -1 when one fails. */
static int alloc_scratch(bn_context *c, bn_scratch_dims d) {
    int ok = 1;
#define BN_SCRATCH_ALLOC(name, type, count) \
    ok = ok && (c->name = alloc_zero((size_t)(count), sizeof(type))) != NULL;
#define BN_SCRATCH_ALLOC_UNTOUCHED(name, type, count) \
    ok = ok && (c->name = alloc_cache((size_t)(count), sizeof(type))) != NULL;
    BN_SCRATCH_BUFFERS(BN_SCRATCH_ALLOC, BN_SCRATCH_ALLOC_UNTOUCHED)
#undef BN_SCRATCH_ALLOC_UNTOUCHED
#undef BN_SCRATCH_ALLOC
    return ok ? 0 : -1;
}

/* The forward pass assumes these shapes; a loader bug or an odd file must not
 * turn into an out-of-bounds access. */
static int check_shapes(const bn_model *m, char *err, size_t errlen) {
    const bn_hparams *hp = &m->hp;
    if (!m->kern || !m->layers || !m->head.W || !m->output_norm || !m->arch) {
        bn_set_err(err, errlen, "model was loaded without weights (vocab only)");
        return -1;
    }
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_ff <= 0 || hp->n_vocab <= 0 ||
        hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->head_dim <= 0 || hp->n_ctx_train <= 0) {
        bn_set_err(err, errlen, "model has a zero or negative dimension");
        return -1;
    }
    if (hp->n_head % hp->n_head_kv != 0) {
        bn_set_err(err, errlen, "unsupported attention shape: %d heads x %d dims, %d kv heads",
                hp->n_head, hp->head_dim, hp->n_head_kv);
        return -1;
    }
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0) {
        bn_set_err(err, errlen, "unsupported rope dimension %d (head_dim %d)", hp->n_rot, hp->head_dim);
        return -1;
    }
    if (m->head.K != hp->n_embd || m->head.M != hp->n_vocab) {
        bn_set_err(err, errlen, "LM head has shape %dx%d, expected %dx%d", m->head.K, m->head.M,
                hp->n_embd, hp->n_vocab);
        return -1;
    }
    const int E = hp->n_embd, F = hp->n_ff, KV = hp->n_head_kv * hp->head_dim;
    const int Q = hp->n_head * hp->head_dim;
    const int K[BN_PROJ_COUNT] = {E, E, E, Q, E, E, F};
    const int M[BN_PROJ_COUNT] = {Q, KV, KV, E, F, F, E};
    for (int l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        for (int i = 0; i < BN_PROJ_COUNT; i++) {
            const bn_ternary *w = &L->proj[i];
            if (w->K != K[i] || w->M != M[i] || w->Kp != bn_ternary_kpad(K[i]) || !w->packed) {
                bn_set_err(err, errlen, "layer %d: projection %d has shape %dx%d, expected %dx%d",
                        l, i, w->K, w->M, K[i], M[i]);
                return -1;
            }
        }
        if (!L->norm[BN_NORM_ATTN] || !L->norm[BN_NORM_FFN] ||
            (m->arch->sub_norms == BN_REQUIRED &&
             (!L->norm[BN_NORM_ATTN_SUB] || !L->norm[BN_NORM_FFN_SUB]))) {
            bn_set_err(err, errlen, "layer %d: a norm of the architecture is missing", l);
            return -1;
        }
    }
    return 0;
}

bn_context *bn_context_new(bn_model *m, const bn_context_params *p, char *err, size_t errlen) {
    if (!m) {
        bn_set_err(err, errlen, "no model");
        return NULL;
    }
    bn_context_params dp = bn_context_default_params();
    if (!p) p = &dp;
    if (check_shapes(m, err, errlen) != 0) return NULL;
    if (p->n_ctx < 0 || p->n_threads < 0 || p->n_batch < 0 || p->n_outputs_max < 0) {
        bn_set_err(err, errlen, "context parameters must not be negative");
        return NULL;
    }
    if (p->n_ctx > BN_MAX_CTX) {
        bn_set_err(err, errlen, "context of %d tokens is too large (at most %d)", p->n_ctx, BN_MAX_CTX);
        return NULL;
    }
    if (p->n_threads > MAX_THREADS) {
        bn_set_err(err, errlen, "too many threads: %d (at most %d)", p->n_threads, MAX_THREADS);
        return NULL;
    }
    const int types[2] = {p->type_k, p->type_v};
    for (int i = 0; i < 2; i++) {
        const char *which = i == 0 ? "K" : "V";
        if (!bn_kv_type_name(types[i])) {
            bn_set_err(err, errlen, "unknown %s cache type %d (expected %d = f16 or %d = q8_0)",
                       which, types[i], BN_KV_F16, BN_KV_Q8_0);
            return NULL;
        }
        if (types[i] == BN_KV_Q8_0 && m->hp.head_dim % 32 != 0) {
            bn_set_err(err, errlen, "a q8_0 %s cache needs a head_dim that is a multiple of 32 "
                       "(this model's is %d)", which, m->hp.head_dim);
            return NULL;
        }
        if (types[i] == BN_KV_Q8_0 && m->hp.head_dim > BN_KVQ8_MAX_HD) {
            bn_set_err(err, errlen, "a q8_0 %s cache takes a head_dim of at most %d (this model's is %d)",
                       which, BN_KVQ8_MAX_HD, m->hp.head_dim);
            return NULL;
        }
    }

    bn_context *c = calloc(1, sizeof *c);
    if (!c) {
        bn_set_err(err, errlen, "out of memory");
        return NULL;
    }
    c->model = m;
    c->kern = m->kern;
    c->hp = m->hp;
    const bn_hparams *hp = &c->hp;
    c->kv_dim = hp->n_head_kv * hp->head_dim;
    c->q_dim = hp->n_head * hp->head_dim;
    /* Longer than the training length is allowed, as in llama.cpp: RoPE
     * extrapolates; whether the model copes is the caller's call. */
    c->n_ctx = p->n_ctx == 0 ? hp->n_ctx_train : p->n_ctx;
    c->n_threads = p->n_threads == 0 ? imin(bn_physical_cores(), MAX_THREADS) : p->n_threads;
    c->n_batch = imin(p->n_batch == 0 ? DEFAULT_BATCH : p->n_batch, c->n_ctx);
    c->n_outputs_max = imin(imax(p->n_outputs_max, 1), c->n_ctx);
    c->n_head_rows = imin(c->n_batch, c->n_outputs_max);
    c->batch_numerics = &bn_numerics_decode;
    c->decode_numerics = &bn_numerics_decode;
    c->type_k = p->type_k;
    c->type_v = p->type_v;

    const bn_format_traits *tern = c->kern->fmt[BN_FMT_TERNARY];
    bn_scratch_dims d = {0};
    d.B = (size_t)c->n_batch;
    d.T = (size_t)c->n_threads;
    d.E = (size_t)hp->n_embd;
    d.F = (size_t)hp->n_ff;
    d.KV = (size_t)c->kv_dim;
    d.Q = (size_t)c->q_dim;
    d.wide = (size_t)imax(bn_ternary_kpad(hp->n_embd),
                          imax(bn_ternary_kpad(hp->n_ff), bn_ternary_kpad(c->q_dim)));
    d.ctx = (size_t)c->n_ctx;
    d.rot = (size_t)hp->n_rot;
    d.tmp16 = d.KV > (size_t)hp->head_dim ? d.KV : (size_t)hp->head_dim;
    d.prep = tern->act_size((int)d.wide);
    /* Dots: per part, two tiles (gate and up) of a batch, or two whole
     * outputs of one token (the widest projection is n_ff or n_embd). */
    int rb = tern->tile_rows > 0 ? tern->tile_rows : 1;
    c->dot_tile = DOT_TILE;
    size_t tile = (size_t)((DOT_TILE + rb - 1) / rb * rb);
    d.dot_part = 2 * (d.B * tile > d.wide ? d.B * tile : d.wide);
    d.dot_part = (d.dot_part + 15) & ~(size_t)15;     /* parts on separate cache lines */
    c->dot_part = d.dot_part;
    /* head_in: the final state prepared for any head format this context
     * may use (the model's, or the float rows of bitnet.cpp's batch head). */
    const bn_format_traits *head = c->kern->fmt[m->head.fmt];
    const bn_format_traits *head_f32 = c->kern->fmt[bn_numerics_bitnet_cpp.head_format(m->head.fmt)];
    d.head_in = head->act_size(hp->n_embd);
    if (head_f32->act_size(hp->n_embd) > d.head_in) d.head_in = head_f32->act_size(hp->n_embd);
    if (m->head_type == BN_HEAD_EXACT) {
        /* The exact head computes unscreened rows with the F16 table. */
        const bn_format_traits *f16 = c->kern->fmt[BN_FMT_F16];
        const bn_format_traits *f16b = c->kern->fmt[BN_FMT_F16_TINYBLAS];
        if (f16->act_size(hp->n_embd) > d.head_in) d.head_in = f16->act_size(hp->n_embd);
        if (f16b->act_size(hp->n_embd) > d.head_in) d.head_in = f16b->act_size(hp->n_embd);
    }
    d.head_in = (d.head_in + 63) & ~(size_t)63;
    d.head_rows = (size_t)c->n_head_rows;
    d.outputs = (size_t)c->n_outputs_max;
    d.vocab = (size_t)hp->n_vocab;
    c->attn_chunk = bn_attention_chunk(hp, c->n_ctx, c->n_batch,
                                       c->type_k != BN_KV_F16 || c->type_v != BN_KV_F16);
    d.hd = (size_t)hp->head_dim;
    d.att_rows = (size_t)c->attn_chunk * (size_t)hp->n_head;
    d.att_acc = bn_attention_acc_floats(hp, c->attn_chunk);
    d.q8_hd = c->type_k == BN_KV_Q8_0 ? d.hd : 0;

    if (alloc_kv(c) != 0 || alloc_scratch(c, d) != 0 || bn_head_exact_init(c) != 0) {
        bn_set_err(err, errlen, "out of memory for a context of %d tokens", c->n_ctx);
        bn_context_free(c);
        return NULL;
    }
    c->pool = bn_threadpool_new(c->n_threads);
    if (!c->pool) {
        bn_set_err(err, errlen, "cannot start %d threads", c->n_threads);
        bn_context_free(c);
        return NULL;
    }
    return c;
}

bn_context *bn_context_new_sequence(bn_context *base, char *err, size_t errlen) {
    if (!base) {
        bn_set_err(err, errlen, "no base context");
        return NULL;
    }
    if (base->base) base = base->base;  /* a sequence of a sequence shares the same scratch */
    bn_context *c = malloc(sizeof *c);
    if (!c) {
        bn_set_err(err, errlen, "out of memory");
        return NULL;
    }
    /* Everything as the base has it (sizes, numerics, the scratch pointers
     * and the pool), then a cache, logits and a position of its own. */
    *c = *base;
    c->base = base;
    c->n_past = 0;
    c->n_logits = 0;
    c->logits_all = 0;
    int kv_ok = alloc_kv(c) == 0;      /* of the base's types */
    c->logits = alloc_zero((size_t)c->n_outputs_max * (size_t)c->hp.n_vocab, sizeof(float));
    /* and its own exact-head request (its sampler is its own) */
    memset(&c->hx, 0, sizeof c->hx);
    if (!kv_ok || !c->logits || bn_head_exact_init(c) != 0) {
        bn_head_exact_free(&c->hx);
        free_kv(c);
        free(c->logits);
        free(c);
        bn_set_err(err, errlen, "out of memory for a context of %d tokens", base->n_ctx);
        return NULL;
    }
    return c;
}

int bn_context_set_numerics(bn_context *c, int numerics, char *err, size_t errlen) {
    if (numerics == BN_NUMERICS_DECODE) {
        c->batch_numerics = &bn_numerics_decode;
    } else if (numerics == BN_NUMERICS_BITNET_CPP) {
        c->batch_numerics = &bn_numerics_bitnet_cpp;
    } else {
        bn_set_err(err, errlen, "unknown batch numerics %d (expected %d = decode or %d = bitnet.cpp)",
                numerics, BN_NUMERICS_DECODE, BN_NUMERICS_BITNET_CPP);
        return -1;
    }
    return 0;
}

int bn_context_set_exact_head(bn_context *c, int top_k, const int32_t *ids, int n_ids,
                              char *err, size_t errlen) {
    if (n_ids < 0 || n_ids > c->hp.n_vocab || (n_ids > 0 && !ids)) {
        bn_set_err(err, errlen, "exact head: %d ids (expected 0 .. %d)", n_ids, c->hp.n_vocab);
        return -1;
    }
    c->hx.top_k = top_k;
    if (n_ids > 0) memcpy(c->hx.ids, ids, (size_t)n_ids * sizeof *ids);
    c->hx.n_ids = n_ids;
    return 0;
}

void bn_context_set_sampler(bn_context *c, const bn_sampler *s) {
    c->hx.sampler = s;
}

void bn_context_head_stats(const bn_context *c, bn_head_stats *out) {
    *out = c->hx.stats;
}

int bn_context_n_ctx(const bn_context *c) { return c->n_ctx; }
int bn_context_n_past(const bn_context *c) { return c->n_past; }
int bn_context_n_threads(const bn_context *c) { return c->n_threads; }

void bn_context_reset(bn_context *c) {
    /* Positions >= n_past are never read, so the cache contents can stay. */
    c->n_past = 0;
    c->n_logits = 0;
}

int bn_context_truncate(bn_context *c, int n_keep, char *err, size_t errlen) {
    if (!c || n_keep < 0 || n_keep > c->n_past) {
        bn_set_err(err, errlen, "cannot keep %d of %d tokens", n_keep, c ? c->n_past : 0);
        return -1;
    }
    bn_kv_truncate(c, n_keep);
    c->n_past = n_keep;
    c->n_logits = 0;
    return 0;
}

int bn_context_shift(bn_context *c, int keep, int n_discard, char *err, size_t errlen) {
    if (!c || keep < 0 || n_discard < 1 || keep > c->n_past || n_discard > c->n_past - keep) {
        bn_set_err(err, errlen, "cannot shift the context: keep %d, discard %d of %d tokens",
                keep, n_discard, c ? c->n_past : 0);
        return -1;
    }
    bn_kv_shift(c, keep, n_discard);
    c->n_past -= n_discard;
    return 0;
}

int bn_decode(bn_context *c, const int32_t *tokens, int n, int all_logits,
              char *err, size_t errlen) {
    if (!c || !tokens || n <= 0) {
        bn_set_err(err, errlen, "nothing to decode");
        return -1;
    }
    if (c->n_past >= c->n_ctx) {
        bn_set_err(err, errlen, "context is full (%d tokens)", c->n_ctx);
        return -1;
    }
    if (n > c->n_ctx - c->n_past) {
        bn_set_err(err, errlen, "context is full (%d tokens): %d tokens do not fit after %d",
                c->n_ctx, n, c->n_past);
        return -1;
    }
    if (all_logits && n > c->n_outputs_max) {
        bn_set_err(err, errlen, "%d logit rows requested, the context keeps at most %d",
                n, c->n_outputs_max);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= c->hp.n_vocab) {
            bn_set_err(err, errlen, "token id %d at index %d is out of range [0, %d)",
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

int bn_decode_multi(bn_context *const *ctxs, const int32_t *tokens, int n,
                    char *err, size_t errlen) {
    if (!ctxs || !tokens || n <= 0 || !ctxs[0]) {
        bn_set_err(err, errlen, "nothing to decode");
        return -1;
    }
    bn_context *run = ctxs[0];
    if (n > run->n_batch || n > run->n_outputs_max) {
        bn_set_err(err, errlen, "%d sequences in one pass, the context takes at most %d",
                n, imin(run->n_batch, run->n_outputs_max));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const bn_context *c = ctxs[i];
        if (!c || c->model != run->model || c->n_ctx != run->n_ctx || c->type_k != run->type_k ||
            c->type_v != run->type_v) {
            bn_set_err(err, errlen, "sequence %d: not a context of the same model, size and cache types", i);
            return -1;
        }
        for (int j = 0; j < i; j++)
            if (ctxs[j] == c) {
                bn_set_err(err, errlen, "sequence %d: the same context as sequence %d", i, j);
                return -1;
            }
        if (c->n_past >= c->n_ctx) {
            bn_set_err(err, errlen, "sequence %d: context is full (%d tokens)", i, c->n_ctx);
            return -1;
        }
        if (tokens[i] < 0 || tokens[i] >= run->hp.n_vocab) {
            bn_set_err(err, errlen, "token id %d of sequence %d is out of range [0, %d)",
                    (int)tokens[i], i, run->hp.n_vocab);
            return -1;
        }
    }

    /* The rows' logits land in the running context's buffer, row i at i;
     * each sequence then gets its own row (row 0 is already in place). */
    size_t V = (size_t)run->hp.n_vocab;
    bn_forward_multi(run, ctxs, tokens, n, run->logits);
    for (int i = 0; i < n; i++) {
        bn_context *c = ctxs[i];
        if (i > 0) memcpy(c->logits, run->logits + (size_t)i * V, V * sizeof *c->logits);
        c->n_past++;
        c->n_logits = 1;
        c->logits_all = 0;
    }
    return 0;
}

const float *bn_get_logits(const bn_context *c, int i) {
    if (!c || c->n_logits == 0) return NULL;
    if (i == -1 || (!c->logits_all && i == 0)) i = c->n_logits - 1;
    if (i < 0 || i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * (size_t)c->hp.n_vocab;
}
