/* The aarch64 NEON variant's two tables - lookup tables ("neon-lut", plain
 * NEON) and sdot ("neon", ARMv8.2) - each checked against the scalar
 * reference, and the shared pieces (activations, f16) on their own. The
 * shared suite (test_kernels.c) sees both tables too, through
 * bn_kernels_all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__aarch64__)
#include <sys/auxv.h>

#include "neon_common.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static void *alloc64(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    assert_non_null(p);
    return p;
}

enum { W_RANDOM, W_RANDOM3, W_NEG, W_POS, W_ZERO };
enum { A_RANDOM, A_MAX, A_MIN, A_ALT, A_ZERO };

static uint8_t code_byte(int code) {
    return (uint8_t)(code << 6 | code << 4 | code << 2 | code);
}

static void fill_weights(uint8_t *w, size_t n, int kind) {
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case W_RANDOM: {      /* codes 0..2 only, as the file has */
            uint32_t r = rnd();
            w[i] = (uint8_t)((r % 3) << 6 | ((r >> 8) % 3) << 4 | ((r >> 16) % 3) << 2 |
                             (r >> 24) % 3);
            break;
        }
        case W_RANDOM3: w[i] = (uint8_t)rnd(); break;   /* code 3 too (read as 0) */
        case W_NEG: w[i] = code_byte(0); break;
        case W_POS: w[i] = code_byte(2); break;
        default: w[i] = code_byte(1); break;
        }
    }
}

static void fill_acts(int8_t *q, int n, int kind) {
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case A_RANDOM: q[i] = (int8_t)rnd(); break;
        case A_MAX: q[i] = 127; break;
        case A_MIN: q[i] = -128; break;
        case A_ALT: q[i] = (i & 1) ? -128 : 127; break;
        default: q[i] = 0; break;
        }
    }
}

/* gemm over [m0, m1) and gemv over the same range, both against ref. */
static void check_matmul(const bn_kernels *k, int K, int M, int N, int wkind, int akind) {
    const bn_kernels *ref = bn_kernels_ref();
    const size_t i2s_bytes = (size_t)K * (size_t)M / 4;
    uint8_t *i2s = alloc64(i2s_bytes);
    fill_weights(i2s, i2s_bytes, wkind);
    int8_t *q = alloc64((size_t)K * (size_t)N);
    fill_acts(q, K * N, akind);

    void *rp = alloc64(ref->fmt[BN_FMT_TERNARY]->packed_size(K, M));
    ref->fmt[BN_FMT_TERNARY]->pack(i2s, K, M, 0, M, rp);
    void *kp = alloc64(k->fmt[BN_FMT_TERNARY]->packed_size(K, M));
    k->fmt[BN_FMT_TERNARY]->pack(i2s, K, M, 0, M, kp);

    const size_t rps = ref->fmt[BN_FMT_TERNARY]->act_size(K), kps = k->fmt[BN_FMT_TERNARY]->act_size(K);
    assert_int_equal(kps % 64, 0);      /* keeps every token's prep 64-byte aligned */
    uint8_t *rprep = alloc64(rps * (size_t)N), *kprep = alloc64(kps * (size_t)N);
    for (int n = 0; n < N; n++) {
        ref->fmt[BN_FMT_TERNARY]->act_prep(q + (size_t)n * K, K, rprep + (size_t)n * rps);
        k->fmt[BN_FMT_TERNARY]->act_prep(q + (size_t)n * K, K, kprep + (size_t)n * kps);
    }

    /* a row range that starts on a row block and ends at M (the tail) */
    const int blocks = (M + k->fmt[BN_FMT_TERNARY]->tile_rows - 1) / k->fmt[BN_FMT_TERNARY]->tile_rows;
    const int m0 = blocks > 1 ? (int)(rnd() % (uint32_t)blocks) * k->fmt[BN_FMT_TERNARY]->tile_rows : 0;
    const int m1 = M, ldd = m1 - m0 + 3;
    int32_t *want = calloc((size_t)N * ldd, sizeof *want);
    int32_t *got = calloc((size_t)N * ldd, sizeof *got);
    assert_non_null(want);
    assert_non_null(got);
    ref->fmt[BN_FMT_TERNARY]->gemm(rp, K, M, rprep, N, m0, m1, want, ldd);
    k->fmt[BN_FMT_TERNARY]->gemm(kp, K, M, kprep, N, m0, m1, got, ldd);
    for (int n = 0; n < N; n++)
        for (int m = 0; m < m1 - m0; m++)
            if (want[n * ldd + m] != got[n * ldd + m])
                fail_msg("%s K=%d M=%d N=%d w%d a%d: token %d row %d: %d != ref %d", k->name,
                         K, M, N, wkind, akind, n, m0 + m, got[n * ldd + m], want[n * ldd + m]);
    memset(got, 0, (size_t)ldd * sizeof *got);
    k->fmt[BN_FMT_TERNARY]->gemv(kp, K, M, kprep + (size_t)(N - 1) * kps, m0, m1, got);
    for (int m = 0; m < m1 - m0; m++)
        assert_int_equal(got[m], want[(N - 1) * ldd + m]);

    free(i2s); free(q); free(rp); free(kp); free(rprep); free(kprep); free(want); free(got);
}

static void check_table_matmul(const bn_kernels *k) {
    static const int Ks[] = {128, 256, 384, 640, 1024};
    static const int Ms[] = {1, 3, 4, 17, 31, 32, 33, 70};
    for (size_t i = 0; i < sizeof Ks / sizeof *Ks; i++)
        for (size_t j = 0; j < sizeof Ms / sizeof *Ms; j++)
            check_matmul(k, Ks[i], Ms[j], 1 + (int)(rnd() % 3), i % 2 ? W_RANDOM3 : W_RANDOM,
                         A_RANDOM);
    /* extremes: the largest |sums| at the largest K, every accumulator stage */
    for (int w = W_RANDOM; w <= W_ZERO; w++)
        for (int a = A_RANDOM; a <= A_ZERO; a++) check_matmul(k, 8192, 37, 2, w, a);
}

static void test_lut_matmul(void **state) {
    (void)state;
    check_table_matmul(bn_kernels_neon_lut());
}

/* Whether this CPU has the ARMv8.2 dot-product instructions (HWCAP ASIMDDP). */
static int cpu_has_dotprod(void) {
    return (getauxval(AT_HWCAP) & (1UL << 20)) != 0;
}

static void test_dotprod_matmul(void **state) {
    (void)state;
    if (!cpu_has_dotprod()) {
        print_message("skipped: this CPU has no sdot\n");
        skip();
    }
    check_table_matmul(bn_kernels_neon_dotprod());
}

/* "neon" is the sdot table (named "neon") where HWCAP says so (unless
 * BITNET_NEON_DOTPROD=0), else the lookup tables (named "neon-lut"):
 * dispatch.c decides. "neon-lut" always names the lookup tables, and the
 * bench and tests see both tables where the CPU has sdot. */
static void test_selection(void **state) {
    (void)state;
    char err[128];
    const bn_kernels *k = bn_kernels_select("neon", err, sizeof err);
    assert_non_null(k);
    const char *env = getenv("BITNET_NEON_DOTPROD");
    const int sdot = cpu_has_dotprod() && !(env && strcmp(env, "0") == 0);
    assert_ptr_equal(k, sdot ? bn_kernels_neon_dotprod() : bn_kernels_neon_lut());
    assert_string_equal(k->name, sdot ? "neon" : "neon-lut");
    assert_ptr_equal(bn_kernels_select("neon-lut", err, sizeof err), bn_kernels_neon_lut());
    const bn_kernels *all[16];
    const int n = bn_kernels_all(all, 16);
    int seen_lut = 0, seen_sdot = 0;
    for (int i = 0; i < n; i++) {
        seen_lut += all[i] == bn_kernels_neon_lut();
        seen_sdot += all[i] == bn_kernels_neon_dotprod();
    }
    assert_int_equal(seen_lut, 1);
    assert_int_equal(seen_sdot, sdot);
}

static void check_quantize(const float *x, int K) {
    const bn_kernels *ref = bn_kernels_ref();
    int8_t *qr = malloc((size_t)K), *qn = malloc((size_t)K);
    int32_t sr = 0, sn = 0;
    float s_ref = ref->quantize_act(x, K, qr, &sr);
    float s_neon = bn_neon_quantize_act(x, K, qn, &sn);
    assert_memory_equal(&s_ref, &s_neon, sizeof s_ref);
    assert_int_equal(sr, sn);
    assert_memory_equal(qr, qn, (size_t)K);
    free(qr);
    free(qn);
}

static void test_quantize_act(void **state) {
    (void)state;
    enum { K = 2560 + 13 };     /* + a scalar tail */
    static float x[K];
    for (int i = 0; i < K; i++) x[i] = ((float)(int32_t)rnd() / 2147483648.0f) * 3.0f;
    check_quantize(x, K);
    /* ties: with amax = 127, s = 1 and x*s lands on every .5 */
    for (int i = 0; i < K; i++) x[i] = (float)((i % 255) - 127) + ((i & 1) ? 0.5f : -0.5f);
    x[0] = 127.0f;
    check_quantize(x, K);
    /* max below the 1e-5 floor; all zeros; a NaN and an inf in the row */
    for (int i = 0; i < K; i++) x[i] = (float)(i % 7) * 1e-6f - 3e-6f;
    check_quantize(x, K);
    memset(x, 0, sizeof x);
    check_quantize(x, K);
    x[5] = NAN;
    x[9] = 2.0f;
    check_quantize(x, K);
    x[K - 1] = -INFINITY;
    check_quantize(x, K);
}

static void test_f16_conversions(void **state) {
    (void)state;
    enum { N = 65536 + 5 };
    static uint16_t h[N], h2[N];
    static float f[N];
    for (int i = 0; i < N; i++) h[i] = (uint16_t)i;
    bn_neon_f16_to_f32(h, f, N);
    for (int i = 0; i < N; i++) {
        float want = bn_f16_to_f32(h[i]);
        assert_memory_equal(&f[i], &want, sizeof want);
    }
    /* random bit patterns (NaNs, subnormals, overflow) and exact ties */
    for (int i = 0; i < N; i++) {
        uint32_t u = rnd();
        if (i % 4 == 1) u = (u & 0xffffe000u) | 0x1000u;          /* halfway */
        if (i % 4 == 2) u = (u & 0x807fffffu) | ((100u + u % 50u) << 23);  /* near f16 range */
        memcpy(&f[i], &u, sizeof u);
    }
    bn_neon_f32_to_f16(f, h2, N);
    for (int i = 0; i < N; i++) assert_int_equal(h2[i], bn_f32_to_f16(f[i]));
}

static void test_f16_dot(void **state) {
    (void)state;
    const int K = 2560 + 7, M = 11;
    uint16_t *W = malloc((size_t)K * M * sizeof *W), *x = malloc((size_t)K * sizeof *x);
    for (int i = 0; i < K * M; i++) W[i] = bn_f32_to_f16(((float)(rnd() % 2001) - 1000.0f) / 1000.0f);
    for (int i = 0; i < K; i++) x[i] = bn_f32_to_f16(((float)(rnd() % 2001) - 1000.0f) / 100.0f);
    float y[11];
    bn_neon_gemv_f16(W, K, x, 2, M, y);
    for (int m = 2; m < M; m++) {
        const uint16_t *row = W + (size_t)m * K;
        float d = bn_neon_dot_f16(row, x, K);
        assert_memory_equal(&y[m - 2], &d, sizeof d);     /* same order, same bits */
        /* against an exact double sum: only float summation error remains */
        double exact = 0.0, mag = 0.0;
        for (int i = 0; i < K; i++) {
            double p = (double)bn_f16_to_f32(row[i]) * (double)bn_f16_to_f32(x[i]);
            exact += p;
            mag += fabs(p);
        }
        assert_true(fabs((double)d - exact) <= 1e-6 * mag + 1e-30);
    }
    free(W);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selection),
        cmocka_unit_test(test_quantize_act),
        cmocka_unit_test(test_f16_conversions),
        cmocka_unit_test(test_f16_dot),
        cmocka_unit_test(test_lut_matmul),
        cmocka_unit_test(test_dotprod_matmul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* not aarch64: the NEON variant is not compiled in */

#include "neon_common.h"

static void test_neon_absent(void **state) {
    (void)state;
    assert_null(bn_kernels_neon_lut());
    assert_null(bn_kernels_neon_dotprod());
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_neon_absent)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
