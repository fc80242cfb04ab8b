/* Attention over long contexts (src/attention.c, kernels/attn_*.c):
 *   - every variant's attn_qk, attn_softmax and attn_pv give the bits of the
 *     reference kernels (attn_ref.c, the definition of the order), on odd
 *     sizes and on score ranges that reach the exp cut-off; P·V cut into
 *     tiles equals one pass;
 *   - bn_attn_exp is within 2 ulp of exp over [-87, 0];
 *   - a model whose context passes 256 cells (rows beyond take the long
 *     path): the whole prompt as one batch, cut into odd batches, and token
 *     by token, on 1, 2 and 3 threads and with every kernel variant, give
 *     the same logits bit for bit; the rows up to 256 cells match the plain
 *     reference (bitnet.cpp's decode numerics) as closely as before, the
 *     later rows within the reference tolerance. */
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
#include "helper_fixtures.h"
#include "kernels.h"
#include "model.h"

/* ---- kernels against the reference ------------------------------------------------- */

static uint32_t g_rng = 12345;

static float frand(void) {     /* uniform in [-1, 1) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)((int32_t)(g_rng >> 8) - (1 << 23)) / (float)(1 << 23);
}

static float f16_value(float x) {
    return bn_f16_to_f32(bn_f32_to_f16(x));
}

static void test_kernels_match_reference(void **state) {
    (void)state;
    const bn_kernels *all[16];
    int n_all = bn_kernels_all(all, 16);
    enum { MAXR = 9, MAXK = 70, MAXD = 128, MAXT = 600 };
    static float q[MAXR * MAXD], s_ref[MAXR * MAXK], s_got[MAXR * MAXK];
    static uint16_t k[MAXK * MAXD], vt[17 * MAXT];
    static float p[MAXR * MAXT], acc_ref[MAXR * 17 * 8], acc_got[MAXR * 17 * 8];
    static float row_ref[MAXT + 40], row_got[MAXT + 40];
    for (int i = 0; i < MAXR * MAXD; i++) q[i] = f16_value(4.0f * frand());
    for (int i = 0; i < MAXK * MAXD; i++) k[i] = bn_f32_to_f16(4.0f * frand());
    for (int i = 0; i < 17 * MAXT; i++) vt[i] = bn_f32_to_f16(frand());
    for (int i = 0; i < MAXR * MAXT; i++) p[i] = f16_value(frand() * frand());

    for (int v = 0; v < n_all; v++) {
        const bn_kernels *kn = all[v];
        const int hds[] = {8, 24, 64, 128};
        for (int hi = 0; hi < 4; hi++)
            for (int nq = 1; nq <= MAXR; nq += 2)
                for (int nk = 1; nk <= MAXK; nk += 23) {
                    int hd = hds[hi];
                    memset(s_ref, 0, sizeof s_ref);
                    memset(s_got, 0, sizeof s_got);
                    bn_attn_qk_ref(q, MAXD, nq, k, nk, hd, s_ref, MAXK);
                    kn->attn_qk(q, MAXD, nq, k, nk, hd, s_got, MAXK);
                    if (memcmp(s_ref, s_got, sizeof s_ref) != 0)
                        fail_msg("%s attn_qk differs (hd %d, nq %d, nk %d)", kn->name, hd, nq, nk);
                }
        /* softmax: wide score ranges (some cells fall below the exp cut-off) */
        const int ns[] = {1, 7, 8, 9, 31, 300, 599};
        const float spread[] = {1.0f, 30.0f, 400.0f};
        for (int ni = 0; ni < 7; ni++)
            for (int si = 0; si < 3; si++) {
                int n = ns[ni], n_pad = (n + 7) / 8 * 8 + 8;
                for (int t = 0; t < n; t++) row_ref[t] = row_got[t] = spread[si] * frand();
                for (int t = n; t < n_pad; t++) row_ref[t] = row_got[t] = 99.0f;
                bn_attn_softmax_ref(row_ref, n, n_pad, 0.125f);
                kn->attn_softmax(row_got, n, n_pad, 0.125f);
                if (memcmp(row_ref, row_got, (size_t)n_pad * sizeof(float)) != 0)
                    fail_msg("%s attn_softmax differs (n %d, spread %g)", kn->name, n, (double)spread[si]);
                double sum = 0;
                for (int t = 0; t < n; t++) sum += (double)row_ref[t];
                assert_true(fabs(sum - 1.0) < 0.01 + 1e-3 * n);
                assert_true(row_ref[n_pad - 1] == 0.0f);
            }
        /* P·V: one pass, and cut into tiles at multiples of 8 */
        for (int np = 1; np <= MAXR; np += 2)
            for (int nd = 1; nd <= 17; nd += 4) {
                int T = 8 * (1 + (np * 37 + nd * 11) % 70);
                memset(acc_ref, 0, sizeof acc_ref);
                memset(acc_got, 0, sizeof acc_got);
                bn_attn_pv_ref(p, MAXT, np, 0, T, vt, MAXT, nd, acc_ref);
                int cut = T / 16 * 8;
                kn->attn_pv(p, MAXT, np, 0, cut, vt, MAXT, nd, acc_got);
                kn->attn_pv(p, MAXT, np, cut, T, vt, MAXT, nd, acc_got);
                if (memcmp(acc_ref, acc_got, sizeof acc_ref) != 0)
                    fail_msg("%s attn_pv differs (np %d, nd %d, T %d)", kn->name, np, nd, T);
            }
        print_message("  %-10s attention kernels identical to the reference\n", kn->name);
    }
}

static void test_exp(void **state) {
    (void)state;
    assert_true(bn_attn_exp(0.0f) == 1.0f);
    assert_true(bn_attn_exp(-0.0f) == 1.0f);
    assert_true(bn_attn_exp(-87.5f) == 0.0f);
    assert_true(bn_attn_exp(-1000.0f) == 0.0f);
    double worst = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.0f * (float)i / 400000.0f;
        float got = bn_attn_exp(x);
        double want = exp((double)x);
        float fw = (float)want;
        double ulp = (double)nextafterf(fw, INFINITY) - (double)fw;
        double e = fabs((double)got - want) / ulp;
        if (e > worst) worst = e;
    }
    print_message("  bn_attn_exp: worst error %.2f ulp over [-87, 0]\n", worst);
    assert_true(worst <= 2.0);
}

/* ---- the forward pass past 256 cells ---------------------------------------------------- */

#define N_TOK 300

/* max|a - b| and mean|a - b| over rows [r0, r1), in units of the standard
 * deviation of a over those rows. */
static void diff_sigma(const float *a, const float *b, int r0, int r1, int V, double *max,
                       double *mean) {
    fx_diff d = fx_compare(a + (size_t)r0 * V, b + (size_t)r0 * V, (size_t)(r1 - r0) * V);
    *max = d.max / d.sigma;
    *mean = d.mean / d.sigma;
}

/* Logits of every position: one bn_decode per batch of n_batch tokens, or
 * one per token. */
static float *run(bn_model *m, int n_threads, int n_batch, const int32_t *t, int n, int by_token) {
    bn_context *c = fx_context(m, (bn_context_params){.n_threads = n_threads, .n_batch = n_batch,
                                                      .n_outputs_max = n});
    float *out = fx_logits(c, t, n, by_token);
    bn_context_free(c);
    return out;
}

static void test_long_context_forward(void **state) {
    (void)state;
    char path[512];
    fx_model_path(path, sizeof path, "test_attention");
    fx_write_model(path, &(bn_synth_config){FX_DIMS(2, 256, 4, 2, 256, 320), .seed = 4242});
    bn_model *m = fx_load(path, "ref", BN_HEAD_F16);
    int V = m->hp.n_vocab;
    size_t n_logits = (size_t)N_TOK * V;
    int32_t t[N_TOK];
    fx_lcg_tokens(t, N_TOK, V, 99);
    t[0] = bn_token_bos(bn_model_tokenizer(m));

    /* the plain reference: bitnet.cpp's decode numerics everywhere */
    float *ref = fx_ref_logits(m, t, N_TOK);

    float *base = run(m, 1, 512, t, N_TOK, 0);
    double mx, mean;
    diff_sigma(ref, base, 0, 256, V, &mx, &mean);
    print_message("  rows 0-255 (short path) vs reference: max %.2e sigma, mean %.2e sigma\n", mx, mean);
    assert_true(mx <= 0.01);
    diff_sigma(ref, base, 256, N_TOK, V, &mx, &mean);
    print_message("  rows 256-299 (long path) vs reference: max %.2e sigma, mean %.2e sigma\n", mx, mean);
    assert_true(mx > 0);                /* the long path ran: its order is not bitnet.cpp's */
    assert_true(mx <= 0.25 && mean <= 0.04);

    /* batches, cuts, threads: the same bits */
    const int threads[] = {2, 3, 1, 2};
    const int batches[] = {512, 512, 7, 100};
    for (int i = 0; i < 4; i++) {
        float *got = run(m, threads[i], batches[i], t, N_TOK, 0);
        fx_same_bits(base, got, n_logits, "-t %d -b %d differs from -t 1 -b 512", threads[i], batches[i]);
        free(got);
    }
    float *seq = run(m, 2, 512, t, N_TOK, 1);
    fx_same_bits(base, seq, n_logits, "token by token differs from -t 1 -b 512");
    free(seq);
    bn_model_free(m);

    /* every variant this CPU runs: the same bits */
    const bn_kernels *avail[8];
    int n_avail = bn_kernels_available(avail, 8);
    for (int k = 0; k < n_avail; k++) {
        m = fx_load(path, avail[k]->name, BN_HEAD_F16);
        float *got = run(m, 2, 64, t, N_TOK, 0);
        fx_same_bits(base, got, n_logits, "variant %s differs from ref", avail[k]->name);
        print_message("  %-10s %d tokens past 256 cells: identical to ref\n", avail[k]->name, N_TOK);
        free(got);
        bn_model_free(m);
    }
    free(base);
    free(ref);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_kernels_match_reference),
        cmocka_unit_test(test_long_context_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
