/* I2_S codec (docs/FORMAT.md, I2_S): hand-computed bytes, the worked
 * example, round trips, the canonical form of code 3, the scale in the tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "i2s.h"

/* docs/FORMAT.md's worked example: byte 5 of a block = 0x9A = 10 01 10 10 holds
 * w[5] = +1, w[37] = 0, w[69] = +1, w[101] = +1. */
static void test_worked_example_decode(void **state) {
    (void)state;
    uint8_t payload[32];
    memset(payload, 0x55, sizeof payload);      /* all zeros elsewhere */
    payload[5] = 0x9A;
    int8_t w[128];
    bn_i2s_decode(payload, 128, w);
    assert_int_equal(w[5], 1);
    assert_int_equal(w[37], 0);
    assert_int_equal(w[69], 1);
    assert_int_equal(w[101], 1);
    for (int i = 0; i < 128; i++)
        if (i != 5 && i != 69 && i != 101)
            assert_int_equal(w[i], 0);
    assert_int_equal(bn_i2s_weight(payload, 5), 1);
    assert_int_equal(bn_i2s_weight(payload, 37), 0);
    assert_int_equal(bn_i2s_code(payload, 5), 2);
    assert_int_equal(bn_i2s_code(payload, 37), 1);
}

static void test_worked_example_encode(void **state) {
    (void)state;
    int8_t w[128] = { 0 };
    w[5] = 1;
    w[37] = 0;
    w[69] = 1;
    w[101] = 1;
    uint8_t out[32];
    assert_int_equal(bn_i2s_encode(w, 128, out), 0);
    assert_int_equal(out[5], 0x9A);
    for (int p = 0; p < 32; p++)
        if (p != 5)
            assert_int_equal(out[p], 0x55);
}

/* Uniform blocks: all -1 = code 0 -> 0x00, all 0 = code 1 -> 0x55,
 * all +1 = code 2 -> 0xAA; group g alone at +1 over -1 -> 0x80 >> 2g. */
static void test_hand_bytes(void **state) {
    (void)state;
    int8_t w[256];
    uint8_t out[64];
    const int8_t vals[3] = { -1, 0, 1 };
    const uint8_t bytes[3] = { 0x00, 0x55, 0xAA };
    for (int v = 0; v < 3; v++) {
        memset(w, vals[v], sizeof w);
        assert_int_equal(bn_i2s_encode(w, 256, out), 0);
        for (int i = 0; i < 64; i++)
            assert_int_equal(out[i], bytes[v]);
    }
    for (int g = 0; g < 4; g++) {
        memset(w, -1, sizeof w);
        for (int p = 0; p < 32; p++)
            w[128 + 32 * g + p] = 1;                /* second block only */
        assert_int_equal(bn_i2s_encode(w, 256, out), 0);
        for (int i = 0; i < 32; i++)
            assert_int_equal(out[i], 0x00);
        for (int i = 32; i < 64; i++)
            assert_int_equal(out[i], 0x80 >> (2 * g));
    }
    /* Weight 130 = block 1, group 0, position 2 -> byte 34, bits 7-6. */
    assert_int_equal(bn_i2s_byte_index(130), 34);
    assert_int_equal(bn_i2s_shift(130), 6);
    /* Weight 255 = block 1, group 3, position 31 -> byte 63, bits 1-0. */
    assert_int_equal(bn_i2s_byte_index(255), 63);
    assert_int_equal(bn_i2s_shift(255), 0);
}

/* The unused code 3 decodes to 0. */
static void test_code3_is_zero(void **state) {
    (void)state;
    uint8_t payload[32];
    memset(payload, 0xFF, sizeof payload);
    int8_t w[128];
    bn_i2s_decode(payload, 128, w);
    for (int i = 0; i < 128; i++) {
        assert_int_equal(w[i], 0);
        assert_int_equal(bn_i2s_code(payload, (uint64_t)i), 3);
        assert_int_equal(bn_i2s_weight(payload, (uint64_t)i), 0);
    }
}

/* bn_i2s_canonical_byte keeps every value and leaves only codes 0..2, on
 * all 256 bytes: each field becomes w + 1. */
static void test_canonical_byte(void **state) {
    (void)state;
    for (int b = 0; b < 256; b++) {
        const uint8_t c = bn_i2s_canonical_byte((uint8_t)b);
        for (int f = 0; f < 4; f++) {
            const unsigned raw = ((unsigned)b >> (2 * f)) & 3u, canon = ((unsigned)c >> (2 * f)) & 3u;
            assert_true(canon <= 2);
            assert_int_equal((int)canon - 1, bn_i2s_code_value(raw));
        }
    }
    assert_int_equal(bn_i2s_canonical_byte(0xFF), 0x55);
    assert_int_equal(bn_i2s_canonical_byte(0x9A), 0x9A);
    assert_int_equal(bn_i2s_canonical_byte(0xE4), 0x64);    /* 11 10 01 00 */
}

static uint32_t lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_round_trip(void **state) {
    (void)state;
    const uint64_t n = 128 * 37;
    int8_t *w = malloc(n), *back = malloc(n);
    uint8_t *bytes = malloc(bn_i2s_tensor_bytes(n));
    assert_non_null(w);
    assert_non_null(back);
    assert_non_null(bytes);
    uint32_t s = 7;
    for (uint64_t i = 0; i < n; i++)
        w[i] = (int8_t)((int)(lcg(&s) % 3) - 1);
    assert_int_equal(bn_i2s_encode_tensor(w, n, 0.0375f, bytes), 0);
    bn_i2s_decode(bytes, n, back);
    assert_memory_equal(w, back, n);
    for (uint64_t i = 0; i < n; i++)
        assert_int_equal(bn_i2s_weight(bytes, i), w[i]);
    assert_true(bn_i2s_scale(bytes, n) == 0.0375f);
    free(w);
    free(back);
    free(bytes);
}

/* The tail: scale in the first 4 bytes (little-endian float), then zeros;
 * read back from an unaligned address. */
static void test_scale_tail(void **state) {
    (void)state;
    int8_t w[128];
    memset(w, 0, sizeof w);
    uint8_t buf[1 + 32 + 32];
    uint8_t *t = buf + 1;                           /* deliberately unaligned */
    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(bn_i2s_encode_tensor(w, 128, 0.5f, t), 0);
    assert_int_equal(bn_i2s_tensor_bytes(128), 64);
    /* 0.5f = 0x3F000000 little-endian */
    assert_int_equal(t[32], 0x00);
    assert_int_equal(t[33], 0x00);
    assert_int_equal(t[34], 0x00);
    assert_int_equal(t[35], 0x3F);
    for (int i = 36; i < 64; i++)
        assert_int_equal(t[i], 0);
    assert_true(bn_i2s_scale(t, 128) == 0.5f);
    assert_int_equal(buf[0], 0xEE);
}

static void test_encode_rejects(void **state) {
    (void)state;
    int8_t w[256];
    uint8_t out[96];
    memset(w, 0, sizeof w);
    assert_int_equal(bn_i2s_encode(w, 100, out), -1);     /* not whole blocks */
    w[200] = 2;
    assert_int_equal(bn_i2s_encode(w, 256, out), -1);     /* not ternary */
    w[200] = -2;
    assert_int_equal(bn_i2s_encode_tensor(w, 256, 1.0f, out), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example_decode),
        cmocka_unit_test(test_worked_example_encode),
        cmocka_unit_test(test_hand_bytes),
        cmocka_unit_test(test_code3_is_zero),
        cmocka_unit_test(test_canonical_byte),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_scale_tail),
        cmocka_unit_test(test_encode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
