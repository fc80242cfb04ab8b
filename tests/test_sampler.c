/* Sampler: each filter of the chain on hand-built logits, greedy ties,
 * penalties, determinism of the seeded draw. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "bitnet.h"

/* Params with every filter off: each test switches on what it checks. */
static bn_sampler_params plain(float temp) {
    bn_sampler_params p = bn_sampler_default_params();
    p.seed = 1234;
    p.temp = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

/* Draws `n` tokens and counts how often each id comes out. */
static void histogram(bn_sampler *s, const float *logits, int n, int *counts, int nv) {
    memset(counts, 0, (size_t)nv * sizeof *counts);
    for (int i = 0; i < n; i++) {
        int32_t id = bn_sampler_sample(s, logits);
        assert_true(id >= 0 && id < nv);
        counts[id]++;
    }
}

static void test_defaults(void **state) {
    (void)state;
    bn_sampler_params p = bn_sampler_default_params();
    assert_int_equal(p.seed, BN_SEED_RANDOM);
    assert_true(p.temp == 0.8f);
    assert_int_equal(p.top_k, 40);
    assert_true(p.top_p == 0.95f);
    assert_true(p.min_p == 0.05f);
    assert_true(p.repeat_penalty == 1.0f);
    assert_int_equal(p.repeat_last_n, 64);
    assert_true(p.freq_penalty == 0.0f && p.presence_penalty == 0.0f);
}

static void test_greedy_lowest_id_on_ties(void **state) {
    (void)state;
    float logits[6] = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 3.0f};
    bn_sampler_params p = plain(0.0f);
    bn_sampler *s = bn_sampler_new(&p, 6);
    assert_non_null(s);
    for (int i = 0; i < 5; i++) assert_int_equal(bn_sampler_sample(s, logits), 1);
    p.temp = -1.0f;                 /* any temp <= 0 is greedy */
    bn_sampler *g = bn_sampler_new(&p, 6);
    assert_int_equal(bn_sampler_sample(g, logits), 1);
    bn_sampler_free(g);
    bn_sampler_free(s);
}

static void test_top_k(void **state) {
    (void)state;
    enum { NV = 8 };
    float logits[NV] = {0.1f, 2.0f, 0.2f, 1.9f, 0.0f, 1.8f, 0.3f, -1.0f};
    int counts[NV];
    bn_sampler_params p = plain(1.0f);
    p.top_k = 2;
    bn_sampler *s = bn_sampler_new(&p, NV);
    histogram(s, logits, 2000, counts, NV);
    assert_true(counts[1] > 0 && counts[3] > 0);
    assert_int_equal(counts[1] + counts[3], 2000);
    bn_sampler_free(s);

    p.top_k = 1;                    /* top-1 is the argmax, even at high temp */
    p.temp = 5.0f;
    s = bn_sampler_new(&p, NV);
    histogram(s, logits, 200, counts, NV);
    assert_int_equal(counts[1], 200);
    bn_sampler_free(s);
}

static void test_top_k_ties_keep_lower_ids(void **state) {
    (void)state;
    enum { NV = 5 };
    float logits[NV] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    int counts[NV];
    bn_sampler_params p = plain(1.0f);
    p.top_k = 2;
    bn_sampler *s = bn_sampler_new(&p, NV);
    histogram(s, logits, 1000, counts, NV);
    assert_int_equal(counts[0] + counts[1], 1000);
    bn_sampler_free(s);
}

static void test_top_p(void **state) {
    (void)state;
    enum { NV = 4 };
    /* probabilities at temp 1: 0.5, 0.25, 0.125, 0.125 */
    float logits[NV] = {logf(0.125f), logf(0.5f), logf(0.125f), logf(0.25f)};
    int counts[NV];
    bn_sampler_params p = plain(1.0f);
    p.top_p = 0.7f;                 /* 0.5 < 0.7 <= 0.75: keep ids 1 and 3 */
    bn_sampler *s = bn_sampler_new(&p, NV);
    histogram(s, logits, 3000, counts, NV);
    assert_int_equal(counts[0] + counts[2], 0);
    assert_true(counts[1] > counts[3] && counts[3] > 0);
    bn_sampler_free(s);

    p.top_p = 0.5f;                 /* cumulative >= p reached by the first alone */
    s = bn_sampler_new(&p, NV);
    histogram(s, logits, 300, counts, NV);
    assert_int_equal(counts[1], 300);
    bn_sampler_free(s);
}

/* top-p measures probabilities at temperature 1 even when temp differs. */
static void test_top_p_uses_temp_one(void **state) {
    (void)state;
    enum { NV = 3 };
    float logits[NV] = {logf(0.6f), logf(0.3f), logf(0.1f)};
    int counts[NV];
    bn_sampler_params p = plain(0.1f);
    p.top_p = 0.85f;                /* at temp 1: 0.6, 0.9 -> keep 2 */
    bn_sampler *s = bn_sampler_new(&p, NV);
    histogram(s, logits, 20000, counts, NV);
    assert_int_equal(counts[2], 0);
    assert_true(counts[1] > 0);     /* temp 0.1 makes it rare (~0.1%) but possible */
    bn_sampler_free(s);
}

static void test_min_p(void **state) {
    (void)state;
    enum { NV = 4 };
    /* relative to the max: 1, 0.5, 0.09, 0.11 */
    float logits[NV] = {0.0f, logf(0.5f), logf(0.09f), logf(0.11f)};
    int counts[NV];
    bn_sampler_params p = plain(1.0f);
    p.min_p = 0.1f;
    bn_sampler *s = bn_sampler_new(&p, NV);
    histogram(s, logits, 4000, counts, NV);
    assert_int_equal(counts[2], 0);
    assert_true(counts[0] > 0 && counts[1] > 0 && counts[3] > 0);
    bn_sampler_free(s);
}

/* Temperature reshapes the distribution: at temp 1 the frequencies follow
 * the softmax; a low temperature concentrates on the best token. */
static void test_temperature(void **state) {
    (void)state;
    enum { NV = 2, N = 20000 };
    float logits[NV] = {0.0f, logf(3.0f)};  /* p = 0.25, 0.75 */
    int counts[NV];
    bn_sampler_params p = plain(1.0f);
    bn_sampler *s = bn_sampler_new(&p, NV);
    histogram(s, logits, N, counts, NV);
    double f = (double)counts[1] / N;
    assert_true(f > 0.73 && f < 0.77);
    bn_sampler_free(s);

    p.temp = 0.25f;                 /* p1 = 3^4 / (1 + 3^4) = 0.9878 */
    s = bn_sampler_new(&p, NV);
    histogram(s, logits, N, counts, NV);
    f = (double)counts[1] / N;
    assert_true(f > 0.98 && f < 0.995);
    bn_sampler_free(s);
}

static void test_determinism_and_reset(void **state) {
    (void)state;
    enum { NV = 50, N = 64 };
    float logits[NV];
    for (int i = 0; i < NV; i++) logits[i] = (float)((i * 37) % 11) * 0.3f;
    bn_sampler_params p = bn_sampler_default_params();
    p.seed = 42;
    bn_sampler *a = bn_sampler_new(&p, NV), *b = bn_sampler_new(&p, NV);
    assert_int_equal(bn_sampler_seed(a), 42);
    int32_t first[N];
    int differs = 0;
    for (int i = 0; i < N; i++) {
        first[i] = bn_sampler_sample(a, logits);
        assert_int_equal(first[i], bn_sampler_sample(b, logits));
        if (first[i] != first[0]) differs = 1;
    }
    assert_true(differs);           /* it is actually random */
    bn_sampler_reset(a);            /* re-seeded: the same sequence again */
    for (int i = 0; i < N; i++) assert_int_equal(first[i], bn_sampler_sample(a, logits));

    p.seed = 43;                    /* another seed gives another sequence */
    bn_sampler *c = bn_sampler_new(&p, NV);
    int same = 1;
    for (int i = 0; i < N; i++)
        if (bn_sampler_sample(c, logits) != first[i]) same = 0;
    assert_false(same);
    bn_sampler_free(a);
    bn_sampler_free(b);
    bn_sampler_free(c);
}

static void test_random_seed_is_reported(void **state) {
    (void)state;
    bn_sampler_params p = bn_sampler_default_params();
    bn_sampler *s = bn_sampler_new(&p, 10);
    uint32_t seed = bn_sampler_seed(s);
    assert_true(seed != BN_SEED_RANDOM);
    float logits[10] = {0, 1, 2, 3, 4, 5, 4, 3, 2, 1};
    int32_t seq[32];
    for (int i = 0; i < 32; i++) seq[i] = bn_sampler_sample(s, logits);
    p.seed = seed;                  /* replaying with the printed seed */
    bn_sampler *r = bn_sampler_new(&p, 10);
    for (int i = 0; i < 32; i++) assert_int_equal(seq[i], bn_sampler_sample(r, logits));
    bn_sampler_free(s);
    bn_sampler_free(r);
}

static void test_repeat_penalty(void **state) {
    (void)state;
    float logits[4] = {2.0f, 1.9f, -1.0f, -1.05f};
    bn_sampler_params p = plain(0.0f);
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 2;
    bn_sampler *s = bn_sampler_new(&p, 4);
    assert_int_equal(bn_sampler_sample(s, logits), 0);
    bn_sampler_accept(s, 0);        /* 2.0 / 1.1 = 1.82 < 1.9 */
    assert_int_equal(bn_sampler_sample(s, logits), 1);
    bn_sampler_accept(s, 1);        /* both penalized: 1.82 vs 1.727 */
    assert_int_equal(bn_sampler_sample(s, logits), 0);
    bn_sampler_accept(s, 3);        /* window of 2: {1, 3}; 0 is free again */
    bn_sampler_accept(s, 3);        /* window {3, 3}: id 1 free, 0 wins */
    assert_int_equal(bn_sampler_sample(s, logits), 0);
    bn_sampler_free(s);

    /* negative logits are multiplied: -1.0 * 1.1 = -1.1 < -1.05 */
    float neg[2] = {-1.0f, -1.05f};
    s = bn_sampler_new(&p, 2);
    assert_int_equal(bn_sampler_sample(s, neg), 0);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, neg), 1);
    bn_sampler_reset(s);            /* reset clears the history */
    assert_int_equal(bn_sampler_sample(s, neg), 0);
    bn_sampler_free(s);
}

static void test_frequency_presence(void **state) {
    (void)state;
    float logits[3] = {3.0f, 2.0f, 0.0f};
    bn_sampler_params p = plain(0.0f);
    p.freq_penalty = 0.4f;          /* 3 - 0.4*count */
    p.repeat_last_n = 8;
    bn_sampler *s = bn_sampler_new(&p, 3);
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 0);        /* 3 - 0.8 = 2.2 > 2 */
    assert_int_equal(bn_sampler_sample(s, logits), 0);
    bn_sampler_accept(s, 0);        /* 3 - 1.2 = 1.8 < 2 */
    assert_int_equal(bn_sampler_sample(s, logits), 1);
    bn_sampler_free(s);

    p.freq_penalty = 0.0f;
    p.presence_penalty = 0.9f;      /* once, however often: 3 - 0.9 = 2.1 */
    s = bn_sampler_new(&p, 3);
    for (int i = 0; i < 5; i++) bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, logits), 0);
    bn_sampler_free(s);
    p.presence_penalty = 1.1f;      /* 3 - 1.1 = 1.9 < 2 */
    s = bn_sampler_new(&p, 3);
    bn_sampler_accept(s, 0);
    assert_int_equal(bn_sampler_sample(s, logits), 1);
    bn_sampler_free(s);
}

/* The default chain on a large vocabulary only ever returns tokens among the
 * top 40 and within min-p of the best. */
static void test_default_chain_large_vocab(void **state) {
    (void)state;
    enum { NV = 5000 };
    static float logits[NV];
    for (int i = 0; i < NV; i++) logits[i] = (float)((i * 7919) % NV) / 500.0f;
    /* the 40 best have logit >= (NV-40)/500 = 9.92; max 9.998 */
    bn_sampler_params p = bn_sampler_default_params();
    p.seed = 7;
    bn_sampler *s = bn_sampler_new(&p, NV);
    for (int i = 0; i < 500; i++) {
        int32_t id = bn_sampler_sample(s, logits);
        assert_true(logits[id] >= (float)(NV - 40) / 500.0f);
    }
    bn_sampler_free(s);
}

/* llama-server's n_probs (bn_sampler_candidates): after a draw, the
 * candidates it chose from with their probabilities, then top-k's next
 * ones with 0; after a greedy pick, the largest penalized logits and their
 * softmax among themselves. */
static void test_candidates(void **state) {
    (void)state;
    const float logits[6] = {1.0f, 3.0f, 2.0f, 0.5f, 2.0f, -1.0f};
    int32_t ids[6];
    float probs[6];
    /* top-k 4, min-p cuts to ids 1, 2, 4 (logit >= 3 + ln 0.3), temperature 2 */
    bn_sampler_params p = plain(2.0f);
    p.top_k = 4;
    p.min_p = 0.3f;
    bn_sampler *s = bn_sampler_new(&p, 6);
    assert_non_null(s);
    int32_t id = bn_sampler_sample(s, logits);
    assert_int_equal(bn_sampler_candidates(s, 6, ids, probs), 4);   /* no more than top-k */
    const int32_t want[4] = {1, 2, 4, 0};
    double z = exp(1.5) + 2 * exp(1.0), sum = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(ids[i], want[i]);
        sum += (double)probs[i];
    }
    assert_true(fabs((double)probs[0] - exp(1.5) / z) < 1e-6);
    assert_true(fabs((double)probs[1] - exp(1.0) / z) < 1e-6);
    assert_true(probs[3] == 0.0f);
    assert_true(fabs(sum - 1.0) < 1e-6);
    assert_true(id == 1 || id == 2 || id == 4);
    assert_int_equal(bn_sampler_candidates(s, 2, ids, probs), 2);
    bn_sampler_free(s);

    /* greedy with a repeat penalty on id 1 (3 -> 1.5): the 3 largest are
     * 2, 4 (ties by id) and 1, softmaxed among themselves at temperature 1 */
    p = plain(0.0f);
    p.repeat_penalty = 2.0f;
    s = bn_sampler_new(&p, 6);
    assert_non_null(s);
    bn_sampler_accept(s, 1);
    assert_int_equal(bn_sampler_sample(s, logits), 2);
    for (int pass = 0; pass < 2; pass++) {  /* a second call gives the same */
        assert_int_equal(bn_sampler_candidates(s, 3, ids, probs), 3);
        assert_int_equal(ids[0], 2);
        assert_int_equal(ids[1], 4);
        assert_int_equal(ids[2], 1);
        z = 2 * exp(2.0) + exp(1.5);
        assert_true(fabs((double)probs[0] - exp(2.0) / z) < 1e-6);
        assert_true(fabs((double)probs[2] - exp(1.5) / z) < 1e-6);
    }
    bn_sampler_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_greedy_lowest_id_on_ties),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_k_ties_keep_lower_ids),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_top_p_uses_temp_one),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_determinism_and_reset),
        cmocka_unit_test(test_random_seed_is_reported),
        cmocka_unit_test(test_repeat_penalty),
        cmocka_unit_test(test_frequency_presence),
        cmocka_unit_test(test_default_chain_large_vocab),
        cmocka_unit_test(test_candidates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
