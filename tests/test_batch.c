/* Several sequences in one forward pass (bn_decode_multi, continuous
 * batching), on small synthetic models written at test time, the bundled
 * model, and the shared mid-2b4t when ../shared is there:
 *
 *   - every sequence decoded alone (its own context, bn_decode token by
 *     token) and the same sequences decoded together give the same logits,
 *     bit for bit, at every step: 1 to 8 sequences, different prompt
 *     lengths, sequences that skip steps, rows in a different order each
 *     step, 1 and 2 threads (results never depend on the thread count, so
 *     each plan runs with one of them);
 *   - rows on both attention paths in one pass (short rows, and rows past
 *     256 cells, which take the chunked path), and a sequence whose context
 *     is shifted mid-way (bn_context_shift) among ones that are not;
 *   - heads of every format the families use (F16, Q8 made at load, Q8_0,
 *     Q6_K, F32), biases, scales, head_dim not a multiple of 8 (no long
 *     path), query width != n_embd, relu^2 and silu;
 *   - sequences made by bn_context_new_sequence (shared scratch and pool)
 *     and independent contexts work alike, even with the base's numerics set
 *     to bitnet.cpp's batch rounding;
 *   - refused calls (duplicate, foreign or full contexts, too many rows, a
 *     bad token) return -1 and change no context. */
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

#define MAX_SEQ 8

/* ---- fixtures ------------------------------------------------------------------ */

typedef struct shape {
    const char *name;
    bn_synth_config c;              /* over the "small" preset (fx_write_model);
                                       arch NULL: bitnet-b1.58 */
    int head;                       /* bn_model_params.head */
    int shift_plan;                 /* 1: the plan across 256 cells (1 thread), 2: a
                                       shift among short rows (2 threads), 0: none */
} shape;

static const shape SHAPES[] = {
    /* head_dim 64: rows past 256 cells take the chunked attention */
    {"b158-f16",     {FX_DIMS(2, 256, 4, 2, 256, 320)}, BN_HEAD_F16, 1},
    {"b158-q8",      {FX_DIMS(2, 256, 4, 2, 256, 320)}, BN_HEAD_Q8, 0},
    /* head_dim 100: no long path (the shift among short rows); biases,
     * scales, Q6_K head */
    {"bitnet-hd100", {FX_DIMS(2, 256, 4, 2, 384, 300), .arch = "bitnet", .head_dim = 100, .head_type = "Q6_K",
                      .with_biases = 1, .with_scales = 1}, BN_HEAD_DEFAULT, 2},
    /* silu, query width 4 * 80 != 256, Q8_0 head */
    {"llama-q8_0",   {FX_DIMS(2, 256, 4, 1, 384, 320), .arch = "llama", .head_dim = 80, .head_type = "Q8_0",
                      .with_biases = 1}, BN_HEAD_DEFAULT, 2},
    {"llama-f32",    {FX_DIMS(1, 256, 2, 2, 256, 320), .arch = "llama", .head_dim = 128, .head_type = "F32"},
     BN_HEAD_DEFAULT, 2},
};

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bn_test_batch_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static bn_model *load_shape(const shape *sh) {
    char path[320];
    snprintf(path, sizeof path, "%s/%s.gguf", tmpdir, sh->name);
    if (access(path, F_OK) != 0) {
        bn_synth_config c = sh->c;
        c.seed = 4242;
        fx_write_model(path, &c);
    }
    return fx_load(path, NULL, sh->head);
}

static bn_model *load_file(const char *path) {
    if (access(path, R_OK) != 0) return NULL;
    return fx_load(path, NULL, BN_HEAD_DEFAULT);
}

static bn_context *new_ctx(bn_model *m, int n_threads, int n_outputs_max) {
    return fx_context(m, (bn_context_params){.n_threads = n_threads, .n_outputs_max = n_outputs_max});
}

/* Token j of sequence s: a fixed pseudo-random stream (splitmix64). */
static int32_t token_of(int s, int j, int n_vocab) {
    uint64_t z = (uint64_t)s * 0x9E3779B97F4A7C15ull + (uint64_t)j * 0xBF58476D1CE4E5B9ull + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (int32_t)(z % (uint64_t)n_vocab);
}

/* ---- the comparison ------------------------------------------------------------ */

typedef struct plan {
    int n_seq;
    int prompt[MAX_SEQ];            /* prompt length of each sequence */
    int steps;                      /* tokens each sequence decodes after its prompt */
    int n_threads;
    int shift_seq;                  /* this sequence shifts ... (-1: none) */
    int shift_at;                   /* ... before its step shift_at */
    int keep, discard;
    int share;                      /* together: bn_context_new_sequence, else own contexts */
    int skip;                       /* together: sequence s sits out steps with (t + s) % 4 == 3 */
} plan;

static void maybe_shift(const plan *p, bn_context *c, int s, int j) {
    if (s != p->shift_seq || j != p->shift_at) return;
    char err[256] = "";
    if (bn_context_shift(c, p->keep, p->discard, err, sizeof err) != 0)
        fail_msg("bn_context_shift: %s", err);
}

static void prefill(bn_context *c, int s, int n, int n_vocab) {
    int32_t toks[512];
    assert_true(n <= 512);
    for (int j = 0; j < n; j++) toks[j] = token_of(s, j, n_vocab);
    char err[256] = "";
    if (bn_decode(c, toks, n, 0, err, sizeof err) != 0) fail_msg("prefill: %s", err);
}

/* Decodes the plan's sequences alone, then together, and compares the
 * logits of every step bit for bit. Returns the number of rows compared. */
static int compare(bn_model *m, const plan *p) {
    int V = bn_model_hparams(m)->n_vocab;
    size_t row = (size_t)V * sizeof(float);
    float *ref = malloc((size_t)p->n_seq * (size_t)p->steps * row);
    assert_non_null(ref);
    char err[256] = "";

    /* alone: each sequence in its own context, one token per bn_decode */
    for (int s = 0; s < p->n_seq; s++) {
        bn_context *c = new_ctx(m, p->n_threads, 1);
        prefill(c, s, p->prompt[s], V);
        for (int j = 0; j < p->steps; j++) {
            maybe_shift(p, c, s, j);
            int32_t t = token_of(s, p->prompt[s] + j, V);
            if (bn_decode(c, &t, 1, 0, err, sizeof err) != 0) fail_msg("alone: %s", err);
            memcpy(ref + ((size_t)s * p->steps + j) * V, bn_get_logits(c, -1), row);
        }
        bn_context_free(c);
    }
    /* the check can fail: different sequences give different logits */
    if (p->n_seq >= 2) assert_true(memcmp(ref, ref + (size_t)p->steps * V, row) != 0);

    /* together */
    bn_context *ctx[MAX_SEQ];
    ctx[0] = new_ctx(m, p->n_threads, p->n_seq);
    for (int s = 1; s < p->n_seq; s++) {
        ctx[s] = p->share ? bn_context_new_sequence(ctx[0], err, sizeof err)
                          : new_ctx(m, p->n_threads, p->n_seq);
        if (!ctx[s]) fail_msg("bn_context_new_sequence: %s", err);
    }
    for (int s = 0; s < p->n_seq; s++) prefill(ctx[s], s, p->prompt[s], V);
    /* a pass of single tokens never takes the batch rounding */
    if (p->share) assert_int_equal(bn_context_set_numerics(ctx[0], BN_NUMERICS_BITNET_CPP, err, sizeof err), 0);
    int done[MAX_SEQ] = {0}, compared = 0;
    for (int t = 0;; t++) {
        bn_context *batch[MAX_SEQ];
        int32_t toks[MAX_SEQ];
        int who[MAX_SEQ], n = 0;
        for (int k = 0; k < p->n_seq; k++) {
            int s = (k + t) % p->n_seq;             /* a different row order each step */
            if (done[s] >= p->steps || (p->skip && (t + s) % 4 == 3)) continue;
            maybe_shift(p, ctx[s], s, done[s]);
            batch[n] = ctx[s];
            toks[n] = token_of(s, p->prompt[s] + done[s], V);
            who[n++] = s;
        }
        if (n == 0) {
            int left = 0;
            for (int s = 0; s < p->n_seq; s++) left += done[s] < p->steps;
            if (!left) break;
            continue;
        }
        if (bn_decode_multi(batch, toks, n, err, sizeof err) != 0) fail_msg("together: %s", err);
        for (int r = 0; r < n; r++) {
            int s = who[r];
            const float *got = bn_get_logits(ctx[s], -1);
            const float *want = ref + ((size_t)s * p->steps + done[s]) * V;
            if (memcmp(got, want, row) != 0) {
                int v = 0;
                while (got[v] == want[v]) v++;
                fail_msg("sequence %d step %d (row %d of %d, %d threads): logit %d is %.9g, alone %.9g",
                         s, done[s], r, n, p->n_threads, v, (double)got[v], (double)want[v]);
            }
            done[s]++;
            compared++;
        }
    }
    for (int s = p->n_seq - 1; s >= 0; s--) bn_context_free(ctx[s]);
    free(ref);
    return compared;
}

/* The plans every model runs (n_ctx at least 300), kept few since the
 * suite also runs under qemu: sequence counts split between 1 and 2
 * threads, then a context shift mid-way: across (rows on both sides of 256
 * cells in one pass, a sequence shifted from past 256 back below it) or
 * within the short rows. */
static void run_plans(bn_model *m, int shift_plan) {
    static const int lens[MAX_SEQ] = {5, 17, 1, 40, 9, 64, 3, 29};
    for (int threads = 1; threads <= 2; threads++) {
        const int counts[2][3] = {{1, 3, 8}, {2, 5, 0}};
        for (int k = 0; k < 3 && counts[threads - 1][k] > 0; k++) {
            plan p = {.n_seq = counts[threads - 1][k], .steps = 5, .n_threads = threads,
                      .shift_seq = -1, .share = k != 1, .skip = k >= 1};
            memcpy(p.prompt, lens, sizeof lens);
            compare(m, &p);
        }
    }
    if (shift_plan == 0) return;
    plan across = {.n_seq = 4, .prompt = {250, 12, 262, 30}, .steps = 10, .n_threads = 1,
                   .shift_seq = 2, .shift_at = 3, .keep = 4, .discard = 120, .share = 1,
                   .skip = 1};
    plan within = {.n_seq = 3, .prompt = {20, 70, 5}, .steps = 8, .n_threads = 2,
                   .shift_seq = 1, .shift_at = 2, .keep = 4, .discard = 40, .share = 0,
                   .skip = 1};
    compare(m, shift_plan == 1 ? &across : &within);
}

static void test_shapes(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) {
        bn_model *m = load_shape(&SHAPES[i]);
        run_plans(m, SHAPES[i].shift_plan);
        bn_model_free(m);
    }
}

static void test_bundled_model(void **state) {
    (void)state;
    bn_model *m = load_file(BN_SOURCE_DIR "/models/tiny-shakespeare.gguf");
    if (!m) skip();
    int n_ctx = bn_model_hparams(m)->n_ctx_train;
    if (n_ctx < 300) {
        /* short context: only the plans that fit */
        plan p = {.n_seq = 4, .prompt = {5, 17, 1, 40}, .steps = 6, .n_threads = 2,
                  .shift_seq = 1, .shift_at = 2, .keep = 1, .discard = 8, .share = 1, .skip = 1};
        compare(m, &p);
    } else {
        run_plans(m, 1);
    }
    bn_model_free(m);
}

/* The 2B4T shapes with bitnet.cpp's numbers (../shared): a quick pass. */
static void test_shared_mid_2b4t(void **state) {
    (void)state;
    bn_model *m = load_file(BN_SHARED_DIR "/models/mid-2b4t.gguf");
    if (!m) skip();
    plan p = {.n_seq = 3, .prompt = {4, 12, 2}, .steps = 3, .n_threads = 2, .shift_seq = 1,
              .shift_at = 1, .keep = 1, .discard = 6, .share = 1, .skip = 1};
    assert_int_equal(compare(m, &p), 9);
    bn_model_free(m);
}

/* ---- refusals ------------------------------------------------------------------- */

static void expect_refused(bn_context *const *ctxs, const int32_t *toks, int n, const char *what,
                           bn_context *const *all, int n_all) {
    int before[MAX_SEQ + 1];
    for (int i = 0; i < n_all; i++) before[i] = bn_context_n_past(all[i]);
    char err[256] = "";
    assert_int_equal(bn_decode_multi(ctxs, toks, n, err, sizeof err), -1);
    if (!strstr(err, what)) fail_msg("expected '%s' in: %s", what, err);
    for (int i = 0; i < n_all; i++) assert_int_equal(bn_context_n_past(all[i]), before[i]);
}

static void test_refused(void **state) {
    (void)state;
    bn_model *m = load_shape(&SHAPES[0]);
    bn_model *m2 = load_shape(&SHAPES[1]);
    char err[256] = "";
    bn_context *base = new_ctx(m, 1, 3);
    bn_context *a = bn_context_new_sequence(base, err, sizeof err);
    bn_context *b = bn_context_new_sequence(a, err, sizeof err);     /* of a's base */
    bn_context *other = new_ctx(m2, 1, 3);
    bn_context *small = new_ctx(m, 1, 1);
    assert_non_null(a);
    assert_non_null(b);
    bn_context *all[] = {base, a, b, other, small};
    int32_t toks[4] = {1, 2, 3, 4};

    bn_context *dup[] = {base, a, base};
    expect_refused(dup, toks, 3, "the same context", all, 5);
    bn_context *foreign[] = {base, other};
    expect_refused(foreign, toks, 2, "same model", all, 5);
    bn_context *four[] = {base, a, b, small};
    expect_refused(four, toks, 4, "at most 3", all, 5);
    bn_context *two_small[] = {small, a};
    expect_refused(two_small, toks, 2, "at most 1", all, 5);
    int32_t bad[3] = {1, -1, 3};
    bn_context *three[] = {base, a, b};
    expect_refused(three, bad, 3, "out of range", all, 5);
    bad[1] = bn_model_hparams(m)->n_vocab;
    expect_refused(three, bad, 3, "out of range", all, 5);
    expect_refused(three, toks, 0, "nothing", all, 5);

    /* a full context refuses the whole batch */
    int n_ctx = bn_context_n_ctx(a);
    prefill(a, 9, n_ctx, bn_model_hparams(m)->n_vocab);
    assert_int_equal(bn_context_n_past(a), n_ctx);
    expect_refused(three, toks, 3, "context is full", all, 5);

    /* and a good call still works, a sequence of a sequence included */
    bn_context_reset(a);
    assert_int_equal(bn_decode_multi(three, toks, 3, err, sizeof err), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(bn_context_n_past(three[i]), 1);

    bn_context_free(small);
    bn_context_free(other);
    bn_context_free(b);
    bn_context_free(a);
    bn_context_free(base);
    bn_model_free(m2);
    bn_model_free(m);
}

/* The exact head (BN_HEAD_EXACT) with a sampler tied to each sequence:
 * rows screened and rescored per sequence in one pass give the tokens each
 * sequence samples alone (seeded top-k with penalties, greedy), and so does
 * a pass where one sequence samples the whole vocabulary (every row is then
 * computed from the F16 table). */
static void run_exact(bn_model *m, int with_full_vocab) {
    enum { N_SEQ = 4, STEPS = 12, PROMPT = 6 };
    const int V = bn_model_hparams(m)->n_vocab;
    bn_sampler_params sp[N_SEQ];
    for (int i = 0; i < N_SEQ; i++) {
        sp[i] = bn_sampler_default_params();
        sp[i].seed = 100u + (uint32_t)i;
        sp[i].repeat_penalty = 1.3f;
        sp[i].repeat_last_n = 8;
    }
    sp[1].temp = 0.0f;                          /* greedy: k = 1 */
    sp[2].top_k = 5;
    if (with_full_vocab) sp[3].top_k = 0;       /* the whole vocabulary */
    int32_t alone[N_SEQ][STEPS], together[N_SEQ][STEPS];
    char err[256] = "";
    for (int pass = 0; pass < 2; pass++) {
        bn_context *base = new_ctx(m, 2, N_SEQ), *ctx[N_SEQ];
        bn_sampler *smp[N_SEQ];
        int32_t next[N_SEQ];
        for (int i = 0; i < N_SEQ; i++) {
            ctx[i] = pass == 0 || i == 0 ? (i == 0 ? base : new_ctx(m, 2, 1))
                                         : bn_context_new_sequence(base, err, sizeof err);
            if (!ctx[i]) fail_msg("context: %s", err);
            smp[i] = bn_sampler_new(&sp[i], V);
            assert_non_null(smp[i]);
            bn_context_set_sampler(ctx[i], smp[i]);
            int32_t prompt[PROMPT];
            for (int j = 0; j < PROMPT; j++) {
                prompt[j] = token_of(i, j, V);
                bn_sampler_accept(smp[i], prompt[j]);
            }
            if (bn_decode(ctx[i], prompt, PROMPT, 0, err, sizeof err) != 0) fail_msg("%s", err);
        }
        for (int t = 0; t < STEPS; t++) {
            for (int i = 0; i < N_SEQ; i++) {
                next[i] = bn_sampler_sample(smp[i], bn_get_logits(ctx[i], -1));
                bn_sampler_accept(smp[i], next[i]);
                (pass == 0 ? alone : together)[i][t] = next[i];
            }
            if (pass == 0) {
                for (int i = 0; i < N_SEQ; i++)
                    if (bn_decode(ctx[i], &next[i], 1, 0, err, sizeof err) != 0) fail_msg("%s", err);
            } else if (bn_decode_multi(ctx, next, N_SEQ, err, sizeof err) != 0) {
                fail_msg("bn_decode_multi: %s", err);
            }
        }
        for (int i = N_SEQ - 1; i >= 0; i--) {
            /* the passes did screen (or, with a whole-vocabulary sampler
             * among them, compute the rows whole) */
            bn_head_stats st;
            bn_context_head_stats(ctx[i], &st);
            if (with_full_vocab && pass == 1) assert_true(st.full_rows >= STEPS);
            else if (i != 3 || !with_full_vocab) assert_true(st.screened_rows >= STEPS);
            bn_context_set_sampler(ctx[i], NULL);
            bn_sampler_free(smp[i]);
            bn_context_free(ctx[i]);
        }
    }
    for (int i = 0; i < N_SEQ; i++)
        for (int t = 0; t < STEPS; t++)
            if (alone[i][t] != together[i][t])
                fail_msg("sequence %d step %d: %d together, %d alone", i, t, together[i][t], alone[i][t]);
}

static void test_exact_head(void **state) {
    (void)state;
    const shape sh = {"b158-exact", {FX_DIMS(2, 256, 4, 2, 256, 320)}, BN_HEAD_EXACT, 0};
    bn_model *m = load_shape(&sh);
    run_exact(m, 0);
    run_exact(m, 1);
    bn_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_exact_head),
        cmocka_unit_test(test_bundled_model),
        cmocka_unit_test(test_shared_mid_2b4t),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
