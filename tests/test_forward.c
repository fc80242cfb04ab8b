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
#include "helper_fixtures.h"
#include "model.h"

/* A model: the "small" preset reshaped by c (fx_write_model): the family
 * by c.arch (NULL: bitnet-b1.58), head_dim 0 = n_embd / n_head, head and
 * embedding types NULL = llama-quantize's choice. */
typedef struct shape {
    const char *name;
    bn_synth_config c;
} shape;

#define SHAPE(nm, l, e, h, kv, ff, ctx, th) \
    .name = nm, .c.n_layer = l, .c.n_embd = e, .c.n_head = h, .c.n_head_kv = kv, .c.n_ff = ff, \
    .c.n_ctx = ctx, .c.rope_theta = th

static const shape SHAPES[] = {
    /*     name            layers embd heads kv  ff   ctx  theta */
    {SHAPE("gqa2-hd64",       2,  256,   4,  2, 384,  64, 10000.0f)},
    {SHAPE("mha-hd128",       2,  256,   2,  2, 256,  64, 500000.0f)},
    {SHAPE("gqa4-hd32",       1,  256,   8,  2, 256,  64, 10000.0f)},
    {SHAPE("odd3-gqa3",       2,  384,   3,  1, 512,  64, 500000.0f)},
    {SHAPE("odd5-mha",        1,  640,   5,  5, 128,  64, 500000.0f)},
    /* bitnet (1bitLLM): Q8_0 tied head, head_dim 96, ffn_down K = 1056 */
    {SHAPE("bitnet-q8_0",     2,  384,   4,  4, 1056, 64, 10000.0f), .c.arch = "bitnet"},
    /* bitnet: head_dim 100 (attn_output K = 400), Q6_K head, projection
     * scales and attention biases, F16 norms */
    {SHAPE("bitnet-hd100",    2,  256,   4,  2, 640,  64, 10000.0f), .c.arch = "bitnet",
     .c.head_dim = 100, .c.head_type = "Q6_K", .c.with_biases = 1, .c.with_scales = 1, .c.norm_f16 = 1},
    /* llama (Falcon3): head_dim 256, F32 head and embedding */
    {SHAPE("llama-hd256",     2,  512,   2,  1, 1536, 64, 1000042.0f), .c.arch = "llama",
     .c.head_dim = 256, .c.head_type = "F32"},
    /* llama untied (Llama3): F16 output, head_dim 100, n_ff 800, biases,
     * attention.scale */
    {SHAPE("llama-untied",    2,  256,   4,  1, 800,  64, 500000.0f), .c.arch = "llama",
     .c.head_dim = 100, .c.untied = 1, .c.with_biases = 1, .c.attn_scale = 0.0625f},
    /* llama untied: Q8_0 output (n_embd 384, by the rule), Q8_0 embedding */
    {SHAPE("llama-untied-q8", 1,  384,   6,  2, 1152, 64, 10000.0f), .c.arch = "llama",
     .c.untied = 1, .c.embd_type = "Q8_0"},
    /* llama untied: Q6_K output, F32 embedding */
    {SHAPE("llama-untied-q6", 1,  256,   4,  2, 384,  64, 10000.0f), .c.arch = "llama",
     .c.untied = 1, .c.head_type = "Q6_K", .c.embd_type = "F32"},
};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

/* ---- fixtures -------------------------------------------------------------------- */

/* Writes the model of shape s to a file of this process, named in path. */
static void write_model(const shape *s, char *path, size_t n) {
    char name[64];
    snprintf(name, sizeof name, "test_forward-%s", s->name);
    fx_model_path(path, n, name);
    bn_synth_config c = s->c;
    c.seed = 1000u + (uint64_t)c.n_embd + (uint64_t)c.n_head;
    fx_write_model(path, &c);
}

static bn_model *load(const char *path, const char *kernel) {
    return fx_load(path, kernel, BN_HEAD_F16);
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
    bn_context *c = fx_context(m, (bn_context_params){.n_threads = n_threads, .n_batch = n_batch,
                                                      .n_outputs_max = n_outputs_max});
    char err[256] = "";
    if (bn_context_set_numerics(c, g_numerics, err, sizeof err) != 0)
        fail_msg("bn_context_set_numerics: %s", err);
    return c;
}

/* Engine logits for every position: one bn_decode of the whole prompt
 * (batch path, cut into n_batch batches) or one per token (decode path). */
static float *engine_logits(bn_model *m, int n_threads, int n_batch, const int32_t *t, int n,
                            int token_by_token) {
    bn_context *c = new_ctx(m, n_threads, n_batch, n);
    float *out = fx_logits(c, t, n, token_by_token);
    bn_context_free(c);
    return out;
}

typedef struct diff {
    double sigma, max, mean, row0;
} diff;

/* fx_compare over rows rows of V logits, and the largest difference in
 * the first row. */
static diff compare(const float *ref, const float *got, int rows, int V) {
    fx_diff all = fx_compare(ref, got, (size_t)rows * V), first = fx_compare(ref, got, (size_t)V);
    diff d = {all.sigma, all.max, all.mean, first.max};
    return d;
}

/* ---- engine vs the plain reference --------------------------------------------------- */

#define N_TOK 24

static void check_shape_against_reference(const shape *s) {
    char path[512];
    write_model(s, path, sizeof path);

    bn_model *m = load(path, "ref");
    const bn_hparams *hp = bn_model_hparams(m);
    int V = hp->n_vocab;
    int32_t t[N_TOK];
    fx_tokens(t, N_TOK, V, (uint32_t)s->c.n_embd);
    t[0] = bn_token_bos(bn_model_tokenizer(m));
    float *ref = fx_ref_logits(m, t, N_TOK);
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
        fx_same_bits(batch, seq, (size_t)N_TOK * V, "%s %s: the batch differs from token by token",
                     s->name, all[k]->name);
        if (first) fx_same_bits(first, seq, (size_t)N_TOK * V, "%s %s differs from ref", s->name, all[k]->name);
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
    write_model(s, path, sizeof path);
    bn_model *m = load(path, NULL);
    int V = bn_model_hparams(m)->n_vocab, n = 40;
    int32_t t[40];
    fx_tokens(t, n, V, 7);

    float *base = engine_logits(m, 1, 512, t, n, 0);
    const int threads[] = {2, 3, 1, 2};
    const int batches[] = {512, 1, 5, 16};
    for (int i = 0; i < 4; i++) {
        float *got = engine_logits(m, threads[i], batches[i], t, n, 0);
        fx_same_bits(base, got, (size_t)n * V, "-t %d -b %d differs from -t 1 -b 512", threads[i],
                     batches[i]);
        free(got);
    }
    float *seq2 = engine_logits(m, 2, 512, t, n, 1);
    fx_same_bits(base, seq2, (size_t)n * V, "token by token at 2 threads differs from -t 1 -b 512");
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
    write_model(s, path, sizeof path);
    bn_model *m = load(path, NULL);
    int V = bn_model_hparams(m)->n_vocab, n = 40;
    size_t bytes = (size_t)n * V * sizeof(float);
    int32_t t[40];
    fx_tokens(t, n, V, 7);
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
    float *ref = fx_ref_logits(m, t, n);
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
    write_model(s, path, sizeof path);
    bn_model *m16 = load(path, NULL);
    int V = m16->hp.n_vocab, n = 12;
    int32_t t[12];
    fx_tokens(t, n, V, 11);
    float *f16 = engine_logits(m16, 1, 512, t, n, 0);
    bn_model_free(m16);

    bn_model *m = fx_load(path, NULL, BN_HEAD_Q8);
    assert_int_equal(m->head_type, BN_HEAD_Q8);
    assert_int_equal(m->head.fmt, BN_FMT_Q8_HEAD);
    assert_string_equal(m->head_tensor, s->c.untied ? "output.weight" : "token_embd.weight");
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
    write_model(s, path, sizeof path);
    bn_model *m = load(path, NULL);
    int V = bn_model_hparams(m)->n_vocab;
    char err[256];

    /* n_ctx defaults to the model's context; a longer one is honoured
     * (test_context_shift decodes past it). */
    bn_context_params cp = bn_context_default_params();
    bn_context *c = bn_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_ctx(c), s->c.n_ctx);
    assert_true(bn_context_n_threads(c) >= 1);
    bn_context_free(c);
    cp.n_ctx = 4 * s->c.n_ctx;
    c = bn_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_ctx(c), 4 * s->c.n_ctx);
    bn_context_free(c);

    cp.n_ctx = 8;
    cp.n_threads = 2;
    cp.n_outputs_max = 4;
    c = bn_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_context_n_ctx(c), 8);
    assert_null(bn_get_logits(c, -1));

    int32_t t[9];
    fx_tokens(t, 9, V, 3);
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
