/* Shared set-up of the kernel test suites: every table under test (ref
 * first), a reproducible PRNG and aligned scratch. Include after cmocka.h and
 * kernels.h; define KERNEL_TEST_SEED first to pick the suite's sequence. */
#ifndef BN_KERNEL_TEST_UTIL_H
#define BN_KERNEL_TEST_UTIL_H

#ifndef KERNEL_TEST_SEED
#define KERNEL_TEST_SEED 0x9e3779b97f4a7c15ull
#endif

static const bn_kernels *all[16];
static int n_all;

static uint64_t rng_state = KERNEL_TEST_SEED;
static uint32_t rnd(void) {     /* xorshift64*: reproducible across platforms */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* n bytes (rounded up, plus a line of slack), 64-byte aligned. */
static void *aalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    assert_non_null(p);
    return p;
}

/* cmocka group setup: the tables, reference first. */
static int setup(void **state) {
    (void)state;
    n_all = bn_kernels_all(all, 16);
    return n_all >= 1 && strcmp(all[0]->name, "ref") == 0 ? 0 : -1;
}

#endif
