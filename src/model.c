/* Model loader: validates a bitnet-b1.58 / bitnet-25 i2_s GGUF (SPEC 3),
 * binds every tensor into the read-only mapping, builds the tokenizer and
 * hands each ternary weight to the selected kernel variant's repack. */
#include <math.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "i2s.h"
#include "model.h"
#include "tokenizer.h"

/* Sanity bounds: far above any real BitNet model, low enough that every
 * derived size below fits comfortably in 64 bits and every row count in int. */
#define MAX_VOCAB   (1 << 22)
#define MAX_EMBD    (1 << 16)
#define MAX_LAYER   4096
#define MAX_FF      (1 << 18)
#define MAX_HEAD    4096
#define MAX_CTX     (1 << 24)

bn_model_params bn_model_default_params(void) {
    bn_model_params p;
    p.kernel = NULL;
    p.vocab_only = 0;
    p.head = BN_HEAD_DEFAULT;
    p.pre_tokenizer = NULL;
    return p;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- hyperparameters (SPEC 3.3) ------------------------------------------- */

typedef struct hp_ctx {
    const gguf_file *f;
    const char *arch;
    char *err;
    size_t errlen;
} hp_ctx;

/* An integer key <arch>.<suffix> in [lo, hi]. Absent: *out = def, or an error
 * when required. A per-layer array is accepted when all its values agree
 * (this graph has one value for every layer). */
static int hp_int(const hp_ctx *c, const char *suffix, int required, int64_t def,
                  int64_t lo, int64_t hi, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    const gguf_kv *kv = gguf_find_kv(c->f, key);
    int64_t v = def;
    if (!kv) {
        if (required)
            return fail(c->err, c->errlen, "missing key '%s'", key);
    } else if (kv->type == GGUF_ARRAY) {
        if (kv->arr_n == 0 || kv->arr_type == GGUF_STRING || kv->arr_type == GGUF_ARRAY)
            return fail(c->err, c->errlen, "key '%s': expected an integer or a non-empty "
                        "integer array", key);
        v = gguf_arr_int(kv, 0);
        for (uint64_t i = 1; i < kv->arr_n; i++)
            if (gguf_arr_int(kv, i) != v)
                return fail(c->err, c->errlen, "key '%s': per-layer values differ "
                            "(not supported)", key);
    } else if (gguf_get_i64(c->f, key, &v) != 0) {
        return fail(c->err, c->errlen, "key '%s' has type %s, expected an integer",
                    key, gguf_vtype_name(kv->type));
    }
    if (v < lo || v > hi)
        return fail(c->err, c->errlen, "key '%s' = %lld is out of range [%lld, %lld]",
                    key, (long long)v, (long long)lo, (long long)hi);
    *out = (int)v;
    return 0;
}

/* A float key <arch>.<suffix>, finite and > 0. */
static int hp_float(const hp_ctx *c, const char *suffix, int required, float def,
                    float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    const gguf_kv *kv = gguf_find_kv(c->f, key);
    float v = def;
    if (!kv) {
        if (required)
            return fail(c->err, c->errlen, "missing key '%s'", key);
    } else if (gguf_get_f32(c->f, key, &v) != 0) {
        return fail(c->err, c->errlen, "key '%s' has type %s, expected a float",
                    key, gguf_vtype_name(kv->type));
    }
    if (!isfinite(v) || !(v > 0.0f))
        return fail(c->err, c->errlen, "key '%s' = %g must be a positive finite number",
                    key, (double)v);
    *out = v;
    return 0;
}

/* Rope scaling changes the positions the graph computes with; only "no
 * scaling" (absent, factor 0 or 1) matches build_bitnet_158 as shipped. */
static int check_no_rope_scaling(const hp_ctx *c) {
    static const char *const keys[] = { "rope.scaling.factor", "rope.scale_linear" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char key[128];
        float v;
        snprintf(key, sizeof key, "%s.%s", c->arch, keys[i]);
        if (gguf_get_f32(c->f, key, &v) == 0 && v != 0.0f && v != 1.0f)
            return fail(c->err, c->errlen, "key '%s' = %g: rope scaling is not supported",
                        key, (double)v);
    }
    return 0;
}

static int read_hparams(const gguf_file *f, bn_hparams *hp, char *err, size_t errlen) {
    gguf_str arch;
    int r = gguf_get_str(f, "general.architecture", &arch);
    if (r == -1)
        return fail(err, errlen, "missing key 'general.architecture'");
    if (r != 0)
        return fail(err, errlen, "key 'general.architecture' has type %s, expected a string",
                    gguf_vtype_name(gguf_find_kv(f, "general.architecture")->type));
    if (!gguf_str_eq(arch, "bitnet-b1.58") && !gguf_str_eq(arch, "bitnet-25")) {
        int n = arch.len > 64 ? 64 : (int)arch.len;
        return fail(err, errlen, "unsupported architecture '%.*s' (expected bitnet-b1.58 "
                    "or bitnet-25)", n, arch.ptr);
    }
    memset(hp, 0, sizeof *hp);
    memcpy(hp->arch, arch.ptr, arch.len);          /* <= 12 bytes, checked above */
    hp_ctx c = { f, hp->arch, err, errlen };

    if (hp_int(&c, "context_length", 1, 0, 1, MAX_CTX, &hp->n_ctx_train) ||
        hp_int(&c, "embedding_length", 1, 0, 1, MAX_EMBD, &hp->n_embd) ||
        hp_int(&c, "block_count", 1, 0, 1, MAX_LAYER, &hp->n_layer) ||
        hp_int(&c, "feed_forward_length", 1, 0, 1, MAX_FF, &hp->n_ff) ||
        hp_int(&c, "attention.head_count", 1, 0, 1, MAX_HEAD, &hp->n_head) ||
        hp_int(&c, "attention.head_count_kv", 0, hp->n_head, 1, MAX_HEAD, &hp->n_head_kv) ||
        hp_float(&c, "attention.layer_norm_rms_epsilon", 1, 0.0f, &hp->rms_eps) ||
        hp_float(&c, "rope.freq_base", 0, 10000.0f, &hp->rope_theta) ||
        check_no_rope_scaling(&c))
        return -1;

    /* Vocabulary size: the arch key, else the length of the token list. */
    char key[128];
    snprintf(key, sizeof key, "%s.vocab_size", hp->arch);
    if (gguf_find_kv(f, key)) {
        if (hp_int(&c, "vocab_size", 1, 0, 1, MAX_VOCAB, &hp->n_vocab))
            return -1;
    } else {
        const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
        if (!tok || tok->type != GGUF_ARRAY)
            return fail(err, errlen, "missing key '%s' (and no tokenizer.ggml.tokens)", key);
        if (tok->arr_n < 1 || tok->arr_n > MAX_VOCAB)
            return fail(err, errlen, "tokenizer.ggml.tokens has %llu entries (expected 1 to %d)",
                        (unsigned long long)tok->arr_n, MAX_VOCAB);
        hp->n_vocab = (int)tok->arr_n;
    }

    if (hp->n_embd % hp->n_head != 0)
        return fail(err, errlen, "embedding_length %d is not a multiple of head_count %d",
                    hp->n_embd, hp->n_head);
    if (hp->n_head % hp->n_head_kv != 0)
        return fail(err, errlen, "head_count %d is not a multiple of head_count_kv %d",
                    hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (hp->head_dim % 2 != 0)
        return fail(err, errlen, "head dimension %d (embedding_length / head_count) must be "
                    "even for NEOX RoPE", hp->head_dim);

    /* Key/value widths other than the head dimension need another graph. */
    int kl, vl;
    if (hp_int(&c, "attention.key_length", 0, hp->head_dim, 1, MAX_EMBD, &kl) ||
        hp_int(&c, "attention.value_length", 0, hp->head_dim, 1, MAX_EMBD, &vl))
        return -1;
    if (kl != hp->head_dim || vl != hp->head_dim)
        return fail(err, errlen, "attention.key_length %d / value_length %d must equal the "
                    "head dimension %d", kl, vl, hp->head_dim);
    if (hp_int(&c, "rope.dimension_count", 0, hp->head_dim, 1, MAX_EMBD, &hp->n_rot))
        return -1;
    if (hp->n_rot != hp->head_dim)
        return fail(err, errlen, "rope.dimension_count %d must equal the head dimension %d",
                    hp->n_rot, hp->head_dim);
    return 0;
}

/* ---- tensor binding (SPEC 3.5) --------------------------------------------- */

static void shape_str(char *buf, size_t n, uint32_t n_dims, const uint64_t *ne) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (uint32_t d = 0; d < n_dims && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", d ? ", " : "",
                                 (unsigned long long)ne[d]);
    if (used < n)
        snprintf(buf + used, n - used, "]");
}

/* Find `name` and check it is `type` with shape [ne0] (ne1 == 0) or [ne0, ne1]. */
static const gguf_tensor *bind(const gguf_file *f, const char *name, uint32_t type,
                               uint64_t ne0, uint64_t ne1, char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        fail(err, errlen, "missing tensor '%s'", name);
        return NULL;
    }
    uint64_t want[4] = { ne0, ne1 ? ne1 : 1, 1, 1 };
    int ok = t->type == type;
    for (int d = 0; d < 4; d++)
        ok = ok && t->ne[d] == want[d];
    if (!ok) {
        char exp[64], got[128];
        shape_str(exp, sizeof exp, ne1 ? 2 : 1, want);
        shape_str(got, sizeof got, t->n_dims ? t->n_dims : 1, t->ne);
        fail(err, errlen, "tensor '%s': expected %s %s, found %s %s", name,
             ggml_type_name(type), exp, ggml_type_name(t->type), got);
        return NULL;
    }
    return t;
}

static const float *bind_f32(const gguf_file *f, const char *name, int n,
                             uint64_t *n_params, char *err, size_t errlen) {
    const gguf_tensor *t = bind(f, name, GGML_F32, (uint64_t)n, 0, err, errlen);
    if (!t)
        return NULL;
    *n_params += (uint64_t)n;
    return (const float *)t->data;
}

/* A ternary projection of M rows of K: GGUF shape [K, M], type I2_S. */
static int bind_ternary(const gguf_file *f, const char *name, int K, int M, int vocab_only,
                        bn_ternary *w, uint64_t *n_params, char *err, size_t errlen) {
    const gguf_tensor *t = bind(f, name, GGML_I2_S, (uint64_t)K, (uint64_t)M, err, errlen);
    if (!t)
        return -1;
    if (K % BN_I2S_BLOCK != 0)
        return fail(err, errlen, "tensor '%s': K = %d is not a multiple of %d (I2_S blocks)",
                    name, K, BN_I2S_BLOCK);
    w->K = K;
    w->M = M;
    w->i2s = t->data;
    w->packed = NULL;
    w->scale = 0.0f;
    if (!vocab_only) {
        uint64_t n = (uint64_t)K * (uint64_t)M;
        w->scale = bn_i2s_scale(t->data, n);
        if (!isfinite(w->scale) || !(w->scale > 0.0f))
            return fail(err, errlen, "tensor '%s': scale %g is not a positive finite number",
                        name, (double)w->scale);
    }
    *n_params += (uint64_t)K * (uint64_t)M;
    return 0;
}

#define N_TERNARY 7
static bn_ternary *layer_ternary(bn_layer *L, int i) {
    bn_ternary *all[N_TERNARY] = { &L->wq, &L->wk, &L->wv, &L->wo,
                                   &L->wgate, &L->wup, &L->wdown };
    return all[i];
}

static int bind_layer(const gguf_file *f, const bn_hparams *hp, int il, int vocab_only,
                      bn_layer *L, uint64_t *np, char *err, size_t errlen) {
    const int E = hp->n_embd, F = hp->n_ff, KV = hp->n_head_kv * hp->head_dim;
    struct { const char *suffix; int K, M; } tern[N_TERNARY] = {
        { "attn_q", E, E }, { "attn_k", E, KV }, { "attn_v", E, KV },
        { "attn_output", E, E }, { "ffn_gate", E, F }, { "ffn_up", E, F },
        { "ffn_down", F, E },
    };
    struct { const char *suffix; int n; const float **dst; } norms[4] = {
        { "attn_norm", E, &L->attn_norm }, { "attn_sub_norm", E, &L->attn_sub_norm },
        { "ffn_norm", E, &L->ffn_norm }, { "ffn_sub_norm", F, &L->ffn_sub_norm },
    };
    char name[96];
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", il, norms[i].suffix);
        if (!(*norms[i].dst = bind_f32(f, name, norms[i].n, np, err, errlen)))
            return -1;
    }
    for (int i = 0; i < N_TERNARY; i++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", il, tern[i].suffix);
        if (bind_ternary(f, name, tern[i].K, tern[i].M, vocab_only, layer_ternary(L, i),
                         np, err, errlen))
            return -1;
    }
    return 0;
}

static int bind_tensors(bn_model *m, int vocab_only, char *err, size_t errlen) {
    const bn_hparams *hp = &m->hp;
    const gguf_tensor *emb = bind(&m->gguf, "token_embd.weight", GGML_F16,
                                  (uint64_t)hp->n_embd, (uint64_t)hp->n_vocab, err, errlen);
    if (!emb)
        return -1;
    m->tok_embd = (const uint16_t *)emb->data;       /* stays in the mapping */
    m->n_params = (uint64_t)hp->n_embd * (uint64_t)hp->n_vocab;
    if (!(m->output_norm = bind_f32(&m->gguf, "output_norm.weight", hp->n_embd,
                                    &m->n_params, err, errlen)))
        return -1;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return fail(err, errlen, "out of memory");
    for (int il = 0; il < hp->n_layer; il++)
        if (bind_layer(&m->gguf, hp, il, vocab_only, &m->layers[il], &m->n_params, err, errlen))
            return -1;
    return 0;
}

/* Copies every norm vector (1.8 MB for 2B4T) out of the mapping: they sit
 * between the big tensors, and touching one would map a whole large folio
 * of the file around it (~100 MB of resident file pages for 2B4T). */
static int copy_norms(bn_model *m, char *err, size_t errlen) {
    const bn_hparams *hp = &m->hp;
    size_t per_layer = 3 * (size_t)hp->n_embd + (size_t)hp->n_ff;
    size_t total = (size_t)hp->n_layer * per_layer + (size_t)hp->n_embd;
    float *a = malloc(total * sizeof *a);
    if (!a)
        return fail(err, errlen, "out of memory for %zu norm weights", total);
    m->norms_arena = a;
    for (int il = 0; il < hp->n_layer; il++) {
        bn_layer *L = &m->layers[il];
        const float **v[4] = {&L->attn_norm, &L->attn_sub_norm, &L->ffn_norm, &L->ffn_sub_norm};
        const int n[4] = {hp->n_embd, hp->n_embd, hp->n_embd, hp->n_ff};
        for (int k = 0; k < 4; k++) {
            memcpy(a, *v[k], (size_t)n[k] * sizeof *a);
            *v[k] = a;
            a += n[k];
        }
    }
    memcpy(a, m->output_norm, (size_t)hp->n_embd * sizeof *a);
    m->output_norm = a;
    return 0;
}

/* ---- repacking -------------------------------------------------------------- */

typedef struct repack_job {
    bn_model *m;
    int n_items;                    /* n_layer * N_TERNARY */
    atomic_int next;
    pthread_t tid[8];
    int n_started;
} repack_job;

/* Release the file pages of an I2_S payload once repacked, so they are not
 * resident twice; the kernel re-reads them from the file if ever touched. */
static void drop_pages(const void *p, uint64_t n) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = ((uintptr_t)p + (uintptr_t)n) & ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

static void *repack_worker(void *arg) {
    repack_job *job = arg;
    bn_model *m = job->m;
    for (;;) {
        int i = atomic_fetch_add(&job->next, 1);
        if (i >= job->n_items)
            break;
        bn_ternary *w = layer_ternary(&m->layers[i / N_TERNARY], i % N_TERNARY);
        m->kern->ternary_repack(w->i2s, w->K, w->M, w->packed);
        if (m->gguf.owns_map)
            drop_pages(w->i2s, (uint64_t)w->K * (uint64_t)w->M / 4);
    }
    return NULL;
}

/* Sizes the arena up front, assigns every ternary its 64-byte aligned slot
 * and starts the repack workers (one per core: repacking streams ~0.5 GB for
 * 2B4T). The caller builds the tokenizer meanwhile, then repack_finish(). */
static int repack_start(bn_model *m, repack_job *job, char *err, size_t errlen) {
    const int n_items = m->hp.n_layer * N_TERNARY;
    size_t total = 0;
    for (int i = 0; i < n_items; i++) {
        bn_ternary *w = layer_ternary(&m->layers[i / N_TERNARY], i % N_TERNARY);
        total += (m->kern->ternary_packed_size(w->K, w->M) + 63) & ~(size_t)63;
    }
    m->packed_arena = aligned_alloc(64, total ? total : 64);
    if (!m->packed_arena)
        return fail(err, errlen, "out of memory for %zu bytes of repacked weights", total);
    m->packed_bytes = total;
    size_t off = 0;
    for (int i = 0; i < n_items; i++) {
        bn_ternary *w = layer_ternary(&m->layers[i / N_TERNARY], i % N_TERNARY);
        w->packed = (uint8_t *)m->packed_arena + off;
        off += (m->kern->ternary_packed_size(w->K, w->M) + 63) & ~(size_t)63;
    }
    job->m = m;
    job->n_items = n_items;
    atomic_init(&job->next, 0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n_threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
    if (n_threads > n_items)
        n_threads = n_items;
    for (job->n_started = 0; job->n_started < n_threads; job->n_started++)
        if (pthread_create(&job->tid[job->n_started], NULL, repack_worker, job) != 0)
            break;                  /* fewer workers is fine: repack_finish works too */
    return 0;
}

/* The calling thread joins in until every tensor is done. */
static void repack_finish(repack_job *job) {
    repack_worker(job);
    for (int i = 0; i < job->n_started; i++)
        pthread_join(job->tid[i], NULL);
    job->n_started = 0;
}

/* ---- quantized LM head ----------------------------------------------------------- */

/* A head smaller than this stays F16 by default: it is read from cache, so
 * int8 saves no memory traffic and F16 keeps exact parity with bitnet.cpp.
 * Above it (2B4T: 657 MB) the Q8 head halves the bytes read per token. */
#define HEAD_Q8_DEFAULT_MIN_BYTES (32u << 20)

typedef struct head_job {
    bn_model *m;
    int n_tiles, rows_per_tile;
    atomic_int next;
} head_job;

static void *head_worker(void *arg) {
    head_job *job = arg;
    bn_model *m = job->m;
    const int K = m->hp.n_embd, M = m->hp.n_vocab;
    const int chunk = 64;           /* tiles per claim: a few MB of work */
    for (;;) {
        int t0 = atomic_fetch_add(&job->next, chunk);
        if (t0 >= job->n_tiles)
            break;
        int t1 = t0 + chunk < job->n_tiles ? t0 + chunk : job->n_tiles;
        int m0 = t0 * job->rows_per_tile, m1 = t1 * job->rows_per_tile;
        if (m1 > M)
            m1 = M;
        m->kern->head_q8_quantize(m->tok_embd, K, M, m0, m1, m->head_q8);
        /* Those F16 rows are done: release them now rather than at the end,
         * so the F16 and Q8 heads are never resident together (peak RSS). */
        if (m->gguf.owns_map)
            drop_pages(m->tok_embd + (size_t)m0 * (size_t)K, (uint64_t)(m1 - m0) * (uint64_t)K * 2);
    }
    return NULL;
}

/* Quantizes the tied embedding for the head on one worker per core. */
static int quantize_head(bn_model *m, const char *path, char *err, size_t errlen) {
    const int K = m->hp.n_embd, M = m->hp.n_vocab;
    if (K % 32 != 0)
        return fail(err, errlen, "the q8 head needs embedding_length %d to be a multiple of 32", K);
    size_t bytes = m->kern->head_q8_size(K, M);
    m->head_q8 = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!m->head_q8)
        return fail(err, errlen, "out of memory for the %zu-byte q8 head", bytes);
    head_job job = {.m = m, .rows_per_tile = m->kern->head_q8_rows > 0 ? m->kern->head_q8_rows : 1};
    job.n_tiles = (M + job.rows_per_tile - 1) / job.rows_per_tile;
    atomic_init(&job.next, 0);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int n_threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
    pthread_t tid[8];
    int started = 0;
    while (started < n_threads - 1 && pthread_create(&tid[started], NULL, head_worker, &job) == 0)
        started++;
    head_worker(&job);
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    m->head_type = BN_HEAD_Q8;
    if (m->gguf.owns_map && path) {
        const gguf_tensor *t = gguf_find_tensor(&m->gguf, "token_embd.weight");
        m->embd_fd = open(path, O_RDONLY | O_CLOEXEC);
        m->embd_file_offset = m->gguf.data_start + t->offset;
    }
    /* From now on only single embedding rows are read (token lookup), with
     * pread (bn_model_embedding_row): a fault in the mapping would map a
     * whole large folio of the file (~700 KB per 5 KB row measured), and a
     * 512-token prompt would pull most of the table back in. Pages
     * straddling two chunks are released here. */
    if (m->gguf.owns_map)
        drop_pages(m->tok_embd, (uint64_t)K * (uint64_t)M * 2);
    return 0;
}

/* ---- load / free -------------------------------------------------------------- */

bn_model *bn_model_load(const char *path, const bn_model_params *params, char *err,
                        size_t errlen) {
    bn_model_params defaults = bn_model_default_params();
    const bn_model_params *p = params ? params : &defaults;
    repack_job job;
    job.n_started = -1;             /* -1: no repack under way */
    bn_model *m = calloc(1, sizeof *m);
    if (!m) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    m->embd_fd = -1;
    if (gguf_open(&m->gguf, path, err, errlen) != 0) {
        free(m);
        return NULL;
    }
    if (read_hparams(&m->gguf, &m->hp, err, errlen) != 0)
        goto fail;
    if (!p->vocab_only) {
        if (p->head != BN_HEAD_DEFAULT && p->head != BN_HEAD_F16 && p->head != BN_HEAD_Q8) {
            fail(err, errlen, "unknown head type %d", p->head);
            goto fail;
        }
        m->head_type = BN_HEAD_F16;
        if (bind_tensors(m, 0, err, errlen) != 0 || copy_norms(m, err, errlen) != 0)
            goto fail;
        if (!(m->kern = bn_kernels_select(p->kernel, err, errlen)))
            goto fail;
        if (repack_start(m, &job, err, errlen) != 0)
            goto fail;
    }
    /* The tokenizer is built while the workers repack. */
    m->tok = bn_tokenizer_from_gguf(&m->gguf, p->pre_tokenizer, err, errlen);
    if (job.n_started >= 0)
        repack_finish(&job);
    if (!m->tok)
        goto fail;
    if (bn_vocab_size(m->tok) != m->hp.n_vocab) {
        fail(err, errlen, "vocab_size is %d but the tokenizer has %d tokens",
             m->hp.n_vocab, bn_vocab_size(m->tok));
        goto fail;
    }
    if (!p->vocab_only) {
        uint64_t head_f16_bytes = (uint64_t)m->hp.n_embd * (uint64_t)m->hp.n_vocab * 2;
        int want_q8 = p->head == BN_HEAD_Q8 ||
                      (p->head == BN_HEAD_DEFAULT && head_f16_bytes >= HEAD_Q8_DEFAULT_MIN_BYTES);
        if (want_q8 && quantize_head(m, path, err, errlen) != 0)
            goto fail;
    }
    return m;
fail:
    bn_model_free(m);
    return NULL;
}

void bn_model_free(bn_model *m) {
    if (!m)
        return;
    if (m->tok)
        bn_tokenizer_free(m->tok);
    free(m->packed_arena);
    free(m->head_q8);
    free(m->norms_arena);
    free(m->layers);
    if (m->embd_fd >= 0)
        close(m->embd_fd);
    gguf_close(&m->gguf);
    free(m);
}

void bn_model_embedding_row(const bn_model *m, int32_t token, uint16_t *dst) {
    const size_t E = (size_t)m->hp.n_embd;
    const uint16_t *row = m->tok_embd + (size_t)token * E;
    if (m->embd_fd >= 0) {
        size_t want = E * sizeof *dst, got = 0;
        off_t off = (off_t)(m->embd_file_offset + (uint64_t)token * want);
        while (got < want) {
            ssize_t r = pread(m->embd_fd, (char *)dst + got, want - got, off + (off_t)got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (got == want)
            return;
        /* An I/O error: the mapping holds the same bytes. */
    }
    memcpy(dst, row, E * sizeof *dst);
}

/* ---- accessors ------------------------------------------------------------------ */

const bn_hparams *bn_model_hparams(const bn_model *m) { return &m->hp; }
const bn_tokenizer *bn_model_tokenizer(const bn_model *m) { return m->tok; }
const char *bn_model_kernel_name(const bn_model *m) { return m->kern ? m->kern->name : "none"; }
uint64_t bn_model_file_size(const bn_model *m) { return m->gguf.size; }
uint64_t bn_model_n_params(const bn_model *m) { return m->n_params; }
