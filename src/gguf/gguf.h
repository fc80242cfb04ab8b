/* GGUF v3 container: a validating reader over a read-only mapping
 * (the writer, for the developer tools, is tools/lib/gguf_writer.h).
 *
 * The reader trusts nothing: gguf_parse() checks every count, length, offset
 * and size (with overflow checks) before anything else looks at the file, so
 * once it succeeds every accessor below is safe. */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include <stddef.h>
#include <stdint.h>

enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4,
    GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8,
    GGUF_ARRAY = 9, GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
    GGUF_VTYPE_COUNT
};

/* ggml tensor types this engine knows the size of (fork numbering, docs/FORMAT.md, Type ids). */
enum ggml_type {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_Q6_K = 14,
    GGML_BF16 = 30, GGML_TQ1_0 = 34, GGML_TQ2_0 = 35, GGML_I2_S = 36
};

typedef struct gguf_str {           /* points into the mapping; not NUL-terminated */
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    uint32_t type;                  /* enum gguf_vtype */
    uint32_t arr_type;              /* element type when type == GGUF_ARRAY */
    uint64_t arr_n;                 /* element count when type == GGUF_ARRAY */
    const uint8_t *data;            /* the value (array: first element) in the mapping */
    uint64_t nbytes;                /* encoded size of the value (array: all elements) */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[4];                 /* missing dims are 1 */
    uint32_t type;                  /* enum ggml_type */
    uint64_t offset;                /* relative to data_start, as stored */
    uint64_t nbytes;                /* from type and shape (docs/FORMAT.md, Tensor sizes) */
    const uint8_t *data;            /* map + data_start + offset, bounds-checked */
} gguf_tensor;

typedef struct gguf_file {
    const uint8_t *map;             /* whole file */
    uint64_t size;
    int owns_map;                   /* 1: munmap on close */
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    gguf_kv *kv;                    /* n_kv entries (malloc) */
    gguf_tensor *tensors;           /* n_tensors entries (malloc) */
    uint64_t data_start;
} gguf_file;

/* Open and validate PATH (mmap). On failure returns -1 and writes a message of
 * the form "<what is wrong and where>" (no path, no prefix) to err. */
int gguf_open(gguf_file *f, const char *path, char *err, size_t errlen);

/* Validate an in-memory buffer (not copied; must outlive f). For the fuzzer
 * and the tests. Same error contract as gguf_open. */
int gguf_parse(gguf_file *f, const void *buf, uint64_t size, char *err, size_t errlen);

void gguf_close(gguf_file *f);

/* Bytes a tensor of this type and element count occupies, or 0 when the type
 * is unknown or the count is not a whole number of blocks. */
uint64_t ggml_type_nbytes(uint32_t type, uint64_t n_elements);
const char *ggml_type_name(uint32_t type);   /* "F16", "I2_S", ... or "?" */
const char *gguf_vtype_name(uint32_t type);  /* "u32", "str", ... or "?" */
/* Encoded bytes of one scalar of a numeric/bool value type; 0 for string,
 * array and unknown types. */
uint64_t gguf_vtype_size(uint32_t type);

/* Lookups (NULL when absent). key/name are NUL-terminated C strings. */
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
int gguf_str_eq(gguf_str s, const char *cstr);

/* Typed scalar getters: return 0 on success, -1 if the key is absent, -2 if it
 * has another type. Integer getters accept any integer type whose value fits. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
int gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
int gguf_get_f32(const gguf_file *f, const char *key, float *out);
int gguf_get_bool(const gguf_file *f, const char *key, int *out);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Array access. Numeric element i of an array kv (no bounds beyond arr_n). */
int64_t gguf_arr_int(const gguf_kv *kv, uint64_t i);
double gguf_arr_float(const gguf_kv *kv, uint64_t i);
/* String arrays: iterate with a cursor starting at kv->data. Each call yields
 * the next string and advances; the parse already validated all lengths. */
gguf_str gguf_arr_str_next(const uint8_t **cursor);

#endif
