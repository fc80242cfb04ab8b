/* The kernel table: every hot loop of the forward pass, as function pointers
 * that one variant (ref, avx2, avx512, neon) fills in. The forward pass calls
 * only through this table; the table is chosen once at start-up
 * (dispatch.c) and is the engine's only global.
 *
 * Ternary matmul contract (SPEC 4.5):
 *   - activations are quantized per token (quantize_act) to int8 q[K] with a
 *     float scale s and act_sum = Σ q;
 *   - a [K x M] ternary weight (M rows of K, K % 128 == 0) is repacked once at
 *     load time from I2_S into the variant's layout (ternary_repack);
 *   - per token, act_prep turns q into whatever the variant streams against
 *     the weights (a copy for multiply-add kernels, lookup tables for LUT
 *     kernels); Q/K/V (and gate/up) share one prepared input;
 *   - gemv / gemm write the exact integer dot products
 *         dot[m] = Σ_k w[m][k] · q[k],   w ∈ {-1,0,+1}
 *     which every variant must reproduce bit-for-bit (ternary_ref.c is the
 *     definition). The float epilogue y = (float)dot / s · w_scale is applied
 *     by the caller (bn_ternary_epilogue below), so it is identical for all.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_kernels {
    const char *name;               /* "ref", "avx2", "avx512", "neon" */

    /* ---- activations ---------------------------------------------------- */
    /* SPEC 4.5 steps 1-4: double absmax with a 1e-5 floor, s = (float)(127/amax),
     * q = round-half-even(x·s) clamped to [-128,127], *sum = Σ q. Returns s. */
    float (*quantize_act)(const float *x, int K, int8_t *q, int32_t *sum);

    /* ---- ternary weights ------------------------------------------------ */
    /* Row ranges given to gemv/gemm start at multiples of row_block and end at
     * a multiple of row_block or at M. */
    int row_block;
    size_t (*ternary_packed_size)(int K, int M);
    /* i2s: the K*M/4 payload bytes of an I2_S tensor (SPEC 2.2). */
    void (*ternary_repack)(const uint8_t *i2s, int K, int M, void *packed);
    /* Bytes of prepared activations for one token of width K, and the
     * preparation itself (one token). Buffers are 64-byte aligned. */
    size_t (*act_prep_size)(int K);
    void (*act_prep)(const int8_t *q, int K, void *prep);
    /* One token: dot[m - m0] for m in [m0, m1). */
    void (*ternary_gemv)(const void *packed, int K, int M, const void *prep,
                         int m0, int m1, int32_t *dot);
    /* N tokens (prepared inputs at prep + n * act_prep_size(K)):
     * dot[n * ldd + (m - m0)] for n in [0, N), m in [m0, m1). */
    void (*ternary_gemm)(const void *packed, int K, int M, const void *prep, int N,
                         int m0, int m1, int32_t *dot, int ldd);

    /* ---- f16 (embeddings, LM head, attention over the f16 KV cache) ------ */
    void (*f16_to_f32)(const uint16_t *src, float *dst, int n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int n);   /* round-to-nearest-even */
    /* Σ a[i]·b[i], products of f16 values accumulated in float (SPEC 4.7). */
    float (*dot_f16)(const uint16_t *a, const uint16_t *b, int n);
    /* y[m - m0] = dot_f16(W + m·K, x, K) for m in [m0, m1): the LM head. */
    void (*gemv_f16)(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y);

    /* ---- quantized LM head (optional: see "Optional entries" below) ------- */
    /* The tied F16 embedding [K x M] (M rows of K, K % 32 == 0) quantized once
     * at load time to int8 in row-wise blocks of 32 with one f16 scale per
     * block ("Q8 head"), and the hidden state quantized per token the same way.
     * Numerics, identical in every variant (head_q8.c is the definition):
     *   weights, per block of 32 f16 values w_i (assumed finite):
     *     amax = max|w_i| (float), dw = f16(amax / 127.0f) rounded to nearest
     *     even, q_i = clamp(rne(w_i / dw), -127, 127) (division in float);
     *     dw == 0 gives q_i = 0.
     *   activations (act_q8_quantize), per block of 32 floats x_i (finite):
     *     amax = max|x_i|, dx = amax / 127.0f, q_i = clamp(rne(x_i ·
     *     (127.0f / amax)), -127, 127); amax == 0 gives dx = 0, q_i = 0;
     *     sum = Σ q_i is stored too (for unsigned x signed dot instructions).
     *   gemv: per row, with the exact int32 block sums isum_b = Σ qw·qx,
     *     y = 0; for b = 0 .. K/32-1 in order:
     *         y = y + (float)isum_b · (dw_b · dx_b)
     *     every operation a separately rounded float operation (no FMA).
     * So y is bit-identical across variants and thread counts, not merely
     * close: tests compare it exactly.
     *
     * Layout (head_q8_rows = R; ref R = 1, avx2 R = 8, avx512 R = 16): rows in
     * tiles of R (the last tile padded with zero rows), a tile is R·K weight
     * bytes then (K/32)·R f16 scales, R·K·17/16 bytes in all. Weight (r, k) of
     * a tile (block b = k/32, j = (k%32)/4, i = k%4) is the int8 at
     * 32·R·b + 4·R·j + 4·r + i: four consecutive k of R rows side by side, so
     * one vector load feeds R rows' 4-way dot products; scale (r, b) is the
     * f16 at R·K + 2·(R·b + r). R = 1 is plain row-major. */
    size_t (*head_q8_size)(int K, int M);
    /* Quantizes rows [m0, m1) of W_f16 (row m at W_f16 + m·K) into dst (of
     * head_q8_size bytes, 64-byte aligned); the call with m1 == M also writes
     * the padding rows. Disjoint row ranges may run on different threads
     * (ranges cut at multiples of head_q8_rows avoid sharing cache lines). */
    void (*head_q8_quantize)(const uint16_t *W_f16, int K, int M, int m0, int m1, void *dst);
    /* x[K] -> xq (bn_act_q8_size(K) bytes, layout fixed for all variants:
     * int8 q[K], float dx[K/32], int32 sum[K/32]); 4-byte aligned suffices. */
    void (*act_q8_quantize)(const float *x, int K, void *xq);
    /* y[m - m0] for m in [m0, m1): any 0 <= m0 <= m1 <= M works; ranges cut
     * at multiples of head_q8_rows share no work between threads. */
    void (*gemv_head_q8)(const void *Wq, int K, const void *xq, int m0, int m1, float *y);
    int head_q8_rows;

    /* ---- bitnet.cpp's prompt-batch P·V (optional) -------------------------- */
    /* Σ p[k]·v[k] for float p and f16 v, in the order of llamafile's tinyBLAS
     * (AVX-512, KN = 16) that bitnet.cpp's batch path uses for P·V:
     *     acc[l] = 0;  for k0 = 0, 16, 32, ...:  acc[l] = fma(p[k0+l], v[k0+l], acc[l])
     * (one rounding per step: a fused multiply-add), then acc reduced as
     * _mm512_reduce_add_ps: a[l] + a[l+8] (l < 8), then l + l+4, l + l+2,
     * lane 0 + lane 1, every addition in float. n is normally a multiple of
     * 16; a partial last group counts as padded with zeros (p = 0, v = 0).
     * Every variant gives ref's bits (ternary_ref.c is the definition). */
    float (*dot_f32_f16_fma16)(const float *p, const uint16_t *v, int n);
} bn_kernels;

/* Bytes of one token's act_q8_quantize output (K % 32 == 0). */
static inline size_t bn_act_q8_size(int K) {
    return (size_t)K + (size_t)(K / 32) * 8;
}

/* Optional entries: the quantized-head group (head_q8_size, head_q8_quantize,
 * act_q8_quantize, gemv_head_q8, head_q8_rows) may be left NULL/0 by a
 * variant. bn_kernels_select, bn_kernels_available and bn_kernels_all never
 * return such a table: they return a copy with the whole group taken from
 * the reference (never a mix of two layouts), made once per variant, so
 * callers may call every entry unconditionally. The group is all-or-nothing:
 * a variant that sets head_q8_size sets all five. dot_f32_f16_fma16 is
 * optional on its own: left NULL, the reference's is filled in. */

/* The float epilogue shared by every variant (SPEC 4.5 step 6). raw − act_sum
 * equals dot exactly and |dot| < 2^24, so (float)dot is exact. */
static inline float bn_ternary_epilogue(int32_t dot, float act_scale, float w_scale) {
    return ((float)dot / act_scale) * w_scale;
}

/* ---- dispatch (dispatch.c) ------------------------------------------------ */
/* Pick the best variant this CPU supports, or the one named by `force`
 * ("ref", "avx2", "avx512", "neon"; NULL or "" = auto, then the environment
 * variable BITNET_KERNEL is honoured). Returns NULL with a message in err when
 * the named variant is unknown or unsupported by this CPU. */
const bn_kernels *bn_kernels_select(const char *force, char *err, size_t errlen);
/* Every variant compiled into this binary and supported by this CPU
 * (for tests and the kernel bench). Returns the count; fills up to max. */
int bn_kernels_available(const bn_kernels **out, int max);
/* Like bn_kernels_available, plus the alternatives the bench and tests
 * measure and check under their own names ("avx2-mad": I2_S unpack +
 * vpmaddubsw, the approach of bitnet.cpp's kernel, which "avx2" uses;
 * "avx2-lut": the vpshufb lookup-table kernels). Reference first. */
int bn_kernels_all(const bn_kernels **out, int max);

/* Variants (each defined in its own file; NULL-returning when not compiled). */
const bn_kernels *bn_kernels_ref(void);
const bn_kernels *bn_kernels_avx2(void);
const bn_kernels *bn_kernels_avx512(void);
const bn_kernels *bn_kernels_neon(void);
/* AVX2 alternatives (ternary_avx2.c); bn_kernels_avx2() is one of them. */
const bn_kernels *bn_kernels_avx2_mad(void);
const bn_kernels *bn_kernels_avx2_lut(void);

/* Scalar helpers every variant may use. */
float bn_f16_to_f32(uint16_t h);
uint16_t bn_f32_to_f16(float f);

/* The Q8 head in plain C for any tile height R (head_q8.c): the definition
 * of the numerics above; a variant may use them for its own R (the
 * reference uses R = 1). */
size_t bn_head_q8_size_tiled(int R, int K, int M);
void bn_head_q8_quantize_tiled(int R, const uint16_t *W_f16, int K, int M, int m0, int m1,
                               void *dst);
void bn_head_q8_gemv_tiled(int R, const void *Wq, int K, const void *xq, int m0, int m1,
                           float *y);
void bn_act_q8_quantize_ref(const float *x, int K, void *xq);
/* One block of 32 f16 weights -> dw (as f16 bits) and q[32]; the weight rule
 * above, shared so SIMD quantizers can handle odd cases identically. */
uint16_t bn_q8_block_quantize(const uint16_t *w, int8_t *q);

#endif
