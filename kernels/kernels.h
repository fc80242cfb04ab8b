/* The kernel table: every hot loop of the forward pass, as function pointers
 * that one instruction-set variant (ref, avx2, avx512, neon) fills in. The
 * forward pass calls only through this table; the table is chosen once at
 * start-up (dispatch.c) and is the engine's only global.
 *
 * Weights are matrices of M rows of K inputs, each in a weight FORMAT with
 * its own record of traits (bn_format_traits below, in the spirit of ggml's
 * type traits): how many bytes it takes, how it is made from the file's
 * bytes at load time, how a token's input is prepared for it, and its
 * matrix-vector and matrix-matrix products. The forward pass looks up the
 * record of a tensor's format and calls it; it never branches on the format.
 *
 * Ternary matmul contract (docs/NUMERICS.md, BitLinear):
 *   - activations are quantized per token (quantize_act) to int8 q[K] with a
 *     float scale s and act_sum = sum of q;
 *   - a ternary weight (I2_S in the file) is repacked once at load time into
 *     the variant's layout (pack);
 *   - per token, act_prep turns q into whatever the variant streams against
 *     the weights (a copy for multiply-add kernels, lookup tables for LUT
 *     kernels); Q/K/V (and gate/up) share one prepared input;
 *   - gemv / gemm write the exact integer dot products
 *         dot[m] = sum_k w[m][k] * q[k],   w in {-1,0,+1}
 *     which every variant must reproduce bit-for-bit (ternary_ref.c is the
 *     definition). The float epilogue y = (float)dot / s * w_scale is applied
 *     by the caller (bn_ternary_epilogue below), so it is identical for all.
 */
#ifndef BN_KERNELS_H
#define BN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- weight formats --------------------------------------------------------- */

enum bn_format {
    BN_FMT_TERNARY = 0,     /* I2_S ternary, repacked to the variant's layout;
                               int8 inputs, exact int32 dots (the contract above) */
    BN_FMT_F16,             /* f16 rows as in the file; the input rounded to f16,
                               products summed in the fixed order of dot_f16 */
    BN_FMT_F16_TINYBLAS,    /* the same f16 rows against float inputs, summed in
                               dot_f32_f16_fma16's order: bitnet.cpp's LM head for
                               a prompt batch of >= 2 outputs (a numerics profile) */
    BN_FMT_Q8_HEAD,         /* int8 blocks of 32 with an f16 scale each, made from
                               an F16 table at load ("Q8 head", numerics below) */
    BN_FMT_Q8_0, BN_FMT_Q6_K, BN_FMT_F32,  /* ggml's types as stored (format_ggml.c) */
    BN_FMT_COUNT
};

/* One weight format's kernels for one instruction set. In the calls below W
 * is the matrix in this format (from pack, or the file's bytes where pack is
 * NULL), `act` the prepared inputs of a token, y the outputs.
 * out_int32 = 1 (ternary): act_prep takes the int8 q[K] of quantize_act and
 * y is int32 exact dots. out_int32 = 0: act_prep takes float x[K] and y is
 * float. */
typedef struct bn_format_traits {
    const char *name;               /* "i2s-mad", "f16", "q8-head", ... */
    int out_int32;
    /* Row ranges given to pack/gemv/gemm start at multiples of tile_rows and
     * end at a multiple of it or at M; ranges cut there share no cache lines,
     * so disjoint ranges may run on different threads. */
    int tile_rows;

    /* ---- load time ---- */
    /* Bytes of the packed matrix; NULL = the file's bytes are used in place. */
    size_t (*packed_size)(int K, int M);
    /* Rows [m0, m1) of the file's tensor src (I2_S payload for ternary, F16
     * rows for the Q8 head) into dst (packed_size bytes, 64-byte aligned);
     * the call with m1 == M also writes any padding rows. Ternary formats
     * pack whole tensors only (m0 = 0, m1 = M). */
    void (*pack)(const void *src, int K, int M, int m0, int m1, void *dst);

    /* ---- per token ---- */
    /* Bytes of one token's prepared input (64-byte multiples keep rows
     * aligned), and the preparation. */
    size_t (*act_size)(int K);
    void (*act_prep)(const void *x, int K, void *act);
    /* Optional (NULL: act_prep serves batches too): a token's preparation
     * for gemm alone, where gemm reads less of it than gemv does (t3's
     * gemm reads q and Σ q, not the per-token lookup tables that only its
     * gemv needs). It writes a prefix of the act_size bytes and gemm never
     * reads past it, so a batch's untouched bytes cost neither time nor
     * resident memory; its output is never given to gemv. */
    void (*act_prep_batch)(const void *x, int K, void *act);
    /* One token: y[m - m0] for m in [m0, m1). */
    void (*gemv)(const void *W, int K, int M, const void *act, int m0, int m1, void *y);
    /* N tokens (inputs at act + n * act_size(K), from act_prep or
     * act_prep_batch: the same dots from either):
     * y[n * ldy + (m - m0)] for n in [0, N), m in [m0, m1). Same numbers as
     * N calls of gemv. */
    void (*gemm)(const void *W, int K, int M, const void *act, int N, int m0, int m1, void *y,
                 int ldy);
} bn_format_traits;

/* The glue between BitLinears: the per-token loops that run between the
 * ternary products (docs/NUMERICS.md, RMSNorm; BitLinear, steps 1-4 and 6;
 * FFN activations). Each is
 * defined by its plain C form in glue_ref.c; a variant's loops do the same
 * float operations in the same order on each element, so their results are
 * identical bit for bit (tests/test_glue.c checks it). */
typedef struct bn_glue_kernels {
    const char *name;
    /* RMSNorm's sums: sums[r] = the squares x*x of row r (x + r * ld),
     * each rounded to float, added in double in increasing i < n, for
     * r < rows. Rows are independent chains, which is what a vector
     * variant runs side by side. */
    void (*sum_squares)(const float *x, size_t ld, int rows, int n, double *sums);
    /* RMSNorm's last step and quantize_act in one: y[k] = (x[k] * scale) *
     * w[k] for k < K (y[k] = x[k] where w is NULL: no norm), y[k] = 0 for
     * K <= k < Kp; q, *sum and the returned s are those of
     * quantize_act(y, Kp) of the same variant. y is never stored. Kp is a
     * multiple of 32 (whole I2_S blocks in the forward pass). */
    float (*norm_quantize_act)(const float *x, const float *w, float scale, int K, int Kp,
                               int8_t *q, int32_t *sum);
    /* y[m] = bn_ternary_epilogue(dot[m], act_scale, w_scale) for m < n;
     * epilogue_add adds it to y[m] instead (the residual connection). */
    void (*epilogue)(const int32_t *dot, int n, float act_scale, float w_scale, float *y);
    void (*epilogue_add)(const int32_t *dot, int n, float act_scale, float w_scale, float *y);
    /* out[m] = (r * r) * u with g, u the epilogues of dg[m], du[m] (scales
     * gs, us) and r = (g + |g|) * 0.5f, relu(g) without a branch. */
    void (*relu2_glu)(const int32_t *dg, const int32_t *du, int n, float act_scale, float gs,
                      float us, float *out);
    /* out[m] = (g / (1 + e)) * u with g, u as above and e = bn_silu_exp(g)
     * (glue_ref.c): SiLU(g) times up, one exp of our own so that every
     * variant gives the same bits. */
    void (*silu_glu)(const int32_t *dg, const int32_t *du, int n, float act_scale, float gs,
                     float us, float *out);
} bn_glue_kernels;

typedef struct bn_kernels {
    const char *name;               /* "ref", "avx2", "avx512", "neon", or an
                                       alternative's ("avx2-lut", "neon-lut", ...) */

    /* ---- activations ---------------------------------------------------- */
    /* docs/NUMERICS.md, BitLinear, steps 1-4: double absmax with a 1e-5
     * floor, s = (float)(127/amax), q = round-half-even(x*s) clamped to
     * [-128,127], *sum = sum of q. Returns s. */
    float (*quantize_act)(const float *x, int K, int8_t *q, int32_t *sum);
    /* The loops around the BitLinears (bn_glue_kernels above). */
    const bn_glue_kernels *glue;

    /* ---- f16 (embeddings, attention over the f16 KV cache) ---------------- */
    void (*f16_to_f32)(const uint16_t *src, float *dst, int n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, int n);   /* round-to-nearest-even */
    /* sum of a[i]*b[i], products of f16 values accumulated in float
     * (docs/NUMERICS.md, F16 matmuls). */
    float (*dot_f16)(const uint16_t *a, const uint16_t *b, int n);
    /* y[m - m0] = dot_f16(W + m*K, x, K) for m in [m0, m1). */
    void (*gemv_f16)(const uint16_t *W, int K, const uint16_t *x, int m0, int m1, float *y);
    /* y[r] = dot_f16(W + r*ldw, x, n) for r < rows: rows of n values ldw
     * apart (attention's P·V over V^T, whose rows are the context long). */
    void (*dots_f16)(const uint16_t *W, size_t ldw, const uint16_t *x, int n, int rows, float *y);
    /* sum of p[k]*v[k] for float p and f16 v, in the order of llamafile's
     * tinyBLAS (AVX-512, KN = 16) that bitnet.cpp's batch path uses for P*V:
     *     acc[l] = 0;  for k0 = 0, 16, 32, ...:  acc[l] = fma(p[k0+l], v[k0+l], acc[l])
     * (one rounding per step: a fused multiply-add), then acc reduced as
     * _mm512_reduce_add_ps: a[l] + a[l+8] (l < 8), then l + l+4, l + l+2,
     * lane 0 + lane 1, every addition in float. A partial last group counts
     * as padded with zeros. */
    float (*dot_f32_f16_fma16)(const float *p, const uint16_t *v, int n);
    /* The exact head's per-row error norms of a Q8 head packed with tile
     * height R (bn_head_q8_row_norms below, the definition; load time). */
    void (*head_q8_row_norms)(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                              double *deq2);

    /* ---- weight formats: every entry set (a variant without a faster
     * kernel for a format points at the reference's record) ---------------- */
    const bn_format_traits *fmt[BN_FMT_COUNT];

    /* ---- attention over long contexts (src/attention.c; docs/NUMERICS.md,
     * "Attention over long contexts") -------------------------------------
     * One summation order of bitnet.c's own, identical in every variant
     * (attn_ref.c is the definition): 8 lanes, element i going to lane
     * i mod 8 in increasing i, each lane a chain of float additions of exact
     * products (f16 x f16: both operands hold f16 values), then the lanes
     * combined as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
     * s[r * lds + j] = q_r . k_j over hd dims (hd % 8 == 0) for r < nq,
     * j < nk: q rows are floats holding f16 values (stride ldq), k rows the
     * cache's f16 rows (stride hd). */
    void (*attn_qk)(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
                    float *s, size_t lds);
    /* The scores s[0..n) of one row to probabilities, in place:
     * w = s * scale, m = max w, e = bn_attn_exp(w - m) (attn_ref.c), sum of
     * e in double in the 8-lane order above, p = e * (float)(1 / sum)
     * rounded to f16 (kept as float); s[n..n_pad) = 0. */
    void (*attn_softmax)(float *s, int n, int n_pad, float scale);
    /* acc[(r * nd + d) * 8 + l] += the lane-l terms p[r * ldp + t] *
     * vt[d * ldv + t] for t in [t0, t1) (multiples of 8; lane = t mod 8),
     * r < np, d < nd. The caller reduces the 8 lanes as above. */
    void (*attn_pv)(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
                    size_t ldv, int nd, float *acc);

    /* ---- attention over a q8_0 KV cache (src/attention.c; docs/NUMERICS.md,
     * "Quantized KV cache") ----------------------------------------------
     * Identical in every variant (attn_q8_ref.c is the definition). The
     * cache of one (layer, KV head), a "series", holds positions in groups
     * of BN_KVQ8_GROUP (layout below, bn_kq8_index / bn_vq8_index /
     * bn_q8d_index); k / kd and v / vd point at a group's first position.
     * Scores: s[r * lds + j] for r < nq, j < nk, keys j of the series from
     * k / kd, q rows int8 (stride hd) with float scales qd (stride hd/32):
     *     s = 0;  for b = 0 .. hd/32-1 in order:
     *         s = s + (float)isum_b * (qd_b * kd_b)
     * isum_b the exact int32 dot of block b; each float step rounded
     * separately (no FMA). Keys past nk in the last group are not used. */
    void (*attn_q8_qk)(const int8_t *q, const float *qd, int nq, const int8_t *k,
                       const uint16_t *kd, int nk, int hd, float *s, size_t lds);
    /* P·V: acc[r * nd + (d - d0)] for r < np and dims d0 <= d < d0 + nd
     * (d0, nd multiples of 32) accumulates positions t0 <= t < t1 of the
     * series v / vd (t0 a multiple of BN_KVQ8_PBLOCK; the probabilities
     * p[r * ldp + t] >= 0), per dim block b and position block, in block
     * order: p' = p * vd (float), m = max p', skipped when m is not > 0;
     * else pq = rne(min(p' * (32767 / m), 32767)) as int16, isum_d the
     * exact int32 sum of pq * v_d, acc = fma((float)isum_d, m / 32767, acc).
     * Positions at and past t1 take no part: their p and scales are not
     * read, and their values, where read with a pair, meet a pq of 0. */
    void (*attn_q8_pv)(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                       const uint16_t *vd, int hd, int d0, int nd, float *acc);
} bn_kernels;

/* The Q8 head's numerics (BN_FMT_Q8_HEAD), identical in every variant
 * (head_q8.c is the definition):
 *   weights, per block of 32 f16 values w_i (assumed finite):
 *     amax = max|w_i| (float), dw = f16(amax / 127.0f) rounded to nearest
 *     even, q_i = clamp(rne(w_i / dw), -127, 127) (division in float);
 *     dw == 0 gives q_i = 0.
 *   activations (its act_prep), per block of 32 floats x_i (finite):
 *     amax = max|x_i|, dx = amax / 127.0f, q_i = clamp(rne(x_i *
 *     (127.0f / amax)), -127, 127); amax == 0 gives dx = 0, q_i = 0;
 *     sum = sum of q_i is stored too (for unsigned x signed dot instructions).
 *   gemv: per row, with the exact int32 block sums isum_b = sum qw*qx,
 *     y = 0; for b = 0 .. K/32-1 in order:
 *         y = y + (float)isum_b * (dw_b * dx_b)
 *     every operation a separately rounded float operation (no FMA).
 * So y is bit-identical across variants and thread counts, not merely
 * close: tests compare it exactly.
 *
 * Layout (tile_rows = R; ref R = 1, avx2 R = 8, avx512 R = 16): rows in
 * tiles of R (the last tile padded with zero rows), a tile is R*K weight
 * bytes then (K/32)*R f16 scales, R*K*17/16 bytes in all. Weight (r, k) of
 * a tile (block b = k/32, j = (k%32)/4, i = k%4) is the int8 at
 * 32*R*b + 4*R*j + 4*r + i: four consecutive k of R rows side by side, so
 * one vector load feeds R rows' 4-way dot products; scale (r, b) is the
 * f16 at R*K + 2*(R*b + r). R = 1 is plain row-major. The prepared input
 * (bn_act_q8_size(K) bytes) is int8 q[K], float dx[K/32], int32 sum[K/32]. */

/* Bytes of one token's act_q8_quantize output (K % 32 == 0). */
static inline size_t bn_act_q8_size(int K) {
    return (size_t)K + (size_t)(K / 32) * 8;
}

/* The float epilogue shared by every variant (docs/NUMERICS.md, BitLinear,
 * step 6). raw − act_sum
 * equals dot exactly and |dot| < 2^24, so (float)dot is exact. */
static inline float bn_ternary_epilogue(int32_t dot, float act_scale, float w_scale) {
    return ((float)dot / act_scale) * w_scale;
}

/* quantize_act's scale (docs/NUMERICS.md, BitLinear): 127 / max(max|x|,
 * 1e-5), the floor compared and the division done in double as the
 * reference does; max|x| found in float is exact (max does not round, and
 * a NaN never wins a `>`), so every variant gets the reference's scale. */
static inline float bn_act_quant_scale(float max_abs) {
    const double amax = (double)max_abs > 1e-5 ? (double)max_abs : 1e-5;
    return (float)(127.0 / amax);
}

/* Round to nearest, ties to even (bitnet.cpp's nearest_int), for |v| < 2^22:
 * adding 1.5 * 2^23 rounds v to an integer in the default rounding mode and
 * leaves rne(v) + 2^22 in the low mantissa bits. Equal to nearbyintf(v)
 * there (test_quantize_act.c checks both on ties). */
static inline int32_t bn_round_half_even(float v) {
    float t = v + 12582912.0f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

/* ---- dispatch (dispatch.c) ------------------------------------------------ */
/* Pick the best variant this CPU supports, or the one named by `force`
 * ("ref", "avx2", "avx512", "neon", or an alternative's name from
 * bn_kernels_all; NULL or "" = auto, then the environment variable
 * BITNET_KERNEL is honoured). Returns NULL with a message in err when the
 * named variant is unknown or unsupported by this CPU. */
const bn_kernels *bn_kernels_select(const char *force, char *err, size_t errlen);
/* Every variant compiled into this binary and supported by this CPU
 * (for tests and the kernel bench). Returns the count; fills up to max. */
int bn_kernels_available(const bn_kernels **out, int max);
/* Like bn_kernels_available, plus the alternatives the bench and tests
 * measure and check under their own names ("avx2-mad": I2_S unpack +
 * vpmaddubsw, the approach of bitnet.cpp's kernel, which "avx2" uses;
 * "avx2-lut": the vpshufb lookup-table kernels; "neon-lut": the plain-NEON
 * lookup tables, which are "neon" itself on CPUs without sdot; "ref-tl",
 * "avx2-tl", "neon-tl", "neon-tl-sdot": the 1.67-bit t3 layout). Reference
 * first; every name appears once. */
int bn_kernels_all(const bn_kernels **out, int max);

/* Variants (each defined in its own file; NULL-returning when not compiled). */
const bn_kernels *bn_kernels_ref(void);
const bn_kernels *bn_kernels_avx2(void);
const bn_kernels *bn_kernels_avx512(void);
/* NEON: plain ARMv8.0 lookup tables ("neon-lut", ternary_neon.c) and ARMv8.2
 * sdot ("neon", ternary_neon_dotprod.c); dispatch.c offers the sdot table as
 * "neon" where the CPU has ASIMDDP, unless BITNET_NEON_DOTPROD=0, else the
 * lookup tables. */
const bn_kernels *bn_kernels_neon_lut(void);
const bn_kernels *bn_kernels_neon_dotprod(void);
/* AVX2 alternatives (avx2_tables.c); bn_kernels_avx2() is one of them. */
const bn_kernels *bn_kernels_avx2_mad(void);
const bn_kernels *bn_kernels_avx2_lut(void);
/* The 1.67-bit t3 layout (docs/FORMAT.md, T3 lookup layout) with lookup-table
 * gemv and an expand-then-multiply-add gemm: "ref-tl" (plain C, every CPU),
 * "avx2-tl", "neon-tl" (plain NEON), "neon-tl-sdot" (its batches with sdot);
 * NULL where not compiled. */
const bn_kernels *bn_kernels_ref_tl(void);
const bn_kernels *bn_kernels_avx2_tl(void);
const bn_kernels *bn_kernels_neon_tl(void);
const bn_kernels *bn_kernels_neon_tl_sdot(void);

/* ggml's own types as a file stores a head (format_ggml.c, plain C, the
 * same record in every variant's table), and their row decoders (K values). */
extern const bn_format_traits bn_fmt_q8_0, bn_fmt_q6_k, bn_fmt_f32;
/* The records' dot products in AVX2 (format_ggml_avx2.c; x86 builds
 * only), the same bits, and the activation halves they share. */
extern const bn_format_traits bn_fmt_q8_0_avx2, bn_fmt_q6_k_avx2, bn_fmt_f32_avx2;
/* The same in NEON (format_ggml_neon.c; aarch64 builds only). */
extern const bn_format_traits bn_fmt_q8_0_neon, bn_fmt_q6_k_neon, bn_fmt_f32_neon;
size_t bn_q8_0_act_size(int K);
void bn_q8_0_act_prep(const void *x, int K, void *act);
size_t bn_q6_k_act_size(int K);
void bn_q6_k_act_prep(const void *x, int K, void *act);
size_t bn_f32_act_size(int K);
void bn_f32_act_prep(const void *x, int K, void *act);
void bn_q8_0_row_to_f32(const void *row, int K, float *dst);
void bn_q6_k_row_to_f32(const void *row, int K, float *dst);
/* The reference attention kernels (attn_ref.c), the definition of the
 * long-context order; variants without their own point at them. */
void bn_attn_qk_ref(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
                    float *s, size_t lds);
void bn_attn_softmax_ref(float *s, int n, int n_pad, float scale);
void bn_attn_pv_ref(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
                    size_t ldv, int nd, float *acc);
/* The q8_0 attention kernels: plain C (attn_q8_ref.c), AVX2
 * (attn_q8_avx2.c; AVX2 and AVX-512 tables), NEON (attn_q8_neon.c; its
 * scores with sdot in attn_q8_neon_dotprod.c for the sdot tables). */
void bn_attn_q8_qk_ref(const int8_t *q, const float *qd, int nq, const int8_t *k,
                       const uint16_t *kd, int nk, int hd, float *s, size_t lds);
void bn_attn_q8_pv_ref(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                       const uint16_t *vd, int hd, int d0, int nd, float *acc);
void bn_attn_q8_qk_avx2(const int8_t *q, const float *qd, int nq, const int8_t *k,
                        const uint16_t *kd, int nk, int hd, float *s, size_t lds);
void bn_attn_q8_pv_avx2(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                        const uint16_t *vd, int hd, int d0, int nd, float *acc);
void bn_attn_q8_qk_neon(const int8_t *q, const float *qd, int nq, const int8_t *k,
                        const uint16_t *kd, int nk, int hd, float *s, size_t lds);
void bn_attn_q8_pv_neon(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                        const uint16_t *vd, int hd, int d0, int nd, float *acc);
void bn_attn_q8_qk_neon_dotprod(const int8_t *q, const float *qd, int nq, const int8_t *k,
                                const uint16_t *kd, int nk, int hd, float *s, size_t lds);
/* q8_0 quantization of the KV cache and of the query (docs/NUMERICS.md,
 * "Quantized KV cache"), plain C for every variant (the cost is a few
 * hundred values per token and layer). Per block of 32 of n (n % 32 == 0):
 * amax = max |x| (float), d = amax / 127, id = d != 0 ? 1 / d : 0,
 * q = clamp(rne(x * id), -127, 127) (a NaN gives -127). The cache keeps
 * f16(d) (kv), the query d itself (query). */
void bn_q8_kv_quantize(const float *x, int n, int8_t *q, uint16_t *d);
void bn_q8_query_quantize(const float *x, int n, int8_t *q, float *d);
/* x[i] = q[i] * f16 scale of its block: a q8_0 cache row back to floats. */
void bn_q8_kv_dequantize(const int8_t *q, const uint16_t *d, int n, float *x);

/* The q8_0 cache's layout (docs/NUMERICS.md, "Quantized KV cache"): a
 * series (one layer and KV head) is whole groups of BN_KVQ8_GROUP
 * positions, each group 8 * hd int8 values and 8 * hd/32 f16 scales; group
 * g starts at value g * 8 * hd and scale g * 8 * hd/32, as position 8g of a
 * position-major array would. Within a group:
 *   - K: for each 4 dims, the 8 positions' 4 bytes side by side (one 32-byte
 *     load is 8 keys x 4 dims: the scores need no horizontal sums);
 *   - V: for each pair of positions, each dim's 2 bytes side by side (the
 *     int16 P·V multiplies pairs of positions);
 *   - scales, K and V alike: for each block of 32 dims, the 8 positions'. */
#define BN_KVQ8_GROUP 8
#define BN_KVQ8_PBLOCK 64           /* positions per P·V quantization block */
#define BN_KVQ8_MAX_HD 2048         /* the widest head a q8_0 cache takes */
enum bn_kvq8_kind { BN_KVQ8_K, BN_KVQ8_V };

static inline size_t bn_kq8_index(int t, int d, int hd) {
    return (size_t)(t / 8) * 8 * (size_t)hd + (size_t)(d / 4) * 32 + (size_t)(t % 8) * 4 + (size_t)(d % 4);
}
static inline size_t bn_vq8_index(int t, int d, int hd) {
    return (size_t)(t / 8) * 8 * (size_t)hd + (size_t)(t % 8 / 2) * 2 * (size_t)hd + (size_t)d * 2 +
           (size_t)(t % 2);
}
static inline size_t bn_q8d_index(int t, int b, int hd) {
    return (size_t)(t / 8) * (size_t)hd / 4 + (size_t)b * 8 + (size_t)(t % 8);
}
/* Row t of a series (values vals, scales sc): its hd int8 values and hd/32
 * scales, read or written in position order. */
void bn_q8_kv_row_read(enum bn_kvq8_kind kind, const int8_t *vals, const uint16_t *sc, int hd, int t,
                       int8_t *q, uint16_t *d);
void bn_q8_kv_row_write(enum bn_kvq8_kind kind, int8_t *vals, uint16_t *sc, int hd, int t,
                        const int8_t *q, const uint16_t *d);
/* Quantizes x[0..hd) into row t (bn_q8_kv_quantize, then the layout), and
 * row t back to floats (bn_q8_kv_dequantize). */
void bn_q8_kv_put(enum bn_kvq8_kind kind, const float *x, int hd, int8_t *vals, uint16_t *sc, int t);
void bn_q8_kv_get(enum bn_kvq8_kind kind, const int8_t *vals, const uint16_t *sc, int hd, int t, float *x);

/* exp(x) for x <= 0 in the fixed float steps every variant repeats: 0 below
 * -87; else n = rint(x * log2 e), r = (x - n * ln2_hi) - n * ln2_lo, the
 * degree-7 Taylor polynomial of exp(r) by Horner (a multiply, then an add,
 * each rounded), times 2^n. Within 2 ulp of exp(x). */
float bn_attn_exp(float x);
/* exp(-g) for SiLU: bn_attn_exp(min(-g, 88)) (glue_ref.c). */
float bn_silu_exp(float g);
/* The AVX2 attention kernels (attn_avx2.c; AVX2 and AVX-512 tables). */
void bn_attn_qk_avx2(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
                     float *s, size_t lds);
void bn_attn_softmax_avx2(float *s, int n, int n_pad, float scale);
void bn_attn_pv_avx2(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
                     size_t ldv, int nd, float *acc);
/* The NEON attention kernels (attn_neon.c; both NEON tables). */
void bn_attn_qk_neon(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
                     float *s, size_t lds);
void bn_attn_softmax_neon(float *s, int n, int n_pad, float scale);
void bn_attn_pv_neon(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
                     size_t ldv, int nd, float *acc);

/* The glue loops (bn_glue_kernels): plain C (glue_ref.c, the definition),
 * AVX2 (glue_avx2.c; the AVX2 and AVX-512 tables), NEON (glue_neon.c). */
extern const bn_glue_kernels bn_glue_ref;
extern const bn_glue_kernels bn_glue_avx2;
extern const bn_glue_kernels bn_glue_neon;

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
/* Sums of squares over row m of a Q8 head packed with tile height R, whose
 * F16 weights are w[0..K), of the quantization error w - q*dw (*err2) and
 * of q*dw (*deq2), in double: the exact head's per-row bounds
 * (src/head_exact.c). Finite weights only (an Inf or NaN gives a
 * non-finite bound, which rescores every row). */
void bn_head_q8_row_norms(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                          double *deq2);
/* The lanes' sum of bn_head_q8_row_norms, in its fixed order. */
double bn_head_q8_sum_lanes(const double l[8]);
/* The same norms, vectorised (same bits): AVX2 + F16C, NEON. */
void bn_avx2_head_q8_row_norms(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                               double *deq2);
void bn_neon_head_q8_row_norms(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                               double *deq2);

#endif
