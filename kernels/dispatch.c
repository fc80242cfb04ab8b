/* Run-time choice of the kernel variant: what the CPU can run (CPUID + XGETBV
 * on x86, AT_HWCAP on aarch64), what this binary contains (a variant's entry
 * point returns NULL where it was not compiled), and what the user forces
 * (argument or $BITNET_KERNEL). */
#include <pthread.h>
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
#endif

enum { CPU_AVX2 = 1, CPU_AVX512 = 2, CPU_NEON = 4 };

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
static int cpu_features(void) {
#ifdef HWCAP_ASIMD
    return (getauxval(AT_HWCAP) & HWCAP_ASIMD) ? CPU_NEON : 0;
#else
    return CPU_NEON;    /* Advanced SIMD is mandatory in ARMv8-A */
#endif
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

/* Best first: the automatic choice is the first usable entry. */
static const variant variants[] = {
    {"avx512", bn_kernels_avx512, CPU_AVX512},
    {"avx2", bn_kernels_avx2, CPU_AVX2},
    {"neon", bn_kernels_neon, CPU_NEON},
    {"ref", bn_kernels_ref, 0},
};
enum { N_VARIANTS = sizeof variants / sizeof variants[0] };

/* Optional entries (kernels.h): a table missing the quantized-head group or
 * dot_f32_f16_fma16 is handed out as a copy completed from the reference.
 * One copy per source table, made on first use and kept for the life of the
 * process, so every caller sees the same pointer for the same variant. */
enum { MAX_FILLED = 16 };
static pthread_mutex_t filled_lock = PTHREAD_MUTEX_INITIALIZER;
static const bn_kernels *filled_src[MAX_FILLED];
static bn_kernels filled[MAX_FILLED];

static const bn_kernels *complete(const bn_kernels *k) {
    if (!k || (k->head_q8_size && k->dot_f32_f16_fma16)) return k;
    const bn_kernels *out = k;
    pthread_mutex_lock(&filled_lock);
    int i = 0;
    while (i < MAX_FILLED && filled_src[i] && filled_src[i] != k) i++;
    if (i < MAX_FILLED) {
        if (!filled_src[i]) {
            const bn_kernels *ref = bn_kernels_ref();
            filled[i] = *k;
            if (!k->head_q8_size) {
                filled[i].head_q8_size = ref->head_q8_size;
                filled[i].head_q8_quantize = ref->head_q8_quantize;
                filled[i].act_q8_quantize = ref->act_q8_quantize;
                filled[i].gemv_head_q8 = ref->gemv_head_q8;
                filled[i].head_q8_rows = ref->head_q8_rows;
            }
            if (!k->dot_f32_f16_fma16) filled[i].dot_f32_f16_fma16 = ref->dot_f32_f16_fma16;
            filled_src[i] = k;
        }
        out = &filled[i];
    }
    pthread_mutex_unlock(&filled_lock);
    return out;     /* more than MAX_FILLED sources cannot happen: tables are static */
}

static const bn_kernels *usable(const variant *v, int feats) {
    if ((v->needs & feats) != v->needs) return NULL;
    return complete(v->get());
}

const bn_kernels *bn_kernels_select(const char *force, char *err, size_t errlen) {
    if (!force || !*force) force = getenv("BITNET_KERNEL");
    const int feats = cpu_features();
    if (!force || !*force || strcmp(force, "auto") == 0) {
        for (int i = 0; i < N_VARIANTS; i++) {
            const bn_kernels *k = usable(&variants[i], feats);
            if (k) return k;
        }
        return complete(bn_kernels_ref());
    }
    for (int i = 0; i < N_VARIANTS; i++) {
        if (strcmp(force, variants[i].name) != 0) continue;
        const bn_kernels *k = usable(&variants[i], feats);
        if (!k && err && errlen)
            snprintf(err, errlen, "kernel '%s' is not supported by this CPU", force);
        return k;
    }
    if (err && errlen)
        snprintf(err, errlen, "unknown kernel '%s' (expected ref, avx2, avx512 or neon)", force);
    return NULL;
}

int bn_kernels_available(const bn_kernels **out, int max) {
    /* Reference first, then increasing capability: tests compare against
     * out[0]. */
    const int feats = cpu_features();
    int n = 0;
    for (int i = N_VARIANTS - 1; i >= 0; i--) {
        const bn_kernels *k = usable(&variants[i], feats);
        if (!k) continue;
        if (n < max && out) out[n] = k;
        n++;
    }
    return n;
}

int bn_kernels_all(const bn_kernels **out, int max) {
    int n = bn_kernels_available(out, max);
    /* Alternatives of a variant, usable where that variant is. */
    static const variant extras[] = {
        {"avx2-mad", bn_kernels_avx2_mad, CPU_AVX2},
        {"avx2-lut", bn_kernels_avx2_lut, CPU_AVX2},
    };
    const int feats = cpu_features();
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        const bn_kernels *k = usable(&extras[i], feats);
        if (!k) continue;
        if (n < max && out) out[n] = k;
        n++;
    }
    return n;
}
