/* GGUF writer: the developer tools' half of the format (bitnet-synth, the
 * test fixtures, the fuzzers' seeds). The runtime library only reads. */
#ifndef BN_GGUF_WRITER_H
#define BN_GGUF_WRITER_H

#include "gguf.h"

/* ---- writer ---------------------------------------------------------------
 * Builds the header in memory, then streams tensor data to the file. Tensor
 * data is placed in the order tensors are added, each at an ALIGNMENT-padded
 * offset, exactly like ggml's writer. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_new(uint32_t alignment /* 0 = 32 */);
void gguf_writer_free(gguf_writer *w);
void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_w_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_w_f32(gguf_writer *w, const char *key, float v);
void gguf_w_bool(gguf_writer *w, const char *key, int v);
void gguf_w_str(gguf_writer *w, const char *key, const char *v);
/* Generic scalar of any numeric type (value bytes little-endian, size by type). */
void gguf_w_scalar(gguf_writer *w, const char *key, uint32_t type, const void *value);
/* Arrays: numeric elements packed little-endian; strings as (ptr,len) pairs. */
void gguf_w_arr(gguf_writer *w, const char *key, uint32_t elem_type,
                const void *elems, uint64_t n);
void gguf_w_arr_str(gguf_writer *w, const char *key, const gguf_str *strs, uint64_t n);
/* Raw record escape hatch for tests (malformed files, nested arrays):
 * appends bytes verbatim to the key/value section and counts one kv. */
void gguf_w_raw_kv(gguf_writer *w, const void *bytes, size_t len);
/* Tensor: data is copied at write time from the pointer given here (must stay
 * valid until gguf_writer_write), or produced by fill() when data is NULL. */
typedef void (*gguf_fill_fn)(void *ctx, uint8_t *dst, uint64_t nbytes);
void gguf_w_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                   const uint64_t *ne, const void *data, gguf_fill_fn fill, void *fill_ctx);
/* Write to path. Returns 0 or -1 with a message in err. */
int gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t errlen);
/* Same, to a malloc'd buffer (*out, *out_len) for in-memory tests. */
int gguf_writer_to_buffer(gguf_writer *w, uint8_t **out, uint64_t *out_len);

#endif
