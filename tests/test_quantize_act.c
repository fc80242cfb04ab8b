/* quantize_act of every variant, bit-exact against a straightforward
 * transcription of docs/NUMERICS.md, BitLinear steps 1-4 (nearbyintf instead of the reference's
 * 1.5*2^23 trick, so the two roundings are checked against each other). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kernels.h"

static float spec_quantize(const float *x, int K, int8_t *q, int32_t *sum) {
    double amax = 1e-5;
    for (int i = 0; i < K; i++) amax = fmax(amax, fabs((double)x[i]));
    const float s = (float)(127.0 / amax);
    int32_t total = 0;
    for (int i = 0; i < K; i++) {
        volatile float prod = x[i] * s;         /* a float product, never fused */
        float r = nearbyintf(prod);             /* default mode: ties to even */
        int v = r > 127.0f ? 127 : r < -128.0f ? -128 : (int)r;
        q[i] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

static uint32_t seed = 12345;
static float frand(void) {
    seed = seed * 1664525u + 1013904223u;
    return (float)(seed >> 8) / 16777216.0f * 2.0f - 1.0f;
}

static void check_all(const float *x, int K) {
    const bn_kernels *ks[16];
    int n = bn_kernels_all(ks, 16);
    int8_t *want = malloc(K), *got = malloc(K);
    int32_t wsum, gsum;
    float ws = spec_quantize(x, K, want, &wsum);
    for (int v = 0; v < n; v++) {
        memset(got, 0x55, K);
        gsum = 0x12345678;
        float gs = ks[v]->quantize_act(x, K, got, &gsum);
        if (memcmp(&gs, &ws, sizeof gs) != 0)
            fail_msg("%s scale %a != %a", ks[v]->name, (double)gs, (double)ws);
        if (gsum != wsum) fail_msg("%s sum %d != %d", ks[v]->name, gsum, wsum);
        for (int i = 0; i < K; i++)
            if (got[i] != want[i])
                fail_msg("%s K=%d q[%d] (x=%a) = %d, want %d", ks[v]->name, K, i, (double)x[i],
                         got[i], want[i]);
    }
    free(want);
    free(got);
}

/* max|x| = 127 makes s exactly 1, so x = k + 0.5 are exact ties. */
static void test_ties_to_even(void **state) {
    (void)state;
    float x[128];
    for (int i = 0; i < 128; i++) x[i] = (float)(i - 64) + 0.5f;
    x[0] = 127.0f;
    x[1] = -126.5f;
    check_all(x, 128);
    int8_t q[128];
    int32_t sum;
    const bn_kernels *ref = bn_kernels_ref();
    assert_true(ref->quantize_act(x, 128, q, &sum) == 1.0f);
    assert_int_equal(q[64 + 2], 2);     /* 2.5 -> 2 */
    assert_int_equal(q[64 + 3], 4);     /* 3.5 -> 4 */
    assert_int_equal(q[64 - 1], 0);     /* -0.5 -> 0 */
    assert_int_equal(q[64 - 2], -2);    /* -1.5 -> -2 */
    assert_int_equal(q[1], -126);       /* -126.5 -> -126 */
}

static void test_edges(void **state) {
    (void)state;
    enum { K = 256 };
    float x[K];
    /* all zeros: amax is the 1e-5 floor, every q is 0 */
    memset(x, 0, sizeof x);
    check_all(x, K);
    /* everything below the floor: s = 127/1e-5 */
    for (int i = 0; i < K; i++) x[i] = (i % 3 - 1) * 3e-6f * (float)(i % 7);
    check_all(x, K);
    /* max exactly at the floor */
    x[5] = 1e-5f;
    check_all(x, K);
    /* negative max dominates, gives -127 */
    for (int i = 0; i < K; i++) x[i] = frand();
    x[9] = -3.0f;
    check_all(x, K);
    /* huge and tiny together */
    for (int i = 0; i < K; i++) x[i] = frand() * 1e-30f;
    x[100] = 3e38f;
    x[101] = -1e38f;
    check_all(x, K);
    /* all equal, positive and negative: the product may round just above 127 */
    for (int i = 0; i < K; i++) x[i] = 0.1f;
    check_all(x, K);
    for (int i = 0; i < K; i++) x[i] = -0.3f;
    check_all(x, K);
}

static void test_random(void **state) {
    (void)state;
    for (int it = 0; it < 60; it++) {
        int K = 128 * (1 + (int)(seed % 64));
        float *x = malloc(sizeof(float) * K);
        float scale = ldexpf(1.0f, (int)(seed % 40) - 20);
        for (int i = 0; i < K; i++) x[i] = frand() * scale;
        /* exact ties under the scale this row will get */
        for (int i = 0; i < K; i += 17) x[i] = ((float)(i % 200) - 100.5f) * scale / 127.0f;
        check_all(x, K);
        free(x);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ties_to_even),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
