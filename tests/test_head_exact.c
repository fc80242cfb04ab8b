/* The exact LM head (docs/NUMERICS.md, Exact head; src/head_exact.c):
 *   - the bound: |F16 logit - Q8 screen| <= B on every row, every kernel
 *     variant, K with and without a dot_f16 tail, ordinary, extreme and
 *     adversarial inputs (x along a row's quantization error, where
 *     Cauchy-Schwarz is tight, so a bound missing a term fails here);
 *   - the per-row norms of every variant bit-identical to the definition's;
 *   - the candidates (bn_head_exact_candidates) against a brute force, with
 *     ties at the threshold and in the order, forced rows, k = 1, 40, all;
 *   - the selection: with bn_context_set_exact_head(k, ids) the k largest
 *     logits (ids, order, bits) and the forced ids equal the F16 head's, and
 *     every other entry is below them, at 1 and 2 threads, on the bundled
 *     model (committed) and the ../shared models when present;
 *   - end to end: a sampler tied to the context draws the F16 head's tokens
 *     (greedy, and seeded top-k with a repetition penalty). */
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
#include "head_exact.h"
#include "helper_fixtures.h"
#include "kernels.h"

#define KERNEL_TEST_SEED 0x6a09e667f3bcc908ull
#include "kernel_test_util.h"

static float urand(void) {     /* [-1, 1) */
    return (float)((int32_t)rnd() >> 8) / 8388608.0f;
}

static float round_up_float(double v) {
    float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

/* Rows of mixed character: ordinary, zero blocks, tiny scales (f16
 * subnormal or rounding to zero), large magnitudes. */
static void make_rows(uint16_t *w, int K, int M) {
    for (int m = 0; m < M; m++) {
        const float amp = 0.02f + 0.3f * (urand() + 1.0f);
        for (int b = 0; b < K / 32; b++) {
            const uint32_t kind = rnd() % 12;
            for (int i = 0; i < 32; i++) {
                float v;
                switch (kind) {
                case 0: v = 0.0f; break;
                case 1: v = urand() * 1e-6f; break;
                case 2: v = urand() * 1e-9f; break;
                case 3: v = urand() * 3000.0f; break;
                default: v = urand() * amp;
                }
                w[(size_t)m * K + 32 * b + i] = bn_f32_to_f16(v);
            }
        }
    }
}

/* Inputs: ordinary, outlier channels, zero blocks, huge range, and x along
 * row 0's quantization error e (then sum e_k x_k = ||e|| ||x||). */
static void make_x(float *x, int K, int kind, const uint16_t *w0, const uint8_t *wq, int R) {
    for (int k = 0; k < K; k++) {
        switch (kind) {
        case 0: x[k] = urand() * 2.0f; break;
        case 1: x[k] = k % 97 == 3 ? 400.0f * urand() : urand(); break;
        case 2: x[k] = (k / 32) % 2 ? 0.0f : urand() * 10.0f; break;
        case 3: x[k] = urand() * ldexpf(1.0f, (int)(rnd() % 30) - 15); break;
        default: {
            const uint8_t *tile = wq;          /* row 0: tile 0, r = 0 */
            const int8_t q = (int8_t)tile[(size_t)32 * R * (k / 32) + (size_t)4 * R * ((k % 32) / 4) + k % 4];
            uint16_t dh;
            memcpy(&dh, tile + (size_t)R * K + 2 * ((size_t)R * (k / 32)), 2);
            const float e = bn_f16_to_f32(w0[k]) - (float)q * bn_f16_to_f32(dh);
            x[k] = e * 1e3f;
        }
        }
    }
}

static void check_bound(const bn_kernels *kv, int K, int M) {
    const bn_format_traits *q8 = kv->fmt[BN_FMT_Q8_HEAD], *f16 = kv->fmt[BN_FMT_F16];
    uint16_t *w = aalloc(sizeof(uint16_t) * (size_t)K * M);
    make_rows(w, K, M);
    /* row 0 ordinary, so the adversarial input has an error to follow */
    for (int k = 0; k < K; k++) w[k] = bn_f32_to_f16(urand() * 0.5f);
    uint8_t *wq = aalloc(q8->packed_size(K, M));
    q8->pack(w, K, M, 0, M, wq);
    float *norms = aalloc(sizeof(float) * 2 * (size_t)M);
    for (int m = 0; m < M; m++) {
        double e2, d2;
        kv->head_q8_row_norms(q8->tile_rows, wq, w + (size_t)m * K, K, m, &e2, &d2);
        norms[2 * m] = round_up_float(sqrt(e2) * (1.0 + 0x1p-30));
        norms[2 * m + 1] = round_up_float(sqrt(d2) * (1.0 + 0x1p-30));
    }
    float *x = aalloc(sizeof(float) * K), *y = aalloc(sizeof(float) * M), *f = aalloc(sizeof(float) * M);
    uint8_t *xq = aalloc(q8->act_size(K));
    uint16_t *xh = aalloc(f16->act_size(K));
    for (int kind = 0; kind < 5; kind++) {
        make_x(x, K, kind, w, wq, q8->tile_rows);
        q8->act_prep(x, K, xq);
        f16->act_prep(x, K, xh);
        q8->gemv(wq, K, M, xq, 0, M, y);
        f16->gemv(w, K, M, xh, 0, M, f);
        bn_head_token_norms t;
        bn_head_exact_token_norms(K, xh, xq, &t);
        for (int m = 0; m < M; m++) {
            if (!isfinite(f[m]) || !isfinite(y[m])) continue;   /* rescored whole (head_exact.c) */
            float lo, up;
            bn_head_exact_bounds(norms + 2 * m, &t, y[m], &lo, &up);
            if (!(lo <= f[m] && f[m] <= up))
                fail_msg("%s K=%d kind %d row %d: f = %a outside [%a, %a] around y = %a", kv->name, K, kind, m,
                         (double)f[m], (double)lo, (double)up, (double)y[m]);
        }
        if (kind == 4) {
            /* Along e the weight term is all of the error: a bound without
             * ||e|| ||xh|| would fail here. */
            const double e_term = (double)norms[0] * t.xh;
            const double err = fabs((double)f[0] - (double)y[0]);
            if (!(err > 0.5 * e_term))
                fail_msg("%s K=%d: adversarial error %g not near ||e|| ||xh|| = %g", kv->name, K, err,
                         e_term);
        }
    }
    free(w);
    free(wq);
    free(norms);
    free(x);
    free(y);
    free(f);
    free(xq);
    free(xh);
}

static void test_bound(void **state) {
    (void)state;
    const int Ks[] = {256, 288, 2560};
    for (int v = 0; v < n_all; v++)
        for (int i = 0; i < 3; i++) check_bound(all[v], Ks[i], Ks[i] == 2560 ? 24 : 67);
}

/* Every variant's row norms (on its own packing) have the bits of the
 * definition's on ref's packing: ordinary rows, zero and tiny blocks
 * (f16 subnormals), and rows with an Inf or a NaN weight, whose norms are
 * Inf. Also checks that the lanes' sums are not one chain: a variant that
 * summed in another order would differ in some row. */
static void test_row_norms_variants(void **state) {
    (void)state;
    const int K = 288, M = 37;
    uint16_t *w = aalloc(sizeof(uint16_t) * (size_t)K * M);
    make_rows(w, K, M);
    w[(size_t)5 * K + 40] = 0x7c00;             /* +Inf in row 5 */
    w[(size_t)6 * K + 287] = 0xfe01;            /* a NaN in row 6 */
    const bn_format_traits *rq8 = all[0]->fmt[BN_FMT_Q8_HEAD];
    uint8_t *rq = aalloc(rq8->packed_size(K, M));
    rq8->pack(w, K, M, 0, M, rq);
    double *ref = aalloc(sizeof(double) * 2 * (size_t)M);
    int chain_differs = 0;
    for (int m = 0; m < M; m++) {
        bn_head_q8_row_norms(1, rq, w + (size_t)m * K, K, m, &ref[2 * m], &ref[2 * m + 1]);
        if (m == 5 || m == 6) {
            assert_true(isinf(ref[2 * m]) && isinf(ref[2 * m + 1]));
            continue;
        }
        double chain = 0.0;                     /* one K-long chain of the same squares */
        for (int k = 0; k < K; k++) {
            const int8_t q = (int8_t)rq[(size_t)m * K / 16 * 17 + k];
            uint16_t dh;
            memcpy(&dh, rq + (size_t)m * K / 16 * 17 + K + 2 * (k / 32), 2);
            const double deq = (double)q * (double)bn_f16_to_f32(dh);
            chain += deq * deq;
        }
        chain_differs |= chain != ref[2 * m + 1];
        assert_true(fabs(chain - ref[2 * m + 1]) <= 1e-12 * chain);
    }
    assert_true(chain_differs);
    for (int v = 1; v < n_all; v++) {
        const bn_format_traits *q8 = all[v]->fmt[BN_FMT_Q8_HEAD];
        uint8_t *wq = aalloc(q8->packed_size(K, M));
        q8->pack(w, K, M, 0, M, wq);
        for (int m = 0; m < M; m++) {
            double e2, d2;
            all[v]->head_q8_row_norms(q8->tile_rows, wq, w + (size_t)m * K, K, m, &e2, &d2);
            if (memcmp(&e2, &ref[2 * m], sizeof e2) != 0 || memcmp(&d2, &ref[2 * m + 1], sizeof d2) != 0)
                fail_msg("%s row %d: norms %a %a, ref %a %a", all[v]->name, m, e2, d2, ref[2 * m],
                         ref[2 * m + 1]);
        }
        free(wq);
    }
    free(w);
    free(rq);
    free(ref);
}

/* ---- the candidates against their definition ----------------------------------- */

static int cand_before(float ua, int ra, float ub, int rb) {
    return ua > ub || (ua == ub && ra < rb);
}

/* bn_head_exact_candidates against a brute force: tau the k-th largest lo
 * of the rows not forced, the candidates those rows with up >= tau, put by
 * bn_head_cand_order by up (largest first) then row. Logits and norms from a few values, so lower
 * bounds tie at tau and upper bounds tie in the order; V around the block
 * of 16 and with tails. */
static void check_candidates(int V, int k_kind, int n_values) {
    float *y = aalloc(sizeof(float) * V), *norms = aalloc(sizeof(float) * 2 * V);
    float *lo = aalloc(sizeof(float) * V), *up = aalloc(sizeof(float) * V), *heap = aalloc(sizeof(float) * V);
    float *sorted = aalloc(sizeof(float) * V);
    uint8_t *forced = aalloc((size_t)V);
    bn_head_cand *cand = aalloc(sizeof(bn_head_cand) * V), *want = aalloc(sizeof(bn_head_cand) * V);
    /* f0 = 0 (smaller than any real one) makes a row with y = 0 and zero
     * norms have lo = up = 0: upper bounds equal to tau. */
    bn_head_token_norms t = {.fe = 0.5f, .fw = 0.25f, .f0 = n_values == 2 ? 0.0f : 0x1p-100f};
    int n_free = 0;
    for (int m = 0; m < V; m++) {
        y[m] = (float)((int)(rnd() % (uint32_t)n_values) - n_values / 2) * 0.125f;    /* 0 among them */
        norms[2 * m] = (float)(rnd() % 3) * 0.0625f;
        norms[2 * m + 1] = (float)(rnd() % 2) * 0.125f;
        forced[m] = rnd() % 8 == 0;
        n_free += !forced[m];
    }
    if (n_free == 0) forced[0] = 0, n_free = 1;
    const int k = k_kind == 0 ? 1 : k_kind == 1 ? (n_free < 40 ? n_free : 40) : n_free;
    int n = 0;
    for (int m = 0; m < V; m++) {
        bn_head_exact_bounds(norms + 2 * m, &t, y[m], &lo[m], &up[m]);
        if (!forced[m]) sorted[n++] = lo[m];
    }
    /* tau by sorting (descending, insertion: V is small) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && sorted[j - 1] < sorted[j]; j--) {
            const float s = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = s;
        }
    const float tau_want = sorted[k - 1];
    int n_want = 0;
    for (int m = 0; m < V; m++) {
        if (forced[m] || !(up[m] >= tau_want)) continue;
        int j = n_want++;
        for (; j > 0 && cand_before(up[m], m, want[j - 1].upper, want[j - 1].row); j--) want[j] = want[j - 1];
        want[j] = (bn_head_cand){up[m], m};
    }
    float tau;
    const int got = bn_head_exact_candidates(y, norms, V, &t, forced, k, heap, cand, &tau);
    /* in order in steps, as the rescoring asks for them */
    for (int done = 0, step = 1; got > 0 && done < got; done += step, step = 2 * step + 1)
        bn_head_cand_order(cand + done, got - done, step);
    if (got != n_want || tau != tau_want)
        fail_msg("V=%d k=%d: %d candidates, tau %a; want %d, %a", V, k, got, (double)tau, n_want, (double)tau_want);
    for (int i = 0; i < got; i++)
        if (cand[i].row != want[i].row || cand[i].upper != want[i].upper)
            fail_msg("V=%d k=%d: candidate %d is row %d (%a), want %d (%a)", V, k, i, cand[i].row,
                     (double)cand[i].upper, want[i].row, (double)want[i].upper);
    /* A non-finite logit, or a NaN bound (an Inf norm times a zero
     * coefficient), makes the caller recompute every row. */
    const int m = (int)(rnd() % (uint32_t)V);
    const float keep = y[m];
    y[m] = k_kind == 0 ? NAN : INFINITY;
    assert_int_equal(bn_head_exact_candidates(y, norms, V, &t, forced, k, heap, cand, &tau), -1);
    y[m] = keep;
    norms[2 * m] = INFINITY;
    t.fe = 0.0f;
    assert_int_equal(bn_head_exact_candidates(y, norms, V, &t, forced, k, heap, cand, &tau), -1);
    free(y);
    free(norms);
    free(lo);
    free(up);
    free(heap);
    free(sorted);
    free(forced);
    free(cand);
    free(want);
}

static void test_candidates(void **state) {
    (void)state;
    const int Vs[] = {1, 2, 15, 16, 17, 40, 41, 64, 100, 333, 1000};
    for (size_t i = 0; i < sizeof Vs / sizeof Vs[0]; i++)
        for (int kk = 0; kk < 3; kk++)
            for (int nv = 2; nv <= 64; nv *= 4) check_candidates(Vs[i], kk, nv);
}

/* ---- the selection on real models --------------------------------------------- */

/* Candidate a ranks before b: larger logit, then lower id (the sampler's). */
static int better(float la, int ia, float lb, int ib) {
    return la > lb || (la == lb && ia < ib);
}

/* The k best ids of a row, best first (k small: selection by insertion). */
static void top_ids(const float *l, int V, int k, int *out) {
    int n = 0;
    for (int id = 0; id < V; id++) {
        if (n == k && !better(l[id], id, l[out[k - 1]], out[k - 1])) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && better(l[id], id, l[out[j - 1]], out[j - 1])) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = id;
    }
}

static bn_model *load(const char *path, int head) {
    return fx_load(path, NULL, head);
}

static bn_context *context(bn_model *m, int threads) {
    return fx_context(m, (bn_context_params){.n_ctx = 64, .n_threads = threads});
}

/* Decodes n tokens one at a time on both heads; after each, the exact head's
 * row must agree with the F16 row on the k best and on the forced ids. */
static void check_selection(const char *path, int threads) {
    bn_model *mf = load(path, BN_HEAD_F16), *mx = load(path, BN_HEAD_EXACT);
    bn_context *cf = context(mf, threads), *cx = context(mx, threads);
    const int V = bn_model_hparams(mf)->n_vocab;
    const int ks[] = {1, 2, 40};
    int top_f[40], top_x[40];
    char err[256];
    uint64_t x = 0x1234567u;
    int32_t tok = 1;
    for (int step = 0; step < 12; step++) {
        const int k = ks[step % 3];
        int32_t ids[5];
        int n_ids = step % 2 ? 5 : 0;
        for (int i = 0; i < n_ids; i++) ids[i] = (int32_t)((x = x * 6364136223846793005ull + 1) >> 40) % V;
        assert_int_equal(bn_context_set_exact_head(cx, k, ids, n_ids, err, sizeof err), 0);
        assert_int_equal(bn_decode(cf, &tok, 1, 0, err, sizeof err), 0);
        assert_int_equal(bn_decode(cx, &tok, 1, 0, err, sizeof err), 0);
        const float *lf = bn_get_logits(cf, -1), *lx = bn_get_logits(cx, -1);
        top_ids(lf, V, k, top_f);
        top_ids(lx, V, k, top_x);
        for (int i = 0; i < k; i++) {
            if (top_f[i] != top_x[i] || memcmp(&lf[top_f[i]], &lx[top_x[i]], 4) != 0)
                fail_msg("%s, %d threads, step %d, k %d: rank %d is %d (%a) with f16, %d (%a) exact",
                         path, threads, step, k, i, top_f[i], (double)lf[top_f[i]], top_x[i],
                         (double)lx[top_x[i]]);
        }
        for (int i = 0; i < n_ids; i++)
            if (memcmp(&lf[ids[i]], &lx[ids[i]], 4) != 0)
                fail_msg("%s: forced id %d: %a vs %a", path, ids[i], (double)lf[ids[i]], (double)lx[ids[i]]);
        tok = top_f[0];
    }
    bn_head_stats hs;
    bn_context_head_stats(cx, &hs);
    assert_int_equal(hs.screened_rows, 12);
    /* The screen must spare most rows, or the test proves nothing. */
    assert_true(hs.rescored_rows < (uint64_t)V * 12 / 2);
    print_message("%s, %d threads: %.1f rows rescored per token of %d\n", path, threads,
                  (double)hs.rescored_rows / 12.0, V);
    /* Every row wanted (the default): the F16 rows themselves. */
    assert_int_equal(bn_context_set_exact_head(cx, 0, NULL, 0, err, sizeof err), 0);
    assert_int_equal(bn_decode(cf, &tok, 1, 0, err, sizeof err), 0);
    assert_int_equal(bn_decode(cx, &tok, 1, 0, err, sizeof err), 0);
    assert_memory_equal(bn_get_logits(cf, -1), bn_get_logits(cx, -1), (size_t)V * sizeof(float));
    bn_context_free(cf);
    bn_context_free(cx);
    bn_model_free(mf);
    bn_model_free(mx);
}

/* Tokens drawn by a sampler on each head (tied to the exact one). */
static void check_sampling(const char *path, int threads, float temp) {
    bn_model *mf = load(path, BN_HEAD_F16), *mx = load(path, BN_HEAD_EXACT);
    bn_context *c[2] = {context(mf, threads), context(mx, threads)};
    const int V = bn_model_hparams(mf)->n_vocab;
    bn_sampler_params sp = bn_sampler_default_params();
    sp.seed = 42;
    sp.temp = temp;
    sp.repeat_penalty = 1.3f;
    sp.repeat_last_n = 16;
    int32_t out[2][40];
    char err[256];
    for (int h = 0; h < 2; h++) {
        bn_sampler *s = bn_sampler_new(&sp, V);
        assert_non_null(s);
        if (h == 1) bn_context_set_sampler(c[h], s);
        int32_t tok = 1;
        bn_sampler_accept(s, tok);
        for (int i = 0; i < 40; i++) {
            assert_int_equal(bn_decode(c[h], &tok, 1, 0, err, sizeof err), 0);
            tok = bn_sampler_sample(s, bn_get_logits(c[h], -1));
            bn_sampler_accept(s, tok);
            out[h][i] = tok;
        }
        bn_context_set_sampler(c[h], NULL);
        bn_sampler_free(s);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
    for (int h = 0; h < 2; h++) bn_context_free(c[h]);
    bn_model_free(mf);
    bn_model_free(mx);
}

static const char *bundled(void) {
    return BN_SOURCE_DIR "/models/tiny-shakespeare.gguf";
}

static void test_selection_bundled(void **state) {
    (void)state;
    for (int t = 1; t <= 2; t++) check_selection(bundled(), t);
}

static void test_sampling_bundled(void **state) {
    (void)state;
    for (int t = 1; t <= 2; t++) {
        check_sampling(bundled(), t, 0.0f);
        check_sampling(bundled(), t, 0.8f);
    }
}

/* The ../shared models with an F16 head (a Q8_0 one is used as stored).
 * Not under an emulator (tools/test-aarch64.sh sets BN_EMULATOR): there the
 * bound and the bundled model test the NEON tables, and these take long. */
static void test_shared_models(void **state) {
    (void)state;
    const char *emu = getenv("BN_EMULATOR");
    if (emu && *emu) skip();
    static const char *names[] = {"mid-2b4t", "fam-falcon3", "fam-llama-untied", "mini-llama3"};
    int found = 0;
    for (int i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/models/%s.gguf", BN_SHARED_DIR, names[i]);
        if (access(path, R_OK) != 0) continue;
        found++;
        for (int t = 1; t <= 2; t++) {
            check_selection(path, t);
            check_sampling(path, t, 0.0f);
            check_sampling(path, t, 0.8f);
        }
    }
    if (!found) skip();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_row_norms_variants),
        cmocka_unit_test(test_candidates),
        cmocka_unit_test(test_selection_bundled),
        cmocka_unit_test(test_sampling_bundled),
        cmocka_unit_test(test_shared_models),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
