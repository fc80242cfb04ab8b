/* Session files: the first n cells of a context's KV cache and their token
 * ids, saved so that a later run with the same prompt start skips its
 * evaluation (llama-cli's --prompt-cache; docs/FORMAT.md, Session file).
 *
 * The file is untrusted input. Its header names everything the cells'
 * bits depend on (the model, the cache types, the batch numerics), and is
 * checked whole against the context before a byte of the cache is
 * touched; every size is computed in 64 bits and compared with the file's
 * real size; a checksum at the end catches flipped bits in the data.
 *
 * The cells are written in a canonical layout (position-major rows per
 * layer and KV head, f16 halves or ggml q8_0 blocks), not as the memory
 * holds them: the f16 V is transposed there and the q8_0 series are
 * interleaved in groups of 8 positions (context.h), layouts that may
 * change without changing the file. Data streams through one tile buffer
 * sized from the header, so nothing is allocated per cell. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attention.h"
#include "context.h"
#include "kernels.h"
#include "model.h"
#include "util.h"

#define SESSION_MAGIC "bitnetKV"    /* 8 bytes, no NUL */
#define SESSION_VERSION 1
#define HEADER_BYTES 120
#define TILE 64                     /* positions per read or write */

/* ---- little-endian fields ----------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* FNV-1a, 64 bits, over every byte before the checksum: it is there to
 * catch damage (a bad disk, a truncated copy), not tampering. */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* ---- the header ---------------------------------------------------------------------- */

/* What a session is bound to, in the header's order (docs/FORMAT.md,
 * Session file). The kernel variant, thread count, n_batch and n_ctx are
 * not part of it: they change no bit of a cell
 * (docs/NUMERICS.md, Threads and determinism). */
typedef struct session_header {
    uint32_t version, n_tokens;
    char arch[32];
    uint64_t model_bytes, model_params, model_print;
    uint32_t n_layer, n_embd, n_head, n_head_kv, head_dim, n_vocab, n_ctx_train;
    uint32_t type_k, type_v, numerics;
    uint64_t kv_bytes;              /* the cells' bytes after the token ids */
} session_header;

/* The model file's fingerprint: FNV-1a of everything before the tensor
 * data (header, metadata, tensor records) and of the first 64 bytes of each
 * tensor's data. Two fine-tunes of one shape have the same size and
 * parameter count; their weights differ in the first bytes of almost every
 * tensor. A few hundred bytes of data and the metadata: milliseconds. */
static uint64_t model_fingerprint(const bn_model *m) {
    const gguf_file *g = &m->gguf;
    uint64_t meta = g->data_start < g->size ? g->data_start : g->size;
    uint64_t h = fnv1a(FNV_OFFSET, g->map, (size_t)meta);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (t->data) h = fnv1a(h, t->data, (size_t)(t->nbytes < 64 ? t->nbytes : 64));
    }
    return h;
}

static int context_numerics(const bn_context *c) {
    return c->batch_numerics == &bn_numerics_bitnet_cpp ? BN_NUMERICS_BITNET_CPP : BN_NUMERICS_DECODE;
}

static const char *numerics_name(uint32_t n) {
    return n == BN_NUMERICS_DECODE ? "decode" : n == BN_NUMERICS_BITNET_CPP ? "bitnet-cpp" : "unknown";
}

/* Bytes of one row (one position of one KV head) at a cache type: head_dim
 * f16 halves, or head_dim / 32 ggml q8_0 blocks (an f16 scale, then 32
 * int8 values; docs/FORMAT.md, Q8_0). */
static uint64_t row_bytes(int type, int head_dim) {
    return type == BN_KV_Q8_0 ? (uint64_t)head_dim / 32 * 34 : (uint64_t)head_dim * 2;
}

/* The cells' bytes of n positions in c's shape and types. No overflow:
 * every factor is below 2^31 and the product of the first three is the
 * size of the context's own cache. */
static uint64_t kv_bytes(const bn_context *c, uint32_t n) {
    uint64_t rows = (uint64_t)c->hp.n_layer * (uint64_t)c->hp.n_head_kv * n;
    return rows * (row_bytes(c->type_k, c->hp.head_dim) + row_bytes(c->type_v, c->hp.head_dim));
}

static session_header header_of(const bn_context *c, uint32_t n_tokens) {
    session_header h;
    memset(&h, 0, sizeof h);
    h.version = SESSION_VERSION;
    h.n_tokens = n_tokens;
    snprintf(h.arch, sizeof h.arch, "%s", c->hp.arch);
    h.model_bytes = bn_model_file_size(c->model);
    h.model_params = bn_model_n_params(c->model);
    h.model_print = model_fingerprint(c->model);
    h.n_layer = (uint32_t)c->hp.n_layer;
    h.n_embd = (uint32_t)c->hp.n_embd;
    h.n_head = (uint32_t)c->hp.n_head;
    h.n_head_kv = (uint32_t)c->hp.n_head_kv;
    h.head_dim = (uint32_t)c->hp.head_dim;
    h.n_vocab = (uint32_t)c->hp.n_vocab;
    h.n_ctx_train = (uint32_t)c->hp.n_ctx_train;
    h.type_k = (uint32_t)c->type_k;
    h.type_v = (uint32_t)c->type_v;
    h.numerics = (uint32_t)context_numerics(c);
    h.kv_bytes = kv_bytes(c, n_tokens);
    return h;
}

static void encode_header(const session_header *h, uint8_t *p) {
    memset(p, 0, HEADER_BYTES);
    memcpy(p, SESSION_MAGIC, 8);
    put_u32(p + 8, h->version);
    put_u32(p + 12, h->n_tokens);
    memcpy(p + 16, h->arch, 32);
    put_u64(p + 48, h->model_bytes);
    put_u64(p + 56, h->model_params);
    const uint32_t dims[7] = {h->n_layer, h->n_embd, h->n_head, h->n_head_kv,
                              h->head_dim, h->n_vocab, h->n_ctx_train};
    for (int i = 0; i < 7; i++) put_u32(p + 64 + 4 * i, dims[i]);
    put_u32(p + 92, h->type_k);
    put_u32(p + 96, h->type_v);
    put_u32(p + 100, h->numerics);
    put_u64(p + 104, h->model_print);
    put_u64(p + 112, h->kv_bytes);
}

static void decode_header(const uint8_t *p, session_header *h) {
    h->version = get_u32(p + 8);
    h->n_tokens = get_u32(p + 12);
    memcpy(h->arch, p + 16, 32);
    h->arch[31] = '\0';             /* a hostile name still ends */
    h->model_bytes = get_u64(p + 48);
    h->model_params = get_u64(p + 56);
    uint32_t *dims[7] = {&h->n_layer, &h->n_embd, &h->n_head, &h->n_head_kv,
                         &h->head_dim, &h->n_vocab, &h->n_ctx_train};
    for (int i = 0; i < 7; i++) *dims[i] = get_u32(p + 64 + 4 * i);
    h->type_k = get_u32(p + 92);
    h->type_v = get_u32(p + 96);
    h->numerics = get_u32(p + 100);
    h->model_print = get_u64(p + 104);
    h->kv_bytes = get_u64(p + 112);
}

/* The file's header against the context (want: the context's own header
 * for the same token count). 0, or -1 with what differs. */
static int check_header(const session_header *h, const session_header *want, const bn_context *c,
                        int cap, char *err, size_t errlen) {
    if (h->version != SESSION_VERSION)
        return bn_set_err(err, errlen, "session file version %u, this build reads version %d",
                          h->version, SESSION_VERSION);
    if (strcmp(h->arch, want->arch) != 0 || h->model_bytes != want->model_bytes ||
        h->model_params != want->model_params)
        return bn_set_err(err, errlen, "saved with another model (%s, %llu bytes, %llu parameters; "
                          "this one: %s, %llu bytes, %llu parameters)",
                          h->arch, (unsigned long long)h->model_bytes, (unsigned long long)h->model_params,
                          want->arch, (unsigned long long)want->model_bytes,
                          (unsigned long long)want->model_params);
    if (h->n_layer != want->n_layer || h->n_embd != want->n_embd || h->n_head != want->n_head ||
        h->n_head_kv != want->n_head_kv || h->head_dim != want->head_dim ||
        h->n_vocab != want->n_vocab || h->n_ctx_train != want->n_ctx_train)
        return bn_set_err(err, errlen, "saved with another model shape (%u layers, %u KV heads x %u, "
                          "vocabulary %u; this one: %u layers, %u KV heads x %u, vocabulary %u)",
                          h->n_layer, h->n_head_kv, h->head_dim, h->n_vocab,
                          want->n_layer, want->n_head_kv, want->head_dim, want->n_vocab);
    if (h->model_print != want->model_print)
        return bn_set_err(err, errlen, "saved with another model of this size and shape (the "
                          "fingerprint of its metadata and weights differs)");
    if (h->type_k != want->type_k || h->type_v != want->type_v) {
        const char *fk = bn_kv_type_name((int)h->type_k), *fv = bn_kv_type_name((int)h->type_v);
        return bn_set_err(err, errlen, "saved with K / V caches of %s / %s; this context's are %s / %s "
                          "(-ctk / -ctv)", fk ? fk : "unknown", fv ? fv : "unknown",
                          bn_kv_type_name(c->type_k), bn_kv_type_name(c->type_v));
    }
    if (h->numerics != want->numerics)
        return bn_set_err(err, errlen, "saved with the %s batch numerics; this context uses %s "
                          "(--batch-numerics)", numerics_name(h->numerics), numerics_name(want->numerics));
    if (h->n_tokens > (uint32_t)c->n_ctx)
        return bn_set_err(err, errlen, "holds %u tokens, more than the context's %d", h->n_tokens, c->n_ctx);
    if (h->n_tokens > (uint32_t)cap)
        return bn_set_err(err, errlen, "holds %u tokens, more than the %d the token buffer takes",
                          h->n_tokens, cap);
    if (h->kv_bytes != want->kv_bytes)
        return bn_set_err(err, errlen, "its cells take %llu bytes, %u tokens of this shape take %llu",
                          (unsigned long long)h->kv_bytes, h->n_tokens,
                          (unsigned long long)want->kv_bytes);
    return 0;
}

/* ---- the cells ---------------------------------------------------------------------- */

/* One cache (K or V) of layer l, KV head g, as the cells are stored. */
typedef struct kv_view {
    int type;                       /* enum bn_kv_type */
    int v;                          /* 1: V (f16: transposed in memory) */
    uint16_t *f16;                  /* f16: K rows or the head's first V dim row */
    int8_t *q8;                     /* q8_0: the series' values and scales */
    uint16_t *q8d;
    enum bn_kvq8_kind kind;
} kv_view;

static kv_view view_of(const bn_context *c, int v, int l, int g) {
    kv_view w;
    memset(&w, 0, sizeof w);
    int hd = c->hp.head_dim;
    w.v = v;
    w.type = v ? c->type_v : c->type_k;
    w.kind = v ? BN_KVQ8_V : BN_KVQ8_K;
    if (w.type == BN_KV_Q8_0) {
        size_t series = bn_kvq8_series(c, l, g);
        w.q8 = (v ? c->v_q8 : c->k_q8) + series * (size_t)hd;
        w.q8d = (v ? c->v_q8d : c->k_q8d) + series * (size_t)(hd / 32);
    } else if (v) {             /* [layer][kv_dim][n_ctx]: dim g*hd + d, cell t */
        w.f16 = c->v_cache + ((size_t)l * (size_t)c->kv_dim + (size_t)g * (size_t)hd) * (size_t)c->n_ctx;
    } else {                    /* [layer][kv_head][n_ctx][head_dim] */
        w.f16 = c->k_cache + ((size_t)l * (size_t)c->hp.n_head_kv + (size_t)g) * (size_t)c->n_ctx * (size_t)hd;
    }
    return w;
}

/* Position t's row into its canonical bytes. */
static void encode_row(const bn_context *c, const kv_view *w, int t, uint8_t *out) {
    int hd = c->hp.head_dim;
    if (w->type == BN_KV_Q8_0) {
        int8_t q[BN_KVQ8_MAX_HD];
        uint16_t d[BN_KVQ8_MAX_HD / 32];
        bn_q8_kv_row_read(w->kind, w->q8, w->q8d, hd, t, q, d);
        for (int b = 0; b < hd / 32; b++, out += 34) {
            put_u16(out, d[b]);
            memcpy(out + 2, q + 32 * b, 32);
        }
        return;
    }
    for (int d = 0; d < hd; d++) {
        uint16_t x = w->v ? w->f16[(size_t)d * (size_t)c->n_ctx + (size_t)t]
                          : w->f16[(size_t)t * (size_t)hd + (size_t)d];
        put_u16(out + 2 * d, x);
    }
}

/* An f16 Inf or NaN (all exponent bits set): a corrupt cell, which would
 * turn attention's scores into NaN. */
static int f16_not_finite(uint16_t x) {
    return (x & 0x7c00) == 0x7c00;
}

/* Canonical bytes into position t's row. Refused (-1, the cause in *why):
 * an int8 value of -128, which q8_0 quantization never gives (it clamps to
 * -127..127) and the integer kernels do not expect, and an f16 value or
 * scale that is not finite. */
static int decode_row(bn_context *c, const kv_view *w, int t, const uint8_t *in, const char **why) {
    int hd = c->hp.head_dim;
    if (w->type == BN_KV_Q8_0) {
        int8_t q[BN_KVQ8_MAX_HD];
        uint16_t d[BN_KVQ8_MAX_HD / 32];
        for (int b = 0; b < hd / 32; b++, in += 34) {
            d[b] = get_u16(in);
            memcpy(q + 32 * b, in + 2, 32);
            if (f16_not_finite(d[b])) {
                *why = "a scale that is not finite";
                return -1;
            }
        }
        for (int i = 0; i < hd; i++)
            if (q[i] == INT8_MIN) {
                *why = "a q8_0 value of -128";
                return -1;
            }
        bn_q8_kv_row_write(w->kind, w->q8, w->q8d, hd, t, q, d);
        return 0;
    }
    for (int d = 0; d < hd; d++)
        if (f16_not_finite(get_u16(in + 2 * d))) {
            *why = "a value that is not finite";
            return -1;
        }
    for (int d = 0; d < hd; d++) {
        uint16_t x = get_u16(in + 2 * d);
        if (w->v) w->f16[(size_t)d * (size_t)c->n_ctx + (size_t)t] = x;
        else w->f16[(size_t)t * (size_t)hd + (size_t)d] = x;
    }
    return 0;
}

/* ---- save ------------------------------------------------------------------------------ */

/* Writes n bytes and adds them to the checksum; 0, or -1 (errno set). */
static int write_hashed(FILE *f, const void *p, size_t n, uint64_t *hash) {
    *hash = fnv1a(*hash, p, n);
    return n == 0 || fwrite(p, 1, n, f) == n ? 0 : -1;
}

/* Header, ids, cells (per layer: K then V, per KV head the n positions in
 * order), checksum. 0, or -1 with errno set. */
static int write_session(const bn_context *c, FILE *f, const int32_t *tokens, int n, uint8_t *tile) {
    uint64_t hash = FNV_OFFSET;
    uint8_t head[HEADER_BYTES];
    session_header h = header_of(c, (uint32_t)n);
    encode_header(&h, head);
    if (write_hashed(f, head, sizeof head, &hash) != 0) return -1;
    for (int i = 0; i < n; i += TILE) {
        int m = imin(TILE, n - i);
        for (int j = 0; j < m; j++) put_u32(tile + 4 * j, (uint32_t)tokens[i + j]);
        if (write_hashed(f, tile, 4 * (size_t)m, &hash) != 0) return -1;
    }
    for (int l = 0; l < c->hp.n_layer; l++)
        for (int v = 0; v < 2; v++)
            for (int g = 0; g < c->hp.n_head_kv; g++) {
                kv_view w = view_of(c, v, l, g);
                size_t rb = (size_t)row_bytes(w.type, c->hp.head_dim);
                for (int t0 = 0; t0 < n; t0 += TILE) {
                    int m = imin(TILE, n - t0);
                    for (int j = 0; j < m; j++) encode_row(c, &w, t0 + j, tile + (size_t)j * rb);
                    if (write_hashed(f, tile, (size_t)m * rb, &hash) != 0) return -1;
                }
            }
    uint8_t sum[8];
    put_u64(sum, hash);
    return fwrite(sum, 1, sizeof sum, f) == sizeof sum ? 0 : -1;
}

/* The tile buffer: TILE rows of the widest row, or TILE token ids. */
static uint8_t *alloc_tile(const bn_context *c) {
    uint64_t rb = row_bytes(c->type_k, c->hp.head_dim);
    if (row_bytes(c->type_v, c->hp.head_dim) > rb) rb = row_bytes(c->type_v, c->hp.head_dim);
    if (rb < 4) rb = 4;
    return malloc((size_t)rb * TILE);
}

int bn_session_save(const bn_context *c, const char *path, const int32_t *tokens, int n_tokens,
                    char *err, size_t errlen) {
    if (!c || !path || !path[0]) return bn_set_err(err, errlen, "no context or no path");
    if (n_tokens < 0 || n_tokens > c->n_past || (n_tokens > 0 && !tokens))
        return bn_set_err(err, errlen, "cannot save %d tokens, the cache holds %d", n_tokens, c->n_past);
    for (int i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= c->hp.n_vocab)
            return bn_set_err(err, errlen, "token id %d at index %d is out of range [0, %d)",
                              (int)tokens[i], i, c->hp.n_vocab);
    /* Written beside the target, then renamed over it: a reader (another
     * run) never sees half a file, and a failed save leaves the old one. */
    size_t len = strlen(path);
    char *tmp = malloc(len + 32);
    uint8_t *tile = alloc_tile(c);
    if (!tmp || !tile) {
        free(tmp);
        free(tile);
        return bn_set_err(err, errlen, "out of memory");
    }
    snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = bn_set_err(err, errlen, "cannot create the temporary file beside it: %s", strerror(errno));
    } else {
        errno = 0;
        int bad = write_session(c, f, tokens, n_tokens, tile) != 0 || fflush(f) != 0 || ferror(f);
        int saved_errno = errno;
        if (fclose(f) != 0 && !bad) {
            bad = 1;
            saved_errno = errno;
        }
        if (bad) rc = bn_set_err(err, errlen, "cannot write: %s", saved_errno ? strerror(saved_errno) : "I/O error");
        else if (rename(tmp, path) != 0) rc = bn_set_err(err, errlen, "cannot replace: %s", strerror(errno));
        if (rc != 0) remove(tmp);
    }
    free(tmp);
    free(tile);
    return rc;
}

/* ---- load ------------------------------------------------------------------------------ */

/* Reads exactly n bytes and adds them to the checksum; 0, or -1. */
static int read_hashed(FILE *f, void *p, size_t n, uint64_t *hash) {
    if (n > 0 && fread(p, 1, n, f) != n) return -1;
    *hash = fnv1a(*hash, p, n);
    return 0;
}

/* The ids and cells after a checked header. 0, or -1 with the reason
 * (the cache then holds part of the file: the caller empties it). */
static int read_cells(bn_context *c, FILE *f, const session_header *h, int32_t *tokens, uint8_t *tile,
                      uint64_t *hash, char *err, size_t errlen) {
    int n = (int)h->n_tokens;
    for (int i = 0; i < n; i += TILE) {
        int m = imin(TILE, n - i);
        if (read_hashed(f, tile, 4 * (size_t)m, hash) != 0)
            return bn_set_err(err, errlen, "truncated in the token ids");
        for (int j = 0; j < m; j++) {
            uint32_t id = get_u32(tile + 4 * j);
            if (id >= (uint32_t)c->hp.n_vocab)
                return bn_set_err(err, errlen, "token id %u at index %d is out of range [0, %d)",
                                  id, i + j, c->hp.n_vocab);
            tokens[i + j] = (int32_t)id;
        }
    }
    for (int l = 0; l < c->hp.n_layer; l++)
        for (int v = 0; v < 2; v++)
            for (int g = 0; g < c->hp.n_head_kv; g++) {
                kv_view w = view_of(c, v, l, g);
                size_t rb = (size_t)row_bytes(w.type, c->hp.head_dim);
                for (int t0 = 0; t0 < n; t0 += TILE) {
                    int m = imin(TILE, n - t0);
                    if (read_hashed(f, tile, (size_t)m * rb, hash) != 0)
                        return bn_set_err(err, errlen, "truncated in the cells of layer %d", l);
                    const char *why = "";
                    for (int j = 0; j < m; j++)
                        if (decode_row(c, &w, t0 + j, tile + (size_t)j * rb, &why) != 0)
                            return bn_set_err(err, errlen, "layer %d, %s, KV head %d, position %d: "
                                              "%s (corrupt cells)", l, v ? "V" : "K", g, t0 + j, why);
                }
            }
    return 0;
}

/* Opens and checks everything up to the cells: the header against c, and
 * the file's size against the header. The stream is left at the ids. */
static FILE *open_checked(bn_context *c, const char *path, int cap, session_header *h, uint64_t *hash,
                          char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        bn_set_err(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t head[HEADER_BYTES];
    uint64_t size = 0;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
        bn_set_err(err, errlen, "not a regular file");
        goto fail;
    }
    size = (uint64_t)st.st_size;
    if (size < 8 || fread(head, 1, 8, f) != 8 || memcmp(head, SESSION_MAGIC, 8) != 0) {
        bn_set_err(err, errlen, "not a bitnet session file (no '" SESSION_MAGIC "' magic)");
        goto fail;
    }
    if (size < HEADER_BYTES || fread(head + 8, 1, HEADER_BYTES - 8, f) != HEADER_BYTES - 8) {
        bn_set_err(err, errlen, "truncated: %llu bytes, the header alone takes %d",
                   (unsigned long long)size, HEADER_BYTES);
        goto fail;
    }
    decode_header(head, h);
    session_header want = header_of(c, h->n_tokens <= (uint32_t)c->n_ctx ? h->n_tokens : 0);
    if (check_header(h, &want, c, cap, err, errlen) != 0) goto fail;
    /* n_tokens <= n_ctx <= 2^20 and kv_bytes is this context's: no overflow */
    uint64_t expect = HEADER_BYTES + 4 * (uint64_t)h->n_tokens + h->kv_bytes + 8;
    if (size != expect) {
        bn_set_err(err, errlen, "%s: %llu bytes, %u tokens take %llu",
                   size < expect ? "truncated" : "trailing bytes", (unsigned long long)size, h->n_tokens,
                   (unsigned long long)expect);
        goto fail;
    }
    *hash = fnv1a(FNV_OFFSET, head, sizeof head);
    return f;
fail:
    fclose(f);
    return NULL;
}

int bn_session_load(bn_context *c, const char *path, int32_t *tokens, int cap, int *n_tokens,
                    char *err, size_t errlen) {
    if (n_tokens) *n_tokens = 0;
    if (!c || !path || !n_tokens || cap < 0 || (cap > 0 && !tokens))
        return bn_set_err(err, errlen, "no context, path or token buffer");
    bn_context_reset(c);
    session_header h;
    uint64_t hash = 0;
    FILE *f = open_checked(c, path, cap, &h, &hash, err, errlen);
    if (!f) return -1;
    uint8_t *tile = alloc_tile(c);
    int rc = 0;
    if (!tile) {
        rc = bn_set_err(err, errlen, "out of memory");
    } else if (read_cells(c, f, &h, tokens, tile, &hash, err, errlen) != 0) {
        rc = -1;
    } else {
        uint8_t sum[8];
        if (fread(sum, 1, sizeof sum, f) != sizeof sum)
            rc = bn_set_err(err, errlen, "truncated before the checksum");
        else if (get_u64(sum) != hash)
            rc = bn_set_err(err, errlen, "checksum mismatch: the file is corrupt");
    }
    free(tile);
    fclose(f);
    if (rc != 0) {
        bn_context_reset(c);        /* part of the file may be in the cache */
        return -1;
    }
    /* The state of having evaluated these tokens: n_past cells, and V's
     * cells past them in their KV_PAD block zero, as bn_kv_prepare left
     * them when the block was first entered (attention.h). */
    c->n_past = (int)h.n_tokens;
    c->n_logits = 0;
    bn_kv_truncate(c, c->n_past);
    *n_tokens = (int)h.n_tokens;
    return 0;
}
