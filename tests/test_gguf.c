/* GGUF container: writer -> reader round trips for every value type and for
 * tensor data at several alignments, rejection of malformed files (each
 * with its message), and parsing of the real models in ../shared/models. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "gguf_writer.h"

/* ---- helpers ------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void to_buffer(gguf_writer *w, uint8_t **buf, uint64_t *len)
{
    assert_int_equal(gguf_writer_to_buffer(w, buf, len), 0);
    gguf_writer_free(w);
}

/* Parses buf and requires failure with a message containing `want`. */
static void expect_error(const uint8_t *buf, uint64_t len, const char *want)
{
    gguf_file f;
    char err[512];
    int rc = gguf_parse(&f, buf, len, err, sizeof err);
    if (rc == 0 || !strstr(err, want))
        fail_msg("expected error containing \"%s\", got rc=%d \"%s\"", want, rc, err);
    /* A failed parse leaves nothing to free; close must still be harmless. */
    assert_null(f.kv);
    assert_null(f.tensors);
    gguf_close(&f);
}

static void parse_ok(gguf_file *f, const uint8_t *buf, uint64_t len)
{
    char err[512];
    if (gguf_parse(f, buf, len, err, sizeof err) != 0)
        fail_msg("parse failed: %s", err);
}

/* Position just after the name string of tensor `name` in the tensor-info
 * section (names are chosen unique in the whole file). */
static uint8_t *after_name(uint8_t *buf, uint64_t len, const char *name)
{
    size_t n = strlen(name);
    for (uint64_t i = 8; i + n <= len; i++)
        if (memcmp(buf + i, name, n) == 0 && get_le(buf + i - 8, 8) == n)
            return buf + i + n;
    fail_msg("tensor name %s not found", name);
    return NULL;
}

/* A small valid file: a few kvs and two tensors. */
static void small_file(uint8_t **buf, uint64_t *len)
{
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_str(w, "general.architecture", "bitnet-b1.58");
    gguf_w_u32(w, "bitnet-b1.58.block_count", 2);
    gguf_str toks[3] = { { "a", 1 }, { "bc", 2 }, { "", 0 } };
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    int32_t tt[3] = { 1, 2, 3 };
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, tt, 3);
    static float norm[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    static uint8_t q[64 / 4 + 32];
    uint64_t ne1[1] = { 8 }, ne2[2] = { 16, 4 };
    gguf_w_tensor(w, "t.norm", GGML_F32, 1, ne1, norm, NULL, NULL);
    gguf_w_tensor(w, "t.quant", GGML_I2_S, 2, ne2, q, NULL, NULL);
    to_buffer(w, buf, len);
}

/* Header of a file with no kvs/tensors yet, for hand-built records. */
static size_t raw_header(uint8_t *p, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    memcpy(p, "GGUF", 4);
    put_le(p + 4, version, 4);
    put_le(p + 8, n_tensors, 8);
    put_le(p + 16, n_kv, 8);
    return 24;
}

/* ---- value round trips ------------------------------------------------------ */

static void test_scalar_round_trip(void **state)
{
    (void)state;
    gguf_writer *w = gguf_writer_new(0);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    uint32_t u32 = 4000000000u; int32_t i32 = -2000000000; float f32 = 1.5f;
    uint64_t u64 = 18000000000000000000ull; int64_t i64 = -9000000000000000000ll;
    double f64 = -2.25; uint8_t bl = 1;
    gguf_w_scalar(w, "u8", GGUF_U8, &u8);
    gguf_w_scalar(w, "i8", GGUF_I8, &i8);
    gguf_w_scalar(w, "u16", GGUF_U16, &u16);
    gguf_w_scalar(w, "i16", GGUF_I16, &i16);
    gguf_w_scalar(w, "u32", GGUF_U32, &u32);
    gguf_w_scalar(w, "i32", GGUF_I32, &i32);
    gguf_w_scalar(w, "f32", GGUF_F32, &f32);
    gguf_w_scalar(w, "bool", GGUF_BOOL, &bl);
    gguf_w_scalar(w, "u64", GGUF_U64, &u64);
    gguf_w_scalar(w, "i64", GGUF_I64, &i64);
    gguf_w_scalar(w, "f64", GGUF_F64, &f64);
    gguf_w_u32(w, "w.u32", 7);
    gguf_w_i32(w, "w.i32", -7);
    gguf_w_f32(w, "w.f32", 0.125f);
    gguf_w_bool(w, "w.false", 0);
    gguf_w_str(w, "w.str", "hello, world");
    gguf_w_str(w, "w.empty", "");
    uint64_t fits = 123456;
    gguf_w_scalar(w, "fits.u64", GGUF_U64, &fits);
    int64_t neg = -5;
    gguf_w_scalar(w, "neg.i64", GGUF_I64, &neg);
    uint8_t *buf; uint64_t len;
    to_buffer(w, &buf, &len);

    gguf_file f;
    parse_ok(&f, buf, len);
    assert_int_equal(f.version, 3);
    assert_int_equal(f.n_kv, 19);
    assert_int_equal(f.n_tensors, 0);
    assert_int_equal(f.alignment, 32);

    static const struct { const char *key; uint32_t type; uint64_t nbytes; } types[] = {
        { "u8", GGUF_U8, 1 }, { "i8", GGUF_I8, 1 }, { "u16", GGUF_U16, 2 },
        { "i16", GGUF_I16, 2 }, { "u32", GGUF_U32, 4 }, { "i32", GGUF_I32, 4 },
        { "f32", GGUF_F32, 4 }, { "bool", GGUF_BOOL, 1 }, { "u64", GGUF_U64, 8 },
        { "i64", GGUF_I64, 8 }, { "f64", GGUF_F64, 8 }, { "w.str", GGUF_STRING, 8 + 12 },
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const gguf_kv *kv = gguf_find_kv(&f, types[i].key);
        assert_non_null(kv);
        assert_int_equal(kv->type, types[i].type);
        assert_int_equal(kv->nbytes, types[i].nbytes);
    }
    /* Raw little-endian encodings. */
    assert_int_equal(get_le(gguf_find_kv(&f, "u16")->data, 2), 60000);
    assert_int_equal(get_le(gguf_find_kv(&f, "u64")->data, 8), u64);

    uint32_t v32; int64_t v64; float fl; int b; gguf_str s;
    assert_int_equal(gguf_get_u32(&f, "u8", &v32), 0);  assert_int_equal(v32, 200);
    assert_int_equal(gguf_get_u32(&f, "u16", &v32), 0); assert_int_equal(v32, 60000);
    assert_int_equal(gguf_get_u32(&f, "u32", &v32), 0); assert_int_equal(v32, 4000000000u);
    assert_int_equal(gguf_get_u32(&f, "w.u32", &v32), 0); assert_int_equal(v32, 7);
    assert_int_equal(gguf_get_u32(&f, "fits.u64", &v32), 0); assert_int_equal(v32, 123456);
    assert_int_equal(gguf_get_u32(&f, "i8", &v32), -2);    /* negative */
    assert_int_equal(gguf_get_u32(&f, "u64", &v32), -2);   /* too large */
    assert_int_equal(gguf_get_u32(&f, "f32", &v32), -2);   /* not an integer */
    assert_int_equal(gguf_get_u32(&f, "w.str", &v32), -2);
    assert_int_equal(gguf_get_u32(&f, "missing", &v32), -1);

    assert_int_equal(gguf_get_i64(&f, "i8", &v64), 0);  assert_int_equal(v64, -100);
    assert_int_equal(gguf_get_i64(&f, "i16", &v64), 0); assert_int_equal(v64, -30000);
    assert_int_equal(gguf_get_i64(&f, "i32", &v64), 0); assert_int_equal(v64, -2000000000);
    assert_int_equal(gguf_get_i64(&f, "w.i32", &v64), 0); assert_int_equal(v64, -7);
    assert_int_equal(gguf_get_i64(&f, "i64", &v64), 0);
    assert_true(v64 == -9000000000000000000ll);
    assert_int_equal(gguf_get_i64(&f, "neg.i64", &v64), 0); assert_int_equal(v64, -5);
    assert_int_equal(gguf_get_i64(&f, "u32", &v64), 0); assert_int_equal(v64, 4000000000ll);
    assert_int_equal(gguf_get_i64(&f, "u64", &v64), -2);   /* > INT64_MAX */
    assert_int_equal(gguf_get_i64(&f, "bool", &v64), -2);
    assert_int_equal(gguf_get_i64(&f, "missing", &v64), -1);

    assert_int_equal(gguf_get_f32(&f, "f32", &fl), 0); assert_true(fl == 1.5f);
    assert_int_equal(gguf_get_f32(&f, "w.f32", &fl), 0); assert_true(fl == 0.125f);
    assert_int_equal(gguf_get_f32(&f, "f64", &fl), 0); assert_true(fl == -2.25f);
    assert_int_equal(gguf_get_f32(&f, "u8", &fl), -2);
    assert_int_equal(gguf_get_f32(&f, "missing", &fl), -1);

    assert_int_equal(gguf_get_bool(&f, "bool", &b), 0); assert_int_equal(b, 1);
    assert_int_equal(gguf_get_bool(&f, "w.false", &b), 0); assert_int_equal(b, 0);
    assert_int_equal(gguf_get_bool(&f, "u8", &b), -2);
    assert_int_equal(gguf_get_bool(&f, "missing", &b), -1);

    assert_int_equal(gguf_get_str(&f, "w.str", &s), 0);
    assert_int_equal(s.len, 12);
    assert_memory_equal(s.ptr, "hello, world", 12);
    assert_true(gguf_str_eq(s, "hello, world"));
    assert_false(gguf_str_eq(s, "hello, worl"));
    assert_int_equal(gguf_get_str(&f, "w.empty", &s), 0);
    assert_int_equal(s.len, 0);
    assert_true(gguf_str_eq(s, ""));
    assert_int_equal(gguf_get_str(&f, "u8", &s), -2);
    assert_int_equal(gguf_get_str(&f, "missing", &s), -1);

    gguf_close(&f);
    free(buf);
}

static void test_array_round_trip(void **state)
{
    (void)state;
    gguf_writer *w = gguf_writer_new(0);
    uint8_t a_u8[3] = { 0, 128, 255 };
    int8_t a_i8[3] = { -128, 0, 127 };
    uint16_t a_u16[3] = { 1, 2, 65535 };
    int16_t a_i16[3] = { -32768, 5, 32767 };
    uint32_t a_u32[3] = { 0, 1, 4294967295u };
    int32_t a_i32[3] = { -2147483647 - 1, 0, 2147483647 };
    float a_f32[3] = { -1.5f, 0.0f, 3.25f };
    uint8_t a_bool[3] = { 1, 0, 1 };
    uint64_t a_u64[3] = { 0, 1ull << 40, UINT64_MAX };
    int64_t a_i64[3] = { INT64_MIN, -1, INT64_MAX };
    double a_f64[3] = { 1e300, -0.5, 2.0 };
    const struct { const char *key; uint32_t type; const void *p; } arrs[] = {
        { "a.u8", GGUF_U8, a_u8 }, { "a.i8", GGUF_I8, a_i8 }, { "a.u16", GGUF_U16, a_u16 },
        { "a.i16", GGUF_I16, a_i16 }, { "a.u32", GGUF_U32, a_u32 },
        { "a.i32", GGUF_I32, a_i32 }, { "a.f32", GGUF_F32, a_f32 },
        { "a.bool", GGUF_BOOL, a_bool }, { "a.u64", GGUF_U64, a_u64 },
        { "a.i64", GGUF_I64, a_i64 }, { "a.f64", GGUF_F64, a_f64 },
    };
    static const uint64_t esize[] = { 1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8 };
    const size_t n_arrs = sizeof arrs / sizeof arrs[0];
    for (size_t i = 0; i < n_arrs; i++)
        gguf_w_arr(w, arrs[i].key, arrs[i].type, arrs[i].p, 3);
    gguf_w_arr(w, "a.empty", GGUF_U32, NULL, 0);
    gguf_str strs[4] = { { "alpha", 5 }, { "", 0 }, { "\xc4\xa0the", 5 }, { "z", 1 } };
    gguf_w_arr_str(w, "a.str", strs, 4);
    gguf_w_arr_str(w, "a.str.empty", NULL, 0);
    uint8_t *buf; uint64_t len;
    to_buffer(w, &buf, &len);

    gguf_file f;
    parse_ok(&f, buf, len);
    assert_int_equal(f.n_kv, n_arrs + 3);
    for (size_t i = 0; i < n_arrs; i++) {
        const gguf_kv *kv = gguf_find_kv(&f, arrs[i].key);
        assert_non_null(kv);
        assert_int_equal(kv->type, GGUF_ARRAY);
        assert_int_equal(kv->arr_type, arrs[i].type);
        assert_int_equal(kv->arr_n, 3);
        assert_int_equal(kv->nbytes, 3 * esize[i]);
        /* The packed elements are the host values, little-endian. */
        for (int j = 0; j < 3; j++) {
            uint64_t host = 0;
            memcpy(&host, (const uint8_t *)arrs[i].p + j * esize[i], esize[i]);
            assert_int_equal(get_le(kv->data + j * esize[i], (int)esize[i]), host);
        }
        /* Out of range reads 0 rather than past the array. */
        assert_int_equal(gguf_arr_int(kv, 3), 0);
        assert_true(gguf_arr_float(kv, 3) == 0.0);
        /* A typed getter refuses an array. */
        uint32_t v;
        assert_int_equal(gguf_get_u32(&f, arrs[i].key, &v), -2);
    }
    const gguf_kv *kv;
    kv = gguf_find_kv(&f, "a.u8");  assert_int_equal(gguf_arr_int(kv, 2), 255);
    kv = gguf_find_kv(&f, "a.i8");  assert_int_equal(gguf_arr_int(kv, 0), -128);
    kv = gguf_find_kv(&f, "a.u16"); assert_int_equal(gguf_arr_int(kv, 2), 65535);
    kv = gguf_find_kv(&f, "a.i16"); assert_int_equal(gguf_arr_int(kv, 0), -32768);
    kv = gguf_find_kv(&f, "a.u32"); assert_int_equal(gguf_arr_int(kv, 2), 4294967295ll);
    kv = gguf_find_kv(&f, "a.i32"); assert_int_equal(gguf_arr_int(kv, 0), -2147483648ll);
    kv = gguf_find_kv(&f, "a.f32");
    assert_true(gguf_arr_float(kv, 0) == -1.5 && gguf_arr_float(kv, 2) == 3.25);
    assert_int_equal(gguf_arr_int(kv, 2), 3);
    kv = gguf_find_kv(&f, "a.bool");
    assert_int_equal(gguf_arr_int(kv, 0), 1); assert_int_equal(gguf_arr_int(kv, 1), 0);
    kv = gguf_find_kv(&f, "a.u64");
    assert_true(gguf_arr_int(kv, 1) == 1ll << 40);
    assert_true(gguf_arr_int(kv, 2) == INT64_MAX);   /* saturates */
    assert_true(gguf_arr_float(kv, 1) == 1099511627776.0);
    kv = gguf_find_kv(&f, "a.i64");
    assert_true(gguf_arr_int(kv, 0) == INT64_MIN && gguf_arr_int(kv, 2) == INT64_MAX);
    assert_true(gguf_arr_float(kv, 1) == -1.0);
    kv = gguf_find_kv(&f, "a.f64");
    assert_true(gguf_arr_float(kv, 0) == 1e300 && gguf_arr_float(kv, 1) == -0.5);
    assert_true(gguf_arr_int(kv, 0) == INT64_MAX);   /* saturates */
    assert_true(gguf_arr_int(kv, 1) == 0);           /* truncates toward zero */
    kv = gguf_find_kv(&f, "a.empty");
    assert_int_equal(kv->arr_n, 0); assert_int_equal(kv->nbytes, 0);

    kv = gguf_find_kv(&f, "a.str");
    assert_int_equal(kv->arr_type, GGUF_STRING);
    assert_int_equal(kv->arr_n, 4);
    assert_int_equal(kv->nbytes, 4 * 8 + 5 + 0 + 5 + 1);
    const uint8_t *cur = kv->data;
    for (int j = 0; j < 4; j++) {
        gguf_str s = gguf_arr_str_next(&cur);
        assert_int_equal(s.len, strs[j].len);
        assert_memory_equal(s.ptr, strs[j].ptr, s.len);
    }
    assert_ptr_equal(cur, kv->data + kv->nbytes);
    assert_int_equal(gguf_arr_int(kv, 0), 0);   /* not numeric */
    kv = gguf_find_kv(&f, "a.str.empty");
    assert_int_equal(kv->arr_n, 0);
    assert_int_equal(kv->arr_type, GGUF_STRING);

    gguf_close(&f);
    free(buf);
}

/* ---- tensors ----------------------------------------------------------------- */

typedef struct { uint32_t type; uint32_t n_dims; uint64_t ne[4]; uint64_t nbytes; } shape;

static const shape shapes[] = {
    { GGML_F32, 1, { 10 }, 40 },
    { GGML_F16, 2, { 3, 1 }, 6 },
    { GGML_BF16, 3, { 2, 3, 2 }, 24 },
    { GGML_Q8_0, 2, { 64, 3 }, 6 * 34 },
    { GGML_Q6_K, 1, { 256 }, 210 },
    { GGML_TQ1_0, 2, { 256, 2 }, 108 },
    { GGML_TQ2_0, 4, { 256, 1, 1, 3 }, 198 },
    { GGML_I2_S, 2, { 128, 3 }, 96 + 32 },
    { GGML_F32, 0, { 0 }, 4 },          /* 0-d: one element */
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static void fill_pattern(void *ctx, uint8_t *dst, uint64_t n)
{
    unsigned seed = (unsigned)(uintptr_t)ctx;
    for (uint64_t i = 0; i < n; i++)
        dst[i] = (uint8_t)(seed * 31 + i * 7 + 1);
}

/* Writes every shape (even ones through fill()) and checks offsets, padding
 * and contents. */
static void tensor_round_trip(uint32_t alignment, int to_file)
{
    uint8_t *src[N_SHAPES];
    gguf_writer *w = gguf_writer_new(alignment);
    assert_non_null(w);
    gguf_w_str(w, "general.architecture", "test");
    for (size_t i = 0; i < N_SHAPES; i++) {
        char name[32];
        snprintf(name, sizeof name, "tensor.%zu", i);
        src[i] = malloc(shapes[i].nbytes);
        fill_pattern((void *)(uintptr_t)(i + 100), src[i], shapes[i].nbytes);
        if (i % 2)
            gguf_w_tensor(w, name, shapes[i].type, shapes[i].n_dims, shapes[i].ne, NULL,
                          fill_pattern, (void *)(uintptr_t)(i + 100));
        else
            gguf_w_tensor(w, name, shapes[i].type, shapes[i].n_dims, shapes[i].ne, src[i],
                          NULL, NULL);
    }
    uint8_t *buf; uint64_t len;
    gguf_file f;
    char err[256];
    char path[512];
    if (to_file) {
        snprintf(path, sizeof path, "%s/test_gguf_a%u.gguf", BN_BINARY_DIR, alignment);
        if (gguf_writer_write(w, path, err, sizeof err) != 0)
            fail_msg("write: %s", err);
        assert_int_equal(gguf_writer_to_buffer(w, &buf, &len), 0);
        gguf_writer_free(w);
        if (gguf_open(&f, path, err, sizeof err) != 0)
            fail_msg("open: %s", err);
        /* The streamed file and the in-memory image are byte-identical. */
        assert_int_equal(f.size, len);
        assert_memory_equal(f.map, buf, len);
        assert_int_equal(f.owns_map, 1);
    } else {
        to_buffer(w, &buf, &len);
        parse_ok(&f, buf, len);
    }

    uint32_t a = alignment ? alignment : 32;
    assert_int_equal(f.alignment, a);
    assert_int_equal(f.data_start % a, 0);
    assert_int_equal(f.n_tensors, N_SHAPES);
    uint64_t expect_off = 0;
    for (size_t i = 0; i < N_SHAPES; i++) {
        const gguf_tensor *t = &f.tensors[i];
        char name[32];
        snprintf(name, sizeof name, "tensor.%zu", i);
        assert_ptr_equal(gguf_find_tensor(&f, name), t);
        assert_int_equal(t->type, shapes[i].type);
        assert_int_equal(t->n_dims, shapes[i].n_dims);
        for (uint32_t d = 0; d < 4; d++)
            assert_int_equal(t->ne[d], d < shapes[i].n_dims ? shapes[i].ne[d] : 1);
        assert_int_equal(t->nbytes, shapes[i].nbytes);
        /* ggml placement: previous offset + size rounded up, zero padded. */
        assert_int_equal(t->offset, expect_off);
        assert_ptr_equal(t->data, f.map + f.data_start + t->offset);
        assert_memory_equal(t->data, src[i], t->nbytes);
        uint64_t padded = (t->nbytes + a - 1) / a * a;
        for (uint64_t k = t->nbytes; k < padded; k++)
            assert_int_equal(t->data[k], 0);
        expect_off += padded;
        free(src[i]);
    }
    assert_int_equal(f.size, f.data_start + expect_off);
    assert_null(gguf_find_tensor(&f, "tensor.99"));
    if (a != 32) {
        uint32_t v;
        assert_int_equal(gguf_get_u32(&f, "general.alignment", &v), 0);
        assert_int_equal(v, a);
    }
    gguf_close(&f);
    free(buf);
    if (to_file)
        remove(path);
}

static void test_tensors_align32(void **state) { (void)state; tensor_round_trip(0, 0); }
static void test_tensors_align64(void **state) { (void)state; tensor_round_trip(64, 0); }
static void test_tensors_align256_file(void **state) { (void)state; tensor_round_trip(256, 1); }
static void test_tensors_align32_file(void **state) { (void)state; tensor_round_trip(32, 1); }

static void test_type_sizes(void **state)
{
    (void)state;
    /* docs/FORMAT.md, 2B4T tensors byte counts of the published model. */
    assert_int_equal(ggml_type_nbytes(GGML_I2_S, 2560ull * 2560), 1638432);
    assert_int_equal(ggml_type_nbytes(GGML_I2_S, 2560ull * 640), 409632);
    assert_int_equal(ggml_type_nbytes(GGML_I2_S, 2560ull * 6912), 4423712);
    assert_int_equal(ggml_type_nbytes(GGML_F16, 2560ull * 128256), 656670720);
    assert_int_equal(ggml_type_nbytes(GGML_F32, 2560), 10240);
    assert_int_equal(ggml_type_nbytes(GGML_BF16, 5), 10);
    assert_int_equal(ggml_type_nbytes(GGML_Q8_0, 96), 102);
    assert_int_equal(ggml_type_nbytes(GGML_Q6_K, 512), 420);
    assert_int_equal(ggml_type_nbytes(GGML_TQ1_0, 256), 54);
    assert_int_equal(ggml_type_nbytes(GGML_TQ2_0, 768), 198);
    /* Not whole blocks, unknown types, overflow. */
    assert_int_equal(ggml_type_nbytes(GGML_Q8_0, 33), 0);
    assert_int_equal(ggml_type_nbytes(GGML_I2_S, 6), 0);
    assert_int_equal(ggml_type_nbytes(99, 4), 0);
    assert_int_equal(ggml_type_nbytes(2 /* Q4_0: not supported */, 32), 0);
    assert_int_equal(ggml_type_nbytes(GGML_F32, UINT64_MAX / 2), 0);

    assert_string_equal(ggml_type_name(GGML_I2_S), "I2_S");
    assert_string_equal(ggml_type_name(GGML_F16), "F16");
    assert_string_equal(ggml_type_name(GGML_TQ2_0), "TQ2_0");
    assert_string_equal(ggml_type_name(37), "?");
    assert_string_equal(gguf_vtype_name(GGUF_U32), "u32");
    assert_string_equal(gguf_vtype_name(GGUF_STRING), "str");
    assert_string_equal(gguf_vtype_name(GGUF_F64), "f64");
    assert_string_equal(gguf_vtype_name(13), "?");
}

static void test_writer_rejects(void **state)
{
    (void)state;
    char err[256];
    uint8_t *buf; uint64_t len;
    assert_null(gguf_writer_new(48));   /* not a power of two */

    gguf_writer *w = gguf_writer_new(0);
    uint64_t ne[1] = { 33 };
    gguf_w_tensor(w, "bad", GGML_Q8_0, 1, ne, NULL, fill_pattern, NULL);
    assert_int_equal(gguf_writer_write(w, BN_BINARY_DIR "/test_gguf_never.gguf", err, sizeof err), -1);
    assert_non_null(strstr(err, "tensor 'bad'"));
    assert_int_equal(gguf_writer_to_buffer(w, &buf, &len), -1);
    gguf_writer_free(w);

    w = gguf_writer_new(0);
    ne[0] = 4;
    gguf_w_tensor(w, "odd", 99, 1, ne, NULL, fill_pattern, NULL);
    assert_int_equal(gguf_writer_write(w, BN_BINARY_DIR "/test_gguf_never.gguf", err, sizeof err), -1);
    assert_non_null(strstr(err, "type 99"));
    gguf_writer_free(w);

    w = gguf_writer_new(0);
    gguf_w_arr(w, "nested", GGUF_ARRAY, NULL, 0);
    assert_int_equal(gguf_writer_to_buffer(w, &buf, &len), -1);
    gguf_writer_free(w);

    /* Each misuse is reported by the write, naming the culprit. */
    static const char *const wants[] = { "n_dims 5 > 4", "not a scalar type",
                                         "neither data nor a fill function",
                                         "element count overflows" };
    for (int k = 0; k < 4; k++) {
        uint64_t big[4] = { 1ull << 32, 1ull << 32, 1, 1 };
        w = gguf_writer_new(0);
        if (k == 0)
            gguf_w_tensor(w, "t", GGML_F32, 5, big, NULL, fill_pattern, NULL);
        if (k == 1)
            gguf_w_scalar(w, "s", GGUF_STRING, "x");
        if (k == 2)
            gguf_w_tensor(w, "t", GGML_F32, 1, big, NULL, NULL, NULL);
        if (k == 3)
            gguf_w_tensor(w, "t", GGML_F32, 2, big, NULL, fill_pattern, NULL);
        gguf_w_u32(w, "later", 1);   /* ignored after the first error */
        assert_int_equal(gguf_writer_write(w, BN_BINARY_DIR "/test_gguf_never.gguf", err,
                                           sizeof err), -1);
        if (!strstr(err, wants[k]))
            fail_msg("writer error \"%s\" lacks \"%s\"", err, wants[k]);
        gguf_writer_free(w);
    }

    w = gguf_writer_new(0);
    assert_int_equal(gguf_writer_write(w, "/nonexistent-dir/x.gguf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create"));
    gguf_writer_free(w);
}

/* ---- malformed files ----------------------------------------------------------- */

static void test_truncation_every_prefix(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    gguf_file f;
    parse_ok(&f, buf, len);
    /* Only the zero padding after the last tensor may be cut off. */
    const gguf_tensor *last = &f.tensors[f.n_tensors - 1];
    uint64_t need = f.data_start + last->offset + last->nbytes;
    gguf_close(&f);
    assert_true(need < len);
    for (uint64_t n = need; n < len; n++) {
        parse_ok(&f, buf, n);
        gguf_close(&f);
    }
    for (uint64_t n = 0; n < need; n++) {
        /* A fresh copy of exactly n bytes so ASan catches any overread. */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        char err[512] = "";
        int rc = gguf_parse(&f, n ? cut : NULL, n, err, sizeof err);
        if (rc == 0)
            fail_msg("prefix of %llu of %llu bytes parsed", (unsigned long long)n,
                     (unsigned long long)len);
        if (!strstr(err, "truncated at byte") && !strstr(err, "larger than the file allows") &&
            !strstr(err, "past the end of the file") && !strstr(err, "bytes are left"))
            fail_msg("prefix %llu: unexpected message \"%s\"", (unsigned long long)n, err);
        free(cut);
    }
    /* The message says where. */
    char err[256];
    assert_int_equal(gguf_parse(&f, buf, 2, err, sizeof err), -1);
    assert_string_equal(err, "truncated at byte 0 reading the magic");
    assert_int_equal(gguf_parse(&f, buf, 10, err, sizeof err), -1);
    assert_string_equal(err, "truncated at byte 8 reading the tensor and kv counts");
    uint64_t name = (uint64_t)(after_name(buf, len, "t.quant") - buf) - 7;
    char want[128];
    assert_int_equal(gguf_parse(&f, buf, name - 5, err, sizeof err), -1);
    snprintf(want, sizeof want, "truncated at byte %llu reading the length of the name of tensor 1",
             (unsigned long long)(name - 8));
    assert_string_equal(err, want);
    assert_int_equal(gguf_parse(&f, buf, name + 7 + 4 + 3, err, sizeof err), -1);
    snprintf(want, sizeof want, "truncated at byte %llu reading ne[0] of tensor 't.quant'",
             (unsigned long long)(name + 7 + 4));
    assert_string_equal(err, want);
    free(buf);
}

static void test_bad_magic_version_endianness(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    memcpy(buf, "GGML", 4);
    expect_error(buf, len, "bad magic 0x47474d4c (not a GGUF file)");
    memcpy(buf, "GGUF", 4);
    put_le(buf + 4, 1, 4);
    expect_error(buf, len, "unsupported GGUF version 1");
    put_le(buf + 4, 4, 4);
    expect_error(buf, len, "unsupported GGUF version 4");
    put_le(buf + 4, 0, 4);
    expect_error(buf, len, "unsupported GGUF version 0");
    buf[4] = 0; buf[5] = 0; buf[6] = 0; buf[7] = 3;   /* version 3 written big-endian */
    expect_error(buf, len, "big-endian GGUF is not supported");
    put_le(buf + 4, 2, 4);   /* v2 has the v3 layout */
    gguf_file f;
    parse_ok(&f, buf, len);
    assert_int_equal(f.version, 2);
    gguf_close(&f);
    free(buf);
}

static void test_counts_too_large(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    put_le(buf + 16, 1ull << 60, 8);
    expect_error(buf, len, "n_kv 1152921504606846976 is larger than the file allows");
    put_le(buf + 16, UINT64_MAX, 8);
    expect_error(buf, len, "n_kv 18446744073709551615 is larger than the file allows");
    put_le(buf + 16, 4, 8);
    put_le(buf + 8, 1ull << 60, 8);
    expect_error(buf, len, "n_tensors 1152921504606846976 is larger than the file allows");
    /* Each count alone could fit, together they cannot. */
    uint64_t room = len - 24;
    put_le(buf + 8, room / 24, 8);
    put_le(buf + 16, room / 13, 8);
    expect_error(buf, len, "is larger than the file allows");
    free(buf);
}

static void test_string_length_past_eof(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    put_le(buf + 24, len, 8);   /* key of kv 0 */
    expect_error(buf, len, "truncated at byte 32 reading the key of kv 0 (length");
    put_le(buf + 24, 20, 8);
    put_le(buf + 56, UINT64_MAX, 8);   /* value of general.architecture */
    expect_error(buf, len, "reading the value of key 'general.architecture' (kv 0) "
                           "(length 18446744073709551615");
    free(buf);
}

static void test_string_array_lengths(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    /* tokens: key "tokenizer.ggml.tokens", then type, elem type, count, strings */
    uint8_t *p = NULL;
    for (uint64_t i = 0; i + 21 <= len; i++)
        if (memcmp(buf + i, "tokenizer.ggml.tokens", 21) == 0) { p = buf + i + 21; break; }
    assert_non_null(p);
    uint8_t *count = p + 8, *first = p + 16;
    put_le(count, 1ull << 61, 8);
    expect_error(buf, len, "array of key 'tokenizer.ggml.tokens' claims 2305843009213693952 strings");
    put_le(count, 3, 8);
    put_le(first + 8 + 1, 1000000, 8);   /* second string's length */
    expect_error(buf, len, "reading string 1 of array key 'tokenizer.ggml.tokens' (kv 2) "
                           "(length 1000000");
    free(buf);
}

static void test_numeric_array_overflow(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    uint8_t *p = NULL;
    for (uint64_t i = 0; i + 25 <= len; i++)
        if (memcmp(buf + i, "tokenizer.ggml.token_type", 25) == 0) { p = buf + i + 25; break; }
    assert_non_null(p);
    /* count * 4 wraps to a small number if computed naively */
    put_le(p + 8, (1ull << 62) + 1, 8);
    expect_error(buf, len, "reading array of key 'tokenizer.ggml.token_type' (4611686018427387905 x i32");
    /* unknown element type */
    put_le(p + 8, 3, 8);
    put_le(p + 4, 77, 4);
    expect_error(buf, len, "unknown value type 77 for the elements of key 'tokenizer.ggml.token_type'");
    free(buf);
}

/* A file of one raw kv record made by hand. */
static void one_raw_kv(const uint8_t *rec, size_t n, uint8_t **buf, uint64_t *len)
{
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_raw_kv(w, rec, n);
    gguf_w_u32(w, "after", 1);
    to_buffer(w, buf, len);
}

static void test_unknown_value_type(void **state)
{
    (void)state;
    uint8_t rec[8 + 1 + 4 + 4];
    put_le(rec, 1, 8);
    rec[8] = 'k';
    put_le(rec + 9, 42, 4);
    put_le(rec + 13, 0, 4);
    uint8_t *buf; uint64_t len;
    one_raw_kv(rec, sizeof rec, &buf, &len);
    expect_error(buf, len, "unknown value type 42 for key 'k' (kv 0)");
    free(buf);
}

static void test_nested_array(void **state)
{
    (void)state;
    /* key "nest" : array of (array of u8 [1, 2]) */
    uint8_t rec[12 + 4 + 12 + 12 + 2];
    size_t o = 0;
    put_le(rec + o, 4, 8); o += 8;
    memcpy(rec + o, "nest", 4); o += 4;
    put_le(rec + o, GGUF_ARRAY, 4); o += 4;
    put_le(rec + o, GGUF_ARRAY, 4); o += 4;
    put_le(rec + o, 1, 8); o += 8;
    put_le(rec + o, GGUF_U8, 4); o += 4;
    put_le(rec + o, 2, 8); o += 8;
    rec[o++] = 1; rec[o++] = 2;
    uint8_t *buf; uint64_t len;
    one_raw_kv(rec, o, &buf, &len);
    gguf_file f;
    char err[256] = "";
    assert_int_equal(gguf_parse(&f, buf, len, err, sizeof err), 0);
    const gguf_kv *kv = gguf_find_kv(&f, "nest");
    assert_non_null(kv);
    assert_int_equal(kv->type, GGUF_ARRAY);
    assert_int_equal(kv->arr_type, GGUF_ARRAY);
    assert_int_equal(kv->arr_n, 1);
    assert_int_equal(kv->nbytes, 12 + 2);
    assert_int_equal(gguf_arr_int(kv, 0), 0);   /* no numeric view of nested arrays */
    gguf_close(&f);
    free(buf);
}

/* Nested arrays: strings and deeper levels validated; too deep, a bad inner
 * type, an inner count past the end are errors. */
static void test_nested_array_errors(void **state)
{
    (void)state;
    uint8_t rec[256];
    size_t o;
    uint8_t *buf; uint64_t len;
#define HDR()                                                                \
    o = 0; put_le(rec + o, 4, 8); o += 8; memcpy(rec + o, "nest", 4); o += 4; \
    put_le(rec + o, GGUF_ARRAY, 4); o += 4
    /* array of (array of strings ["ab"]) parses */
    HDR();
    put_le(rec + o, GGUF_ARRAY, 4); o += 4; put_le(rec + o, 1, 8); o += 8;
    put_le(rec + o, GGUF_STRING, 4); o += 4; put_le(rec + o, 1, 8); o += 8;
    put_le(rec + o, 2, 8); o += 8; rec[o++] = 'a'; rec[o++] = 'b';
    one_raw_kv(rec, o, &buf, &len);
    gguf_file f;
    char err[256] = "";
    assert_int_equal(gguf_parse(&f, buf, len, err, sizeof err), 0);
    gguf_close(&f);
    free(buf);
    /* nine levels deep */
    HDR();
    for (int d = 0; d < 9; d++) {
        put_le(rec + o, GGUF_ARRAY, 4); o += 4; put_le(rec + o, 1, 8); o += 8;
    }
    put_le(rec + o, GGUF_U8, 4); o += 4; put_le(rec + o, 0, 8); o += 8;
    one_raw_kv(rec, o, &buf, &len);
    expect_error(buf, len, "arrays nested deeper than 8 levels (key 'nest')");
    free(buf);
    /* unknown inner type */
    HDR();
    put_le(rec + o, GGUF_ARRAY, 4); o += 4; put_le(rec + o, 1, 8); o += 8;
    put_le(rec + o, 77, 4); o += 4; put_le(rec + o, 1, 8); o += 8;
    one_raw_kv(rec, o, &buf, &len);
    expect_error(buf, len, "unknown value type 77 in a nested array of key 'nest'");
    free(buf);
    /* inner count past the end */
    HDR();
    put_le(rec + o, GGUF_ARRAY, 4); o += 4; put_le(rec + o, 1, 8); o += 8;
    put_le(rec + o, GGUF_U32, 4); o += 4; put_le(rec + o, 1000, 8); o += 8;
    one_raw_kv(rec, o, &buf, &len);
    expect_error(buf, len, "reading a nested array of key 'nest'");
    free(buf);
    /* outer count that cannot fit */
    HDR();
    put_le(rec + o, GGUF_ARRAY, 4); o += 4; put_le(rec + o, (uint64_t)1 << 60, 8); o += 8;
    one_raw_kv(rec, o, &buf, &len);
    expect_error(buf, len, "claims 1152921504606846976 nested arrays");
    free(buf);
#undef HDR
}

static void test_bad_alignment(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_u32(w, "general.alignment", 48);
    to_buffer(w, &buf, &len);
    expect_error(buf, len, "general.alignment must be a power of two (u32), got 48");
    free(buf);

    w = gguf_writer_new(0);
    gguf_w_u32(w, "general.alignment", 0);
    to_buffer(w, &buf, &len);
    expect_error(buf, len, "general.alignment must be a power of two (u32), got 0");
    free(buf);

    w = gguf_writer_new(0);
    uint64_t a = 64;
    gguf_w_scalar(w, "general.alignment", GGUF_U64, &a);
    to_buffer(w, &buf, &len);
    expect_error(buf, len, "general.alignment must be a power of two (u32), got type u64");
    free(buf);
}

static void test_duplicates(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_u32(w, "a", 1);
    gguf_w_u32(w, "same.key", 1);
    gguf_w_u32(w, "b", 1);
    gguf_w_str(w, "same.key", "x");
    to_buffer(w, &buf, &len);
    expect_error(buf, len, "duplicate key 'same.key'");
    free(buf);

    w = gguf_writer_new(0);
    float d[4] = { 0 };
    uint64_t ne[1] = { 4 };
    gguf_w_tensor(w, "w.x", GGML_F32, 1, ne, d, NULL, NULL);
    gguf_w_tensor(w, "w.y", GGML_F32, 1, ne, d, NULL, NULL);
    gguf_w_tensor(w, "w.x", GGML_F32, 1, ne, d, NULL, NULL);
    to_buffer(w, &buf, &len);
    expect_error(buf, len, "duplicate tensor name 'w.x'");
    free(buf);
}

static void test_tensor_info_errors(void **state)
{
    (void)state;
    uint8_t *buf; uint64_t len;
    small_file(&buf, &len);
    uint8_t *orig = malloc(len);
    memcpy(orig, buf, len);
    /* t.quant: n_dims=2, ne[0]=16, ne[1]=4, type, offset */
    uint8_t *q = after_name(buf, len, "t.quant");
    uint8_t *nd = q, *ne0 = q + 4, *ne1 = q + 12, *type = q + 20, *off = q + 24;

    put_le(nd, 7, 4);
    expect_error(buf, len, "n_dims 7 > 4 for tensor 't.quant'");
    memcpy(buf, orig, len);

    put_le(ne0, 1ull << 40, 8);
    put_le(ne1, 1ull << 40, 8);
    expect_error(buf, len, "element count of tensor 't.quant' overflows");
    memcpy(buf, orig, len);

    put_le(ne1, 1ull << 63, 8);   /* negative as ggml's int64 */
    expect_error(buf, len, "element count of tensor 't.quant' overflows");
    memcpy(buf, orig, len);

    /* 2^62 F32 elements fit int64 but not their 2^64 bytes. */
    put_le(type, GGML_F32, 4);
    put_le(ne0, 1ull << 62, 8);
    put_le(ne1, 1, 8);
    expect_error(buf, len, "byte size of tensor 't.quant' overflows");
    /* Bytes that fit, but not after data_start + offset. */
    put_le(ne0, (1ull << 62) - 8, 8);
    expect_error(buf, len, "+18446744073709551584) lies past the end of the file");
    memcpy(buf, orig, len);

    put_le(type, 99, 4);
    expect_error(buf, len, "tensor 't.quant' has unknown type 99");
    put_le(type, 39, 4);   /* TL2: a fork type this engine has no size for */
    expect_error(buf, len, "tensor 't.quant' has unknown type 39");
    memcpy(buf, orig, len);

    put_le(ne0, 15, 8);   /* 15 * 3 = 45 weights: not whole groups of 4 */
    put_le(ne1, 3, 8);
    expect_error(buf, len, "tensor 't.quant' of type I2_S: element count 45 is not a multiple "
                           "of the block size 4");
    memcpy(buf, orig, len);

    put_le(type, GGML_Q8_0, 4);   /* 16 per row is not a whole Q8_0 block */
    expect_error(buf, len, "tensor 't.quant' of type Q8_0: ne[0] 16 is not a multiple of the "
                           "block size 32");
    memcpy(buf, orig, len);

    put_le(off, get_le(off, 8) + 8, 8);
    expect_error(buf, len, "tensor 't.quant' offset 40 is not a multiple of the alignment 32");
    memcpy(buf, orig, len);

    put_le(off, 1 << 20, 8);
    expect_error(buf, len, "tensor 't.quant' data [");
    expect_error(buf, len, "lies past the end of the file (size");
    put_le(off, UINT64_MAX - 31, 8);
    expect_error(buf, len, "tensor 't.quant' offset 18446744073709551584 lies past the end");
    memcpy(buf, orig, len);

    /* The last tensor's padding may be missing, its data may not. */
    gguf_file f;
    parse_ok(&f, buf, len);
    const gguf_tensor *t = gguf_find_tensor(&f, "t.quant");
    uint64_t end = f.data_start + t->offset + t->nbytes;
    gguf_close(&f);
    parse_ok(&f, buf, end);
    gguf_close(&f);
    expect_error(buf, end - 1, "data [");

    free(orig);
    free(buf);
}

static void test_error_message_is_bounded(void **state)
{
    (void)state;
    /* Long hostile names are cut and non-printable bytes replaced. */
    char key[300];
    memset(key, 'k', sizeof key);
    key[1] = '\n';
    uint8_t rec[8 + sizeof key + 4];
    put_le(rec, sizeof key, 8);
    memcpy(rec + 8, key, sizeof key);
    put_le(rec + 8 + sizeof key, 200, 4);
    uint8_t *buf; uint64_t len;
    one_raw_kv(rec, sizeof rec, &buf, &len);
    gguf_file f;
    char err[512];
    assert_int_equal(gguf_parse(&f, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown value type 200 for key 'k?kkk"));
    assert_non_null(strstr(err, "kkk...'"));
    assert_true(strlen(err) < 200);
    char tiny[8];
    assert_int_equal(gguf_parse(&f, buf, len, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), 7);
    assert_int_equal(gguf_parse(&f, buf, len, NULL, 0), -1);
    free(buf);
}

static void test_open_errors(void **state)
{
    (void)state;
    gguf_file f;
    char err[256];
    assert_int_equal(gguf_open(&f, BN_BINARY_DIR "/no-such-file.gguf", err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(gguf_open(&f, BN_BINARY_DIR, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a regular file"));
    /* An empty file cannot be mapped; it is simply truncated. */
    const char *path = BN_BINARY_DIR "/test_gguf_empty.gguf";
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(gguf_open(&f, path, err, sizeof err), -1);
    assert_string_equal(err, "truncated at byte 0 reading the magic");
    remove(path);
    gguf_close(&f);
}

static void test_no_tensors_no_padding(void **state)
{
    (void)state;
    /* A metadata-only file (vocab files) may end right after the kvs. */
    uint8_t buf[64];
    size_t n = raw_header(buf, 3, 0, 1);
    put_le(buf + n, 1, 8); n += 8;
    buf[n++] = 'x';
    put_le(buf + n, GGUF_U8, 4); n += 4;
    buf[n++] = 9;
    gguf_file f;
    parse_ok(&f, buf, n);
    uint32_t v;
    assert_int_equal(gguf_get_u32(&f, "x", &v), 0);
    assert_int_equal(v, 9);
    gguf_close(&f);
    expect_error(buf, n - 1, "truncated at byte 37 reading the value of key 'x' (kv 0)");
}

/* ---- the real models ---------------------------------------------------------- */

static int open_shared(gguf_file *f, const char *name)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/models/%s", BN_SHARED_DIR, name);
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    if (gguf_open(f, path, err, sizeof err) != 0)
        fail_msg("%s: %s", path, err);
    return 1;
}

/* Every model file: tensors packed ggml-style, data inside the file, sizes
 * by the type formulas. */
static void check_layout(const gguf_file *f)
{
    assert_int_equal(f->version, 3);
    assert_int_equal(f->alignment, 32);
    assert_int_equal(f->data_start % 32, 0);
    uint64_t end = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        if (t->type == GGML_I2_S)
            assert_int_equal(t->nbytes, n / 4 + 32);
        assert_int_equal(t->offset, end);
        end = t->offset + (t->nbytes + 31) / 32 * 32;
    }
    assert_int_equal(f->size, f->data_start + end);
    uint32_t v;
    gguf_str s;
    assert_int_equal(gguf_get_str(f, "general.architecture", &s), 0);
    assert_true(gguf_str_eq(s, "bitnet-b1.58"));
    assert_int_equal(gguf_get_u32(f, "general.file_type", &v), 0);
}

static void expect_tensor(const gguf_file *f, const char *name, uint32_t type,
                          uint64_t ne0, uint64_t ne1, uint64_t nbytes)
{
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t)
        fail_msg("tensor %s missing", name);
    assert_int_equal(t->type, type);
    assert_int_equal(t->ne[0], ne0);
    assert_int_equal(t->ne[1], ne1);
    assert_int_equal(t->nbytes, nbytes);
}

static void test_shared_tiny_shakespeare(void **state)
{
    (void)state;
    gguf_file f;
    if (!open_shared(&f, "tiny-shakespeare.gguf"))
        skip();
    check_layout(&f);
    uint32_t layers, embd, vocab;
    assert_int_equal(gguf_get_u32(&f, "bitnet-b1.58.block_count", &layers), 0);
    assert_int_equal(gguf_get_u32(&f, "bitnet-b1.58.embedding_length", &embd), 0);
    assert_int_equal(gguf_get_u32(&f, "bitnet-b1.58.vocab_size", &vocab), 0);
    assert_int_equal(layers, 4);
    assert_int_equal(f.n_tensors, 2 + 11 * layers);
    assert_int_equal(f.n_kv, 25);
    expect_tensor(&f, "token_embd.weight", GGML_F16, embd, vocab, 2ull * embd * vocab);
    expect_tensor(&f, "output_norm.weight", GGML_F32, embd, 1, 4ull * embd);
    expect_tensor(&f, "blk.3.attn_q.weight", GGML_I2_S, 256, 256, 256 * 256 / 4 + 32);
    expect_tensor(&f, "blk.0.attn_k.weight", GGML_I2_S, 256, 128, 256 * 128 / 4 + 32);
    expect_tensor(&f, "blk.2.ffn_down.weight", GGML_I2_S, 768, 256, 768 * 256 / 4 + 32);
    expect_tensor(&f, "blk.1.ffn_sub_norm.weight", GGML_F32, 768, 1, 768 * 4);
    const gguf_kv *tok = gguf_find_kv(&f, "tokenizer.ggml.tokens");
    assert_non_null(tok);
    assert_int_equal(tok->arr_type, GGUF_STRING);
    assert_int_equal(tok->arr_n, vocab);
    const uint8_t *cur = tok->data;
    for (uint64_t i = 0; i < tok->arr_n; i++)
        gguf_arr_str_next(&cur);
    assert_ptr_equal(cur, tok->data + tok->nbytes);
    gguf_close(&f);
}

static void test_shared_other_models(void **state)
{
    (void)state;
    gguf_file f;
    int seen = 0;
    if (open_shared(&f, "mid-2b4t.gguf")) {
        seen++;
        check_layout(&f);
        /* The 2B4T layer shapes of docs/FORMAT.md, 2B4T tensors, with fewer layers and a small vocab. */
        expect_tensor(&f, "blk.0.attn_q.weight", GGML_I2_S, 2560, 2560, 1638432);
        expect_tensor(&f, "blk.0.attn_k.weight", GGML_I2_S, 2560, 640, 409632);
        expect_tensor(&f, "blk.0.ffn_up.weight", GGML_I2_S, 2560, 6912, 4423712);
        expect_tensor(&f, "blk.0.ffn_down.weight", GGML_I2_S, 6912, 2560, 4423712);
        expect_tensor(&f, "blk.0.ffn_sub_norm.weight", GGML_F32, 6912, 1, 27648);
        gguf_close(&f);
    }
    if (open_shared(&f, "mini-llama3.gguf")) {
        seen++;
        check_layout(&f);
        const gguf_kv *merges = gguf_find_kv(&f, "tokenizer.ggml.merges");
        assert_non_null(merges);
        assert_int_equal(merges->arr_n, 280147);
        expect_tensor(&f, "token_embd.weight", GGML_F16, 256, 128256, 2ull * 256 * 128256);
        gguf_close(&f);
    }
    if (!seen)
        skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_round_trip),
        cmocka_unit_test(test_array_round_trip),
        cmocka_unit_test(test_tensors_align32),
        cmocka_unit_test(test_tensors_align64),
        cmocka_unit_test(test_tensors_align32_file),
        cmocka_unit_test(test_tensors_align256_file),
        cmocka_unit_test(test_type_sizes),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_truncation_every_prefix),
        cmocka_unit_test(test_bad_magic_version_endianness),
        cmocka_unit_test(test_counts_too_large),
        cmocka_unit_test(test_string_length_past_eof),
        cmocka_unit_test(test_string_array_lengths),
        cmocka_unit_test(test_numeric_array_overflow),
        cmocka_unit_test(test_unknown_value_type),
        cmocka_unit_test(test_nested_array),
        cmocka_unit_test(test_nested_array_errors),
        cmocka_unit_test(test_bad_alignment),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_tensor_info_errors),
        cmocka_unit_test(test_error_message_is_bounded),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_no_tensors_no_padding),
        cmocka_unit_test(test_shared_tiny_shakespeare),
        cmocka_unit_test(test_shared_other_models),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
