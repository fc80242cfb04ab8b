/* GGUF v2/v3 reader: validates an untrusted file completely before anyone
 * looks at it, then offers lookups and typed getters over the mapping.
 * The writer lives in gguf_write.c. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_DIMS 4u

/* ---- type tables ---------------------------------------------------------- */

uint64_t gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(uint32_t type)
{
    static const char *const names[GGUF_VTYPE_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
        "str", "arr", "u64", "i64", "f64",
    };
    return type < GGUF_VTYPE_COUNT ? names[type] : "?";
}

/* Block layout of a tensor type: elements per block and bytes per block. */
static int type_block(uint32_t type, uint64_t *blck, uint64_t *bsize)
{
    switch (type) {
    case GGML_F32:   *blck = 1;   *bsize = 4;   return 1;
    case GGML_F16:   *blck = 1;   *bsize = 2;   return 1;
    case GGML_BF16:  *blck = 1;   *bsize = 2;   return 1;
    case GGML_Q8_0:  *blck = 32;  *bsize = 34;  return 1;
    case GGML_Q6_K:  *blck = 256; *bsize = 210; return 1;
    case GGML_TQ1_0: *blck = 256; *bsize = 54;  return 1;
    case GGML_TQ2_0: *blck = 256; *bsize = 66;  return 1;
    /* I2_S: 2 bits per weight plus a 32-byte tail (scale + garbage), docs/FORMAT.md, Tensor sizes */
    case GGML_I2_S:  *blck = 4;   *bsize = 1;   return 1;
    default: return 0;
    }
}

uint64_t ggml_type_nbytes(uint32_t type, uint64_t n_elements)
{
    uint64_t blck, bsize;
    if (!type_block(type, &blck, &bsize) || n_elements % blck != 0)
        return 0;
    uint64_t nblocks = n_elements / blck;
    if (nblocks > UINT64_MAX / bsize)
        return 0;
    uint64_t n = nblocks * bsize;
    if (type == GGML_I2_S) {
        if (n > UINT64_MAX - 32)
            return 0;
        n += 32;
    }
    return n;
}

const char *ggml_type_name(uint32_t type)
{
    switch (type) {
    case GGML_F32: return "F32";
    case GGML_F16: return "F16";
    case GGML_Q8_0: return "Q8_0";
    case GGML_Q6_K: return "Q6_K";
    case GGML_BF16: return "BF16";
    case GGML_TQ1_0: return "TQ1_0";
    case GGML_TQ2_0: return "TQ2_0";
    case GGML_I2_S: return "I2_S";
    default: return "?";
    }
}

/* ---- little-endian decoding (the host may be anything) -------------------- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* ---- the parser ------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *p;
    uint64_t size, pos;
    char *err;
    size_t errlen;
} reader;

static int fail(reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bn_vset_err(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* A name from the file, made safe to print: control and non-ASCII bytes
 * become '?', long names are cut. */
typedef struct { char s[72]; } printable;
static printable show(gguf_str str)
{
    printable out;
    uint64_t n = str.len < 64 ? str.len : 64;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str.ptr[i];
        out.s[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (str.len > n) {
        memcpy(out.s + n, "...", 4);
    } else {
        out.s[n] = '\0';
    }
    return out;
}

static uint64_t remaining(const reader *r) { return r->size - r->pos; }

/* Takes n bytes or fails with "truncated at byte P reading <what>". */
static const uint8_t *take(reader *r, uint64_t n, const char *what_fmt, ...)
{
    if (n > remaining(r)) {
        if (r->err && r->errlen) {
            char what[160];
            va_list ap;
            va_start(ap, what_fmt);
            vsnprintf(what, sizeof what, what_fmt, ap);
            va_end(ap);
            fail(r, "truncated at byte %llu reading %s", (unsigned long long)r->pos, what);
        }
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

/* A length-prefixed string; `what` names it in the error ("the key of kv 3"). */
static int take_str(reader *r, gguf_str *out, const char *what)
{
    const uint8_t *q = take(r, 8, "the length of %s", what);
    if (!q)
        return -1;
    uint64_t len = le64(q);
    if (len > remaining(r))
        return fail(r, "truncated at byte %llu reading %s (length %llu, %llu bytes left)",
                    (unsigned long long)r->pos, what, (unsigned long long)len,
                    (unsigned long long)remaining(r));
    out->ptr = (const char *)(r->p + r->pos);
    out->len = len;
    r->pos += len;
    return 0;
}

/* Arrays may hold arrays (GGUF allows it; ggml's reader refuses). Nesting
 * is bounded so that a hostile file cannot recurse without limit. */
#define MAX_ARRAY_DEPTH 8

/* Validates n nested arrays (each: u32 element type, u64 count, elements)
 * at the read position and moves past them. Every header takes 12 bytes, so
 * the work is linear in the file size. */
static int skip_nested_arrays(reader *r, uint64_t n, int depth, const char *key, uint64_t i)
{
    if (depth > MAX_ARRAY_DEPTH)
        return fail(r, "arrays nested deeper than %d levels (key '%s')", MAX_ARRAY_DEPTH, key);
    if (n > remaining(r) / 12)
        return fail(r, "array of key '%s' claims %llu nested arrays but only %llu bytes are "
                    "left at byte %llu", key, (unsigned long long)n,
                    (unsigned long long)remaining(r), (unsigned long long)r->pos);
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *q = take(r, 12, "a nested array header of key '%s' (kv %llu)", key,
                                (unsigned long long)i);
        if (!q)
            return -1;
        uint32_t type = le32(q);
        uint64_t count = le64(q + 4);
        if (type == GGUF_ARRAY) {
            if (skip_nested_arrays(r, count, depth + 1, key, i) < 0)
                return -1;
        } else if (type == GGUF_STRING) {
            if (count > remaining(r) / 8)
                return fail(r, "nested array of key '%s' claims %llu strings but only %llu "
                            "bytes are left", key, (unsigned long long)count,
                            (unsigned long long)remaining(r));
            for (uint64_t k = 0; k < count; k++) {
                gguf_str str;
                if (take_str(r, &str, "a string of a nested array") < 0)
                    return -1;
            }
        } else {
            uint64_t esize = gguf_vtype_size(type);
            if (esize == 0)
                return fail(r, "unknown value type %u in a nested array of key '%s' (kv %llu)",
                            type, key, (unsigned long long)i);
            if (count > remaining(r) / esize)
                return fail(r, "truncated at byte %llu reading a nested array of key '%s' "
                            "(%llu x %s)", (unsigned long long)r->pos, key,
                            (unsigned long long)count, gguf_vtype_name(type));
            r->pos += count * esize;
        }
    }
    return 0;
}

/* Value of kv i (whose key and type are already read). */
static int parse_value(reader *r, gguf_kv *kv, uint64_t i)
{
    printable key = show(kv->key);
    char what[128];
    snprintf(what, sizeof what, "the value of key '%s' (kv %llu)", key.s, (unsigned long long)i);

    if (kv->type == GGUF_STRING) {
        gguf_str s;
        kv->data = r->p + r->pos;
        if (take_str(r, &s, what) < 0)
            return -1;
        kv->nbytes = 8 + s.len;
        return 0;
    }
    if (kv->type != GGUF_ARRAY) {
        uint64_t n = gguf_vtype_size(kv->type);
        if (n == 0)
            return fail(r, "unknown value type %u for key '%s' (kv %llu)", kv->type, key.s,
                        (unsigned long long)i);
        kv->data = take(r, n, "%s", what);
        if (!kv->data)
            return -1;
        kv->nbytes = n;
        return 0;
    }

    const uint8_t *q = take(r, 12, "the array header of key '%s' (kv %llu)", key.s,
                            (unsigned long long)i);
    if (!q)
        return -1;
    kv->arr_type = le32(q);
    kv->arr_n = le64(q + 4);
    kv->data = r->p + r->pos;
    if (kv->arr_type == GGUF_ARRAY) {
        /* Validated so the file is known sound; no accessor reads inside. */
        uint64_t start = r->pos;
        if (skip_nested_arrays(r, kv->arr_n, 2, key.s, i) < 0)
            return -1;
        kv->nbytes = r->pos - start;
        return 0;
    }
    if (kv->arr_type == GGUF_STRING) {
        /* Every string needs at least its 8-byte length: reject absurd counts
         * before walking, then validate each length so that
         * gguf_arr_str_next never has to check. */
        if (kv->arr_n > remaining(r) / 8)
            return fail(r, "array of key '%s' claims %llu strings but only %llu bytes are left "
                        "at byte %llu", key.s, (unsigned long long)kv->arr_n,
                        (unsigned long long)remaining(r), (unsigned long long)r->pos);
        uint64_t start = r->pos;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            /* Fast path: a vocabulary has ~400K strings, so the message is
             * only worded when a length is actually bad. */
            if (remaining(r) >= 8) {
                uint64_t len = le64(r->p + r->pos);
                if (len <= remaining(r) - 8) {
                    r->pos += 8 + len;
                    continue;
                }
            }
            gguf_str s;
            char ewhat[160];
            snprintf(ewhat, sizeof ewhat, "string %llu of array key '%s' (kv %llu)",
                     (unsigned long long)j, key.s, (unsigned long long)i);
            if (take_str(r, &s, ewhat) < 0)
                return -1;
        }
        kv->nbytes = r->pos - start;
        return 0;
    }
    uint64_t esize = gguf_vtype_size(kv->arr_type);
    if (esize == 0)
        return fail(r, "unknown value type %u for the elements of key '%s' (kv %llu)",
                    kv->arr_type, key.s, (unsigned long long)i);
    if (kv->arr_n > remaining(r) / esize)
        return fail(r, "truncated at byte %llu reading array of key '%s' (%llu x %s, "
                    "%llu bytes left)", (unsigned long long)r->pos, key.s,
                    (unsigned long long)kv->arr_n, gguf_vtype_name(kv->arr_type),
                    (unsigned long long)remaining(r));
    kv->nbytes = kv->arr_n * esize;
    r->pos += kv->nbytes;
    return 0;
}

/* Order of strings for duplicate detection: by length, then bytes. */
static int str_cmp(gguf_str a, gguf_str b)
{
    if (a.len != b.len)
        return a.len < b.len ? -1 : 1;
    return a.len ? memcmp(a.ptr, b.ptr, (size_t)a.len) : 0;
}
static int cmp_str_ptr(const void *a, const void *b)
{
    return str_cmp(**(const gguf_str *const *)a, **(const gguf_str *const *)b);
}

/* Finds a repeated string among n (sorting pointers keeps this O(n log n)
 * even for hostile files with huge counts). Returns the duplicate or NULL;
 * *oom set when the scratch allocation fails. */
static const gguf_str *find_duplicate(const void *base, size_t stride, uint64_t n, int *oom)
{
    *oom = 0;
    if (n < 2)
        return NULL;
    const gguf_str **idx = malloc((size_t)n * sizeof *idx);
    if (!idx) {
        *oom = 1;
        return NULL;
    }
    for (uint64_t i = 0; i < n; i++)
        idx[i] = (const gguf_str *)((const char *)base + i * stride);
    qsort(idx, (size_t)n, sizeof *idx, cmp_str_ptr);
    const gguf_str *dup = NULL;
    for (uint64_t i = 1; i < n && !dup; i++)
        if (str_cmp(*idx[i - 1], *idx[i]) == 0)
            dup = idx[i];
    free(idx);
    return dup;
}

static int parse_header(reader *r, gguf_file *f)
{
    const uint8_t *q = take(r, 4, "the magic");
    if (!q)
        return -1;
    if (memcmp(q, "GGUF", 4) != 0)
        return fail(r, "bad magic 0x%02x%02x%02x%02x (not a GGUF file)", q[0], q[1], q[2], q[3]);
    q = take(r, 4, "the version");
    if (!q)
        return -1;
    f->version = le32(q);
    /* A big-endian writer stores 3 as 0x03000000: low half zero, small when swapped. */
    if ((f->version & 0xffffu) == 0 && f->version != 0)
        return fail(r, "big-endian GGUF is not supported (version field 0x%08x)", f->version);
    if (f->version != 2 && f->version != 3)
        return fail(r, "unsupported GGUF version %u", f->version);
    q = take(r, 16, "the tensor and kv counts");
    if (!q)
        return -1;
    f->n_tensors = le64(q);
    f->n_kv = le64(q + 8);
    /* Smallest records: kv = key length + type + 1-byte value; tensor = name
     * length + n_dims + type + offset. Counts beyond that cannot be real. */
    if (f->n_kv > remaining(r) / 13)
        return fail(r, "n_kv %llu is larger than the file allows (%llu bytes)",
                    (unsigned long long)f->n_kv, (unsigned long long)r->size);
    if (f->n_tensors > remaining(r) / 24)
        return fail(r, "n_tensors %llu is larger than the file allows (%llu bytes)",
                    (unsigned long long)f->n_tensors, (unsigned long long)r->size);
    if (f->n_kv * 13 > remaining(r) - f->n_tensors * 24)
        return fail(r, "n_kv %llu + n_tensors %llu is larger than the file allows (%llu bytes)",
                    (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors,
                    (unsigned long long)r->size);
    return 0;
}

static int parse_kvs(reader *r, gguf_file *f)
{
    if (f->n_kv) {
        f->kv = calloc((size_t)f->n_kv, sizeof *f->kv);
        if (!f->kv)
            return fail(r, "out of memory for %llu kv records", (unsigned long long)f->n_kv);
    }
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < f->n_kv; i++) {
        gguf_kv *kv = &f->kv[i];
        char what[48];
        snprintf(what, sizeof what, "the key of kv %llu", (unsigned long long)i);
        if (take_str(r, &kv->key, what) < 0)
            return -1;
        const uint8_t *q = take(r, 4, "the value type of key '%s' (kv %llu)", show(kv->key).s,
                                (unsigned long long)i);
        if (!q)
            return -1;
        kv->type = le32(q);
        if (parse_value(r, kv, i) < 0)
            return -1;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            uint32_t a = kv->type == GGUF_U32 ? le32(kv->data) : 0;
            if (a == 0 || (a & (a - 1)) != 0) {
                if (kv->type == GGUF_U32)
                    return fail(r, "general.alignment must be a power of two (u32), got %u", a);
                return fail(r, "general.alignment must be a power of two (u32), got type %s",
                            gguf_vtype_name(kv->type));
            }
            f->alignment = a;
        }
    }
    int oom;
    const gguf_str *dup = find_duplicate(f->kv, sizeof *f->kv, f->n_kv, &oom);
    if (oom)
        return fail(r, "out of memory checking %llu keys", (unsigned long long)f->n_kv);
    if (dup)
        return fail(r, "duplicate key '%s'", show(*dup).s);
    return 0;
}

static int parse_tensor_info(reader *r, gguf_tensor *t, uint64_t i)
{
    char what[48];
    snprintf(what, sizeof what, "the name of tensor %llu", (unsigned long long)i);
    if (take_str(r, &t->name, what) < 0)
        return -1;
    printable name = show(t->name);
    const uint8_t *q = take(r, 4, "n_dims of tensor '%s'", name.s);
    if (!q)
        return -1;
    t->n_dims = le32(q);
    if (t->n_dims > GGUF_MAX_DIMS)
        return fail(r, "n_dims %u > %u for tensor '%s'", t->n_dims, GGUF_MAX_DIMS, name.s);
    uint64_t n = 1;
    int overflow = 0;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims) {
            q = take(r, 8, "ne[%u] of tensor '%s'", d, name.s);
            if (!q)
                return -1;
            t->ne[d] = le64(q);
        }
        /* ggml stores shapes as int64: keep every count within that range. */
        if (t->ne[d] > (uint64_t)INT64_MAX)
            overflow = 1;
        else if (t->ne[d] != 0 && n > (uint64_t)INT64_MAX / t->ne[d])
            overflow = 1;
        else
            n *= t->ne[d];
    }
    q = take(r, 12, "the type and offset of tensor '%s'", name.s);
    if (!q)
        return -1;
    if (overflow)
        return fail(r, "element count of tensor '%s' overflows", name.s);
    t->type = le32(q);
    t->offset = le64(q + 4);
    uint64_t blck, bsize;
    if (!type_block(t->type, &blck, &bsize))
        return fail(r, "tensor '%s' has unknown type %u", name.s, t->type);
    /* Rows are made of whole blocks (ggml checks ne0); I2_S only needs N % 4. */
    if (t->type == GGML_I2_S ? n % 4 != 0 : t->ne[0] % blck != 0)
        return fail(r, "tensor '%s' of type %s: %s %llu is not a multiple of the block size %llu",
                    name.s, ggml_type_name(t->type), t->type == GGML_I2_S ? "element count" : "ne[0]",
                    (unsigned long long)(t->type == GGML_I2_S ? n : t->ne[0]),
                    (unsigned long long)blck);
    t->nbytes = ggml_type_nbytes(t->type, n);
    if (t->nbytes == 0 && n != 0)
        return fail(r, "byte size of tensor '%s' overflows", name.s);
    return 0;
}

static int parse_tensors(reader *r, gguf_file *f)
{
    if (f->n_tensors) {
        f->tensors = calloc((size_t)f->n_tensors, sizeof *f->tensors);
        if (!f->tensors)
            return fail(r, "out of memory for %llu tensor records",
                        (unsigned long long)f->n_tensors);
    }
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (parse_tensor_info(r, &f->tensors[i], i) < 0)
            return -1;
    int oom;
    const gguf_str *dup = find_duplicate(f->tensors, sizeof *f->tensors, f->n_tensors, &oom);
    if (oom)
        return fail(r, "out of memory checking %llu tensor names",
                    (unsigned long long)f->n_tensors);
    if (dup)
        return fail(r, "duplicate tensor name '%s'", show(*dup).s);

    /* The data section starts at the next multiple of the alignment. */
    uint64_t a = f->alignment;
    uint64_t pad = (a - r->pos % a) % a;
    f->data_start = r->pos + pad;   /* pos <= size, so no overflow */
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        printable name = show(t->name);
        if (t->offset % a != 0)
            return fail(r, "tensor '%s' offset %llu is not a multiple of the alignment %llu",
                        name.s, (unsigned long long)t->offset, (unsigned long long)a);
        uint64_t avail = f->data_start <= r->size ? r->size - f->data_start : 0;
        if (f->data_start > r->size || t->offset > avail || t->nbytes > avail - t->offset) {
            if (t->offset > UINT64_MAX - f->data_start)
                return fail(r, "tensor '%s' offset %llu lies past the end of the file (size %llu)",
                            name.s, (unsigned long long)t->offset, (unsigned long long)r->size);
            uint64_t start = f->data_start + t->offset;
            if (t->nbytes > UINT64_MAX - start)
                return fail(r, "tensor '%s' data [%llu, %llu+%llu) lies past the end of the file "
                            "(size %llu)", name.s, (unsigned long long)start,
                            (unsigned long long)start, (unsigned long long)t->nbytes,
                            (unsigned long long)r->size);
            return fail(r, "tensor '%s' data [%llu, %llu) lies past the end of the file (size %llu)",
                        name.s, (unsigned long long)start, (unsigned long long)(start + t->nbytes),
                        (unsigned long long)r->size);
        }
        t->data = r->p + f->data_start + t->offset;
    }
    return 0;
}

int gguf_parse(gguf_file *f, const void *buf, uint64_t size, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    if (err && errlen)
        err[0] = '\0';
    reader r = { .p = buf, .size = buf ? size : 0, .pos = 0, .err = err, .errlen = errlen };
    f->map = buf;
    f->size = r.size;
    if (parse_header(&r, f) < 0 || parse_kvs(&r, f) < 0 || parse_tensors(&r, f) < 0) {
        gguf_close(f);
        return -1;
    }
    return 0;
}

int gguf_open(gguf_file *f, const char *path, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return -1;
    }
    uint64_t size = (uint64_t)st.st_size;
    void *map = NULL;
    if (size > 0) {
        if (size > (uint64_t)SIZE_MAX) {
            snprintf(err, errlen, "file of %llu bytes is too large to map",
                     (unsigned long long)size);
            close(fd);
            return -1;
        }
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(err, errlen, "cannot map %llu bytes: %s", (unsigned long long)size,
                     strerror(errno));
            close(fd);
            return -1;
        }
    }
    close(fd);   /* the mapping stays valid */
    if (gguf_parse(f, map, size, err, errlen) < 0) {
        if (map)
            munmap(map, (size_t)size);
        return -1;
    }
    f->owns_map = map != NULL;
    return 0;
}

void gguf_close(gguf_file *f)
{
    if (!f)
        return;
    if (f->owns_map && f->map)
        munmap((void *)f->map, (size_t)f->size);
    free(f->kv);
    free(f->tensors);
    memset(f, 0, sizeof *f);
}

/* ---- lookups and getters ---------------------------------------------------- */

int gguf_str_eq(gguf_str s, const char *cstr)
{
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key)
{
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (gguf_str_eq(f->kv[i].key, key))
            return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name)
{
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_str_eq(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

/* An integer of any width as sign + magnitude, so range checks are exact. */
typedef struct { int neg; uint64_t mag; } int_value;

static int decode_int(uint32_t type, const uint8_t *p, int_value *v)
{
    int64_t s;
    switch (type) {
    case GGUF_U8:  v->neg = 0; v->mag = p[0]; return 0;
    case GGUF_U16: v->neg = 0; v->mag = le16(p); return 0;
    case GGUF_U32: v->neg = 0; v->mag = le32(p); return 0;
    case GGUF_U64: v->neg = 0; v->mag = le64(p); return 0;
    case GGUF_I8:  s = (int8_t)p[0]; break;
    case GGUF_I16: s = (int16_t)le16(p); break;
    case GGUF_I32: s = (int32_t)le32(p); break;
    case GGUF_I64: s = (int64_t)le64(p); break;
    default: return -1;
    }
    v->neg = s < 0;
    v->mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return 0;
}

static double decode_float(uint32_t type, const uint8_t *p, int *ok)
{
    *ok = 1;
    if (type == GGUF_F32) {
        uint32_t u = le32(p);
        float x;
        memcpy(&x, &u, 4);
        return (double)x;
    }
    if (type == GGUF_F64) {
        uint64_t u = le64(p);
        double x;
        memcpy(&x, &u, 8);
        return x;
    }
    int_value v;
    if (type == GGUF_BOOL)
        return p[0] != 0;
    if (decode_int(type, p, &v) == 0)
        return v.neg ? -(double)v.mag : (double)v.mag;
    *ok = 0;
    return 0;
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    int_value v;
    if (!kv)
        return -1;
    if (decode_int(kv->type, kv->data, &v) < 0 || v.neg || v.mag > UINT32_MAX)
        return -2;
    *out = (uint32_t)v.mag;
    return 0;
}

int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    int_value v;
    if (!kv)
        return -1;
    if (decode_int(kv->type, kv->data, &v) < 0)
        return -2;
    if (v.neg) {
        if (v.mag > (uint64_t)INT64_MAX + 1)
            return -2;
        *out = v.mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v.mag;
    } else {
        if (v.mag > (uint64_t)INT64_MAX)
            return -2;
        *out = (int64_t)v.mag;
    }
    return 0;
}

/* f32 and f64 keys both read as float (f64 rounded). */
int gguf_get_f32(const gguf_file *f, const char *key, float *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return -1;
    if (kv->type != GGUF_F32 && kv->type != GGUF_F64)
        return -2;
    int ok;
    *out = (float)decode_float(kv->type, kv->data, &ok);
    return 0;
}

int gguf_get_bool(const gguf_file *f, const char *key, int *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return -1;
    if (kv->type != GGUF_BOOL)
        return -2;
    *out = kv->data[0] != 0;
    return 0;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out)
{
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv)
        return -1;
    if (kv->type != GGUF_STRING)
        return -2;
    const uint8_t *cur = kv->data;
    *out = gguf_arr_str_next(&cur);
    return 0;
}

/* Element i of a numeric array; 0 when out of range or not numeric. Floats
 * truncate toward zero (saturating); u64 beyond INT64_MAX saturates. */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i)
{
    if (kv->type != GGUF_ARRAY || i >= kv->arr_n)
        return 0;
    uint64_t esize = gguf_vtype_size(kv->arr_type);
    if (esize == 0)
        return 0;
    const uint8_t *p = kv->data + i * esize;
    int_value v;
    if (decode_int(kv->arr_type, p, &v) == 0) {
        if (v.neg)
            return v.mag > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v.mag;
        return v.mag > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v.mag;
    }
    int ok;
    double x = decode_float(kv->arr_type, p, &ok);
    if (!ok || x != x)
        return 0;
    if (x >= 9223372036854775807.0)
        return INT64_MAX;
    if (x <= -9223372036854775808.0)
        return INT64_MIN;
    return (int64_t)x;
}

double gguf_arr_float(const gguf_kv *kv, uint64_t i)
{
    if (kv->type != GGUF_ARRAY || i >= kv->arr_n)
        return 0;
    uint64_t esize = gguf_vtype_size(kv->arr_type);
    if (esize == 0)
        return 0;
    int ok;
    double x = decode_float(kv->arr_type, kv->data + i * esize, &ok);
    return ok ? x : 0;
}

gguf_str gguf_arr_str_next(const uint8_t **cursor)
{
    gguf_str s;
    s.len = le64(*cursor);
    s.ptr = (const char *)(*cursor + 8);
    *cursor += 8 + s.len;
    return s;
}
