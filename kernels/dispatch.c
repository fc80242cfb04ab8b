/* Run-time choice of the kernel variant: what the CPU can run (CPUID + XGETBV
 * on x86, AT_HWCAP on aarch64 Linux, sysctl on macOS), what this binary contains (a variant's entry
 * point returns NULL where it was not compiled), and what the user forces
 * (argument or $BITNET_KERNEL; on aarch64 BITNET_NEON_DOTPROD=0 keeps the
 * plain-NEON tables in "neon" to compare them). Every choice of variant is
 * made here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BN_X86 1
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#define BN_AARCH64_LINUX 1
#elif defined(__aarch64__) && defined(__APPLE__)
#include <sys/sysctl.h>
#define BN_AARCH64_APPLE 1
#endif

enum { CPU_AVX2 = 1, CPU_AVX512 = 2, CPU_NEON = 4, CPU_DOTPROD = 8 };

#ifdef BN_X86
/* XCR0: which register states the OS saves on context switch. Without the
 * OS's consent the instructions exist but the upper register halves would be
 * lost, so CPUID alone is not enough. */
static unsigned long long read_xcr0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int cpu_features(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    const int fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return 0;
    unsigned long long xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return 0;                 /* XMM + YMM state */
    if (__get_cpuid_max(0, NULL) < 7) return 0;
    __cpuid_count(7, 0, a, b, c, d);
    int feats = 0;
    const int avx2 = (b >> 5) & 1;
    if (avx2 && fma && f16c) feats |= CPU_AVX2;
    const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1;
    const int avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
    const int vbmi = (c >> 1) & 1, vnni = (c >> 11) & 1;
    const int zmm_state = (xcr0 & 0xe0) == 0xe0;       /* opmask, ZMM0-15 hi, ZMM16-31 */
    if ((feats & CPU_AVX2) && avx512f && avx512dq && avx512bw && avx512vl && vbmi && vnni &&
        zmm_state)
        feats |= CPU_AVX512;
    return feats;
}
#elif defined(BN_AARCH64_LINUX)
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
static int cpu_features(void) {
    unsigned long hw = getauxval(AT_HWCAP);
    int feats = CPU_NEON;   /* Advanced SIMD is mandatory in ARMv8-A */
#ifdef HWCAP_ASIMD
    if (!(hw & HWCAP_ASIMD)) return 0;
#endif
    const char *env = getenv("BITNET_NEON_DOTPROD");
    if ((hw & HWCAP_ASIMDDP) && !(env && strcmp(env, "0") == 0)) feats |= CPU_DOTPROD;
    return feats;
}
#elif defined(BN_AARCH64_APPLE)
/* macOS names each optional feature in sysctl (every Apple M chip has sdot;
 * asking keeps the rule the same as on Linux). */
static int cpu_features(void) {
    int feats = CPU_NEON, dp = 0;
    size_t len = sizeof dp;
    const char *env = getenv("BITNET_NEON_DOTPROD");
    if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &dp, &len, NULL, 0) == 0 && dp &&
        !(env && strcmp(env, "0") == 0))
        feats |= CPU_DOTPROD;
    return feats;
}
#elif defined(__aarch64__)
static int cpu_features(void) {
    return CPU_NEON;
}
#else
static int cpu_features(void) {
    return 0;
}
#endif

typedef struct variant {
    const char *name;
    const bn_kernels *(*get)(void);
    int needs;          /* CPU_* bits; 0 = runs anywhere */
} variant;

/* Best first: the automatic choice is the first usable entry, and a name
 * given twice means its first usable entry ("neon": the sdot table where the
 * CPU has sdot, else the lookup-table one, whose own name is "neon-lut"). */
static const variant variants[] = {
    {"avx512", bn_kernels_avx512, CPU_AVX512},
    {"avx2", bn_kernels_avx2, CPU_AVX2},
    {"neon", bn_kernels_neon_dotprod, CPU_NEON | CPU_DOTPROD},
    {"neon", bn_kernels_neon_lut, CPU_NEON},
    {"ref", bn_kernels_ref, 0},
};
enum { N_VARIANTS = sizeof variants / sizeof variants[0] };

/* Alternatives of a variant, usable where that variant is, under their own
 * names (the tables' names): the bench and the tests measure and check them
 * all, and --kernel / BITNET_KERNEL accept them. */
static const variant alternatives[] = {
    {"avx2-mad", bn_kernels_avx2_mad, CPU_AVX2},
    {"avx2-lut", bn_kernels_avx2_lut, CPU_AVX2},
    {"neon-lut", bn_kernels_neon_lut, CPU_NEON},
    /* The 1.67-bit t3 layout (docs/FORMAT.md, T3 lookup layout): 17 % fewer
     * weight bytes per token, lookup-table decode, expand-then-multiply-add
     * prompts. Not the default: measured on the shared 2-core AMD EPYC
     * (AVX2; other jobs kept the load average at 15-20, so single timings
     * vary by +-25 %; ratios are t3 over "avx2", interleaved runs):
     *   instructions (callgrind, 2560x2560): gemv 0.98 M vs 1.12 M,
     *     gemm N = 128 103.9 M vs 88.4 M (the expansion and the broadcast
     *     inputs cost more than I2_S's shift-and-mask unpack);
     *   kernel bench, N = 1, time per matrix, 2 runs x {1, 2} threads:
     *     2560x2560 1.13 1.01 1.23 1.24, 2560x640 1.21 1.02 0.76 0.93,
     *     2560x6912 1.37 0.97 0.99 0.87, 6912x2560 1.19 1.39 1.20 1.03;
     *   2B4T, 2 rounds: tg128 1.22 1.00 (1 thread), 1.00 0.98 (2 threads);
     *     pp512 1.05 0.84 (1 thread), 1.03 0.82 (2 threads); after the
     *     gemm's asm adds, pp512 1 thread 0.88 0.83.
     * Decode is not reliably >= 1.08x faster and prompts are slower, so
     * "avx2" stays multiply-add. NEON (no hardware here; qemu checks the
     * bits, so the measure is instructions in the compiled decode loops,
     * GCC 12 -O2): per weight "neon" with sdot 0.19 (48 per 4 rows x 64
     * weights), "neon" without (I2_S lookup tables) 0.21 (54 per 256),
     * "neon-tl" 0.27 (104 per 16 rows x 24 weights; 0.48 before its group
     * loop was unrolled). t3 reads 0.83x the bytes but runs 1.3-1.4x the
     * instructions, so it wins only where decode is memory-bound with room
     * to spare; the NEON defaults stay. --kernel avx2-tl / neon-tl /
     * neon-tl-sdot select t3. */
    {"avx2-tl", bn_kernels_avx2_tl, CPU_AVX2},
    {"neon-tl", bn_kernels_neon_tl, CPU_NEON},
    {"neon-tl-sdot", bn_kernels_neon_tl_sdot, CPU_NEON | CPU_DOTPROD},
    {"ref-tl", bn_kernels_ref_tl, 0},
};
enum { N_ALTERNATIVES = sizeof alternatives / sizeof alternatives[0] };

static const bn_kernels *usable(const variant *v, int feats) {
    if ((v->needs & feats) != v->needs) return NULL;
    return v->get();
}

const bn_kernels *bn_kernels_select(const char *force, char *err, size_t errlen) {
    if (!force || !*force) force = getenv("BITNET_KERNEL");
    const int feats = cpu_features();
    if (!force || !*force || strcmp(force, "auto") == 0) {
        for (int i = 0; i < N_VARIANTS; i++) {
            const bn_kernels *k = usable(&variants[i], feats);
            if (k) return k;
        }
        return bn_kernels_ref();
    }
    int known = 0;
    for (int i = 0; i < N_VARIANTS; i++) {
        if (strcmp(force, variants[i].name) != 0) continue;
        known = 1;
        const bn_kernels *k = usable(&variants[i], feats);
        if (k) return k;
    }
    for (int i = 0; !known && i < N_ALTERNATIVES; i++) {
        if (strcmp(force, alternatives[i].name) != 0) continue;
        known = 1;
        const bn_kernels *k = usable(&alternatives[i], feats);
        if (k) return k;
    }
    if (known) {
        if (err && errlen)
            snprintf(err, errlen, "kernel '%s' is not supported by this CPU", force);
        return NULL;
    }
    if (err && errlen)
        snprintf(err, errlen,
                 "unknown kernel '%s' (expected ref, avx2, avx512 or neon; "
                 "alternatives: avx2-mad, avx2-lut, avx2-tl, neon-lut, neon-tl, neon-tl-sdot, ref-tl)",
                 force);
    return NULL;
}

int bn_kernels_available(const bn_kernels **out, int max) {
    /* Reference first, then increasing capability: tests compare against
     * out[0]. */
    const int feats = cpu_features();
    int n = 0;
    for (int i = N_VARIANTS - 1; i >= 0; i--) {
        const bn_kernels *k = usable(&variants[i], feats);
        /* one table per name: the best usable one */
        if (!k || (i > 0 && strcmp(variants[i - 1].name, variants[i].name) == 0 &&
                   usable(&variants[i - 1], feats)))
            continue;
        if (n < max && out) out[n] = k;
        n++;
    }
    return n;
}

int bn_kernels_all(const bn_kernels **out, int max) {
    const bn_kernels *have[16];
    int n = bn_kernels_available(have, 16);
    const int feats = cpu_features();
    for (int i = 0; i < N_ALTERNATIVES && n < 16; i++) {
        const bn_kernels *k = usable(&alternatives[i], feats);
        int listed = 0;
        for (int j = 0; k && j < n; j++) listed |= have[j] == k;
        if (k && !listed) have[n++] = k;    /* "neon-lut" is "neon" without sdot */
    }
    for (int i = 0; i < n && i < max && out; i++) out[i] = have[i];
    return n;
}
