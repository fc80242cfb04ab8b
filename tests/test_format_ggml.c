/* ggml's table types as a head (kernels/format_ggml.c: Q8_0, Q6_K, F32):
 * the row decoders against the block layouts of docs/FORMAT.md written out
 * again here, the activation quantizers' rules, the dot products against a
 * double-precision sum (their order is pinned by test_forward's reference
 * forward and the family's reference logits), and every variant's record
 * (the AVX2 Q8_0 one included) against the plain C record bit for bit over
 * row ranges and batches. */
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

#define KERNEL_TEST_SEED 0x6a09e667f3bcc909ull
#include "kernel_test_util.h"

static float urand(void) {     /* [-1, 1) */
    return (float)((int32_t)rnd() >> 8) / 8388608.0f;
}

/* A random table of M rows of K in a type, with every kind of block: all
 * zero, tiny, ordinary, extreme codes. */
static size_t row_bytes(enum bn_format f, int K) {
    return f == BN_FMT_Q8_0 ? (size_t)K / 32 * 34 : f == BN_FMT_Q6_K ? (size_t)K / 256 * 210
                                                                     : (size_t)K * 4;
}

static uint8_t *make_table(enum bn_format f, int K, int M) {
    const size_t rb = row_bytes(f, K);
    uint8_t *t = aalloc(rb * (size_t)M);
    for (size_t i = 0; i < rb * (size_t)M; i++) t[i] = (uint8_t)rnd();
    if (f == BN_FMT_Q8_0) {
        for (size_t b = 0; b < rb * (size_t)M / 34; b++) {
            uint16_t d = bn_f32_to_f16(rnd() % 8 == 0 ? 0.0f : 0.001f * (1.0f + urand()));
            memcpy(t + 34 * b, &d, 2);
            if (b % 13 == 0) memset(t + 34 * b + 2, 0x80, 32);    /* q = -128 */
        }
    } else if (f == BN_FMT_Q6_K) {
        for (size_t b = 0; b < rb * (size_t)M / 210; b++) {
            uint16_t d = bn_f32_to_f16(0.0005f * (1.0f + urand()));
            memcpy(t + 210 * b + 208, &d, 2);
        }
    } else {
        float *w = (float *)t;
        for (size_t i = 0; i < (size_t)K * M; i++) w[i] = urand() * 0.05f;
    }
    return t;
}

/* Row decoders, from the layouts as docs/FORMAT.md words them. */
static float q8_0_value(const uint8_t *row, int i) {
    uint16_t d;
    memcpy(&d, row + 34 * (i / 32), 2);
    return (float)(int8_t)row[34 * (i / 32) + 2 + i % 32] * bn_f16_to_f32(d);
}

static float q6_k_value(const uint8_t *row, int i) {
    const uint8_t *b = row + 210 * (i / 256);
    const int j = i % 256, half = j / 128, l = (j % 128) % 32, quarter = (j % 128) / 32;
    const uint8_t *ql = b + 64 * half, *qh = b + 128 + 32 * half;
    const int s = l / 16;
    int code, scale;
    switch (quarter) {
    case 0: code = (ql[l] & 15) | ((qh[l] >> 0) & 3) << 4; scale = (int8_t)b[192 + 8 * half + s]; break;
    case 1: code = (ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4; scale = (int8_t)b[192 + 8 * half + s + 2]; break;
    case 2: code = (ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4; scale = (int8_t)b[192 + 8 * half + s + 4]; break;
    default: code = (ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4; scale = (int8_t)b[192 + 8 * half + s + 6]; break;
    }
    uint16_t d;
    memcpy(&d, b + 208, 2);
    return (bn_f16_to_f32(d) * (float)scale) * (float)(code - 32);
}

static void test_row_decoders(void **state) {
    (void)state;
    const int K = 512;
    uint8_t *q8 = make_table(BN_FMT_Q8_0, K, 3), *q6 = make_table(BN_FMT_Q6_K, K, 3);
    float out[512];
    for (int r = 0; r < 3; r++) {
        bn_q8_0_row_to_f32(q8 + r * row_bytes(BN_FMT_Q8_0, K), K, out);
        for (int i = 0; i < K; i++) assert_true(out[i] == q8_0_value(q8 + r * row_bytes(BN_FMT_Q8_0, K), i));
        bn_q6_k_row_to_f32(q6 + r * row_bytes(BN_FMT_Q6_K, K), K, out);
        for (int i = 0; i < K; i++) assert_true(out[i] == q6_k_value(q6 + r * row_bytes(BN_FMT_Q6_K, K), i));
    }
    free(q8);
    free(q6);
}

/* The hidden state's quantization: Q8_0 per 32 (d = f16(amax/127), q =
 * rne(x * 127/amax)), Q8_K per 256 (the value of largest magnitude maps to
 * -127). */
static void test_act_quantizers(void **state) {
    (void)state;
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = urand();
    for (int i = 32; i < 64; i++) x[i] = 0.0f;             /* a zero block */
    x[5] = 2.0f;
    const bn_format_traits *q8 = &bn_fmt_q8_0, *q6 = &bn_fmt_q6_k;
    uint8_t *a = aalloc(q8->act_size(256) + q6->act_size(256));
    q8->act_prep(x, 256, a);
    uint16_t d;
    memcpy(&d, a, 2);
    assert_int_equal(d, bn_f32_to_f16(2.0f / 127.0f));
    assert_int_equal((int8_t)a[2 + 5], 127);
    for (int i = 0; i < 32; i++)
        assert_int_equal((int8_t)a[2 + i], (int)nearbyintf(x[i] * (127.0f / 2.0f)));
    memcpy(&d, a + 34, 2);
    assert_int_equal(d, 0);
    for (int i = 0; i < 32; i++) assert_int_equal(a[34 + 2 + i], 0);

    q6->act_prep(x, 256, a);
    float dk;
    memcpy(&dk, a, 4);
    assert_true(dk == 1.0f / (-127.0f / 2.0f));
    const int8_t *q = (const int8_t *)a + 4;
    assert_int_equal(q[5], -127);
    for (int i = 0; i < 256; i++) assert_int_equal(q[i], (int)nearbyintf((-127.0f / 2.0f) * x[i]));
    free(a);
}

/* Each format's gemv is close to the exact dot of its decoded rows with
 * the input (the quantization of the input is its only error). */
static void test_dots_close(void **state) {
    (void)state;
    const enum bn_format fmts[3] = { BN_FMT_Q8_0, BN_FMT_Q6_K, BN_FMT_F32 };
    const bn_format_traits *rec[3] = { &bn_fmt_q8_0, &bn_fmt_q6_k, &bn_fmt_f32 };
    const int K = 768, M = 9;
    float x[768], y[9], w[768];
    for (int i = 0; i < K; i++) x[i] = urand();
    for (int f = 0; f < 3; f++) {
        uint8_t *t = make_table(fmts[f], K, M);
        uint8_t *act = aalloc(rec[f]->act_size(K));
        rec[f]->act_prep(x, K, act);
        rec[f]->gemv(t, K, M, act, 0, M, y);
        for (int m = 0; m < M; m++) {
            const uint8_t *row = t + (size_t)m * row_bytes(fmts[f], K);
            double exact = 0, mag = 0;
            for (int i = 0; i < K; i++) {
                w[i] = fmts[f] == BN_FMT_Q8_0 ? q8_0_value(row, i)
                     : fmts[f] == BN_FMT_Q6_K ? q6_k_value(row, i) : ((const float *)row)[i];
                exact += (double)w[i] * (double)x[i];
                mag += fabs((double)w[i] * (double)x[i]);
            }
            const double tol = fmts[f] == BN_FMT_F32 ? 1e-5 * mag : 0.02 * mag + 1e-6;
            if (fabs((double)y[m] - exact) > tol)
                fail_msg("%s row %d: %g, exact %g", rec[f]->name, m, (double)y[m], exact);
        }
        free(t);
        free(act);
    }
}

/* Every variant's record: gemv over split row ranges and gemm give the
 * plain record's bits. */
static void test_variants_bit_exact(void **state) {
    (void)state;
    const enum bn_format fmts[3] = { BN_FMT_Q8_0, BN_FMT_Q6_K, BN_FMT_F32 };
    const bn_format_traits *plain[3] = { &bn_fmt_q8_0, &bn_fmt_q6_k, &bn_fmt_f32 };
    /* per format: one block or chunk, several, and a head's width */
    const int Ks[3][3] = { { 96, 256, 4096 }, { 256, 512, 2560 }, { 100, 300, 2560 } };
    const int M = 37, N = 3;
    for (int fk = 0; fk < 9; fk++) {
        const int f = fk / 3, K = Ks[f][fk % 3];
        uint8_t *t = make_table(fmts[f], K, M);
        const size_t as = plain[f]->act_size(K);
        uint8_t *act = aalloc(as * N);
        float *x = aalloc(sizeof(float) * (size_t)K);
        for (int n = 0; n < N; n++) {
            for (int i = 0; i < K; i++) x[i] = urand() * (n + 1.0f);
            plain[f]->act_prep(x, K, act + (size_t)n * as);
        }
        float want[3 * 37], got[3 * 37];
        for (int n = 0; n < N; n++) plain[f]->gemv(t, K, M, act + (size_t)n * as, 0, M, want + n * M);
        for (int k = 0; k < n_all; k++) {
            const bn_format_traits *r = all[k]->fmt[fmts[f]];
            assert_non_null(r);
            assert_string_equal(r->name, plain[f]->name);
            assert_int_equal(r->act_size(K), as);
            memset(got, 0, sizeof got);
            for (int n = 0; n < N; n++) {
                r->gemv(t, K, M, act + (size_t)n * as, 0, 16, got + n * M);
                r->gemv(t, K, M, act + (size_t)n * as, 16, M, got + n * M + 16);
            }
            assert_memory_equal(want, got, sizeof(float) * (size_t)(N * M));
            memset(got, 0, sizeof got);
            r->gemm(t, K, M, act, N, 0, M, got, M);
            assert_memory_equal(want, got, sizeof(float) * (size_t)(N * M));
        }
        free(t);
        free(act);
        free(x);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_row_decoders),
        cmocka_unit_test(test_act_quantizers),
        cmocka_unit_test(test_dots_close),
        cmocka_unit_test(test_variants_bit_exact),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
