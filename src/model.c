/* Model loader: validates an i2_s GGUF of an architecture in the table
 * (arch.c; docs/FORMAT.md), binds every tensor into the read-only mapping
 * (token_embd and the head in F16, F32, Q8_0 or Q6_K; norms, biases and
 * scales copied out as F32), builds the tokenizer and hands each weight to
 * its kernel format's pack, on a worker pool of one thread per physical
 * core (the inference pool's size). */
#include <math.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "i2s.h"
#include "model.h"
#include "threadpool.h"
#include "tokenizer.h"
#include "util.h"

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
            return bn_set_err(c->err, c->errlen, "missing key '%s'", key);
    } else if (kv->type == GGUF_ARRAY) {
        if (kv->arr_n == 0 || kv->arr_type == GGUF_STRING || kv->arr_type == GGUF_ARRAY)
            return bn_set_err(c->err, c->errlen, "key '%s': expected an integer or a non-empty "
                        "integer array", key);
        v = gguf_arr_int(kv, 0);
        for (uint64_t i = 1; i < kv->arr_n; i++)
            if (gguf_arr_int(kv, i) != v)
                return bn_set_err(c->err, c->errlen, "key '%s': per-layer values differ "
                            "(not supported)", key);
    } else if (gguf_get_i64(c->f, key, &v) != 0) {
        return bn_set_err(c->err, c->errlen, "key '%s' has type %s, expected an integer",
                    key, gguf_vtype_name(kv->type));
    }
    if (v < lo || v > hi)
        return bn_set_err(c->err, c->errlen, "key '%s' = %lld is out of range [%lld, %lld]",
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
            return bn_set_err(c->err, c->errlen, "missing key '%s'", key);
    } else if (gguf_get_f32(c->f, key, &v) != 0) {
        return bn_set_err(c->err, c->errlen, "key '%s' has type %s, expected a float",
                    key, gguf_vtype_name(kv->type));
    }
    if (!isfinite(v) || !(v > 0.0f))
        return bn_set_err(c->err, c->errlen, "key '%s' = %g must be a positive finite number",
                    key, (double)v);
    *out = v;
    return 0;
}

/* Rope scaling changes the positions the graph computes with; only "no
 * scaling" (type none or linear, factor absent, 0 or 1) matches the graphs
 * as shipped. 1bitLLM files declare linear scaling with factor 1. */
static int check_no_rope_scaling(const hp_ctx *c) {
    static const char *const keys[] = { "rope.scaling.factor", "rope.scale_linear" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char key[128];
        float v;
        snprintf(key, sizeof key, "%s.%s", c->arch, keys[i]);
        if (gguf_get_f32(c->f, key, &v) == 0 && v != 0.0f && v != 1.0f)
            return bn_set_err(c->err, c->errlen, "key '%s' = %g: rope scaling is not supported",
                        key, (double)v);
    }
    char key[128];
    gguf_str type;
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
    if (gguf_get_str(c->f, key, &type) == 0 && !gguf_str_eq(type, "none") &&
        !gguf_str_eq(type, "linear")) {
        int n = type.len > 32 ? 32 : (int)type.len;
        return bn_set_err(c->err, c->errlen, "key '%s' = '%.*s': rope scaling is not supported", key,
                    n, type.ptr);
    }
    return 0;
}

static int read_hparams(const gguf_file *f, bn_hparams *hp, const bn_arch **arch_out,
                        char *err, size_t errlen) {
    gguf_str arch;
    int r = gguf_get_str(f, "general.architecture", &arch);
    if (r == -1)
        return bn_set_err(err, errlen, "missing key 'general.architecture'");
    if (r != 0)
        return bn_set_err(err, errlen, "key 'general.architecture' has type %s, expected a string",
                    gguf_vtype_name(gguf_find_kv(f, "general.architecture")->type));
    const bn_arch *a = bn_arch_find(arch.ptr, arch.len);
    if (!a) {
        int n = arch.len > 64 ? 64 : (int)arch.len;
        return bn_set_err(err, errlen, "unsupported architecture '%.*s' (expected %s)", n, arch.ptr,
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
            return bn_set_err(err, errlen, "missing key '%s' (and no tokenizer.ggml.tokens)", key);
        if (tok->arr_n < 1 || tok->arr_n > MAX_VOCAB)
            return bn_set_err(err, errlen, "tokenizer.ggml.tokens has %llu entries (expected 1 to %d)",
                        (unsigned long long)tok->arr_n, MAX_VOCAB);
        hp->n_vocab = (int)tok->arr_n;
    }

    if (hp->n_head % hp->n_head_kv != 0)
        return bn_set_err(err, errlen, "head_count %d is not a multiple of head_count_kv %d",
                    hp->n_head, hp->n_head_kv);

    /* The head dimension: attention.key_length (Falcon3: 256, wider than
     * n_embd / n_head), else n_embd / n_head. */
    snprintf(key, sizeof key, "%s.attention.key_length", hp->arch);
    const char *hd_from = "embedding_length / head_count";
    if (gguf_find_kv(f, key)) {
        if (hp_int(&c, "attention.key_length", 1, 0, 1, MAX_EMBD, &hp->head_dim))
            return -1;
        hd_from = "attention.key_length";
    } else {
        if (hp->n_embd % hp->n_head != 0)
            return bn_set_err(err, errlen, "embedding_length %d is not a multiple of head_count %d",
                        hp->n_embd, hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    if (hp->head_dim % 2 != 0)
        return bn_set_err(err, errlen, "head dimension %d (%s) must be even for %s RoPE", hp->head_dim,
                    hd_from, a->rope == BN_ROPE_NEOX ? "NEOX" : "NORM");
    if ((int64_t)hp->n_head * hp->head_dim > MAX_EMBD)
        return bn_set_err(err, errlen, "head_count %d x head dimension %d is too wide", hp->n_head,
                    hp->head_dim);
    int vl;
    if (hp_int(&c, "attention.value_length", 0, hp->head_dim, 1, MAX_EMBD, &vl))
        return -1;
    if (vl != hp->head_dim)
        return bn_set_err(err, errlen, "attention.value_length %d must equal the key length %d", vl,
                    hp->head_dim);
    if (hp_int(&c, "rope.dimension_count", 0, hp->head_dim, 1, MAX_EMBD, &hp->n_rot))
        return -1;
    if (hp->n_rot != hp->head_dim)
        return bn_set_err(err, errlen, "rope.dimension_count %d must equal the head dimension %d",
                    hp->n_rot, hp->head_dim);
    return 0;
}

/* ---- tensor binding (docs/FORMAT.md, Tensors per architecture) ---------------------------- */

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
        bn_set_err(err, errlen, "missing tensor '%s'", name);
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
        bn_set_err(err, errlen, "tensor '%s': expected %s %s, found %s %s", name,
             ggml_type_name(type), exp, ggml_type_name(t->type), got);
        return NULL;
    }
    return t;
}

/* The types a small vector (norm, bias, scale; copied to F32 at load) and a
 * float-output table (token_embd, output) may have. */
static const uint32_t VEC_TYPES[] = { GGML_F32, GGML_F16 };
static const uint32_t TABLE_TYPES[] = { GGML_F16, GGML_F32, GGML_Q8_0, GGML_Q6_K };
#define VEC_TYPES_TEXT "F32 or F16"
#define TABLE_TYPES_TEXT "F16, F32, Q8_0 or Q6_K"

/* Like bind, for a tensor that may have any of n types. */
static const gguf_tensor *bind_typed(const gguf_file *f, const char *name, const uint32_t *types,
                                     int n, const char *types_text, uint64_t ne0, uint64_t ne1,
                                     char *err, size_t errlen) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) {
        bn_set_err(err, errlen, "missing tensor '%s'", name);
        return NULL;
    }
    int ok = 0;
    for (int i = 0; i < n; i++)
        ok |= t->type == types[i];
    if (!ok) {
        bn_set_err(err, errlen, "tensor '%s': type %s is not supported (expected %s)", name,
             ggml_type_name(t->type), types_text);
        return NULL;
    }
    return bind(f, name, t->type, ne0, ne1, err, errlen);
}

/* A small vector bound now and copied to F32 later (copy_vectors): its
 * address goes to *dst, or its first value to *value. */
typedef struct small_vec {
    const gguf_tensor *t;
    int n;
    const float **dst;
    float *value;
} small_vec;

/* What binding collects for the steps after it. */
typedef struct binder {
    bn_model *m;
    small_vec *vecs;                /* every norm, bias and scale */
    int n_vecs, cap_vecs;
    size_t vec_floats;
    const gguf_tensor *head;        /* the LM head's tensor */
    char *err;
    size_t errlen;
} binder;

static int bind_vec(binder *b, const char *name, int n, const float **dst, float *value) {
    const gguf_tensor *t = bind_typed(&b->m->gguf, name, VEC_TYPES, 2, VEC_TYPES_TEXT,
                                      (uint64_t)n, 0, b->err, b->errlen);
    if (!t)
        return -1;
    if (b->n_vecs == b->cap_vecs)
        return bn_set_err(b->err, b->errlen, "too many vectors");     /* sized in bind_tensors */
    b->vecs[b->n_vecs++] = (small_vec){ t, n, dst, value };
    b->vec_floats += (size_t)n;
    b->m->n_params += (uint64_t)n;
    return 0;
}

/* A ternary projection of M rows of K: GGUF shape [K, M], type I2_S. */
static int bind_ternary(binder *b, const char *name, int K, int M, bn_ternary *w) {
    const gguf_tensor *t = bind(&b->m->gguf, name, GGML_I2_S, (uint64_t)K, (uint64_t)M, b->err,
                                b->errlen);
    if (!t)
        return -1;
    const uint64_t n = (uint64_t)K * (uint64_t)M;
    if (n % BN_I2S_BLOCK != 0)
        return bn_set_err(b->err, b->errlen, "tensor '%s': %llu weights are not a whole number of "
                    "I2_S blocks (%d)", name, (unsigned long long)n, BN_I2S_BLOCK);
    w->K = K;
    w->M = M;
    w->Kp = bn_ternary_kpad(K);
    w->i2s = t->data;
    w->packed = NULL;
    w->out_scale = 1.0f;
    w->bias = NULL;
    w->scale = bn_i2s_scale(t->data, n);
    if (!isfinite(w->scale) || !(w->scale > 0.0f))
        return bn_set_err(b->err, b->errlen, "tensor '%s': scale %g is not a positive finite number",
                    name, (double)w->scale);
    b->m->n_params += n;
    return 0;
}

static int dim_size(const bn_hparams *hp, enum bn_dim d) {
    switch (d) {
    case BN_DIM_EMBD: return hp->n_embd;
    case BN_DIM_FF: return hp->n_ff;
    case BN_DIM_Q: return hp->n_head * hp->head_dim;
    case BN_DIM_KV: return hp->n_head_kv * hp->head_dim;
    case BN_DIM_ONE: return 1;
    }
    return 0;
}

/* Binds layer il's tensors as its architecture's entry says. */
static int bind_layer(binder *b, int il, bn_layer *L) {
    const bn_model *m = b->m;
    int n;
    const bn_layer_tensor *lt = bn_layer_tensors(&n);
    char name[96];
    for (int i = 0; i < n; i++) {
        const bn_layer_tensor *t = &lt[i];
        enum bn_presence pres = bn_arch_presence(m->arch, t);
        snprintf(name, sizeof name, "blk.%d.%s.%s", il, t->suffix, bn_layer_tensor_ext(t));
        if (pres == BN_ABSENT || (pres == BN_OPTIONAL && !gguf_find_tensor(&m->gguf, name)))
            continue;
        int K = dim_size(&m->hp, t->k), M = dim_size(&m->hp, t->m);
        int rc = 0;
        switch (t->kind) {
        case BN_T_PROJ: rc = bind_ternary(b, name, K, M, &L->proj[t->index]); break;
        case BN_T_NORM: rc = bind_vec(b, name, K, &L->norm[t->index], NULL); break;
        case BN_T_BIAS: rc = bind_vec(b, name, K, &L->proj[t->index].bias, NULL); break;
        case BN_T_SCALE: rc = bind_vec(b, name, 1, NULL, &L->proj[t->index].out_scale); break;
        }
        if (rc)
            return -1;
    }
    return 0;
}

/* Binds every tensor the forward pass reads; the head is output.weight
 * where the architecture uses it and the file has it, else token_embd. */
static int bind_tensors(binder *b) {
    bn_model *m = b->m;
    const bn_hparams *hp = &m->hp;
    const uint64_t E = (uint64_t)hp->n_embd, V = (uint64_t)hp->n_vocab;
    int n_lt;
    bn_layer_tensors(&n_lt);
    b->cap_vecs = hp->n_layer * n_lt + 1;
    b->vecs = malloc((size_t)b->cap_vecs * sizeof *b->vecs);
    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!b->vecs || !m->layers)
        return bn_set_err(b->err, b->errlen, "out of memory");

    const gguf_tensor *emb = bind_typed(&m->gguf, "token_embd.weight", TABLE_TYPES, 4,
                                        TABLE_TYPES_TEXT, E, V, b->err, b->errlen);
    if (!emb)
        return -1;
    m->embd_type = emb->type;
    m->embd_row_bytes = (size_t)ggml_type_nbytes(emb->type, E);
    m->tok_embd = emb->data;                    /* stays in the mapping */
    m->embd_file_offset = m->gguf.data_start + emb->offset;
    m->n_params = E * V;

    const gguf_tensor *out = NULL;
    if (m->arch->output != BN_ABSENT) {
        if (gguf_find_tensor(&m->gguf, "output.weight") || m->arch->output == BN_REQUIRED) {
            out = bind_typed(&m->gguf, "output.weight", TABLE_TYPES, 4, TABLE_TYPES_TEXT, E, V,
                             b->err, b->errlen);
            if (!out)
                return -1;
            m->n_params += E * V;
        }
    }
    b->head = out ? out : emb;
    m->head_tensor = out ? "output.weight" : "token_embd.weight";
    m->head_file_type = b->head->type;

    if (bind_vec(b, "output_norm.weight", hp->n_embd, &m->output_norm, NULL))
        return -1;
    for (int il = 0; il < hp->n_layer; il++)
        if (bind_layer(b, il, &m->layers[il]))
            return -1;
    return 0;
}

/* Copies every norm, bias and scale (1.8 MB for 2B4T) out of the mapping
 * as F32: they sit between the big tensors, and touching one would map a
 * whole large folio of the file around it (~100 MB of resident file pages
 * for 2B4T). */
static int copy_vectors(binder *b) {
    bn_model *m = b->m;
    float *a = malloc((b->vec_floats ? b->vec_floats : 1) * sizeof *a);
    if (!a)
        return bn_set_err(b->err, b->errlen, "out of memory for %zu norm weights", b->vec_floats);
    m->norms_arena = a;
    for (int i = 0; i < b->n_vecs; i++) {
        const small_vec *v = &b->vecs[i];
        if (v->t->type == GGML_F32) {
            memcpy(a, v->t->data, (size_t)v->n * sizeof *a);
        } else {
            for (int j = 0; j < v->n; j++) {
                uint16_t h;
                memcpy(&h, v->t->data + 2 * (size_t)j, 2);
                a[j] = bn_f16_to_f32(h);
            }
        }
        if (v->dst)
            *v->dst = a;
        if (v->value) {
            if (!isfinite(a[0]))
                return bn_set_err(b->err, b->errlen, "tensor '%.*s': scale %g is not a finite number",
                            (int)(v->t->name.len > 64 ? 64 : v->t->name.len), v->t->name.ptr,
                            (double)a[0]);
            *v->value = a[0];
        }
        a += v->n;
    }
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
    const uint16_t *src;            /* head: the F16 table */
    atomic_int failed;              /* ternary: a re-layout buffer was not allocated */
} pack_job;

/* Rows of K weights of the flat I2_S stream re-laid as rows of Kp (whole
 * blocks), each row's weights K..Kp-1 zero (code 1): the layout every
 * kernel expects, with the same products (docs/FORMAT.md, Unaligned I2_S
 * rows). */
static void relayout_rows(const uint8_t *src, int K, int M, int Kp, uint8_t *dst) {
    memset(dst, 0x55, (size_t)Kp * (size_t)M / 4);
    for (int m = 0; m < M; m++) {
        const uint64_t f0 = (uint64_t)m * (uint64_t)K, g0 = (uint64_t)m * (uint64_t)Kp;
        int k = 0;
        /* Runs of 32 weights that start a 32-weight group in both layouts
         * (every k when K % 32 == 0, as in every known model): one byte
         * each, at one shift. */
        if ((f0 & 31) == 0) {
            for (; k + 32 <= K; k += 32) {
                const uint8_t *s = src + bn_i2s_byte_index(f0 + (uint64_t)k);
                uint8_t *d = dst + bn_i2s_byte_index(g0 + (uint64_t)k);
                const unsigned ss = bn_i2s_shift(f0 + (uint64_t)k);
                const unsigned ds = bn_i2s_shift(g0 + (uint64_t)k);
                /* eight bytes at a time: the 2-bit field of each byte moved */
                const uint64_t lanes = 0x0303030303030303ull;
                for (int j = 0; j < 32; j += 8) {
                    uint64_t sv, dv;
                    memcpy(&sv, s + j, 8);
                    memcpy(&dv, d + j, 8);
                    dv = (dv & ~(lanes << ds)) | ((sv >> ss) & lanes) << ds;
                    memcpy(d + j, &dv, 8);
                }
            }
        }
        for (; k < K; k++) {
            const uint64_t f = f0 + (uint64_t)k, g = g0 + (uint64_t)k;
            const unsigned sh = bn_i2s_shift(g);
            uint8_t *byte = dst + bn_i2s_byte_index(g);
            *byte = (uint8_t)((*byte & ~(3u << sh)) | bn_i2s_code(src, f) << sh);
        }
    }
}

static void task_pack_ternary(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    pack_job *job = arg;
    bn_model *m = job->m;
    const bn_format_traits *f = m->kern->fmt[BN_FMT_TERNARY];
    uint8_t *rows = NULL;           /* this worker's re-layout buffer, reused */
    size_t cap = 0;
    for (int i; (i = atomic_fetch_add(&job->next, 1)) < job->n_items;) {
        bn_ternary *w = &m->layers[i / BN_PROJ_COUNT].proj[i % BN_PROJ_COUNT];
        if (w->Kp == w->K) {
            f->pack(w->i2s, w->K, w->M, 0, w->M, w->packed);
        } else {
            const size_t need = (size_t)w->Kp * (size_t)w->M / 4;
            if (need > cap) {
                free(rows);
                cap = need;
                if (!(rows = malloc(cap))) {
                    cap = 0;
                    atomic_store(&job->failed, 1);
                    continue;
                }
            }
            relayout_rows(w->i2s, w->K, w->M, w->Kp, rows);
            f->pack(rows, w->Kp, w->M, 0, w->M, w->packed);
        }
        if (m->gguf.owns_map)
            drop_pages(w->i2s, (uint64_t)w->K * (uint64_t)w->M / 4);
    }
    free(rows);
}

/* Sizes one arena for every projection's packed layout (64-byte aligned
 * slots) and packs them all. */
static int pack_ternary(bn_model *m, bn_threadpool *pool, char *err, size_t errlen) {
    const bn_format_traits *f = m->kern->fmt[BN_FMT_TERNARY];
    const int n_items = m->hp.n_layer * BN_PROJ_COUNT;
    size_t total = 0;
    for (int i = 0; i < n_items; i++) {
        bn_ternary *w = &m->layers[i / BN_PROJ_COUNT].proj[i % BN_PROJ_COUNT];
        total += (f->packed_size(w->Kp, w->M) + 63) & ~(size_t)63;
    }
    m->packed_arena = aligned_alloc(64, total ? total : 64);
    if (!m->packed_arena)
        return bn_set_err(err, errlen, "out of memory for %zu bytes of repacked weights", total);
    m->packed_bytes = total;
    size_t off = 0;
    for (int i = 0; i < n_items; i++) {
        bn_ternary *w = &m->layers[i / BN_PROJ_COUNT].proj[i % BN_PROJ_COUNT];
        w->packed = (uint8_t *)m->packed_arena + off;
        off += (f->packed_size(w->Kp, w->M) + 63) & ~(size_t)63;
    }
    pack_job job = {.m = m, .n_items = n_items};
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    bn_threadpool_run(pool, task_pack_ternary, &job);
    if (atomic_load(&job.failed))
        return bn_set_err(err, errlen, "out of memory while re-laying unaligned I2_S rows");
    return 0;
}

/* ---- the LM head ------------------------------------------------------------------ */

/* An F16 head smaller than this stays F16 by default: it is read from cache,
 * so int8 saves no memory traffic and F16 keeps exact parity with
 * bitnet.cpp. Above it (2B4T: 657 MB) the Q8 head halves the bytes read per
 * token. */
#define HEAD_Q8_DEFAULT_MIN_BYTES (32u << 20)

/* Per row: upper bounds of ||w - deq(w)||_2 and ||deq(w)||_2 as floats.
 * The double sums are within K * 2^-53 of the true ones; 1 + 2^-30 covers
 * that, and the float is rounded up (docs/NUMERICS.md, Exact head). */
static float round_up_float(double v) {
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

static void head_row_norms(bn_model *m, const uint16_t *src, int m0, int m1) {
    const int K = m->head.K;
    for (int r = m0; r < m1; r++) {
        double err2, deq2;
        m->kern->head_q8_row_norms(m->kern->fmt[BN_FMT_Q8_HEAD]->tile_rows, m->head.owned,
                                   src + (size_t)r * (size_t)K, K, r, &err2, &deq2);
        m->head_norms[2 * (size_t)r] = round_up_float(sqrt(err2) * (1.0 + 0x1p-30));
        m->head_norms[2 * (size_t)r + 1] = round_up_float(sqrt(deq2) * (1.0 + 0x1p-30));
    }
}

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
        f->pack(job->src, h->K, h->M, m0, m1, h->owned);
        /* The exact head's error norms, while the F16 rows are in cache. */
        if (m->head_norms) head_row_norms(m, job->src, m0, m1);
        /* Those F16 rows are done: release them now rather than at the end,
         * so the F16 and packed heads are never resident together (peak RSS). */
        if (m->gguf.owns_map)
            drop_pages(job->src + (size_t)m0 * (size_t)h->K,
                       (uint64_t)(m1 - m0) * (uint64_t)h->K * 2);
    }
}

/* The head from its tensor (docs/FORMAT.md, Head and embedding types): an
 * F16 table as stored or packed into the Q8 head (the default above 32 MB);
 * Q8_0, Q6_K and F32 tables as stored, with ggml's numerics (the head type
 * asked for applies to F16 tables only). */
static int make_head(bn_model *m, int want, const gguf_tensor *src, bn_threadpool *pool,
                     char *err, size_t errlen) {
    const int K = m->hp.n_embd, M = m->hp.n_vocab;
    bn_matrix *h = &m->head;
    h->K = K;
    h->M = M;
    h->W = src->data;
    h->bytes = src->nbytes;
    m->head_type = BN_HEAD_DEFAULT;
    switch (src->type) {
    case GGML_Q8_0: h->fmt = BN_FMT_Q8_0; return 0;
    case GGML_Q6_K: h->fmt = BN_FMT_Q6_K; return 0;
    case GGML_F32: h->fmt = BN_FMT_F32; return 0;
    default: break;
    }
    if (want == BN_HEAD_DEFAULT)
        want = src->nbytes >= HEAD_Q8_DEFAULT_MIN_BYTES ? BN_HEAD_EXACT : BN_HEAD_F16;
    m->head_type = want;
    if (want == BN_HEAD_F16) {
        h->fmt = BN_FMT_F16;
        return 0;
    }
    if (K % 32 != 0)
        return bn_set_err(err, errlen, "the %s head needs embedding_length %d to be a multiple of 32",
                    want == BN_HEAD_EXACT ? "exact" : "q8", K);
    if (want == BN_HEAD_EXACT) {
        /* The F16 rows stay in the mapping: a rescored row is read from there
         * (its pages come back from the file's page cache when touched). */
        m->head_f16 = (bn_matrix){.fmt = BN_FMT_F16, .K = K, .M = M, .W = src->data,
                                  .bytes = src->nbytes};
        m->head_norms = malloc((size_t)M * 2 * sizeof *m->head_norms);
        if (!m->head_norms)
            return bn_set_err(err, errlen, "out of memory for the exact head's row bounds");
    }
    h->fmt = BN_FMT_Q8_HEAD;
    const bn_format_traits *f = m->kern->fmt[h->fmt];
    size_t bytes = f->packed_size(K, M);
    h->owned = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!h->owned)
        return bn_set_err(err, errlen, "out of memory for the %zu-byte q8 head", bytes);
    h->W = h->owned;
    h->bytes = bytes;
    /* Claims of 64 tiles: a few MB of work each. */
    pack_job job = {.m = m, .rows_per_item = 64 * f->tile_rows, .src = (const uint16_t *)src->data};
    job.n_items = (M + job.rows_per_item - 1) / job.rows_per_item;
    atomic_init(&job.next, 0);
    atomic_init(&job.failed, 0);
    bn_threadpool_run(pool, task_pack_head, &job);
    if (m->gguf.owns_map)
        drop_pages(src->data, src->nbytes);     /* pages straddling two claims */
    return 0;
}

/* From now on token_embd is read one row per token. Unless it is the head
 * the forward pass reads in place (then it is resident anyway), rows are
 * read with pread (bn_model_embedding_raw): a fault in the mapping would map
 * a whole large folio of the file (~700 KB per 5 KB row measured), and a
 * 512-token prompt would pull most of the table back in. */
static void open_embedding_reader(bn_model *m, const char *path) {
    if (m->gguf.owns_map && path && m->head.W != (const void *)m->tok_embd)
        m->embd_fd = open(path, O_RDONLY | O_CLOEXEC);
}

static float default_attn_scale(int head_dim) {
    return 1.0f / sqrtf((float)head_dim);
}

int bn_model_use_kernels(bn_model *m, const bn_kernels *k, char *err, size_t errlen) {
    if (!m->layers || !m->head_src)
        return bn_set_err(err, errlen, "model was loaded without weights (vocab only)");
    bn_threadpool *pool = bn_threadpool_new(bn_physical_cores());
    if (!pool)
        return bn_set_err(err, errlen, "cannot start the loader's threads");
    free(m->packed_arena);
    m->packed_arena = NULL;
    free(m->head.owned);
    m->head.owned = NULL;
    free(m->head_norms);
    m->head_norms = NULL;
    m->kern = k;
    int rc = pack_ternary(m, pool, err, errlen);
    if (rc == 0 && m->head.fmt == BN_FMT_Q8_HEAD)
        rc = make_head(m, m->head_type, m->head_src, pool, err, errlen);
    bn_threadpool_free(pool);
    return rc;
}

/* ---- load / free -------------------------------------------------------------- */

bn_model *bn_model_load(const char *path, const bn_model_params *params, char *err,
                        size_t errlen) {
    bn_model_params defaults = bn_model_default_params();
    const bn_model_params *p = params ? params : &defaults;
    bn_threadpool *pool = NULL;
    binder b = {0};
    bn_model *m = calloc(1, sizeof *m);
    if (!m) {
        bn_set_err(err, errlen, "out of memory");
        return NULL;
    }
    m->embd_fd = -1;
    b.m = m;
    b.err = err;
    b.errlen = errlen;
    if (gguf_open(&m->gguf, path, err, errlen) != 0) {
        free(m);
        return NULL;
    }
    if (read_hparams(&m->gguf, &m->hp, &m->arch, err, errlen) != 0)
        goto fail;
    m->attn_scale = default_attn_scale(m->hp.head_dim);
    if (m->arch->attn_scale_key) {
        hp_ctx c = { &m->gguf, m->hp.arch, err, errlen };
        if (hp_float(&c, "attention.scale", 0, m->attn_scale, &m->attn_scale))
            goto fail;
    }
    if (!p->vocab_only) {
        if (p->head != BN_HEAD_DEFAULT && p->head != BN_HEAD_F16 && p->head != BN_HEAD_Q8 &&
            p->head != BN_HEAD_EXACT) {
            bn_set_err(err, errlen, "unknown head type %d", p->head);
            goto fail;
        }
        if (bind_tensors(&b) != 0 || copy_vectors(&b) != 0)
            goto fail;
        if (!(m->kern = bn_kernels_select(p->kernel, err, errlen)))
            goto fail;
    }
    m->tok = bn_tokenizer_from_gguf(&m->gguf, p->pre_tokenizer, err, errlen);
    if (!m->tok)
        goto fail;
    if (bn_vocab_size(m->tok) != m->hp.n_vocab) {
        bn_set_err(err, errlen, "vocab_size is %d but the tokenizer has %d tokens",
             m->hp.n_vocab, bn_vocab_size(m->tok));
        goto fail;
    }
    if (!p->vocab_only) {
        /* Packing streams the whole file: one worker per physical core,
         * the size of the inference pool. */
        if (!(pool = bn_threadpool_new(bn_physical_cores()))) {
            bn_set_err(err, errlen, "cannot start the loader's threads");
            goto fail;
        }
        if (pack_ternary(m, pool, err, errlen) != 0 ||
            make_head(m, p->head, b.head, pool, err, errlen) != 0)
            goto fail;
        m->head_src = b.head;
        m->head_file_offset = m->gguf.data_start + b.head->offset;
        open_embedding_reader(m, path);
        bn_threadpool_free(pool);
    }
    free(b.vecs);
    return m;
fail:
    free(b.vecs);
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
    free(m->head_norms);
    free(m->norms_arena);
    free(m->layers);
    if (m->embd_fd >= 0)
        close(m->embd_fd);
    gguf_close(&m->gguf);
    free(m);
}

/* --mlock: the memory bitnet.c made at load (re-laid ternary weights, the
 * quantized head and its row norms) is anonymous and could be swapped out;
 * lock it. What stays in the file mapping (embedding rows, the exact head's
 * F16 rows) is not locked: the kernel can always read it back from the
 * file, and locking it would make all of it resident. */
int bn_model_lock_memory(bn_model *m, char *err, size_t errlen) {
    const struct {
        const void *p;
        size_t n;
    } regions[] = {
        {m->packed_arena, m->packed_bytes},
        {m->head.owned, m->head.owned ? m->head.bytes : 0},
        {m->head_norms, m->head_norms ? (size_t)m->head.M * 2 * sizeof *m->head_norms : 0},
    };
    for (size_t i = 0; i < sizeof regions / sizeof regions[0]; i++)
        if (regions[i].p && regions[i].n && mlock(regions[i].p, regions[i].n) != 0)
            return bn_set_err(err, errlen, "mlock of %zu bytes: %s (the limit is ulimit -l)", regions[i].n,
                              strerror(errno));
    return 0;
}

/* n bytes at file offset off into dst; 0 when all were read. */
static int pread_all(int fd, void *dst, size_t n, uint64_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)dst + got, n - got, (off_t)(off + got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

void bn_model_embedding_raw(const bn_model *m, int32_t token, void *raw) {
    const size_t n = m->embd_row_bytes;
    if (m->embd_fd >= 0 && pread_all(m->embd_fd, raw, n, m->embd_file_offset + (uint64_t)token * n) == 0)
        return;
    /* No reader, or an I/O error: the mapping holds the same bytes. */
    memcpy(raw, m->tok_embd + (size_t)token * n, n);
}

/* A fault in the mapping would map a large folio of the file around each
 * rescored row (~700 KB per 5 KB row measured): a few hundred random rows
 * per token soon make the whole F16 table resident (+0.7 GB of peak RSS on
 * llama3-8b's untied head). pread copies just the row from the page cache. */
void bn_model_head_row_f16(const bn_model *m, int32_t row, uint16_t *dst) {
    const size_t n = (size_t)m->head_f16.K * sizeof *dst;
    if (m->embd_fd >= 0 && pread_all(m->embd_fd, dst, n, m->head_file_offset + (uint64_t)row * n) == 0)
        return;
    memcpy(dst, (const uint8_t *)m->head_f16.W + (size_t)row * n, n);
}

void bn_model_embedding_row(const bn_model *m, int32_t token, void *raw, float *dst) {
    const int E = m->hp.n_embd;
    bn_model_embedding_raw(m, token, raw);
    switch (m->embd_type) {
    case GGML_F16:
        if (m->kern) {
            m->kern->f16_to_f32(raw, dst, E);
        } else {
            const uint16_t *h = raw;
            for (int i = 0; i < E; i++) dst[i] = bn_f16_to_f32(h[i]);
        }
        break;
    case GGML_F32:
        if (raw != (void *)dst)
            memcpy(dst, raw, (size_t)E * sizeof *dst);
        break;
    case GGML_Q8_0: bn_q8_0_row_to_f32(raw, E, dst); break;
    case GGML_Q6_K: bn_q6_k_row_to_f32(raw, E, dst); break;
    default: memset(dst, 0, (size_t)E * sizeof *dst); break;
    }
}

/* ---- accessors ------------------------------------------------------------------ */

const bn_hparams *bn_model_hparams(const bn_model *m) { return &m->hp; }
const bn_tokenizer *bn_model_tokenizer(const bn_model *m) { return m->tok; }
const char *bn_model_kernel_name(const bn_model *m) { return m->kern ? m->kern->name : "none"; }
uint64_t bn_model_file_size(const bn_model *m) { return m->gguf.size; }
uint64_t bn_model_n_params(const bn_model *m) { return m->n_params; }
