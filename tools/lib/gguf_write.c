/* GGUF v3 writer: the header (kv + tensor infos) is built in memory; tensor
 * data is streamed to the file one tensor at a time, each tensor padded to
 * the alignment exactly as ggml's gguf writer does. */
#include "gguf_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[4];
    uint64_t nbytes, offset;
    const void *data;
    gguf_fill_fn fill;
    void *fill_ctx;
} wtensor;

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

struct gguf_writer {
    uint32_t alignment;
    int has_alignment_key;   /* the caller wrote general.alignment itself */
    uint64_t n_kv;
    bytes kv;                /* encoded kv records */
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
    uint64_t data_size;      /* padded size of the data section so far */
    char err[256];           /* first error; adds after it are ignored */
};

static void set_err(gguf_writer *w, const char *fmt, ...)
{
    if (w->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

static int put(gguf_writer *w, bytes *b, const void *src, size_t n)
{
    if (w->err[0])
        return -1;
    if (n > SIZE_MAX - b->len) {
        set_err(w, "header too large");
        return -1;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            set_err(w, "out of memory building the header");
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static void put_u32(gguf_writer *w, bytes *b, uint32_t v)
{
    uint8_t q[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
    put(w, b, q, 4);
}

static void put_u64(gguf_writer *w, bytes *b, uint64_t v)
{
    put_u32(w, b, (uint32_t)v);
    put_u32(w, b, (uint32_t)(v >> 32));
}

static void put_str(gguf_writer *w, bytes *b, const char *s, uint64_t len)
{
    put_u64(w, b, len);
    put(w, b, s, (size_t)len);
}


/* Appends one value of scalar type t from host memory, little-endian. */
static void put_scalar(gguf_writer *w, bytes *b, uint32_t t, const void *value)
{
    size_t n = gguf_vtype_size(t);
    uint64_t v = 0;
    switch (n) {
    case 1: { uint8_t x; memcpy(&x, value, 1); v = x; break; }
    case 2: { uint16_t x; memcpy(&x, value, 2); v = x; break; }
    case 4: { uint32_t x; memcpy(&x, value, 4); v = x; break; }
    case 8: { uint64_t x; memcpy(&x, value, 8); v = x; break; }
    default: return;
    }
    uint8_t q[8];
    for (size_t i = 0; i < n; i++)
        q[i] = (uint8_t)(v >> (8 * i));
    put(w, b, q, n);
}

static int begin_kv(gguf_writer *w, const char *key, uint32_t type)
{
    if (w->err[0])
        return -1;
    if (strcmp(key, "general.alignment") == 0)
        w->has_alignment_key = 1;
    put_str(w, &w->kv, key, strlen(key));
    put_u32(w, &w->kv, type);
    if (w->err[0])
        return -1;
    w->n_kv++;
    return 0;
}

gguf_writer *gguf_writer_new(uint32_t alignment)
{
    if (alignment == 0)
        alignment = 32;
    if (alignment & (alignment - 1))
        return NULL;   /* ggml requires a power of two */
    gguf_writer *w = calloc(1, sizeof *w);
    if (w)
        w->alignment = alignment;
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (uint64_t i = 0; i < w->n_tensors; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.p);
    free(w);
}

void gguf_w_scalar(gguf_writer *w, const char *key, uint32_t type, const void *value)
{
    if (gguf_vtype_size(type) == 0) {
        set_err(w, "key '%s': %s is not a scalar type", key, gguf_vtype_name(type));
        return;
    }
    if (begin_kv(w, key, type) == 0)
        put_scalar(w, &w->kv, type, value);
}

void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v) { gguf_w_scalar(w, key, GGUF_U32, &v); }
void gguf_w_i32(gguf_writer *w, const char *key, int32_t v) { gguf_w_scalar(w, key, GGUF_I32, &v); }
void gguf_w_f32(gguf_writer *w, const char *key, float v) { gguf_w_scalar(w, key, GGUF_F32, &v); }

void gguf_w_bool(gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    gguf_w_scalar(w, key, GGUF_BOOL, &b);
}

void gguf_w_str(gguf_writer *w, const char *key, const char *v)
{
    if (begin_kv(w, key, GGUF_STRING) == 0)
        put_str(w, &w->kv, v, strlen(v));
}

void gguf_w_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *elems, uint64_t n)
{
    size_t esize = gguf_vtype_size(elem_type);
    if (esize == 0) {
        set_err(w, "key '%s': arrays of %s need gguf_w_arr_str or are not supported", key,
                gguf_vtype_name(elem_type));
        return;
    }
    if (begin_kv(w, key, GGUF_ARRAY) < 0)
        return;
    put_u32(w, &w->kv, elem_type);
    put_u64(w, &w->kv, n);
    for (uint64_t i = 0; i < n && !w->err[0]; i++)
        put_scalar(w, &w->kv, elem_type, (const uint8_t *)elems + i * esize);
}

void gguf_w_arr_str(gguf_writer *w, const char *key, const gguf_str *strs, uint64_t n)
{
    if (begin_kv(w, key, GGUF_ARRAY) < 0)
        return;
    put_u32(w, &w->kv, GGUF_STRING);
    put_u64(w, &w->kv, n);
    for (uint64_t i = 0; i < n && !w->err[0]; i++)
        put_str(w, &w->kv, strs[i].ptr, strs[i].len);
}

void gguf_w_raw_kv(gguf_writer *w, const void *bytes_, size_t len)
{
    if (put(w, &w->kv, bytes_, len) == 0)
        w->n_kv++;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

void gguf_w_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                   const uint64_t *ne, const void *data, gguf_fill_fn fill, void *fill_ctx)
{
    if (w->err[0])
        return;
    if (n_dims > 4) {
        set_err(w, "tensor '%s': n_dims %u > 4", name, n_dims);
        return;
    }
    if (!data && !fill) {
        set_err(w, "tensor '%s': neither data nor a fill function", name);
        return;
    }
    wtensor t = { .type = type, .n_dims = n_dims, .data = data, .fill = fill, .fill_ctx = fill_ctx };
    uint64_t n = 1;
    for (uint32_t d = 0; d < 4; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] && n > UINT64_MAX / t.ne[d]) {
            set_err(w, "tensor '%s': element count overflows", name);
            return;
        }
        n *= t.ne[d];
    }
    t.nbytes = ggml_type_nbytes(type, n);
    int known = strcmp(ggml_type_name(type), "?") != 0;
    if (!known || (t.nbytes == 0 && n != 0)) {
        set_err(w, "tensor '%s': type %u (%s) cannot hold %llu elements", name, type,
                ggml_type_name(type), (unsigned long long)n);
        return;
    }
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 16;
        wtensor *p = realloc(w->tensors, (size_t)cap * sizeof *p);
        if (!p) {
            set_err(w, "out of memory adding tensor '%s'", name);
            return;
        }
        w->tensors = p;
        w->cap_tensors = cap;
    }
    t.name = strdup(name);
    if (!t.name) {
        set_err(w, "out of memory adding tensor '%s'", name);
        return;
    }
    t.offset = w->data_size;
    w->data_size += pad_to(t.nbytes, w->alignment);
    w->tensors[w->n_tensors++] = t;
}

/* The complete header (fixed part, kv, tensor infos, zero padding up to
 * data_start) as one buffer. */
static int build_header(gguf_writer *w, bytes *h)
{
    memset(h, 0, sizeof *h);
    int add_align = w->alignment != 32 && !w->has_alignment_key;
    put(w, h, "GGUF", 4);
    put_u32(w, h, 3);
    put_u64(w, h, w->n_tensors);
    put_u64(w, h, w->n_kv + (uint64_t)add_align);
    if (add_align) {   /* without the key a reader would assume 32 */
        static const char key[] = "general.alignment";
        put_str(w, h, key, sizeof key - 1);
        put_u32(w, h, GGUF_U32);
        put_u32(w, h, w->alignment);
    }
    put(w, h, w->kv.p, w->kv.len);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        put_str(w, h, t->name, strlen(t->name));
        put_u32(w, h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++)
            put_u64(w, h, t->ne[d]);
        put_u32(w, h, t->type);
        put_u64(w, h, t->offset);
    }
    static const uint8_t zeros[256];
    size_t pad = (size_t)(pad_to(h->len, w->alignment) - h->len);
    while (pad > 0 && !w->err[0]) {
        size_t n = pad < sizeof zeros ? pad : sizeof zeros;
        put(w, h, zeros, n);
        pad -= n;
    }
    if (w->err[0]) {
        free(h->p);
        h->p = NULL;
        return -1;
    }
    return 0;
}

int gguf_writer_to_buffer(gguf_writer *w, uint8_t **out, uint64_t *out_len)
{
    bytes h;
    if (build_header(w, &h) < 0)
        return -1;
    uint64_t total = h.len + w->data_size;
    uint8_t *buf = total <= SIZE_MAX ? calloc(1, (size_t)total ? (size_t)total : 1) : NULL;
    if (!buf) {
        set_err(w, "out of memory for a %llu-byte file", (unsigned long long)total);
        free(h.p);
        return -1;
    }
    memcpy(buf, h.p, h.len);
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        const wtensor *t = &w->tensors[i];
        uint8_t *dst = buf + h.len + t->offset;
        if (t->data)
            memcpy(dst, t->data, (size_t)t->nbytes);
        else
            t->fill(t->fill_ctx, dst, t->nbytes);
    }
    free(h.p);
    *out = buf;
    *out_len = total;
    return 0;
}

static int write_all(int fd, const void *p, uint64_t n, uint64_t off)
{
    const uint8_t *q = p;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t k = pwrite(fd, q, chunk, (off_t)off);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        q += k;
        off += (uint64_t)k;
        n -= (uint64_t)k;
    }
    return 0;
}

/* Produces one fill()ed tensor at file offset `off`. Mapping the file range
 * lets fill() write straight into the page cache, so even the 656 MB
 * embedding needs no buffer of its own; a plain buffer is the fallback
 * where the file cannot be mapped. */
static int fill_at(int fd, const wtensor *t, uint64_t off)
{
    if (t->nbytes == 0)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pg = page > 0 ? (uint64_t)page : 4096;
    uint64_t base = off / pg * pg, len = off - base + t->nbytes;
    void *m = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
    if (m != MAP_FAILED) {
        t->fill(t->fill_ctx, (uint8_t *)m + (off - base), t->nbytes);
        return munmap(m, (size_t)len);
    }
    uint8_t *buf = malloc((size_t)t->nbytes);
    if (!buf)
        return -1;
    t->fill(t->fill_ctx, buf, t->nbytes);
    int rc = write_all(fd, buf, t->nbytes, off);
    free(buf);
    return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen)
{
    bytes h;
    if (build_header(w, &h) < 0) {
        snprintf(err, errlen, "%s", w->err);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create: %s", strerror(errno));
        free(h.p);
        return -1;
    }
    uint64_t total = h.len + w->data_size;
    /* Sizing the file first makes all padding zero and lets fill_at map it. */
    int rc = ftruncate(fd, (off_t)total);
    const char *step = "cannot size the file";
    if (rc == 0) {
        step = "cannot write the header";
        rc = write_all(fd, h.p, h.len, 0);
    }
    for (uint64_t i = 0; i < w->n_tensors && rc == 0; i++) {
        const wtensor *t = &w->tensors[i];
        uint64_t off = h.len + t->offset;
        step = "cannot write tensor data";
        rc = t->data ? write_all(fd, t->data, t->nbytes, off) : fill_at(fd, t, off);
    }
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", step, strerror(errno));
    if (close(fd) != 0 && rc == 0) {
        snprintf(err, errlen, "cannot close: %s", strerror(errno));
        rc = -1;
    }
    free(h.p);
    return rc == 0 ? 0 : -1;
}
