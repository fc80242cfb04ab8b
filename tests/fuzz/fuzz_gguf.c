/* libFuzzer harness for the GGUF reader. Any input must either be rejected
 * with a message or parse into a structure whose every accessor stays inside
 * the buffer (ASan checks that). Accepted inputs are also rewritten through
 * the writer and parsed again, which must reproduce the same file contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static volatile uint64_t sink;   /* keeps the reads from being optimized out */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_gguf: invariant violated: %s\n", what);
        abort();
    }
}

/* ---- seed corpus: FUZZ_GGUF_WRITE_SEEDS=DIR ./fuzz_gguf writes small valid
 * files covering every value type, tensor type and a custom alignment, then
 * exits (tools/fuzz-gguf.sh does this before fuzzing). */

static void seed_fill(void *ctx, uint8_t *dst, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        dst[i] = (uint8_t)((uintptr_t)ctx + i * 13);
}

static void add_all_values(gguf_writer *w)
{
    static const uint32_t types[] = { GGUF_U8, GGUF_I8, GGUF_U16, GGUF_I16, GGUF_U32, GGUF_I32,
                                      GGUF_F32, GGUF_BOOL, GGUF_U64, GGUF_I64, GGUF_F64 };
    static const uint8_t bytes[3 * 8] = { 1, 0x80, 0xff, 3, 4, 5, 6, 7, 0, 1, 0, 0x80,
                                          9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char key[32];
        snprintf(key, sizeof key, "s.%s", gguf_vtype_name(types[i]));
        gguf_w_scalar(w, key, types[i], types[i] == GGUF_BOOL ? bytes : bytes + 8);
        snprintf(key, sizeof key, "a.%s", gguf_vtype_name(types[i]));
        gguf_w_arr(w, key, types[i], types[i] == GGUF_BOOL ? (const void *)"\1\0\1" : bytes, 3);
    }
    gguf_w_str(w, "general.architecture", "bitnet-b1.58");
    gguf_str toks[4] = { { "<s>", 3 }, { "", 0 }, { "\xc4\xa0" "a", 3 }, { "b c", 3 } };
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
}

static void write_seeds(const char *dir)
{
    static const struct { uint32_t type, n_dims; uint64_t ne[4]; } shapes[] = {
        { GGML_F32, 1, { 8 } },        { GGML_F16, 2, { 4, 3 } },
        { GGML_BF16, 3, { 2, 2, 2 } }, { GGML_Q8_0, 2, { 32, 2 } },
        { GGML_Q6_K, 1, { 256 } },     { GGML_TQ1_0, 1, { 256 } },
        { GGML_TQ2_0, 4, { 256, 1, 1, 1 } }, { GGML_I2_S, 2, { 16, 4 } },
        { GGML_F32, 0, { 0 } },
    };
    for (int seed = 0; seed < 4; seed++) {
        gguf_writer *w = gguf_writer_new(seed == 1 ? 64 : 32);
        if (seed != 2)
            add_all_values(w);
        else
            gguf_w_u32(w, "only", 1);   /* minimal metadata, no tensors */
        for (size_t i = 0; seed != 2 && i < sizeof shapes / sizeof shapes[0]; i++) {
            if (seed == 3 && i != 7)
                continue;   /* one I2_S tensor and nothing else */
            char name[32];
            snprintf(name, sizeof name, "blk.%zu.weight", i);
            gguf_w_tensor(w, name, shapes[i].type, shapes[i].n_dims, shapes[i].ne, NULL,
                          seed_fill, (void *)(uintptr_t)i);
        }
        char path[4096], err[256];
        snprintf(path, sizeof path, "%s/seed-%d.gguf", dir, seed);
        if (gguf_writer_write(w, path, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", path, err);
            exit(1);
        }
        gguf_writer_free(w);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("FUZZ_GGUF_WRITE_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

/* A NUL-terminated copy of s, or NULL when s holds a NUL (then no C-string
 * lookup can name it). */
static char *cstr(gguf_str s)
{
    if (memchr(s.ptr, 0, (size_t)s.len))
        return NULL;
    char *c = malloc((size_t)s.len + 1);
    if (c) {
        memcpy(c, s.ptr, (size_t)s.len);
        c[s.len] = '\0';
    }
    return c;
}

static int inside(const gguf_file *f, const uint8_t *p, uint64_t n)
{
    return p >= f->map && (uint64_t)(p - f->map) <= f->size && n <= f->size - (uint64_t)(p - f->map);
}

static void walk_kv(const gguf_file *f, const gguf_kv *kv)
{
    check(inside(f, (const uint8_t *)kv->key.ptr, kv->key.len), "key inside the file");
    check(inside(f, kv->data, kv->nbytes), "value inside the file");
    char *key = cstr(kv->key);
    if (key) {
        uint32_t u; int64_t i; float x; int b; gguf_str s;
        const gguf_kv *found = gguf_find_kv(f, key);
        check(found == kv, "keys are unique and findable");
        int r1 = gguf_get_u32(f, key, &u), r2 = gguf_get_i64(f, key, &i);
        int r3 = gguf_get_f32(f, key, &x), r4 = gguf_get_bool(f, key, &b);
        int r5 = gguf_get_str(f, key, &s);
        check(r1 != -1 && r2 != -1 && r3 != -1 && r4 != -1 && r5 != -1, "getters find the key");
        if (r5 == 0) {
            check(inside(f, (const uint8_t *)s.ptr, s.len), "string inside the file");
            sink += s.len ? (uint8_t)s.ptr[s.len - 1] : 0;
        }
        free(key);
    }
    if (kv->type != GGUF_ARRAY)
        return;
    if (kv->arr_type == GGUF_STRING) {
        const uint8_t *cur = kv->data;
        for (uint64_t j = 0; j < kv->arr_n; j++) {
            gguf_str s = gguf_arr_str_next(&cur);
            check(inside(f, (const uint8_t *)s.ptr, s.len), "array string inside the file");
            sink += s.len ? (uint8_t)s.ptr[s.len - 1] : 0;
        }
        check(cur == kv->data + kv->nbytes, "string array ends where its size says");
        return;
    }
    /* Numeric: every element (the count is bounded by the input size). */
    for (uint64_t j = 0; j < kv->arr_n; j++)
        sink += (uint64_t)gguf_arr_int(kv, j) + (gguf_arr_float(kv, j) > 0);
}

static void walk_tensor(const gguf_file *f, const gguf_tensor *t)
{
    check(t->n_dims <= 4, "n_dims");
    check(inside(f, t->data, t->nbytes), "tensor data inside the file");
    check(t->offset % f->alignment == 0, "aligned offset");
    uint64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    check(ggml_type_nbytes(t->type, n) == t->nbytes || (n == 0 && t->nbytes == 0), "size formula");
    if (t->nbytes)
        sink += t->data[0] + t->data[t->nbytes - 1];
    char *name = cstr(t->name);
    if (name) {
        check(gguf_find_tensor(f, name) == t, "names are unique and findable");
        free(name);
    }
}

/* Writer round trip: same kv records (copied raw) and tensors. */
static void rewrite(const gguf_file *f)
{
    if (f->alignment > (1u << 20))
        return;   /* legal, but the padded copy would be gigabytes */
    uint64_t total = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (memchr(f->tensors[i].name.ptr, 0, (size_t)f->tensors[i].name.len))
            return;   /* the writer takes C strings */
        total += f->tensors[i].nbytes;
        if (total > (16u << 20))
            return;   /* overlapping tensors can make the copy quadratic */
    }
    gguf_writer *w = gguf_writer_new(f->alignment);
    check(w != NULL, "writer for a valid alignment");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (f->alignment != 32 && gguf_str_eq(kv->key, "general.alignment"))
            continue;   /* the writer adds it */
        const uint8_t *start = (const uint8_t *)kv->key.ptr - 8;
        gguf_w_raw_kv(w, start, (size_t)(kv->data + kv->nbytes - start));
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char *name = cstr(t->name);
        if (!name)
            break;
        gguf_w_tensor(w, name, t->type, t->n_dims, t->ne, t->data, NULL, NULL);
        free(name);
    }
    uint8_t *buf;
    uint64_t len;
    if (gguf_writer_to_buffer(w, &buf, &len) == 0) {
        gguf_file g;
        char err[256];
        if (gguf_parse(&g, buf, len, err, sizeof err) != 0) {
            fprintf(stderr, "rewritten file rejected: %s\n", err);
            abort();
        }
        check(g.n_kv == f->n_kv && g.n_tensors == f->n_tensors, "same counts");
        check(g.alignment == f->alignment, "same alignment");
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const gguf_tensor *a = &f->tensors[i], *b = &g.tensors[i];
            check(a->type == b->type && a->nbytes == b->nbytes && a->n_dims == b->n_dims,
                  "same tensor");
            check(memcmp(a->ne, b->ne, sizeof a->ne) == 0, "same shape");
            check(a->nbytes == 0 || memcmp(a->data, b->data, (size_t)a->nbytes) == 0, "same data");
        }
        gguf_close(&g);
        free(buf);
    }
    gguf_writer_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file f;
    char err[256];
    if (gguf_parse(&f, data, size, err, sizeof err) != 0) {
        check(err[0] != '\0' && strchr(err, '\n') == NULL, "one-line error message");
        return 0;
    }
    for (uint64_t i = 0; i < f.n_kv; i++)
        walk_kv(&f, &f.kv[i]);
    for (uint64_t i = 0; i < f.n_tensors; i++)
        walk_tensor(&f, &f.tensors[i]);
    rewrite(&f);
    gguf_close(&f);
    return 0;
}
