/* The portable scalar reference: the definition of correct for every other
 * variant. Written for clarity, not speed. The packed layout is the file's
 * I2_S payload unchanged, read by src/i2s.h (docs/FORMAT.md, I2_S). */
#include <math.h>
#include <string.h>

#include "format_records.h"
#include "i2s.h"
#include "ternary_tl.h"

/* ---- activations (docs/NUMERICS.md, BitLinear, steps 1-4) ----------------- */

static float ref_quantize_act(const float *x, int K, int8_t *q, int32_t *sum) {
    double amax = 1e-5;
    for (int i = 0; i < K; i++) {
        double a = fabs((double)x[i]);
        if (a > amax) amax = a;
    }
    float s = (float)(127.0 / amax);
    int32_t total = 0;
    for (int i = 0; i < K; i++) {
        /* |x*s| <= 127 (plus rounding), far below 2^22: bn_round_half_even is valid. */
        int32_t v = bn_round_half_even(x[i] * s);
        if (v > 127) v = 127;
        if (v < -128) v = -128;
        q[i] = (int8_t)v;
        total += v;
    }
    *sum = total;
    return s;
}

/* ---- ternary weights --------------------------------------------------------- */

static size_t ref_packed_size(int K, int M) {
    return (size_t)K * (size_t)M / 4;
}

static void ref_repack(const uint8_t *i2s, int K, int M, void *packed) {
    memcpy(packed, i2s, ref_packed_size(K, M));
}

static size_t ref_act_prep_size(int K) {
    return (size_t)K;
}

static void ref_act_prep(const int8_t *q, int K, void *prep) {
    memcpy(prep, q, (size_t)K);
}

static void ref_gemv(const void *packed, int K, int M, const void *prep,
                     int m0, int m1, int32_t *dot) {
    (void)M;
    const uint8_t *w = packed;
    const int8_t *q = prep;
    for (int m = m0; m < m1; m++) {
        /* weight (m, k) is weight m·K + k of the tensor's flat stream */
        const uint64_t row = (uint64_t)m * (uint64_t)K;
        int32_t acc = 0;
        for (int k = 0; k < K; k++) acc += bn_i2s_weight(w, row + (uint64_t)k) * q[k];
        dot[m - m0] = acc;
    }
}

static void ref_gemm(const void *packed, int K, int M, const void *prep, int N,
                     int m0, int m1, int32_t *dot, int ldd) {
    const int8_t *q = prep;
    for (int n = 0; n < N; n++)
        ref_gemv(packed, K, M, q + (size_t)n * ref_act_prep_size(K), m0, m1,
                 dot + (size_t)n * (size_t)ldd);
}

/* ---- f16 ------------------------------------------------------------------------ */

static void ref_f16_to_f32(const uint16_t *src, float *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = bn_f16_to_f32(src[i]);
}

static void ref_f32_to_f16(const float *src, uint16_t *dst, int n) {
    for (int i = 0; i < n; i++) dst[i] = bn_f32_to_f16(src[i]);
}

/* The summation order of bitnet.cpp's AVX-512 build (its reference logits
 * were made with it): 4 accumulators of 16 float lanes over chunks of 64,
 * combined as (a0+a2)+(a1+a3), the 16 lanes halved down to 2 (l + l+8, then
 * l + l+4, then l + l+2), lane 0 + lane 1 in double, and the tail (n % 64)
 * added in double one product at a time. Products of two halves are exact in
 * float, so every variant that follows this order gives the same bits. */
static float ref_dot_f16(const uint16_t *a, const uint16_t *b, int n) {
    float acc[4][16] = {{0}};
    const int n64 = n & ~63;
    for (int i = 0; i < n64; i += 64)
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 16; l++)
                acc[r][l] += bn_f16_to_f32(a[i + 16 * r + l]) * bn_f16_to_f32(b[i + 16 * r + l]);
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    for (int half = 8; half >= 2; half /= 2)
        for (int l = 0; l < half; l++) v[l] = v[l] + v[l + half];
    double sum = (double)(v[0] + v[1]);
    for (int i = n64; i < n; i++) sum += (double)(bn_f16_to_f32(a[i]) * bn_f16_to_f32(b[i]));
    return (float)sum;
}

static void ref_dots_f16(const uint16_t *W, size_t ldw, const uint16_t *x, int n, int rows,
                         float *y) {
    for (int r = 0; r < rows; r++) y[r] = ref_dot_f16(W + (size_t)r * ldw, x, n);
}

static void ref_gemv_f16(const uint16_t *W, int K, const uint16_t *x, int m0, int m1,
                         float *y) {
    for (int m = m0; m < m1; m++) y[m - m0] = ref_dot_f16(W + (size_t)m * (size_t)K, x, K);
}

/* bitnet.cpp's prompt-batch P·V (llamafile tinyBLAS, AVX-512, KN = 16): 16
 * float lanes, each a chain of fused multiply-adds (one rounding per step;
 * fmaf is called explicitly since the build does not contract a*b+c), then
 * the lanes halved 16->8->4->2->1 in float (_mm512_reduce_add_ps's order).
 * A partial last group of 16 is completed with zeros. */
static float ref_dot_f32_f16_fma16(const float *p, const uint16_t *v, int n) {
    float acc[16] = {0};
    for (int k0 = 0; k0 < n; k0 += 16)
        for (int l = 0; l < 16; l++) {
            int k = k0 + l;
            float pk = k < n ? p[k] : 0.0f;
            float vk = k < n ? bn_f16_to_f32(v[k]) : 0.0f;
            acc[l] = fmaf(pk, vk, acc[l]);
        }
    for (int half = 8; half >= 1; half /= 2)
        for (int l = 0; l < half; l++) acc[l] = acc[l] + acc[l + half];
    return acc[0];
}

/* ---- Q8 head: head_q8.c with tile height 1 (row-major) ----------------------- */

static size_t ref_head_q8_size(int K, int M) {
    return bn_head_q8_size_tiled(1, K, M);
}

static void ref_head_q8_quantize(const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
    bn_head_q8_quantize_tiled(1, W, K, M, m0, m1, dst);
}

static void ref_gemv_head_q8(const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
    bn_head_q8_gemv_tiled(1, Wq, K, xq, m0, m1, y);
}

BN_DEFINE_TERNARY_FORMAT(ref, "i2s", 1, ref_packed_size, ref_repack, ref_act_prep_size,
                         ref_act_prep, ref_gemv, ref_gemm);
BN_DEFINE_F16_FORMATS(ref, ref_f32_to_f16, ref_gemv_f16, ref_dot_f32_f16_fma16);
BN_DEFINE_Q8_HEAD_FORMAT(ref, 1, ref_head_q8_size, ref_head_q8_quantize, bn_act_q8_quantize_ref,
                         ref_gemv_head_q8);

/* The reference table, and "ref-tl": the same with the 1.67-bit t3 layout
 * and its lookup tables in plain C (ternary_tl.c), for CPUs without a SIMD
 * t3 kernel and as the reference of the SIMD ones. */
#define REF_TABLE(label, ternary)                                                               \
    {                                                                                           \
        .name = label,                                                                          \
        .quantize_act = ref_quantize_act,                                                       \
        .glue = &bn_glue_ref,                                                                   \
        .f16_to_f32 = ref_f16_to_f32,                                                           \
        .f32_to_f16 = ref_f32_to_f16,                                                           \
        .dot_f16 = ref_dot_f16,                                                                 \
        .gemv_f16 = ref_gemv_f16,                                                               \
        .dots_f16 = ref_dots_f16,                                                               \
        .dot_f32_f16_fma16 = ref_dot_f32_f16_fma16,                                             \
        .head_q8_row_norms = bn_head_q8_row_norms,                                              \
        .fmt = {                                                                                \
            [BN_FMT_TERNARY] = &ternary,                                                        \
            [BN_FMT_F16] = &ref_fmt_f16,                                                        \
            [BN_FMT_F16_TINYBLAS] = &ref_fmt_f16_tinyblas,                                      \
            [BN_FMT_Q8_HEAD] = &ref_fmt_q8_head,                                                \
            [BN_FMT_Q8_0] = &bn_fmt_q8_0, [BN_FMT_Q6_K] = &bn_fmt_q6_k, [BN_FMT_F32] = &bn_fmt_f32, \
        },                                                                                      \
        .attn_qk = bn_attn_qk_ref,                                                              \
        .attn_softmax = bn_attn_softmax_ref,                                                    \
        .attn_pv = bn_attn_pv_ref,                                                              \
        .attn_q8_qk = bn_attn_q8_qk_ref,                                                        \
        .attn_q8_pv = bn_attn_q8_pv_ref,                                                        \
    }

static const bn_kernels ref_kernels = REF_TABLE("ref", ref_fmt_ternary);
static const bn_kernels ref_tl_kernels = REF_TABLE("ref-tl", bn_t3_ref_fmt_ternary);

const bn_kernels *bn_kernels_ref(void) {
    return &ref_kernels;
}

const bn_kernels *bn_kernels_ref_tl(void) {
    return &ref_tl_kernels;
}
