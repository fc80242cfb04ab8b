/* Every kernel variant (and alternative such as the multiply-add baseline)
 * against the scalar reference: exact integer dot products on sampled shapes
 * and adversarial data, row-range splits as threads use them, f16
 * conversions over all halves, and f16 dot products within a derived bound. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "i2s.h"
#include "kernels.h"

#define KERNEL_TEST_SEED 0x9e3779b97f4a7c15ull
#include "kernel_test_util.h"

enum wkind { W_RANDOM, W_MINUS, W_PLUS, W_ZERO };
enum akind { A_RANDOM, A_MAX, A_MIN, A_ALT, A_ZERO };

/* I2_S payload of M rows of K weights; random codes include the unused 3
 * (weight 0) now and then. */
static uint8_t *make_weights(int K, int M, enum wkind kind) {
    size_t n = (size_t)K * M / 4;
    uint8_t *w = aalloc(n);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case W_MINUS: w[i] = 0x00; break;
        case W_PLUS: w[i] = 0xaa; break;
        case W_ZERO: w[i] = 0x55; break;
        default: {
            uint8_t b = 0;
            for (int j = 0; j < 4; j++) {
                uint32_t r = rnd() % 31;
                b = (uint8_t)(b << 2 | (r == 0 ? 3 : r % 3));
            }
            w[i] = b;
        }
        }
    }
    return w;
}

static void fill_acts(int8_t *q, int K, enum akind kind) {
    for (int i = 0; i < K; i++) {
        switch (kind) {
        case A_MAX: q[i] = 127; break;
        case A_MIN: q[i] = -128; break;
        case A_ALT: q[i] = (int8_t)(i & 1 ? -128 : 127); break;
        case A_ZERO: q[i] = 0; break;
        default: q[i] = (int8_t)(rnd() & 0xff);
        }
    }
}

/* Runs one variant on (K, M, N) and compares with the reference result. */
static void check_variant(const bn_kernels *k, const uint8_t *i2s, int K, int M,
                          const int8_t *q, int N, const int32_t *want) {
    void *packed = aalloc(k->fmt[BN_FMT_TERNARY]->packed_size(K, M));
    k->fmt[BN_FMT_TERNARY]->pack(i2s, K, M, 0, M, packed);
    const size_t ps = k->fmt[BN_FMT_TERNARY]->act_size(K);
    uint8_t *prep = aalloc(ps * N);
    for (int n = 0; n < N; n++) k->fmt[BN_FMT_TERNARY]->act_prep(q + (size_t)n * K, K, prep + ps * n);
    int32_t *got = aalloc(sizeof(int32_t) * M * N);

    /* Whole matrix: gemm, and gemv per token. */
    memset(got, 0x5a, sizeof(int32_t) * M * N);
    k->fmt[BN_FMT_TERNARY]->gemm(packed, K, M, prep, N, 0, M, got, M);
    for (size_t i = 0; i < (size_t)M * N; i++) {
        if (got[i] != want[i])
            fail_msg("%s gemm K=%d M=%d N=%d: token %zu row %zu: %d != %d", k->name, K, M, N,
                     i / M, i % M, got[i], want[i]);
    }
    for (int n = 0; n < N && n < 3; n++) {
        memset(got, 0x5a, sizeof(int32_t) * M);
        k->fmt[BN_FMT_TERNARY]->gemv(packed, K, M, prep + ps * n, 0, M, got);
        for (int m = 0; m < M; m++)
            if (got[m] != want[(size_t)n * M + m])
                fail_msg("%s gemv K=%d M=%d: token %d row %d: %d != %d", k->name, K, M, n, m,
                         got[m], want[(size_t)n * M + m]);
    }

    /* Split rows as threads would: cut points at multiples of row_block. */
    const int rb = k->fmt[BN_FMT_TERNARY]->tile_rows;
    const int blocks = (M + rb - 1) / rb;
    const int cut1 = (int)(rnd() % (blocks + 1)) * rb, cut2 = (int)(rnd() % (blocks + 1)) * rb;
    int cuts[4] = {0, cut1 < cut2 ? cut1 : cut2, cut1 < cut2 ? cut2 : cut1, M};
    if (cuts[1] > M) cuts[1] = M;
    if (cuts[2] > M) cuts[2] = M;
    memset(got, 0x5a, sizeof(int32_t) * M * N);
    for (int p = 0; p < 3; p++) {
        int m0 = cuts[p], m1 = cuts[p + 1];
        if (m0 >= m1) continue;
        k->fmt[BN_FMT_TERNARY]->gemm(packed, K, M, prep, N, m0, m1, got + m0, M);
        k->fmt[BN_FMT_TERNARY]->gemv(packed, K, M, prep, m0, m1, got + m0);  /* token 0 again */
    }
    for (size_t i = 0; i < (size_t)M * N; i++)
        if (got[i] != want[i])
            fail_msg("%s split [%d,%d,%d,%d] K=%d M=%d N=%d: token %zu row %zu: %d != %d", k->name,
                     cuts[0], cuts[1], cuts[2], cuts[3], K, M, N, i / M, i % M, got[i], want[i]);
    free(packed);
    free(prep);
    free(got);
}

static void check_case(int K, int M, int N, enum wkind wk, enum akind ak) {
    uint8_t *w = make_weights(K, M, wk);
    int8_t *q = aalloc((size_t)K * N);
    for (int n = 0; n < N; n++) fill_acts(q + (size_t)n * K, K, n == 0 ? ak : A_RANDOM);
    int32_t *want = aalloc(sizeof(int32_t) * M * N);

    const bn_kernels *ref = all[0];
    void *packed = aalloc(ref->fmt[BN_FMT_TERNARY]->packed_size(K, M));
    ref->fmt[BN_FMT_TERNARY]->pack(w, K, M, 0, M, packed);
    const size_t ps = ref->fmt[BN_FMT_TERNARY]->act_size(K);
    uint8_t *prep = aalloc(ps * N);
    for (int n = 0; n < N; n++) ref->fmt[BN_FMT_TERNARY]->act_prep(q + (size_t)n * K, K, prep + ps * n);
    ref->fmt[BN_FMT_TERNARY]->gemm(packed, K, M, prep, N, 0, M, want, M);

    /* The reference itself against the definition (the decoding of
     * src/i2s.h, checked by test_i2s.c) on a few entries. */
    for (int t = 0; t < 4; t++) {
        int n = (int)(rnd() % N), m = (int)(rnd() % M);
        int32_t acc = 0;
        for (int kk = 0; kk < K; kk++)
            acc += bn_i2s_weight(w, (uint64_t)m * (uint64_t)K + (uint64_t)kk) * q[(size_t)n * K + kk];
        assert_int_equal(acc, want[(size_t)n * M + m]);
    }
    for (int v = 1; v < n_all; v++) check_variant(all[v], w, K, M, q, N, want);
    free(packed);
    free(prep);
    free(w);
    free(q);
    free(want);
}

/* Adversarial extremes: K = 8192 with all −128 activations and all ±1
 * weights is the largest possible |dot| (2^20); int16 paths must widen. */
static void test_extremes(void **state) {
    (void)state;
    const enum wkind wks[] = {W_MINUS, W_PLUS, W_ZERO, W_RANDOM};
    const enum akind aks[] = {A_MAX, A_MIN, A_ALT, A_ZERO, A_RANDOM};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 5; j++) check_case(8192, 37, 3, wks[i], aks[j]);
    check_case(128, 1, 1, W_PLUS, A_MIN);
}

/* Sampled shapes: every K multiple of 128 up to 8192 is reachable; M up to
 * 8192 including non-multiples of any row block; N from 1 to 200. Kept
 * small in K·M·N so the suite stays fast under sanitizers and qemu. */
static void test_random_shapes(void **state) {
    (void)state;
    for (int it = 0; it < 40; it++) {
        int K = 128 * (1 + (int)(rnd() % 64));
        int M = 1 + (int)(rnd() % 97);
        int N = 1 + (int)(rnd() % 9);
        check_case(K, M, N, W_RANDOM, A_RANDOM);
    }
    check_case(128, 8192, 1, W_RANDOM, A_RANDOM);
    check_case(256, 4099, 2, W_RANDOM, A_ALT);
    check_case(128, 50, 200, W_RANDOM, A_RANDOM);
    check_case(384, 33, 131, W_RANDOM, A_MIN);
    check_case(2560, 64, 17, W_RANDOM, A_RANDOM);
    check_case(6912, 40, 5, W_RANDOM, A_RANDOM);
    /* More tokens than one L2 block of activations holds at this K (the
     * x86 gemms' token blocks), and chunks of K that end mid-row. */
    check_case(8192, 21, 70, W_RANDOM, A_MIN);
    check_case(2688, 9, 130, W_RANDOM, A_RANDOM);
}

/* ---- f16 ------------------------------------------------------------------- */

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_f16_scalar_edges(void **state) {
    (void)state;
    assert_true(bn_f16_to_f32(0x3c00) == 1.0f);
    assert_true(bn_f16_to_f32(0x0001) == ldexpf(1.0f, -24));
    assert_true(bn_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(bn_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(bn_f16_to_f32(0xc000) == -2.0f);
    assert_true(isinf(bn_f16_to_f32(0x7c00)) && bn_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(bn_f16_to_f32(0x7e01)) && isnan(bn_f16_to_f32(0x7c01)));
    assert_int_equal(fbits(bn_f16_to_f32(0x8000)), 0x80000000u);

    assert_int_equal(bn_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(bn_f32_to_f16(65519.996f), 0x7bff);     /* just below the midpoint */
    assert_int_equal(bn_f32_to_f16(65520.0f), 0x7c00);       /* midpoint, odd -> inf */
    assert_int_equal(bn_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(bn_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(bn_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(bn_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);      /* tie -> even */
    assert_int_equal(bn_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);  /* tie -> even (up) */
    assert_int_equal(bn_f32_to_f16(1.0f + ldexpf(1, -11) + ldexpf(1, -20)), 0x3c01);
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -25)), 0x0000);             /* tie with 0 -> 0 */
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -25) * 1.0000001f), 0x0001);
    assert_int_equal(bn_f32_to_f16(ldexpf(3, -25)), 0x0002);             /* 1.5 units -> 2 */
    assert_int_equal(bn_f32_to_f16(ldexpf(5, -25)), 0x0002);             /* 2.5 units -> 2 */
    assert_int_equal(bn_f32_to_f16(ldexpf(2047, -25)), 0x0400);          /* carry to normal */
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -14)), 0x0400);
    assert_int_equal(bn_f32_to_f16(ldexpf(1, -30)), 0x0000);
    assert_int_equal(bn_f32_to_f16(bitsf(1)), 0x0000);                   /* f32 subnormal */
    uint16_t h = bn_f32_to_f16(NAN);
    assert_true((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0);
}

static void test_f16_all_halves(void **state) {
    (void)state;
    uint16_t *h = malloc(65536 * 2), *back = malloc(65536 * 2);
    float *f = malloc(65536 * 4);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int v = 0; v < n_all; v++) {
        const bn_kernels *k = all[v];
        k->f16_to_f32(h, f, 65536);
        k->f32_to_f16(f, back, 65536);
        for (int i = 0; i < 65536; i++) {
            float s = bn_f16_to_f32((uint16_t)i);
            if (fbits(f[i]) != fbits(s)) fail_msg("%s f16_to_f32(%04x)", k->name, i);
            int nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff);
            /* Round trip is exact except that a NaN comes back quiet. */
            uint16_t want = nan ? (uint16_t)(i | 0x200) : (uint16_t)i;
            if (back[i] != want) fail_msg("%s round trip %04x -> %04x", k->name, i, back[i]);
        }
    }
    free(h);
    free(back);
    free(f);
}

/* SIMD f32 -> f16 equals the scalar rounding on random bit patterns, near
 * halfway points and with lengths that leave a scalar tail. */
static void test_f32_to_f16_random(void **state) {
    (void)state;
    enum { N = 4099 };
    float *f = malloc(N * 4);
    uint16_t *h = malloc(N * 2);
    for (int i = 0; i < N; i++) {
        uint32_t u = rnd();
        if (i % 3 == 0) u = (u & 0xffffe000u) | 0x1000u;   /* exact halfway cases */
        if (i % 7 == 0) u = (u & 0x87ffffffu) | 0x30000000u; /* subnormal f16 range */
        f[i] = bitsf(u);
    }
    for (int v = 0; v < n_all; v++) {
        all[v]->f32_to_f16(f, h, N);
        for (int i = 0; i < N; i++)
            if (h[i] != bn_f32_to_f16(f[i]))
                fail_msg("%s f32_to_f16(%08x) = %04x", all[v]->name, fbits(f[i]), h[i]);
    }
    free(f);
    free(h);
}

/* Each f16 x f16 product is exact in float (11 + 11 significant bits), so
 * the only difference between variants is the summation order. Any order of
 * n−1 float additions is within (n−1)·2^-24·Σ|a_i·b_i| of the exact sum
 * (standard recursive-summation bound, first order), hence variant and
 * double-precision truth differ by at most that; we check against the exact
 * sum (computed in double, exact for these magnitudes) with this bound. */
static void test_dot_f16(void **state) {
    (void)state;
    const int lens[] = {1, 7, 8, 31, 32, 33, 63, 64, 65, 96, 100, 128, 2560, 6912, 6913};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        /* gemv takes rows 1..M-1: blocks of several rows and a remainder */
        const int n = lens[li], M = 12;
        uint16_t *a = malloc(sizeof(uint16_t) * n * M), *b = malloc(sizeof(uint16_t) * n);
        for (int i = 0; i < n * M; i++) a[i] = bn_f32_to_f16(((int)(rnd() % 20001) - 10000) / 1000.0f);
        for (int i = 0; i < n; i++) b[i] = bn_f32_to_f16(((int)(rnd() % 20001) - 10000) / 3000.0f);
        float y[12];
        for (int v = 0; v < n_all; v++) {
            const bn_kernels *k = all[v];
            k->gemv_f16(a, n, b, 1, M, y);
            for (int m = 0; m < M; m++) {
                double exact = 0, mag = 0;
                for (int i = 0; i < n; i++) {
                    double p = (double)bn_f16_to_f32(a[m * n + i]) * (double)bn_f16_to_f32(b[i]);
                    exact += p;
                    mag += fabs(p);
                }
                double tol = (n - 1) * ldexp(1.0, -24) * mag * 1.01 + 1e-30;
                float d = k->dot_f16(a + m * n, b, n);
                if (fabs((double)d - exact) > tol)
                    fail_msg("%s dot_f16 n=%d: %g vs %g", k->name, n, (double)d, exact);
                if (m >= 1 && fabs((double)y[m - 1] - exact) > tol)
                    fail_msg("%s gemv_f16 n=%d: %g vs %g", k->name, n, (double)y[m - 1], exact);
                /* Every variant follows the reference's summation order
                 * (bitnet.cpp's), so beyond the bound they agree exactly. */
                float r = bn_kernels_ref()->dot_f16(a + m * n, b, n);
                if (memcmp(&d, &r, sizeof d) != 0)
                    fail_msg("%s dot_f16 n=%d: %a differs from ref %a", k->name, n, (double)d,
                             (double)r);
                if (m >= 1 && memcmp(&y[m - 1], &r, sizeof r) != 0)
                    fail_msg("%s gemv_f16 n=%d: %a differs from ref %a", k->name, n, (double)y[m - 1],
                             (double)r);
            }
        }
        /* dots_f16: the same rows ldw apart (as V^T's rows in the cache) */
        const size_t ldw = (size_t)n + 7;
        uint16_t *aw = calloc((size_t)M * ldw, sizeof *aw);
        for (int m = 0; m < M; m++) memcpy(aw + (size_t)m * ldw, a + (size_t)m * n, sizeof *a * (size_t)n);
        for (int v = 0; v < n_all; v++) {
            float yd[12];
            all[v]->dots_f16(aw + ldw, ldw, b, n, M - 1, yd);
            for (int m = 1; m < M; m++) {
                float r = bn_kernels_ref()->dot_f16(a + m * n, b, n);
                if (memcmp(&yd[m - 1], &r, sizeof r) != 0)
                    fail_msg("%s dots_f16 n=%d row %d: %a differs from ref %a", all[v]->name, n, m,
                             (double)yd[m - 1], (double)r);
            }
        }
        free(aw);
        free(a);
        free(b);
    }
}

/* ---- bitnet.cpp's prompt-batch P·V: dot_f32_f16_fma16 ------------------------------- */

/* The order written out as one expression (kernels.h): lane l fuses
 * p[16j+l]·v[16j+l] into its accumulator for j = 0, 1, ...; lanes are then
 * combined (l, l+8), (l, l+4), (l, l+2), (0, 1). */
static float fma16_spec(const float *p, const uint16_t *v, int n) {
    float a[16];
    for (int l = 0; l < 16; l++) {
        a[l] = 0.0f;
        for (int k = l; k < (n + 15) / 16 * 16; k += 16)
            a[l] = fmaf(k < n ? p[k] : 0.0f, k < n ? bn_f16_to_f32(v[k]) : 0.0f, a[l]);
    }
    return (((a[0] + a[8]) + (a[4] + a[12])) + ((a[2] + a[10]) + (a[6] + a[14]))) +
           (((a[1] + a[9]) + (a[5] + a[13])) + ((a[3] + a[11]) + (a[7] + a[15])));
}

static float rnd_unit(void) {   /* [0, 1) with a full 24-bit mantissa */
    return (float)(rnd() >> 8) * 0x1p-24f;
}

enum { P_SOFTMAX, P_WIDE, P_CANCEL, P_TINY, P_ZERO, P_KINDS };

/* p and v of kind `kind`: probabilities against ordinary values; full-mantissa
 * floats of many magnitudes (products need the fused rounding); large
 * alternating terms that cancel; subnormal p against f16 subnormals (products
 * underflow, to -0 too); signed zeros. All finite, no overflow. */
static void fma16_fill(int kind, float *p, uint16_t *v, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        uint32_t r = rnd();
        switch (kind) {
        case P_SOFTMAX:
            p[i] = r % 7 == 0 ? 0.0f : expf(-8.0f * rnd_unit());
            sum += (double)p[i];
            v[i] = bn_f32_to_f16(((int)(rnd() % 20001) - 10000) / 1000.0f);
            break;
        case P_WIDE:
            p[i] = (r & 1 ? -1.0f : 1.0f) * (1.0f + rnd_unit()) * ldexpf(1.0f, (int)(rnd() % 40) - 20);
            v[i] = (uint16_t)(rnd() % 0x7c00u | (r & 2 ? 0x8000u : 0));    /* any finite f16 */
            break;
        case P_CANCEL:
            p[i] = (i & 1 ? -1.0f : 1.0f) * (i % 3 == 0 ? 1e20f : 1.0f + rnd_unit());
            v[i] = r % 5 == 0 ? 0x7bffu : bn_f32_to_f16((1.0f + rnd_unit()) * (r & 2 ? -1.0f : 1.0f));
            break;
        case P_TINY:
            p[i] = (r & 1 ? -1.0f : 1.0f) * ldexpf(1.0f + rnd_unit(), -140 - (int)(rnd() % 8));
            v[i] = (uint16_t)(rnd() % 0x0400u | (r & 2 ? 0x8000u : 0));     /* f16 subnormals */
            break;
        default:
            p[i] = r & 1 ? -0.0f : 0.0f;
            v[i] = r & 2 ? 0x8000u : 0;
            break;
        }
    }
    if (kind == P_SOFTMAX && sum > 0)
        for (int i = 0; i < n; i++) p[i] = p[i] * (float)(1.0 / sum);
}

static void test_dot_f32_f16_fma16(void **state) {
    (void)state;
    const bn_kernels *ref = bn_kernels_ref();
    assert_non_null(ref->dot_f32_f16_fma16);

    /* The definition, on cases small enough to follow by hand. The fused
     * rounding: -(1 + 2^-10 + 2^-23) + (1 + 2^-23)(1 + 2^-10) is 2^-33 with
     * one rounding, 0 with a rounded product. */
    float p[8192 + 16];
    uint16_t v[8192 + 16];
    memset(p, 0, sizeof p);
    memset(v, 0, sizeof v);
    p[0] = -(1.0f + 0x1p-10f + 0x1p-23f);
    v[0] = 0x3c00;                                  /* 1 */
    p[16] = 1.0f + 0x1p-23f;
    v[16] = 0x3c01;                                 /* 1 + 2^-10 */
    assert_true(ref->dot_f32_f16_fma16(p, v, 32) == 0x1p-33f);
    /* The lane tree: 2^24 in lane 0, ones in lanes 1, 5, 9. The odd lanes
     * meet 2^24 only at the last addition, as one 3: 2^24 + 3 rounds to
     * 2^24 + 4 (ties to even). Adding the lanes one by one would lose each
     * 1 against 2^24 (2^24 + 1 rounds to 2^24). */
    memset(p, 0, 64 * sizeof *p);
    for (int l = 0; l < 16; l++) v[l] = 0x3c00;
    p[0] = 0x1p24f;
    p[1] = 1.0f, p[9] = 1.0f, p[5] = 1.0f;
    assert_true(ref->dot_f32_f16_fma16(p, v, 16) == fma16_spec(p, v, 16));
    assert_true(ref->dot_f32_f16_fma16(p, v, 16) == 0x1p24f + 4.0f);

    const int lens[] = {1, 5, 15, 16, 17, 31, 32, 33, 48, 64, 96, 100, 128, 160, 255, 256,
                        512, 1000, 1024, 2048, 4096, 4097, 8176, 8192};
    int fused_mattered = 0;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int n = lens[li];
        for (int kind = 0; kind < P_KINDS; kind++) {
            /* values beyond n must not be read: poison them */
            for (int i = n; i < n + 16; i++) {
                p[i] = NAN;
                v[i] = 0x7e00;
            }
            fma16_fill(kind, p, v, n);
            const float want = fma16_spec(p, v, n);
            float r = ref->dot_f32_f16_fma16(p, v, n);
            if (memcmp(&r, &want, sizeof r) != 0)
                fail_msg("ref dot_f32_f16_fma16 n=%d kind %d: %a, the definition gives %a", n, kind,
                         (double)r, (double)want);
            /* Unfused lanes would differ somewhere: the test can see it. */
            float a[16] = {0};
            for (int k = 0; k < (n + 15) / 16 * 16; k++)
                a[k % 16] = a[k % 16] + (k < n ? p[k] * bn_f16_to_f32(v[k]) : 0.0f);
            for (int half = 8; half >= 1; half /= 2)
                for (int l = 0; l < half; l++) a[l] = a[l] + a[l + half];
            fused_mattered += memcmp(&a[0], &r, sizeof r) != 0;
            for (int k = 0; k < n_all; k++) {
                const bn_kernels *kern = all[k];
                assert_non_null(kern->dot_f32_f16_fma16);
                float got = kern->dot_f32_f16_fma16(p, v, n);
                if (memcmp(&got, &r, sizeof r) != 0)
                    fail_msg("%s dot_f32_f16_fma16 n=%d kind %d: %a differs from ref %a",
                             kern->name, n, kind, (double)got, (double)r);
                /* unaligned starts */
                if (n > 1) {
                    float g1 = kern->dot_f32_f16_fma16(p + 1, v + 1, n - 1);
                    float r1 = ref->dot_f32_f16_fma16(p + 1, v + 1, n - 1);
                    if (memcmp(&g1, &r1, sizeof r1) != 0)
                        fail_msg("%s dot_f32_f16_fma16 n=%d kind %d (offset 1): %a vs ref %a",
                                 kern->name, n - 1, kind, (double)g1, (double)r1);
                }
            }
        }
    }
    assert_true(fused_mattered > 10);
}

static void test_dispatch(void **state) {
    (void)state;
    unsetenv("BITNET_KERNEL");
    char err[128] = "";
    const bn_kernels *k = bn_kernels_select("ref", err, sizeof err);
    assert_non_null(k);
    assert_string_equal(k->name, "ref");
    assert_null(bn_kernels_select("sse9", err, sizeof err));
    assert_non_null(strstr(err, "unknown kernel 'sse9'"));
    const bn_kernels *avail[8];
    int n = bn_kernels_available(avail, 8);
    assert_true(n >= 1);
    assert_string_equal(avail[0]->name, "ref");
    for (int i = 0; i < n; i++) {
        assert_ptr_equal(bn_kernels_select(avail[i]->name, err, sizeof err), avail[i]);
    }
    /* A variant this CPU or build lacks gives the clear error. (Without
     * sdot, "neon" is the table named "neon-lut".) */
    const char *names[] = {"avx2", "avx512", "neon"};
    for (int j = 0; j < 3; j++) {
        int have = 0;
        for (int i = 0; i < n; i++) {
            const size_t len = strlen(names[j]);
            have |= strncmp(avail[i]->name, names[j], len) == 0 &&
                    (avail[i]->name[len] == '\0' || avail[i]->name[len] == '-');
        }
        if (have) continue;
        err[0] = 0;
        assert_null(bn_kernels_select(names[j], err, sizeof err));
        assert_non_null(strstr(err, "is not supported by this CPU"));
    }
    const bn_kernels *best = bn_kernels_select(NULL, err, sizeof err);
    assert_non_null(best);
    assert_ptr_equal(best, avail[n - 1]);
    /* Every table the bench and the tests see has its own name, which
     * selects it: the alternatives ("avx2-lut", "neon-lut", ...) too. */
    for (int i = 0; i < n_all; i++) {
        for (int j = 0; j < i; j++)
            if (strcmp(all[i]->name, all[j]->name) == 0)
                fail_msg("two tables named %s", all[i]->name);
        assert_ptr_equal(bn_kernels_select(all[i]->name, err, sizeof err), all[i]);
    }
    for (int i = 0; i < n; i++) assert_ptr_equal(all[i], avail[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_f16_scalar_edges),
        cmocka_unit_test(test_f16_all_halves),
        cmocka_unit_test(test_f32_to_f16_random),
        cmocka_unit_test(test_dot_f16),
        cmocka_unit_test(test_dot_f32_f16_fma16),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
