/* ARMv8.2 dot-product kernels (sdot), for aarch64 CPUs with ASIMDDP; compiled
 * with -march=armv8.2-a+dotprod+fp16 and only handed out by dispatch.c
 * after the HWCAP check.
 *
 * A multiply-add kernel on the file's own layout: sdot does 16 int8 products
 * per instruction, more than a byte table lookup can replace (a lookup covers
 * at most 2-3 weights per lane and its sums need wider lanes), so on these
 * CPUs the lookup-table kernel of ternary_neon.c is kept for plain NEON only.
 *
 * Weights stay in I2_S order (src/i2s.h; code 3 rewritten to 1 at repack):
 * half h of a 32-byte block holds, in bits 7-6 / 5-4 / 3-2 / 1-0, the codes of
 * weights 32g + 16h + i (g = 0..3, i = 0..15). The fields are isolated with
 * one instruction each - a shift for bits 7-6, an AND for the others - which
 * leaves field 1 scaled by 16 and field 2 by 4. Fields of different scale
 * go to different int32 accumulators and the scale is shifted out exactly
 * at the end. With unsigned codes c = w + 1 the sum is
 * Σ c*q = dot + Σ q, so act_prep stores Σ q beside the activations. */
#include "i2s.h"
#include "neon_common.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

#if !defined(__ARM_FEATURE_DOTPROD)
#error "ternary_neon_dotprod.c must be compiled with +dotprod (see CMakeLists.txt)"
#endif

enum { ROWS = 4, PREP_HEADER = 64 };

static size_t dp_packed_size(int K, int M) {
    return (size_t)K * (size_t)M / 4;
}

/* Copy, turning code 3 (read as weight 0) into code 1 so that Σ c*q holds:
 * bn_i2s_canonical_byte (src/i2s.h), 16 bytes at a time. */
static void dp_repack(const uint8_t *i2s, int K, int M, void *packed) {
    const size_t n = dp_packed_size(K, M);
    uint8_t *out = packed;
    size_t i = 0;
    const uint8x16_t lo_bits = vdupq_n_u8(0x55);
    for (; i + 16 <= n; i += 16) {
        uint8x16_t v = vld1q_u8(i2s + i);
        /* a field is 3 where both its bits are set: clear the high bit there */
        uint8x16_t both = vandq_u8(vandq_u8(v, vshrq_n_u8(v, 1)), lo_bits);
        vst1q_u8(out + i, vbicq_u8(v, vshlq_n_u8(both, 1)));
    }
    for (; i < n; i++) out[i] = bn_i2s_canonical_byte(i2s[i]);
}

/* [int32 Σq, padding to 64 bytes][q, K bytes] */
static size_t dp_act_prep_size(int K) {
    return PREP_HEADER + (size_t)K;
}

static void dp_act_prep(const int8_t *q, int K, void *prep) {
    int32x4_t acc = vdupq_n_s32(0);
    for (int i = 0; i < K; i += 16) acc = vpadalq_s16(acc, vpaddlq_s8(vld1q_s8(q + i)));
    int32_t sum = vaddvq_s32(acc);
    memcpy(prep, &sum, sizeof sum);
    memcpy((uint8_t *)prep + PREP_HEADER, q, (size_t)K);
}

static inline int32_t dp_reduce(int32x4_t f03, int32x4_t f1, int32x4_t f2) {
    /* every lane of f1 is a multiple of 16 and of f2 a multiple of 4 */
    int32x4_t t = vaddq_s32(f03, vaddq_s32(vshrq_n_s32(f1, 4), vshrq_n_s32(f2, 2)));
    return vaddvq_s32(t);
}

/* The four fields of 16 weight bytes against their four activation vectors.
 * Fields 0 and 3 both have scale 1 and share an accumulator (12 rather than
 * 16 registers for four rows, so nothing spills). */
typedef struct acc4 {
    int32x4_t f03, f1, f2;
} acc4;

static inline void row_step(acc4 *c, uint8x16_t v, int8x16_t a0, int8x16_t a1, int8x16_t a2,
                            int8x16_t a3) {
    c->f03 = vdotq_s32(c->f03, vreinterpretq_s8_u8(vshrq_n_u8(v, 6)), a0);
    c->f1 = vdotq_s32(c->f1, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x30))), a1);
    c->f2 = vdotq_s32(c->f2, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0c))), a2);
    c->f03 = vdotq_s32(c->f03, vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x03))), a3);
}

static inline int32_t acc4_total(const acc4 *c) {
    return dp_reduce(c->f03, c->f1, c->f2);
}

/* Rows [m, m + 4) against one token; the activation loads are shared. The
 * rows are written out (no loop over them) so all 16 accumulators stay in
 * registers. */
static void dp_rows4(const uint8_t *w, size_t row_bytes, int K, const int8_t *q,
                     int32_t sum, int32_t *out) {
    const int32x4_t z = vdupq_n_s32(0);
    acc4 r0 = {z, z, z}, r1 = r0, r2 = r0, r3 = r0;
    const uint8_t *w0 = w, *w1 = w + row_bytes, *w2 = w + 2 * row_bytes, *w3 = w + 3 * row_bytes;
    for (int i = 0; i < K / 4; i += 16) {
        /* bytes i..i+15 are half (i%32)/16 of block i/32; field g pairs
         * with activations 128*block + 32*g + 16*half */
        const int8_t *qa = q + 128 * (i / 32) + (i % 32);
        const int8x16_t a0 = vld1q_s8(qa), a1 = vld1q_s8(qa + 32);
        const int8x16_t a2 = vld1q_s8(qa + 64), a3 = vld1q_s8(qa + 96);
        row_step(&r0, vld1q_u8(w0 + i), a0, a1, a2, a3);
        row_step(&r1, vld1q_u8(w1 + i), a0, a1, a2, a3);
        row_step(&r2, vld1q_u8(w2 + i), a0, a1, a2, a3);
        row_step(&r3, vld1q_u8(w3 + i), a0, a1, a2, a3);
    }
    out[0] = acc4_total(&r0) - sum;
    out[1] = acc4_total(&r1) - sum;
    out[2] = acc4_total(&r2) - sum;
    out[3] = acc4_total(&r3) - sum;
}

/* One row (the M tail). */
static int32_t dp_row1(const uint8_t *w, int K, const int8_t *q, int32_t sum) {
    const int32x4_t z = vdupq_n_s32(0);
    acc4 r = {z, z, z};
    for (int i = 0; i < K / 4; i += 16) {
        const int8_t *qa = q + 128 * (i / 32) + (i % 32);
        row_step(&r, vld1q_u8(w + i), vld1q_s8(qa), vld1q_s8(qa + 32), vld1q_s8(qa + 64),
                 vld1q_s8(qa + 96));
    }
    return acc4_total(&r) - sum;
}

/* Rows in chunks of 32 (8 KB of weights at K = 2560, kept in L1 while every
 * token of the batch streams past), four rows per inner call. */
static void dp_gemm(const void *packed, int K, int M, const void *prep, int N,
                    int m0, int m1, int32_t *dot, int ldd) {
    (void)M;
    enum { CHUNK = 32 };
    const size_t row_bytes = (size_t)K / 4;
    const size_t prep_bytes = dp_act_prep_size(K);
    for (int c = m0; c < m1; c += CHUNK) {
        const int ce = m1 - c < CHUNK ? m1 : c + CHUNK;
        for (int n = 0; n < N; n++) {
            const uint8_t *p = (const uint8_t *)prep + (size_t)n * prep_bytes;
            int32_t sum;
            memcpy(&sum, p, sizeof sum);
            const int8_t *q = (const int8_t *)(p + PREP_HEADER);
            int32_t *d = dot + (size_t)n * (size_t)ldd;
            int m = c;
            for (; m + ROWS <= ce; m += ROWS)
                dp_rows4((const uint8_t *)packed + (size_t)m * row_bytes, row_bytes, K, q, sum,
                         d + (m - m0));
            for (; m < ce; m++)
                d[m - m0] = dp_row1((const uint8_t *)packed + (size_t)m * row_bytes, K, q, sum);
        }
    }
}

static void dp_gemv(const void *packed, int K, int M, const void *prep,
                    int m0, int m1, int32_t *dot) {
    dp_gemm(packed, K, M, prep, 1, m0, m1, dot, 0);
}

BN_DEFINE_TERNARY_FORMAT(neon_dp, "i2s-neon-sdot", ROWS, dp_packed_size, dp_repack,
                         dp_act_prep_size, dp_act_prep, dp_gemv, dp_gemm);
BN_NEON_TABLE(neon_dp, neon_dotprod_kernels, "neon");

/* dispatch.c hands this out only where the CPU has the dot-product
 * instructions (HWCAP ASIMDDP). */
const bn_kernels *bn_kernels_neon_dotprod(void) {
    return &neon_dotprod_kernels;
}

#else /* not aarch64 */

const bn_kernels *bn_kernels_neon_dotprod(void) {
    return NULL;
}

#endif
