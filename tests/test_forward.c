/* The forward pass and the context, on small synthetic models written at test
 * time (bn_synth_write, in process):
 *   - engine logits vs the plain reference in helper_ref_forward.c on several
 *     shapes (GQA ratios 1, 2, 4, odd head counts, head_dim 32..256) of every
 *     architecture (bitnet-b1.58, bitnet, llama): K off the 128 grid, heads
 *     stored F16, Q8_0, Q6_K and F32, tied and untied, head_dim other than
 *     n_embd / n_head, biases, projection scales, F16 norms, attention.scale;
 *     every kernel variant gives the reference kernel's bits;
 *   - the batch path vs the token-by-token path, -t 1 vs -t 2 vs -t 3, and
 *     batches cut at odd sizes: all bit-identical;
 *   - every kernel variant this CPU has (alternatives included), within the
 *     reference tolerance; the Q8 head path;
 *   - BN_NUMERICS_BITNET_CPP: single tokens unchanged, batches different
 *     from the decode numerics yet close to the reference, and independent
 *     of the thread count and of cuts into batches of >= 2 tokens;
 *   - context full / bad token / too many logit rows errors leave the cache
 *     as it was; reset starts over. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bitnet.h"
#include "context.h"
#include "helper_ref_forward.h"
#include "model.h"
#include "synth.h"

typedef struct shape {
    const char *name;
    int n_layer, n_embd, n_head, n_head_kv, n_ff, n_ctx;
    float theta;
    /* the family (NULL arch: bitnet-b1.58, the "small" preset's layout) */
    const char *arch;
    int head_dim;                   /* 0: n_embd / n_head */
    int untied;
    const char *head_type, *embd_type;  /* NULL: llama-quantize's choice */
    int biases, scales, norm_f16;
    float attn_scale;
} shape;

#define SHAPE(nm, l, e, h, kv, ff, ctx, th) \
    .name = nm, .n_layer = l, .n_embd = e, .n_head = h, .n_head_kv = kv, .n_ff = ff, \
    .n_ctx = ctx, .theta = th

static const shape SHAPES[] = {
    /*     name            layers embd heads kv  ff   ctx  theta */
    {SHAPE("gqa2-hd64",       2,  256,   4,  2, 384,  64, 10000.0f)},
    {SHAPE("mha-hd128",       2,  256,   2,  2, 256,  64, 500000.0f)},
    {SHAPE("gqa4-hd32",       1,  256,   8,  2, 256,  64, 10000.0f)},
    {SHAPE("odd3-gqa3",       2,  384,   3,  1, 512,  64, 500000.0f)},
    {SHAPE("odd5-mha",        1,  640,   5,  5, 128,  64, 500000.0f)},
    /* bitnet (1bitLLM): Q8_0 tied head, head_dim 96, ffn_down K = 1056 */
    {SHAPE("bitnet-q8_0",     2,  384,   4,  4, 1056, 64, 10000.0f), .arch = "bitnet"},
    /* bitnet: head_dim 100 (attn_output K = 400), Q6_K head, projection
     * scales and attention biases, F16 norms */
    {SHAPE("bitnet-hd100",    2,  256,   4,  2, 640,  64, 10000.0f), .arch = "bitnet",
     .head_dim = 100, .head_type = "Q6_K", .biases = 1, .scales = 1, .norm_f16 = 1},
    /* llama (Falcon3): head_dim 256, F32 head and embedding */
    {SHAPE("llama-hd256",     2,  512,   2,  1, 1536, 64, 1000042.0f), .arch = "llama",
     .head_dim = 256, .head_type = "F32"},
    /* llama untied (Llama3): F16 output, head_dim 100, n_ff 800, biases,
     * attention.scale */
    {SHAPE("llama-untied",    2,  256,   4,  1, 800,  64, 500000.0f), .arch = "llama",
     .head_dim = 100, .untied = 1, .biases = 1, .attn_scale = 0.0625f},
    /* llama untied: Q8_0 output (n_embd 384, by the rule), Q8_0 embedding */
    {SHAPE("llama-untied-q8", 1,  384,   6,  2, 1152, 64, 10000.0f), .arch = "llama",
     .untied = 1, .embd_type = "Q8_0"},
    /* llama untied: Q6_K output, F32 embedding */
    {SHAPE("llama-untied-q6", 1,  256,   4,  2, 384,  64, 10000.0f), .arch = "llama",
     .untied = 1, .head_type = "Q6_K", .embd_type = "F32"},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

/* ---- fixtures -------------------------------------------------------------------- */

static void model_path(const shape *s, char *path, size_t n) {
    snprintf(path, n, "%s/test_forward-%s-%d.gguf", BN_BINARY_DIR, s->name, (int)getpid());
}

static void write_model(const shape *s, const char *path) {
    bn_synth_config c;
    assert_int_equal(bn_synth_preset("small", NULL, &c), 0);
    c.n_layer = s->n_layer;
    c.n_embd = s->n_embd;
    c.n_head = s->n_head;
    c.n_head_kv = s->n_head_kv;
    c.n_ff = s->n_ff;
    c.n_ctx = s->n_ctx;
    c.rope_theta = s->theta;
    c.seed = 1000u + (uint64_t)s->n_embd + (uint64_t)s->n_head;
    c.arch = s->arch;
    c.head_dim = s->head_dim;
    c.untied = s->untied;
    c.head_type = s->head_type;
    c.embd_type = s->embd_type;
    c.with_biases = s->biases;
    c.with_scales = s->scales;
    c.norm_f16 = s->norm_f16;
    c.attn_scale = s->attn_scale;
    char err[256] = "";
    if (bn_synth_write(&c, path, err, sizeof err) != 0) fail_msg("bn_synth_write: %s", err);
}

static bn_model *load_head(const char *path, const char *kernel, int head) {
    bn_model_params mp = bn_model_default_params();
    mp.kernel = kernel;
    mp.head = head;
    char err[256] = "";
    bn_model *m = bn_model_load(path, &mp, err, sizeof err);
    if (!m) fail_msg("bn_model_load(%s, %s): %s", path, kernel ? kernel : "auto", err);
    return m;
}

static bn_model *load(const char *path, const char *kernel) {
    return load_head(path, kernel, BN_HEAD_F16);
}

/* Kernel alternatives that dispatch never picks (bn_kernels_all) cannot be
 * forced by name: load with the reference and repack for k. */
static bn_model *load_with(const char *path, const bn_kernels *k) {
    bn_model *m = load(path, "ref");
    char err[256] = "";
    if (bn_model_use_kernels(m, k, err, sizeof err) != 0)
        fail_msg("bn_model_use_kernels(%s): %s", k->name, err);
    return m;
}

static int g_numerics = BN_NUMERICS_DECODE;    /* for new_ctx */

static bn_context *new_ctx(bn_model *m, int n_threads, int n_batch, int n_outputs_max) {
    bn_context_params cp = bn_context_default_params();
    cp.n_threads = n_threads;
    cp.n_batch = n_batch;
    cp.n_outputs_max = n_outputs_max;
    char err[256] = "";
    bn_context *c = bn_context_new(m, &cp, err, sizeof err);
    if (!c) fail_msg("bn_context_new: %s", err);
    if (bn_context_set_numerics(c, g_numerics, err, sizeof err) != 0)
        fail_msg("bn_context_set_numerics: %s", err);
    return c;
}

/* Deterministic token ids in [1, n_vocab), BOS-free. */
static void make_tokens(int32_t *t, int n, int n_vocab, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        t[i] = 1 + (int32_t)((x >> 8) % (uint32_t)(n_vocab - 1));
    }
}

/* Engine logits for every position: one bn_decode of the whole prompt
 * (batch path, cut into n_batch batches) or one per token (decode path). */
static float *engine_logits(bn_model *m, int n_threads, int n_batch, const int32_t *t, int n,
                            int token_by_token) {
    int V = bn_model_hparams(m)->n_vocab;
    float *out = malloc((size_t)n * V * sizeof(float));
    assert_non_null(out);
    bn_context *c = new_ctx(m, n_threads, n_batch, n);
    char err[256] = "";
    if (token_by_token) {
        for (int i = 0; i < n; i++) {
            if (bn_decode(c, t + i, 1, 0, err, sizeof err) != 0) fail_msg("decode: %s", err);
            memcpy(out + (size_t)i * V, bn_get_logits(c, -1), (size_t)V * sizeof(float));
        }
    } else {
        if (bn_decode(c, t, n, 1, err, sizeof err) != 0) fail_msg("decode: %s", err);
        for (int i = 0; i < n; i++)
            memcpy(out + (size_t)i * V, bn_get_logits(c, i), (size_t)V * sizeof(float));
    }
    assert_int_equal(bn_context_n_past(c), n);
    bn_context_free(c);
    return out;
}

static float *reference_logits(const bn_model *m, const int32_t *t, int n) {
    int V = m->hp.n_vocab;
    float *out = malloc((size_t)n * V * sizeof(float));
    ref_forward *r = ref_forward_new(m, n);
    assert_non_null(out);
    assert_non_null(r);
    for (int i = 0; i < n; i++) assert_int_equal(ref_forward_token(r, t[i], out + (size_t)i * V), 0);
    ref_forward_free(r);
    return out;
}

typedef struct diff {
    double sigma, max, mean, row0;
} diff;

static diff compare(const float *ref, const float *got, int rows, int V) {
    size_t n = (size_t)rows * V;
    double s = 0, ss = 0, sum = 0;
    diff d = {0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        s += (double)ref[i];
        ss += (double)ref[i] * (double)ref[i];
        double e = fabs((double)got[i] - (double)ref[i]);
        assert_false(isnan(e));
        sum += e;
        if (e > d.max) d.max = e;
        if (i < (size_t)V && e > d.row0) d.row0 = e;
    }
    double mu = s / n;
    d.sigma = sqrt(ss / n - mu * mu);
    d.mean = sum / n;
    return d;
}

/* ---- engine vs the plain reference --------------------------------------------------- */

#define N_TOK 24

static void check_shape_against_reference(const shape *s) {
    char path[512];
    model_path(s, path, sizeof path);
    write_model(s, path);

    bn_model *m = load(path, "ref");
    const bn_hparams *hp = bn_model_hparams(m);
    int V = hp->n_vocab;
    int32_t t[N_TOK];
    make_tokens(t, N_TOK, V, (uint32_t)s->n_embd);
    t[0] = bn_token_bos(bn_model_tokenizer(m));
    float *ref = reference_logits(m, t, N_TOK);
    bn_model_free(m);

    const bn_kernels *all[16];
    int n_all = bn_kernels_all(all, 16);
    assert_true(n_all >= 1 && n_all <= 16 && strcmp(all[0]->name, "ref") == 0);
    float *first = NULL;                /* the reference kernel's logits */
    for (int k = 0; k < n_all; k++) {
        m = load_with(path, all[k]);
        float *batch = engine_logits(m, 2, 7, t, N_TOK, 0);
        float *seq = engine_logits(m, 1, 512, t, N_TOK, 1);
        diff d = compare(ref, batch, N_TOK, V);
        print_message("  %-10s %-6s sigma %.4f  max|d| %.3g (%.2e sigma)  mean|d| %.2e sigma  "
                      "row0 %.2e sigma\n", s->name, all[k]->name, d.sigma, d.max,
                      d.max / d.sigma, d.mean / d.sigma, d.row0 / d.sigma);
        assert_true(d.sigma > 0);
        /* Every operation in the reference's order and rounding: the same
         * bits, for every architecture, head type and kernel variant. */
        assert_true(d.max == 0);
        /* One set of numerics: batches and single tokens give the same bits,
         * and every variant the reference kernel's. */
        assert_memory_equal(batch, seq, (size_t)N_TOK * V * sizeof(float));
        if (first) assert_memory_equal(first, seq, (size_t)N_TOK * V * sizeof(float));
        else first = seq, seq = NULL;
        free(batch);
        free(seq);
        bn_model_free(m);
    }
    free(first);
    free(ref);
    unlink(path);
}

static void test_against_reference(void **state) {
    (void)state;
    for (int i = 0; i < N_SHAPES; i++) check_shape_against_reference(&SHAPES[i]);
}

/* ---- thread counts and batch cuts ------------------------------------------------------- */

static void test_threads_and_batches_identical(void **state) {
    (void)state;
    const shape *s = &SHAPES[0];
    char path[512];
    model_path(s, path, sizeof path);
    write_model(s, path);
    bn_model *m = load(path, NULL);
    int V = bn_model_hparams(m)->n_vocab, n = 40;
    int32_t t[40];
    make_tokens(t, n, V, 7);

    float *base = engine_logits(m, 1, 512, t, n, 0);
    const int threads[] = {2, 3, 1, 2};
    const int batches[] = {512, 1, 5, 16};
    for (int i = 0; i < 4; i++) {
        float *got = engine_logits(m, threads[i], batches[i], t, n, 0);
        assert_memory_equal(base, got, (size_t)n * V * sizeof(float));
        free(got);
    }
    float *seq2 = engine_logits(m, 2, 512, t, n, 1);
    assert_memory_equal(base, seq2, (size_t)n * V * sizeof(float));
    free(seq2);

    /* Last-token-only decoding gives the last row of the all-rows run. */
    bn_context *c = new_ctx(m, 2, 8, 1);
    char err[256];
    assert_int_equal(bn_decode(c, t, n, 0, err, sizeof err), 0);
    assert_memory_equal(bn_get_logits(c, -1), base + (size_t)(n - 1) * V, (size_t)V * sizeof(float));
    assert_null(bn_get_logits(c, 5));
    bn_context_free(c);

    free(base);
    bn_model_free(m);
    unlink(path);
}

/* ---- bitnet.cpp's batch numerics (opt-in) -------------------------------------------------- */

static void test_bitnet_cpp_numerics(void **state) {
    (void)state;
    const shape *s = &SHAPES[0];
    char path[512];
    model_path(s, path, sizeof path);
    write_model(s, path);
    bn_model *m = load(path, NULL);
    int V = bn_model_hparams(m)->n_vocab, n = 40;
    size_t bytes = (size_t)n * V * sizeof(float);
    int32_t t[40];
    make_tokens(t, n, V, 7);
    t[0] = bn_token_bos(bn_model_tokenizer(m));

    g_numerics = BN_NUMERICS_DECODE;
    float *dec = engine_logits(m, 2, 512, t, n, 0);
    g_numerics = BN_NUMERICS_BITNET_CPP;
    /* Single tokens: the decode path, bit for bit. */
    float *seq = engine_logits(m, 2, 512, t, n, 1);
    assert_memory_equal(dec, seq, bytes);
    /* Batches: other roundings (so the path is taken), any thread count,
     * any cut into batches of >= 2 tokens (40 = 8 x 5 = 20 x 2). */
    float *base = engine_logits(m, 1, 512, t, n, 0);
    assert_true(memcmp(base, dec, bytes) != 0);
    const int threads[] = {2, 3, 2, 1};
    const int batches[] = {512, 512, 5, 2};
    for (int i = 0; i < 4; i++) {
        float *got = engine_logits(m, threads[i], batches[i], t, n, 0);
        assert_memory_equal(base, got, bytes);
        free(got);
    }
    /* Close to the plain reference (decode numerics) all the same. */
    bn_model_free(m);
    m = load(path, "ref");
    float *ref = reference_logits(m, t, n);
    diff d = compare(ref, base, n, V);
    print_message("  bitnet.cpp batch numerics vs reference: max|d| %.2e sigma, mean|d| %.2e sigma\n",
                  d.max / d.sigma, d.mean / d.sigma);
    assert_true(d.max <= 0.25 * d.sigma);
    assert_true(d.mean <= 0.04 * d.sigma);
    /* The last row alone, from a batch (one kept row: the f16 head). */
    bn_context *c = new_ctx(m, 2, 512, 1);
    char err[256];
    assert_int_equal(bn_decode(c, t, n, 0, err, sizeof err), 0);
    diff dl = compare(ref + (size_t)(n - 1) * V, bn_get_logits(c, -1), 1, V);
    assert_true(dl.max <= 0.25 * dl.sigma);
    bn_context_free(c);
    g_numerics = BN_NUMERICS_DECODE;

    /* Only 0 and 1 exist. */
    c = new_ctx(m, 1, 4, 1);
    assert_int_equal(bn_context_set_numerics(c, 2, err, sizeof err), -1);
    assert_non_null(strstr(err, "batch numerics"));
    bn_context_free(c);

    free(ref);
    free(dec);
    free(seq);
    free(base);
    bn_model_free(m);
    unlink(path);
}

/* ---- the quantized (Q8) LM head ------------------------------------------------------------ */

/* The same model with the F16 head and with the Q8 head (asked for
 * explicitly: small heads default to F16): tied, and made from an untied
 * output.weight (token_embd rows then come through pread). */
static void check_q8_head(const shape *s) {
    char path[512];
    model_path(s, path, sizeof path);
    write_model(s, path);
    bn_model *m16 = load(path, NULL);
    int V = m16->hp.n_vocab, n = 12;
    int32_t t[12];
    make_tokens(t, n, V, 11);
    float *f16 = engine_logits(m16, 1, 512, t, n, 0);
    bn_model_free(m16);

    bn_model *m = load_head(path, NULL, BN_HEAD_Q8);
    assert_int_equal(m->head_type, BN_HEAD_Q8);
    assert_int_equal(m->head.fmt, BN_FMT_Q8_HEAD);
    assert_string_equal(m->head_tensor, s->untied ? "output.weight" : "token_embd.weight");
    assert_true(m->embd_fd >= 0);
    float *q8 = engine_logits(m, 1, 512, t, n, 0);
    float *q8_seq = engine_logits(m, 2, 512, t, n, 1);
    float *q8_t3 = engine_logits(m, 3, 4, t, n, 0);
    assert_memory_equal(q8, q8_seq, (size_t)n * V * sizeof(float));
    assert_memory_equal(q8, q8_t3, (size_t)n * V * sizeof(float));
    diff d = compare(f16, q8, n, V);
    print_message("  q8 head vs f16 head: max|d| %.2e sigma, mean|d| %.2e sigma\n",
                  d.max / d.sigma, d.mean / d.sigma);
    assert_true(d.max > 0);                 /* the Q8 path was taken */
    assert_true(d.max <= 0.05 * d.sigma);   /* int8 blocks of 32: a small error */
    free(f16);
    free(q8);
    free(q8_seq);
    free(q8_t3);
    bn_model_free(m);
    unlink(path);
}

static void test_q8_head(void **state) {
    (void)state;
    check_q8_head(&SHAPES[0]);
    for (int i = 0; i < N_SHAPES; i++)
        if (strcmp(SHAPES[i].name, "llama-untied") == 0) check_q8_head(&SHAPES[i]);
}

/* ---- context limits, errors, reset ------------------------------------------------------- */

static void test_context_full_and_errors(void **state) {
    (void)state;
    const shape *s = &SHAPES[0];
    char path[512];
    model_path(s, path, sizeof path);
    write_model(s, path);
    bn_model *m = load(path, NULL);
    int V = bn_model_hparams(m)->n_vocab;
    char err[256];

    /* n_ctx defaults to the model's context; a longer one is honoured
     * (test_context_shift decodes past it). */
    bn_context_params cp = bn_context_default_params();
    bn_context *c = bn_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_ctx(c), s->n_ctx);
    assert_true(bn_context_n_threads(c) >= 1);
    bn_context_free(c);
    cp.n_ctx = 4 * s->n_ctx;
    c = bn_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_ctx(c), 4 * s->n_ctx);
    bn_context_free(c);

    cp.n_ctx = 8;
    cp.n_threads = 2;
    cp.n_outputs_max = 4;
    c = bn_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_ctx(c), 8);
    assert_null(bn_get_logits(c, -1));

    int32_t t[9];
    make_tokens(t, 9, V, 3);
    float *first = engine_logits(m, 1, 512, t, 8, 0);

    /* Refused calls change nothing. */
    int32_t bad[2] = {t[0], V};
    assert_int_equal(bn_decode(c, bad, 2, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    bad[1] = -1;
    assert_int_equal(bn_decode(c, bad, 2, 0, err, sizeof err), -1);
    assert_int_equal(bn_decode(c, t, 5, 1, err, sizeof err), -1);   /* 5 rows > 4 */
    assert_int_equal(bn_decode(c, t, 0, 0, err, sizeof err), -1);
    assert_int_equal(bn_context_n_past(c), 0);

    assert_int_equal(bn_decode(c, t, 5, 0, err, sizeof err), 0);
    assert_int_equal(bn_decode(c, t + 5, 4, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "context is full (8 tokens)"));
    assert_int_equal(bn_context_n_past(c), 5);
    assert_int_equal(bn_decode(c, t + 5, 3, 1, err, sizeof err), 0);
    assert_int_equal(bn_context_n_past(c), 8);
    for (int i = 0; i < 3; i++)
        assert_memory_equal(bn_get_logits(c, i), first + (size_t)(5 + i) * V, (size_t)V * sizeof(float));
    assert_memory_equal(bn_get_logits(c, -1), first + (size_t)7 * V, (size_t)V * sizeof(float));
    assert_null(bn_get_logits(c, 3));
    assert_int_equal(bn_decode(c, t + 8, 1, 0, err, sizeof err), -1);
    assert_string_equal(err, "context is full (8 tokens)");
    assert_int_equal(bn_context_n_past(c), 8);

    /* Reset: the same tokens give the same logits, after other tokens too. */
    bn_context_reset(c);
    assert_int_equal(bn_context_n_past(c), 0);
    assert_null(bn_get_logits(c, -1));
    assert_int_equal(bn_decode(c, t + 1, 8, 0, err, sizeof err), 0);
    bn_context_reset(c);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(bn_decode(c, t + i, 1, 0, err, sizeof err), 0);
        assert_memory_equal(bn_get_logits(c, -1), first + (size_t)i * V, (size_t)V * sizeof(float));
    }
    bn_context_free(c);

    /* A context that keeps every row of a long prompt across batches. */
    cp.n_ctx = 0;
    cp.n_batch = 3;
    cp.n_outputs_max = 8;
    c = bn_context_new(m, &cp, err, sizeof err);
    assert_int_equal(bn_decode(c, t, 8, 1, err, sizeof err), 0);
    for (int i = 0; i < 8; i++)
        assert_memory_equal(bn_get_logits(c, i), first + (size_t)i * V, (size_t)V * sizeof(float));
    bn_context_free(c);

    free(first);
    bn_model_free(m);
    unlink(path);
}

/* ---- the thread pool itself ---------------------------------------------------------------- */

typedef struct count_job {
    int hits[16];
    int nth_seen;
} count_job;

static void count_task(void *arg, int ith, int nth) {
    count_job *j = arg;
    j->hits[ith]++;
    if (ith == 0) j->nth_seen = nth;
}

static void test_threadpool(void **state) {
    (void)state;
    assert_true(bn_physical_cores() >= 1);
    for (int n = 1; n <= 4; n++) {
        bn_threadpool *p = bn_threadpool_new(n);
        assert_non_null(p);
        assert_int_equal(bn_threadpool_n_threads(p), n);
        count_job j;
        memset(&j, 0, sizeof j);
        for (int r = 0; r < 1000; r++) bn_threadpool_run(p, count_task, &j);
        assert_int_equal(j.nth_seen, n);
        for (int i = 0; i < n; i++) assert_int_equal(j.hits[i], 1000);
        for (int i = n; i < 16; i++) assert_int_equal(j.hits[i], 0);
        bn_threadpool_free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threadpool),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_threads_and_batches_identical),
        cmocka_unit_test(test_bitnet_cpp_numerics),
        cmocka_unit_test(test_q8_head),
        cmocka_unit_test(test_context_full_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
