/* Model loader: validates an i2_s GGUF of an architecture in the table
 * (arch.c; docs/FORMAT.md, Tensors per architecture), binds every tensor into the read-only mapping,
 * builds the tokenizer and hands each weight to its kernel format's pack,
 * on a worker pool of one thread per physical core (the inference pool's
 * size). */
#include <math.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "i2s.h"
#include "model.h"
#include "threadpool.h"
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

/* ---- hyperparameters (docs/FORMAT.md, Hyperparameters) ------------------------------------------- */

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

static int read_hparams(const gguf_file *f, bn_hparams *hp, const bn_arch **arch_out,
                        char *err, size_t errlen) {
    gguf_str arch;
    int r = gguf_get_str(f, "general.architecture", &arch);
    if (r == -1)
        return fail(err, errlen, "missing key 'general.architecture'");
    if (r != 0)
        return fail(err, errlen, "key 'general.architecture' has type %s, expected a string",
                    gguf_vtype_name(gguf_find_kv(f, "general.architecture")->type));
    const bn_arch *a = bn_arch_find(arch.ptr, arch.len);
    if (!a) {
        int n = arch.len > 64 ? 64 : (int)arch.len;
        return fail(err, errlen, "unsupported architecture '%.*s' (expected %s)", n, arch.ptr,
                    bn_arch_names());
    }
    *arch_out = a;
    memset(hp, 0, sizeof *hp);
    snprintf(hp->arch, sizeof hp->arch, "%s", a->name);
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

/* ---- tensor binding (docs/FORMAT.md, Tensors per architecture) --------------------------------------------- */

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

static int dim_size(const bn_hparams *hp, enum bn_dim d) {
    switch (d) {
    case BN_DIM_EMBD: return hp->n_embd;
    case BN_DIM_FF: return hp->n_ff;
    case BN_DIM_Q: return hp->n_head * hp->head_dim;
    case BN_DIM_KV: return hp->n_head_kv * hp->head_dim;
    }
    return 0;
}

/* Binds layer il's tensors as its architecture's entry says. */
static int bind_layer(const bn_model *m, int il, int vocab_only, bn_layer *L, uint64_t *np,
                      char *err, size_t errlen) {
    int n;
    const bn_layer_tensor *lt = bn_layer_tensors(&n);
    char name[96];
    for (int i = 0; i < n; i++) {
        const bn_layer_tensor *t = &lt[i];
        enum bn_presence pres = bn_arch_presence(m->arch, t);
        snprintf(name, sizeof name, "blk.%d.%s.weight", il, t->suffix);
        if (pres == BN_ABSENT || (pres == BN_OPTIONAL && !gguf_find_tensor(&m->gguf, name)))
            continue;
        int K = dim_size(&m->hp, t->k), M = dim_size(&m->hp, t->m);
        if (t->is_proj) {
            if (bind_ternary(&m->gguf, name, K, M, vocab_only, &L->proj[t->index], np, err,
                             errlen))
                return -1;
        } else if (!(L->norm[t->index] = bind_f32(&m->gguf, name, K, np, err, errlen))) {
            return -1;
        }
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
    m->embd_file_offset = m->gguf.data_start + emb->offset;
    m->n_params = (uint64_t)hp->n_embd * (uint64_t)hp->n_vocab;
    if (!(m->output_norm = bind_f32(&m->gguf, "output_norm.weight", hp->n_embd,
                                    &m->n_params, err, errlen)))
        return -1;
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers)
        return fail(err, errlen, "out of memory");
    for (int il = 0; il < hp->n_layer; il++)
        if (bind_layer(m, il, vocab_only, &m->layers[il], &m->n_params, err, errlen))
            return -1;
    return 0;
}

/* Copies every norm vector (1.8 MB for 2B4T) out of the mapping: they sit
 * between the big tensors, and touching one would map a whole large folio
 * of the file around it (~100 MB of resident file pages for 2B4T). */
static int copy_norms(bn_model *m, char *err, size_t errlen) {
    const bn_hparams *hp = &m->hp;
    int n_lt;
    const bn_layer_tensor *lt = bn_layer_tensors(&n_lt);
    size_t total = (size_t)hp->n_embd;
    for (int il = 0; il < hp->n_layer; il++)
        for (int i = 0; i < n_lt; i++)
            if (!lt[i].is_proj && m->layers[il].norm[lt[i].index])
                total += (size_t)dim_size(hp, lt[i].k);
    float *a = malloc(total * sizeof *a);
    if (!a)
        return fail(err, errlen, "out of memory for %zu norm weights", total);
    m->norms_arena = a;
    for (int il = 0; il < hp->n_layer; il++) {
        for (int i = 0; i < n_lt; i++) {
            if (lt[i].is_proj || !m->layers[il].norm[lt[i].index])
                continue;
            const float **v = &m->layers[il].norm[lt[i].index];
            size_t n = (size_t)dim_size(hp, lt[i].k);
            memcpy(a, *v, n * sizeof *a);
            *v = a;
            a += n;
        }
    }
    memcpy(a, m->output_norm, (size_t)hp->n_embd * sizeof *a);
    m->output_norm = a;
    return 0;
}

/* ---- packing the weights on the worker pool ------------------------------------ */

/* Release the file pages of a tensor once packed, so they are not resident
 * twice; the kernel re-reads them from the file if ever touched. */
static void drop_pages(const void *p, uint64_t n) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = ((uintptr_t)p + (uintptr_t)n) & ~((uintptr_t)page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Work items are claimed from a shared counter, so a worker that finishes
 * early takes the next one (tensors differ in size). */
typedef struct pack_job {
    bn_model *m;
    int n_items;
    atomic_int next;
    int rows_per_item;              /* head: rows of one claim */
} pack_job;

static void task_pack_ternary(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    pack_job *job = arg;
    bn_model *m = job->m;
    const bn_format_traits *f = m->kern->fmt[BN_FMT_TERNARY];
    for (int i; (i = atomic_fetch_add(&job->next, 1)) < job->n_items;) {
        bn_ternary *w = &m->layers[i / BN_PROJ_COUNT].proj[i % BN_PROJ_COUNT];
        f->pack(w->i2s, w->K, w->M, 0, w->M, w->packed);
        if (m->gguf.owns_map)
            drop_pages(w->i2s, (uint64_t)w->K * (uint64_t)w->M / 4);
    }
}

/* Sizes one arena for every projection's packed layout (64-byte aligned
 * slots) and packs them all. */
static int pack_ternary(bn_model *m, bn_threadpool *pool, char *err, size_t errlen) {
    const bn_format_traits *f = m->kern->fmt[BN_FMT_TERNARY];
    const int n_items = m->hp.n_layer * BN_PROJ_COUNT;
    size_t total = 0;
    for (int i = 0; i < n_items; i++) {
        bn_ternary *w = &m->layers[i / BN_PROJ_COUNT].proj[i % BN_PROJ_COUNT];
        total += (f->packed_size(w->K, w->M) + 63) & ~(size_t)63;
    }
    m->packed_arena = aligned_alloc(64, total ? total : 64);
    if (!m->packed_arena)
        return fail(err, errlen, "out of memory for %zu bytes of repacked weights", total);
    m->packed_bytes = total;
    size_t off = 0;
    for (int i = 0; i < n_items; i++) {
        bn_ternary *w = &m->layers[i / BN_PROJ_COUNT].proj[i % BN_PROJ_COUNT];
        w->packed = (uint8_t *)m->packed_arena + off;
        off += (f->packed_size(w->K, w->M) + 63) & ~(size_t)63;
    }
    pack_job job = {.m = m, .n_items = n_items};
    atomic_init(&job.next, 0);
    bn_threadpool_run(pool, task_pack_ternary, &job);
    return 0;
}

/* ---- the LM head ------------------------------------------------------------------ */

/* A head smaller than this stays F16 by default: it is read from cache, so
 * int8 saves no memory traffic and F16 keeps exact parity with bitnet.cpp.
 * Above it (2B4T: 657 MB) the Q8 head halves the bytes read per token. */
#define HEAD_Q8_DEFAULT_MIN_BYTES (32u << 20)

static void task_pack_head(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    pack_job *job = arg;
    bn_model *m = job->m;
    bn_matrix *h = &m->head;
    const bn_format_traits *f = m->kern->fmt[h->fmt];
    for (int i; (i = atomic_fetch_add(&job->next, 1)) < job->n_items;) {
        int m0 = i * job->rows_per_item, m1 = m0 + job->rows_per_item;
        if (m1 > h->M)
            m1 = h->M;
        f->pack(m->tok_embd, h->K, h->M, m0, m1, h->owned);
        /* Those F16 rows are done: release them now rather than at the end,
         * so the F16 and packed heads are never resident together (peak RSS). */
        if (m->gguf.owns_map)
            drop_pages(m->tok_embd + (size_t)m0 * (size_t)h->K,
                       (uint64_t)(m1 - m0) * (uint64_t)h->K * 2);
    }
}

/* The tied head: the F16 embedding as stored, or packed into a smaller
 * format at load (the default above 32 MB). */
static int make_head(bn_model *m, int want, const char *path, bn_threadpool *pool, char *err,
                     size_t errlen) {
    const int K = m->hp.n_embd, M = m->hp.n_vocab;
    bn_matrix *h = &m->head;
    uint64_t f16_bytes = (uint64_t)K * (uint64_t)M * 2;
    if (want == BN_HEAD_DEFAULT)
        want = f16_bytes >= HEAD_Q8_DEFAULT_MIN_BYTES ? BN_HEAD_Q8 : BN_HEAD_F16;
    h->K = K;
    h->M = M;
    m->head_type = want;
    if (want == BN_HEAD_F16) {
        h->fmt = BN_FMT_F16;
        h->W = m->tok_embd;
        h->bytes = f16_bytes;
        return 0;
    }
    if (K % 32 != 0)
        return fail(err, errlen, "the q8 head needs embedding_length %d to be a multiple of 32", K);
    h->fmt = BN_FMT_Q8_HEAD;
    const bn_format_traits *f = m->kern->fmt[h->fmt];
    size_t bytes = f->packed_size(K, M);
    h->owned = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!h->owned)
        return fail(err, errlen, "out of memory for the %zu-byte q8 head", bytes);
    h->W = h->owned;
    h->bytes = bytes;
    /* Claims of 64 tiles: a few MB of work each. */
    pack_job job = {.m = m, .rows_per_item = 64 * f->tile_rows};
    job.n_items = (M + job.rows_per_item - 1) / job.rows_per_item;
    atomic_init(&job.next, 0);
    bn_threadpool_run(pool, task_pack_head, &job);
    /* From now on only single embedding rows are read (token lookup), with
     * pread (bn_model_embedding_row): a fault in the mapping would map a
     * whole large folio of the file (~700 KB per 5 KB row measured), and a
     * 512-token prompt would pull most of the table back in. Pages
     * straddling two claims are released here. */
    if (m->gguf.owns_map && path) {
        m->embd_fd = open(path, O_RDONLY | O_CLOEXEC);
        drop_pages(m->tok_embd, f16_bytes);
    }
    return 0;
}

/* ---- load / free -------------------------------------------------------------- */

bn_model *bn_model_load(const char *path, const bn_model_params *params, char *err,
                        size_t errlen) {
    bn_model_params defaults = bn_model_default_params();
    const bn_model_params *p = params ? params : &defaults;
    bn_threadpool *pool = NULL;
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
    if (read_hparams(&m->gguf, &m->hp, &m->arch, err, errlen) != 0)
        goto fail;
    if (!p->vocab_only) {
        if (p->head != BN_HEAD_DEFAULT && p->head != BN_HEAD_F16 && p->head != BN_HEAD_Q8) {
            fail(err, errlen, "unknown head type %d", p->head);
            goto fail;
        }
        if (bind_tensors(m, 0, err, errlen) != 0 || copy_norms(m, err, errlen) != 0)
            goto fail;
        if (!(m->kern = bn_kernels_select(p->kernel, err, errlen)))
            goto fail;
    }
    m->tok = bn_tokenizer_from_gguf(&m->gguf, p->pre_tokenizer, err, errlen);
    if (!m->tok)
        goto fail;
    if (bn_vocab_size(m->tok) != m->hp.n_vocab) {
        fail(err, errlen, "vocab_size is %d but the tokenizer has %d tokens",
             m->hp.n_vocab, bn_vocab_size(m->tok));
        goto fail;
    }
    if (!p->vocab_only) {
        /* Packing streams the whole file: one worker per physical core,
         * the size of the inference pool. */
        if (!(pool = bn_threadpool_new(bn_physical_cores()))) {
            fail(err, errlen, "cannot start the loader's threads");
            goto fail;
        }
        if (pack_ternary(m, pool, err, errlen) != 0 ||
            make_head(m, p->head, path, pool, err, errlen) != 0)
            goto fail;
        bn_threadpool_free(pool);
    }
    return m;
fail:
    bn_threadpool_free(pool);
    bn_model_free(m);
    return NULL;
}

void bn_model_free(bn_model *m) {
    if (!m)
        return;
    if (m->tok)
        bn_tokenizer_free(m->tok);
    free(m->packed_arena);
    free(m->head.owned);
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
