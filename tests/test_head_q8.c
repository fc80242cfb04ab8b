/* The quantized LM head (kernels.h, "Q8 head"): the reference numerics
 * against their definition and error bounds, and every variant's layout,
 * activation quantization and gemv bit for bit against the reference (the
 * numerics are defined so that exact equality is the right test), over row
 * tails, split row ranges, zero and extreme blocks; and each variant's
 * multi-token gemm against its gemv. */
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

#define KERNEL_TEST_SEED 0x243f6a8885a308d3ull
#include "kernel_test_util.h"

static float urand(void) {     /* [-1, 1) */
    return (float)((int32_t)rnd() >> 8) / 8388608.0f;
}

/* Weights with per-block character: ordinary, all zero, one nonzero,
 * tiny (scale in the f16 subnormals or rounding to 0), the f16 extremes. */
static uint16_t *make_head(int K, int M) {
    uint16_t *w = aalloc(sizeof(uint16_t) * (size_t)K * M);
    for (int m = 0; m < M; m++) {
        const float row_amp = 0.01f + 0.2f * (urand() + 1.0f);
        for (int b = 0; b < K / 32; b++) {
            uint16_t *blk = w + (size_t)m * K + 32 * b;
            const uint32_t kind = rnd() % 16;
            for (int i = 0; i < 32; i++) {
                float v;
                switch (kind) {
                case 0: v = 0.0f; break;
                case 1: v = i == (int)(b % 32) ? -row_amp : 0.0f; break;
                case 2: v = urand() * 1e-6f; break;            /* dw subnormal f16 */
                case 3: v = urand() * 1e-9f; break;            /* dw rounds to 0 */
                case 4: v = (i & 1 ? 65504.0f : -65504.0f) * (i < 3 ? 1.0f : urand()); break;
                case 5: v = (float)((int)(rnd() % 255) - 127) / 127.0f; break;  /* on the grid */
                default: v = urand() * row_amp;
                }
                blk[i] = bn_f32_to_f16(v);
            }
        }
    }
    return w;
}

static void make_x(float *x, int K, int kind) {
    for (int i = 0; i < K; i++) {
        switch (kind) {
        case 0: x[i] = urand() * 3.0f; break;
        case 1: x[i] = (i / 32) % 3 == 0 ? 0.0f : urand() * 50.0f; break;   /* zero blocks */
        case 2: x[i] = i % 32 == 5 ? 1e30f : urand() * 1e-30f; break;       /* one huge per block */
        default: x[i] = (float)(i % 7) - 3.0f;
        }
    }
}

/* Decodes weight (m, k) and scale (m, b) from a layout of tile height R. */
static int8_t get_q(const uint8_t *p, int R, int K, int m, int k) {
    const uint8_t *tile = p + (size_t)(m / R) * ((size_t)R * K / 16 * 17);
    return (int8_t)tile[(size_t)32 * R * (k / 32) + (size_t)4 * R * ((k % 32) / 4) + 4 * (m % R) + k % 4];
}

static uint16_t get_d(const uint8_t *p, int R, int K, int m, int b) {
    const uint8_t *tile = p + (size_t)(m / R) * ((size_t)R * K / 16 * 17);
    uint16_t d;
    memcpy(&d, tile + (size_t)R * K + 2 * ((size_t)R * b + m % R), 2);
    return d;
}

/* ---- the block rule and its error bound ----------------------------------- */

static void test_block_rule(void **state) {
    (void)state;
    for (int it = 0; it < 4000; it++) {
        uint16_t w[32];
        const float amp = ldexpf(1.0f, (int)(rnd() % 40) - 30);
        for (int i = 0; i < 32; i++) w[i] = bn_f32_to_f16(urand() * amp);
        if (it % 10 == 0) memset(w, 0, sizeof w);
        int8_t q[32];
        const uint16_t dh = bn_q8_block_quantize(w, q);
        const float d = bn_f16_to_f32(dh);
        float amax = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(bn_f16_to_f32(w[i])));
        assert_true(d >= 0.0f);
        if (d == 0.0f) {
            /* Only when amax/127 rounds to zero in f16: every q is 0. */
            assert_true(amax / 127.0f <= ldexpf(1.0f, -25));
            for (int i = 0; i < 32; i++) assert_int_equal(q[i], 0);
            continue;
        }
        assert_int_equal(dh, bn_f32_to_f16(amax / 127.0f));
        int peak = 0;
        for (int i = 0; i < 32; i++) {
            assert_true(q[i] >= -127 && q[i] <= 127);
            if (abs(q[i]) > peak) peak = abs(q[i]);
            const double err = fabs((double)bn_f16_to_f32(w[i]) - (double)q[i] * (double)d);
            /* Normal d: within half a step (the clamp at 127 costs at most
             * amax·2^-11 < d/2). Subnormal d: rounding d moved the grid by
             * up to 2^-25 per step, times 127 steps at most. */
            const double tol = d >= ldexpf(1.0f, -14) ? 0.5 * (double)d * (1 + 1e-6)
                                                       : 0.5 * (double)d + 127 * ldexp(1, -25);
            if (err > tol) fail_msg("block err %g > %g (d=%g q=%d)", err, tol, (double)d, q[i]);
        }
        if (d >= ldexpf(1.0f, -14)) assert_true(peak >= 126);      /* the grid is used fully */
    }
}

static void test_act_rule(void **state) {
    (void)state;
    const int K = 2560;
    float *x = aalloc(sizeof(float) * K);
    uint8_t *xq = aalloc(bn_act_q8_size(K));
    for (int kind = 0; kind < 4; kind++) {
        make_x(x, K, kind);
        bn_act_q8_quantize_ref(x, K, xq);
        const int8_t *q = (const int8_t *)xq;
        for (int b = 0; b < K / 32; b++) {
            float d;
            int32_t sum, s = 0;
            memcpy(&d, xq + K + 4 * b, 4);
            memcpy(&sum, xq + K + 4 * (K / 32) + 4 * b, 4);
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * b + i]));
            assert_true(d == amax / 127.0f);
            for (int i = 0; i < 32; i++) {
                const int v = q[32 * b + i];
                s += v;
                assert_true(v >= -127 && v <= 127);
                const double err = fabs((double)x[32 * b + i] - (double)v * (double)d);
                if (err > 0.5 * (double)d * (1 + 1e-4) + 1e-45)
                    fail_msg("act err %g d %g", err, (double)d);
            }
            assert_int_equal(sum, s);
        }
    }
    free(x);
    free(xq);
}

/* ---- the reference gemv against the definition and against F16 truth ------ */

static void test_ref_gemv(void **state) {
    (void)state;
    const bn_kernels *ref = all[0];
    assert_int_equal(ref->fmt[BN_FMT_Q8_HEAD]->tile_rows, 1);
    const int K = 640, M = 37;
    uint16_t *w = make_head(K, M);
    uint8_t *wq = aalloc(ref->fmt[BN_FMT_Q8_HEAD]->packed_size(K, M));
    assert_int_equal(ref->fmt[BN_FMT_Q8_HEAD]->packed_size(K, M), (size_t)K * M / 32 * 34);
    ref->fmt[BN_FMT_Q8_HEAD]->pack(w, K, M, 0, M, wq);
    float *x = aalloc(sizeof(float) * K), y[37];
    uint8_t *xq = aalloc(bn_act_q8_size(K));
    make_x(x, K, 0);
    ref->fmt[BN_FMT_Q8_HEAD]->act_prep(x, K, xq);
    ref->fmt[BN_FMT_Q8_HEAD]->gemv(wq, K, M, xq, 0, M, y);
    for (int m = 0; m < M; m++) {
        /* Definition, written out: quantize each block again here. */
        float acc = 0.0f;
        double exact = 0, bound = 0, mag = 0;
        for (int b = 0; b < K / 32; b++) {
            int8_t q[32];
            const float dw = bn_f16_to_f32(bn_q8_block_quantize(w + (size_t)m * K + 32 * b, q));
            float dx;
            memcpy(&dx, xq + K + 4 * b, 4);
            int32_t isum = 0;
            for (int i = 0; i < 32; i++) {
                assert_int_equal(q[i], get_q(wq, 1, K, m, 32 * b + i));
                isum += q[i] * ((const int8_t *)xq)[32 * b + i];
                const double wv = (double)bn_f16_to_f32(w[(size_t)m * K + 32 * b + i]), xv = (double)x[32 * b + i];
                exact += wv * xv;
                /* |w·x − ŵ·x̂| <= |w−ŵ||x| + |ŵ||x−x̂|, |x−x̂| <= dx/2 (test_act_rule) */
                const double wh = (double)q[i] * (double)dw;
                bound += fabs(wv - wh) * fabs(xv) + fabs(wh) * 0.5 * (double)dx * (1 + 1e-4);
            }
            const float term = (float)isum * (dw * dx);
            acc = acc + term;
            mag += fabs((double)term);
        }
        if (memcmp(&acc, &y[m], 4) != 0)
            fail_msg("ref row %d: %a vs definition %a", m, (double)y[m], (double)acc);
        /* Float rounding: two products and one sum per block, each within
         * 2^-24 relative; the recursive sum within (K/32)·2^-24·Σ|terms|. */
        bound += (K / 32 + 2) * ldexp(1.0, -24) * mag * 1.01;
        if (fabs((double)y[m] - exact) > bound)
            fail_msg("row %d: %g vs f16 truth %g (bound %g)", m, (double)y[m], exact, bound);
    }
    free(w);
    free(wq);
    free(x);
    free(xq);
}

/* ---- every variant against the reference, bit for bit ---------------------- */

/* Still the memset pattern: a float the gemm must not have written. */
static int untouched(const float *p) {
    uint32_t u;
    memcpy(&u, p, 4);
    return u == 0x7f7f7f7fu;
}

/* A variant's gemm against its own gemv, bit for bit: N = 1..9 tokens (the
 * kernels take several at a time, with a remainder), over all rows and over
 * a range whose ends are not tile-aligned, into rows ldy apart. The tokens
 * are x scaled differently, so each has its own q and dx. */
static void check_gemm(const bn_kernels *k, const uint8_t *wq, int K, int M, const float *x) {
    const bn_format_traits *f = k->fmt[BN_FMT_Q8_HEAD];
    enum { NMAX = 9 };
    const size_t as = f->act_size(K);
    const int ldy = M + 3;
    uint8_t *act = aalloc(as * NMAX);
    float *xs = aalloc(sizeof(float) * K), *want = aalloc(sizeof(float) * M);
    float *got = aalloc(sizeof(float) * (size_t)ldy * NMAX);
    for (int n = 0; n < NMAX; n++) {
        for (int i = 0; i < K; i++)
            xs[i] = n == 0 ? x[i] : x[(i + 7 * n) % K] * (float)(n + 1) * 0.37f - (float)(i % 5 * (n % 3));
        f->act_prep(xs, K, act + as * (size_t)n);
    }
    for (int pass = 0; pass < 2; pass++) {
        int m0 = 0, m1 = M;
        if (pass == 1) {        /* some range, usually cutting tiles at both ends */
            m0 = (int)(rnd() % (M + 1));
            m1 = m0 + (int)(rnd() % (M - m0 + 1));
        }
        for (int N = 1; N <= NMAX; N++) {
            memset(got, 0x7f, sizeof(float) * (size_t)ldy * NMAX);
            f->gemm(wq, K, M, act, N, m0, m1, got, ldy);
            for (int n = 0; n < NMAX; n++) {
                if (m1 > m0) f->gemv(wq, K, M, act + as * (size_t)n, m0, m1, want);
                for (int m = m0; m < m1; m++) {
                    const float *g = &got[(size_t)n * ldy + (m - m0)];
                    if (n < N ? memcmp(g, &want[m - m0], 4) != 0 : !untouched(g))
                        fail_msg("%s gemm N=%d rows [%d,%d) K=%d M=%d token %d row %d: %a != %a", k->name, N, m0,
                                 m1, K, M, n, m, (double)*g, (double)want[m - m0]);
                }
                /* nothing past the range in this token's row */
                for (int m = m1 - m0; m < ldy; m++)
                    if (!untouched(&got[(size_t)n * ldy + m]))
                        fail_msg("%s gemm N=%d wrote past row %d of token %d", k->name, N, m1, n);
            }
        }
    }
    free(act);
    free(xs);
    free(want);
    free(got);
}

static void check_shape(int K, int M, int xkind) {
    const bn_kernels *ref = all[0];
    uint16_t *w = make_head(K, M);
    uint8_t *want_w = aalloc(ref->fmt[BN_FMT_Q8_HEAD]->packed_size(K, M));
    ref->fmt[BN_FMT_Q8_HEAD]->pack(w, K, M, 0, M, want_w);
    float *x = aalloc(sizeof(float) * K), *want = aalloc(sizeof(float) * M), *got = aalloc(sizeof(float) * M);
    const size_t xs = bn_act_q8_size(K);
    uint8_t *want_x = aalloc(xs), *got_x = aalloc(xs);
    make_x(x, K, xkind);
    ref->fmt[BN_FMT_Q8_HEAD]->act_prep(x, K, want_x);
    ref->fmt[BN_FMT_Q8_HEAD]->gemv(want_w, K, M, want_x, 0, M, want);

    for (int v = 1; v < n_all; v++) {
        const bn_kernels *k = all[v];
        const int R = k->fmt[BN_FMT_Q8_HEAD]->tile_rows;
        assert_true(R >= 1);
        const size_t sz = k->fmt[BN_FMT_Q8_HEAD]->packed_size(K, M);
        assert_int_equal(sz, (size_t)(M + R - 1) / R * R * K / 32 * 34);
        uint8_t *wq = aalloc(sz), *wq2 = aalloc(sz);
        memset(wq, 0xa5, sz);
        k->fmt[BN_FMT_Q8_HEAD]->pack(w, K, M, 0, M, wq);
        for (int m = 0; m < (M + R - 1) / R * R; m++) {
            for (int kk = 0; kk < K; kk++) {
                const int8_t g = get_q(wq, R, K, m, kk), e = m < M ? get_q(want_w, 1, K, m, kk) : 0;
                if (g != e) fail_msg("%s quantize K=%d M=%d: q(%d,%d) %d != %d", k->name, K, M, m, kk, g, e);
            }
            for (int b = 0; b < K / 32; b++) {
                const uint16_t g = get_d(wq, R, K, m, b), e = m < M ? get_d(want_w, 1, K, m, b) : 0;
                if (g != e) fail_msg("%s quantize K=%d M=%d: d(%d,%d) %04x != %04x", k->name, K, M, m, b, g, e);
            }
        }
        /* Quantizing in row ranges (as load-time threads do), including cuts
         * that are not multiples of R, gives the same bytes. */
        memset(wq2, 0x5a, sz);
        const int cut1 = (int)(rnd() % (M + 1)), cut2 = (M / R / 2) * R;
        const int lo = cut1 < cut2 ? cut1 : cut2, hi = cut1 < cut2 ? cut2 : cut1;
        k->fmt[BN_FMT_Q8_HEAD]->pack(w, K, M, 0, lo, wq2);
        k->fmt[BN_FMT_Q8_HEAD]->pack(w, K, M, hi, M, wq2);
        k->fmt[BN_FMT_Q8_HEAD]->pack(w, K, M, lo, hi, wq2);
        if (memcmp(wq, wq2, sz) != 0) fail_msg("%s split quantize [%d,%d] differs", k->name, lo, hi);

        k->fmt[BN_FMT_Q8_HEAD]->act_prep(x, K, got_x);
        if (memcmp(got_x, want_x, xs) != 0) fail_msg("%s act_q8_quantize K=%d differs", k->name, K);

        memset(got, 0x7f, sizeof(float) * M);
        k->fmt[BN_FMT_Q8_HEAD]->gemv(wq, K, M, want_x, 0, M, got);
        for (int m = 0; m < M; m++)
            if (memcmp(&got[m], &want[m], 4) != 0)
                fail_msg("%s gemv K=%d M=%d row %d: %a != %a", k->name, K, M, m, (double)got[m],
                         (double)want[m]);
        /* Split rows: one range starting mid-tile, one R-aligned. */
        memset(got, 0x7f, sizeof(float) * M);
        const int c = (int)(rnd() % (M + 1));
        k->fmt[BN_FMT_Q8_HEAD]->gemv(wq, K, M, want_x, 0, c, got);
        k->fmt[BN_FMT_Q8_HEAD]->gemv(wq, K, M, want_x, c, M, got + c);
        for (int m = 0; m < M; m++)
            if (memcmp(&got[m], &want[m], 4) != 0)
                fail_msg("%s gemv split at %d K=%d M=%d row %d: %a != %a", k->name, c, K, M, m,
                         (double)got[m], (double)want[m]);
        check_gemm(k, wq, K, M, x);
        free(wq);
        free(wq2);
    }
    check_gemm(ref, want_w, K, M, x);
    free(w);
    free(want_w);
    free(x);
    free(want);
    free(got);
    free(want_x);
    free(got_x);
}

static void test_variants(void **state) {
    (void)state;
    static const int shapes[][2] = {{32, 1}, {32, 17}, {64, 16}, {96, 33}, {2560, 40}, {2560, 7}, {640, 129}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int xk = 0; xk < 4; xk++) check_shape(shapes[s][0], shapes[s][1], xk);
    for (int it = 0; it < 6; it++) check_shape(32 * (1 + (int)(rnd() % 100)), 1 + (int)(rnd() % 70), (int)(rnd() % 4));
}

/* Every table handed out has the whole group (NULL entries are completed
 * from the reference by the dispatcher), and selection is consistent. */
static void test_tables_complete(void **state) {
    (void)state;
    unsetenv("BITNET_KERNEL");
    for (int v = 0; v < n_all; v++) {
        const bn_kernels *k = all[v];
        assert_non_null(k->fmt[BN_FMT_Q8_HEAD]->packed_size);
        assert_non_null(k->fmt[BN_FMT_Q8_HEAD]->pack);
        assert_non_null(k->fmt[BN_FMT_Q8_HEAD]->act_prep);
        assert_non_null(k->fmt[BN_FMT_Q8_HEAD]->gemv);
        assert_true(k->fmt[BN_FMT_Q8_HEAD]->tile_rows >= 1);
    }
    const bn_kernels *avail[8];
    const int n = bn_kernels_available(avail, 8);
    char err[128];
    for (int i = 0; i < n; i++) {
        assert_ptr_equal(bn_kernels_select(avail[i]->name, err, sizeof err), avail[i]);
        assert_non_null(avail[i]->fmt[BN_FMT_Q8_HEAD]->gemv);
    }
    const bn_kernels *best = bn_kernels_select(NULL, err, sizeof err);
    assert_non_null(best);
    assert_non_null(best->fmt[BN_FMT_Q8_HEAD]->gemv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables_complete),
        cmocka_unit_test(test_block_rule),
        cmocka_unit_test(test_act_rule),
        cmocka_unit_test(test_ref_gemv),
        cmocka_unit_test(test_variants),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
