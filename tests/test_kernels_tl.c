/* The 1.67-bit t3 layout (kernels/ternary_tl.h; docs/FORMAT.md, T3 lookup
 * layout): the packed bytes decode back to the I2_S weights as documented
 * and every t3 variant packs the same bytes, every t3 variant's prepared
 * input has the reference's bytes (tables with T = 31·H + L in range),
 * a batch's preparation writes q and Σ q alone
 * and no gemm reads the rest, and every t3 variant's integer dots equal
 * kernels/ternary_ref.c on inputs that drive the int8 and int16 sums to
 * their bounds (test_kernels.c also runs them on its general cases). */
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
#include "ternary_tl.h"

#define KERNEL_TEST_SEED 0x51a7e5c0ffee1234ull
#include "kernel_test_util.h"

/* The tables whose ternary format is t3 (ref-tl first). */
static const bn_kernels *t3[8];
static int n_t3;

static int setup_t3(void **state) {
    if (setup(state) != 0) return -1;
    n_t3 = 1;
    t3[0] = NULL;
    for (int i = 0; i < n_all; i++) {
        if (strcmp(all[i]->name, "ref-tl") == 0)
            t3[0] = all[i];
        else if (strncmp(all[i]->fmt[BN_FMT_TERNARY]->name, "t3-", 3) == 0 && n_t3 < 8)
            t3[n_t3++] = all[i];
    }
    for (int i = 0; t3[0] && i < n_t3; i++) print_message("t3 variant: %s\n", t3[i]->name);
    return t3[0] ? 0 : -1;
}

/* Ternary weights [M][K] (values -1..1) to an I2_S payload; K % 128 == 0
 * is not needed (rows run on in the flat stream, docs/FORMAT.md, Unaligned
 * I2_S rows), the total is padded to whole blocks. */
static uint8_t *encode_i2s(const int8_t *w, int K, int M) {
    const size_t n = (size_t)K * M, nb = (n + 127) / 128 * 128;
    int8_t *padded = calloc(nb, 1);
    assert_non_null(padded);
    memcpy(padded, w, n);
    uint8_t *out = aalloc(nb / 4);
    assert_int_equal(bn_i2s_encode(padded, nb, out), 0);
    free(padded);
    return out;
}

/* Weight (m, k) read back from the packed layout as docs/FORMAT.md
 * describes it. */
static int t3_weight(const uint8_t *packed, int K, int m, int k) {
    const uint8_t *tile = packed + (size_t)(m / 32) * bn_t3_tile_bytes(K);
    const int g = k / 3, c = g / 8, j = g % 8, r = m % 32;
    const uint8_t *chunk = tile + (size_t)c * 160;
    const int idx = chunk[32 * (j / 2) + r] >> (4 * (j % 2)) & 15;
    const int neg = chunk[128 + r] >> j & 1;
    assert_true(idx <= 13);
    assert_false(idx == 0 && neg);      /* zero has one code */
    int w[3];
    bn_t3_decode(idx, neg, w);
    return w[k % 3];
}

static void test_layout_roundtrip(void **state) {
    (void)state;
    const int shapes[][2] = {{128, 1}, {384, 33}, {2560, 64}, {200, 5}, {24, 40}, {7, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int K = shapes[s][0], M = shapes[s][1];
        int8_t *w = malloc((size_t)K * M);
        assert_non_null(w);
        for (size_t i = 0; i < (size_t)K * M; i++) w[i] = (int8_t)(rnd() % 3) - 1;
        uint8_t *i2s = encode_i2s(w, K, M);
        uint8_t *packed = aalloc(bn_t3_packed_size(K, M));
        bn_t3_pack(i2s, K, M, packed);
        for (int m = 0; m < (M + 31) / 32 * 32; m++)
            for (int k = 0; k < bn_t3_chunks(K) * 24; k++) {
                const int want = m < M && k < K ? w[(size_t)m * K + k] : 0;
                if (t3_weight(packed, K, m, k) != want)
                    fail_msg("K=%d M=%d: weight (%d, %d) decodes to %d, not %d", K, M, m, k,
                             t3_weight(packed, K, m, k), want);
            }
        /* 5 bits per 3 weights, tiles of 32 rows, chunks of 24 weights */
        assert_int_equal(bn_t3_packed_size(K, M),
                         (size_t)((M + 31) / 32) * 32 * (size_t)bn_t3_chunks(K) * 8 * 5 / 8);
        free(w);
        free(i2s);
        free(packed);
    }
}

/* Every t3 variant's pack gives bn_t3_pack's bytes, over a buffer of
 * random bytes (so that a byte it failed to write shows): K off 128 and
 * off 384, M off the 32-row tile, codes 3 (read as 0) mixed in. */
static void test_pack_variants(void **state) {
    (void)state;
    const int shapes[][2] = {{128, 1},  {256, 31},  {384, 33}, {2560, 64}, {2560, 70},
                             {6912, 40}, {640, 97}, {200, 5},  {24, 40},   {7, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int K = shapes[s][0], M = shapes[s][1];
        const size_t nb = ((size_t)K * M + 127) / 128 * 32, size = bn_t3_packed_size(K, M);
        uint8_t *i2s = aalloc(nb), *want = aalloc(size), *got = aalloc(size);
        for (size_t i = 0; i < nb; i++) i2s[i] = (uint8_t)rnd();
        bn_t3_pack(i2s, K, M, want);
        for (int v = 0; v < n_t3; v++) {
            const bn_format_traits *f = t3[v]->fmt[BN_FMT_TERNARY];
            assert_int_equal(f->packed_size(K, M), size);
            for (size_t i = 0; i < size; i++) got[i] = (uint8_t)rnd();
            f->pack(i2s, K, M, 0, M, got);
            for (size_t i = 0; i < size; i++)
                if (got[i] != want[i])
                    fail_msg("%s pack K=%d M=%d: byte %zu is %d, not %d", t3[v]->name, K, M, i,
                             got[i], want[i]);
        }
        free(i2s);
        free(want);
        free(got);
    }
}

enum akind { A_RANDOM, A_MAX, A_MIN, A_ALT, A_FIFTEEN, A_EXTREMES };

static void fill_acts(int8_t *q, int K, enum akind kind) {
    static const int8_t extremes[] = {-128, 127, 15, -15, 16, -16, 46, -46};
    for (int i = 0; i < K; i++) {
        switch (kind) {
        case A_MAX: q[i] = 127; break;
        case A_MIN: q[i] = -128; break;
        case A_ALT: q[i] = (int8_t)(i & 1 ? -128 : 127); break;
        case A_FIFTEEN: q[i] = 15; break;  /* T = 15: L = 15 in every lookup */
        case A_EXTREMES: q[i] = extremes[rnd() % 8]; break;
        default: q[i] = (int8_t)(rnd() & 0xff);
        }
    }
}

/* Every table entry: T = 31·H + L, |L| <= 15, |H| <= 12, and T the sum of
 * its combination; every variant's prepared input has the same bytes. */
static void test_act_prep(void **state) {
    (void)state;
    const int Ks[] = {128, 2560, 6912, 8192, 200};
    for (size_t s = 0; s < sizeof Ks / sizeof Ks[0]; s++) {
        const int K = Ks[s];
        const size_t as = bn_t3_act_size(K);
        int8_t *q = malloc((size_t)K);
        uint8_t *want = aalloc(as), *got = aalloc(as);
        for (int kind = A_RANDOM; kind <= A_EXTREMES; kind++) {
            fill_acts(q, K, (enum akind)kind);
            memset(want, 0x5a, as);
            bn_t3_act_prep_ref(q, K, want);
            const int8_t *tab = (const int8_t *)(want + bn_t3_table_offset(K));
            int32_t sum = 0;
            for (int k = 0; k < K; k++) sum += q[k];
            assert_int_equal(bn_t3_act_sum(want, K), sum);
            for (int g = 0; g < bn_t3_chunks(K) * 8; g++)
                for (int i = 0; i < 16; i++) {
                    const int L = tab[32 * g + i], H = tab[32 * g + 16 + i];
                    int T = 0;
                    if (i < 14) {
                        int w[3];
                        bn_t3_decode(i, 0, w);
                        for (int j = 0; j < 3; j++)
                            if (3 * g + j < K) T += w[j] * q[3 * g + j];
                    }
                    if (L < -15 || L > 15 || H < -12 || H > 12 || 31 * H + L != T)
                        fail_msg("K=%d group %d entry %d: T=%d H=%d L=%d", K, g, i, T, H, L);
                }
            for (int v = 1; v < n_t3; v++) {
                memset(got, 0xa5, as);
                t3[v]->fmt[BN_FMT_TERNARY]->act_prep(q, K, got);
                for (size_t b = 0; b < as; b++)
                    if (got[b] != want[b])
                        fail_msg("%s act_prep K=%d kind %d: byte %zu is %d, not %d", t3[v]->name,
                                 K, kind, b, got[b], want[b]);
            }
            /* a batch's preparation: q and Σ q as above, the tables untouched */
            for (int v = 0; v < n_t3; v++) {
                void (*prep)(const void *, int, void *) =
                    t3[v]->fmt[BN_FMT_TERNARY]->act_prep_batch;
                if (!prep) continue;
                memset(got, 0xa5, as);
                prep(q, K, got);
                for (size_t b = 0; b < as; b++) {
                    const int expect = b < bn_t3_table_offset(K) ? want[b] : 0xa5;
                    if (got[b] != expect)
                        fail_msg("%s act_prep_batch K=%d kind %d: byte %zu is %d, not %d",
                                 t3[v]->name, K, kind, b, got[b], expect);
                }
            }
        }
        free(q);
        free(want);
        free(got);
    }
}

enum wkind { W_RANDOM, W_MINUS, W_PLUS, W_FIRST, W_MIXED };

/* W_FIRST: (1, 0, 0) in every group, so with A_FIFTEEN each lookup is
 * L = 15; W_MIXED: groups of all-equal weights with random signs. */
static void fill_weights(int8_t *w, int K, int M, enum wkind kind) {
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++) {
            int8_t *p = w + (size_t)m * K + k;
            switch (kind) {
            case W_MINUS: *p = -1; break;
            case W_PLUS: *p = 1; break;
            case W_FIRST: *p = k % 3 == 0 ? (int8_t)(m & 1 ? -1 : 1) : 0; break;
            case W_MIXED: *p = k % 3 == 0 ? (int8_t)(rnd() & 1 ? 1 : -1) : p[-(k % 3)]; break;
            default: *p = (int8_t)(rnd() % 3) - 1;
            }
        }
}

static void check_dots(int K, int M, int N, enum wkind wk, enum akind ak) {
    int8_t *w = malloc((size_t)K * M), *q = malloc((size_t)K * N);
    assert_non_null(w);
    assert_non_null(q);
    fill_weights(w, K, M, wk);
    for (int n = 0; n < N; n++) fill_acts(q + (size_t)n * K, K, n == 0 || wk != W_RANDOM ? ak : A_RANDOM);
    uint8_t *i2s = encode_i2s(w, K, M);
    int32_t *want = aalloc(sizeof(int32_t) * (size_t)M * N), *got = aalloc(sizeof(int32_t) * (size_t)M * N);
    for (int n = 0; n < N; n++)
        for (int m = 0; m < M; m++) {
            int32_t acc = 0;
            for (int k = 0; k < K; k++) acc += w[(size_t)m * K + k] * q[(size_t)n * K + k];
            want[(size_t)n * M + m] = acc;
        }
    for (int v = 0; v < n_t3; v++) {
        const bn_format_traits *f = t3[v]->fmt[BN_FMT_TERNARY];
        uint8_t *packed = aalloc(f->packed_size(K, M));
        f->pack(i2s, K, M, 0, M, packed);
        const size_t as = f->act_size(K);
        uint8_t *act = aalloc(as * N);
        for (int n = 0; n < N; n++) f->act_prep(q + (size_t)n * K, K, act + as * n);
        memset(got, 0x5a, sizeof(int32_t) * (size_t)M * N);
        f->gemm(packed, K, M, act, N, 0, M, got, M);
        for (size_t i = 0; i < (size_t)M * N; i++)
            if (got[i] != want[i])
                fail_msg("%s gemm K=%d M=%d N=%d w%d a%d: token %zu row %zu: %d != %d",
                         t3[v]->name, K, M, N, wk, ak, i / M, i % M, got[i], want[i]);
        if (f->act_prep_batch) {
            /* The same batch prepared as the forward pass prepares one, over
             * random bytes: a gemm that read any byte the preparation left
             * (the tables) would give other dots. */
            for (size_t b = 0; b < as * N; b++) act[b] = (uint8_t)rnd();
            for (int n = 0; n < N; n++) f->act_prep_batch(q + (size_t)n * K, K, act + as * n);
            memset(got, 0x5a, sizeof(int32_t) * (size_t)M * N);
            f->gemm(packed, K, M, act, N, 0, M, got, M);
            for (size_t i = 0; i < (size_t)M * N; i++)
                if (got[i] != want[i])
                    fail_msg("%s gemm (act_prep_batch) K=%d M=%d N=%d w%d a%d: token %zu row "
                             "%zu: %d != %d", t3[v]->name, K, M, N, wk, ak, i / M, i % M, got[i],
                             want[i]);
            for (int n = 0; n < N; n++) f->act_prep(q + (size_t)n * K, K, act + as * n);
        }
        for (int n = 0; n < N && n < 2; n++) {
            f->gemv(packed, K, M, act + as * n, 0, M, got);
            for (int m = 0; m < M; m++)
                if (got[m] != want[(size_t)n * M + m])
                    fail_msg("%s gemv K=%d M=%d w%d a%d: token %d row %d: %d != %d", t3[v]->name,
                             K, M, wk, ak, n, m, got[m], want[(size_t)n * M + m]);
        }
        free(packed);
        free(act);
    }
    free(w);
    free(q);
    free(i2s);
    free(want);
    free(got);
}

/* All +127 / all -128 against all ±1 (|dot| up to 2^20 at K = 8192), the
 * L = ±15 lookups that fill the int8 sums, and random mixtures. */
static void test_adversarial(void **state) {
    (void)state;
    const enum wkind wks[] = {W_MINUS, W_PLUS, W_FIRST, W_MIXED, W_RANDOM};
    const enum akind aks[] = {A_MAX, A_MIN, A_ALT, A_FIFTEEN, A_EXTREMES};
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 5; j++) check_dots(8192, 37, 2, wks[i], aks[j]);
}

/* Shapes: K not a multiple of 24 (padded groups), M off the 32-row tile,
 * N from 1 to 200 (the batch kernel's token blocks and remainders). */
static void test_shapes(void **state) {
    (void)state;
    for (int it = 0; it < 16; it++) {
        const int K = 128 * (1 + (int)(rnd() % 64));
        const int M = 1 + (int)(rnd() % 80);
        const int N = 1 + (int)(rnd() % 9);
        check_dots(K, M, N, W_RANDOM, A_RANDOM);
    }
    check_dots(128, 33, 200, W_RANDOM, A_EXTREMES);
    check_dots(384, 64, 131, W_MIXED, A_MIN);
    check_dots(6912, 40, 67, W_RANDOM, A_RANDOM);
    check_dots(2560, 96, 1, W_RANDOM, A_EXTREMES);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_roundtrip),
        cmocka_unit_test(test_pack_variants),
        cmocka_unit_test(test_act_prep),
        cmocka_unit_test(test_adversarial),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, setup_t3, NULL);
}
