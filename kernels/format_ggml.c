/* ggml's own storage types for a float-output table (an LM head, stored as
 * `output.weight` or `token_embd.weight`): Q8_0, Q6_K and F32, used as the
 * file stores them (no packing), with the numerics of ggml's x86 build, the
 * one bitnet.cpp's reference logits come from (docs/NUMERICS.md, "ggml Q8_0
 * head"; block layouts in docs/FORMAT.md, Q8_0 and Q6_K). Plain C: every
 * variant without its own forms (format_ggml_avx2.c, format_ggml_neon.c)
 * points at these records (kernels.h). Also the row decoders
 * of these block types, for the embedding lookup.
 *
 * Each dot product below is written lane by lane in the order of ggml's
 * AVX2 kernels (which its AVX-512 build also runs for these types), so the
 * result is the same float whatever machine runs it. */
#include <math.h>
#include <string.h>

#include "format_records.h"

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_f16_to_f32(h);
}

/* hsum_float_8 of ggml's x86 code: the high half added to the low half,
 * then lanes (0 + 2) and (1 + 3), then those two. */
static float hsum8(const float acc[8]) {
    float r[4];
    for (int i = 0; i < 4; i++) r[i] = acc[i + 4] + acc[i];
    return (r[0] + r[2]) + (r[1] + r[3]);
}

/* ---- Q8_0: blocks of 32, f16 d then 32 int8 q (34 bytes) ---------------------- */

#define Q8_0_BYTES 34

size_t bn_q8_0_act_size(int K) {
    return bn_round64((size_t)(K / 32) * Q8_0_BYTES);
}

/* The hidden state in Q8_0 blocks as quantize_row_q8_0's AVX2 path makes
 * them: amax = max|x|, d = f16(amax / 127), q = bn_round_half_even(x * (127 / amax))
 * (multiplier 0 for an all-zero block). */
void bn_q8_0_act_prep(const void *x_, int K, void *act) {
    const float *x = x_;
    uint8_t *out = act;
    for (int b = 0; b < K / 32; b++, x += 32, out += Q8_0_BYTES) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[i]));
        const uint16_t dh = bn_f32_to_f16(amax / 127.0f);
        const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
        memcpy(out, &dh, 2);
        for (int i = 0; i < 32; i++) {
            int32_t v = bn_round_half_even(x[i] * id);       /* |v| <= 127 up to one rounding */
            v = v > 127 ? 127 : v < -128 ? -128 : v;
            out[2 + i] = (uint8_t)(int8_t)v;
        }
    }
}

/* ggml_vec_dot_q8_0_q8_0 (AVX2): per block, 8 int32 lanes of 4 products each
 * (exact), converted to float and accumulated lane by lane with one fused
 * multiply-add by dw * dx; then hsum8. */
static float q8_0_dot(const uint8_t *w, const uint8_t *x, int nb) {
    float acc[8] = {0};
    for (int b = 0; b < nb; b++, w += Q8_0_BYTES, x += Q8_0_BYTES) {
        const float d = f16_at(w) * f16_at(x);
        const int8_t *qw = (const int8_t *)(w + 2), *qx = (const int8_t *)(x + 2);
        for (int l = 0; l < 8; l++) {
            int32_t s = 0;
            for (int j = 4 * l; j < 4 * l + 4; j++) s += qw[j] * qx[j];
            acc[l] = fmaf(d, (float)s, acc[l]);
        }
    }
    return hsum8(acc);
}


void bn_q8_0_row_to_f32(const void *row, int K, float *dst) {
    const uint8_t *p = row;
    for (int b = 0; b < K / 32; b++, p += Q8_0_BYTES) {
        const float d = f16_at(p);
        for (int i = 0; i < 32; i++) dst[32 * b + i] = (float)(int8_t)p[2 + i] * d;
    }
}

/* ---- Q6_K: blocks of 256, ql[128] qh[64] int8 scales[16], f16 d last --------- */

#define Q6_K_BYTES 210

/* The 6-bit code (0..63) of value j of a block (docs/FORMAT.md, Q6_K):
 * half h = j / 128, group g = (j % 128) / 32, l = j % 32. */
static int q6_k_code(const uint8_t *blk, int j) {
    const int h = j / 128, g = (j % 128) / 32, l = j % 32;
    const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
    const int lo = (g & 1 ? ql[l + 32] : ql[l]) >> (g & 2 ? 4 : 0) & 15;
    return lo | ((qh[l] >> (2 * g)) & 3) << 4;
}

static int q6_k_scale(const uint8_t *blk, int j) {
    return (int8_t)blk[192 + j / 16];
}

/* The activations as ggml's Q8_K (blocks of 256: float d, then int8 q),
 * made by quantize_row_q8_K_ref, which x86 builds use: max = the value of
 * largest magnitude (the first such), iscale = -127 / max, q = min(127,
 * bn_round_half_even(iscale * x)), d = 1 / iscale. Stored as K/256 floats, then K int8. */
size_t bn_q6_k_act_size(int K) {
    return bn_round64((size_t)K + (size_t)(K / 256) * 4);
}

void bn_q6_k_act_prep(const void *x_, int K, void *act) {
    const float *x = x_;
    uint8_t *dq = act;
    int8_t *q = (int8_t *)act + (size_t)(K / 256) * 4;
    for (int b = 0; b < K / 256; b++, x += 256, q += 256) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < 256; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        float d = 0.0f;
        if (amax == 0.0f) {
            memset(q, 0, 256);
        } else {
            const float iscale = -127.0f / max;
            for (int j = 0; j < 256; j++) {
                const int32_t v = bn_round_half_even(iscale * x[j]);
                q[j] = (int8_t)(v > 127 ? 127 : v);
            }
            d = 1.0f / iscale;
        }
        memcpy(dq + 4 * b, &d, 4);
    }
}

/* ggml_vec_dot_q6_K_q8_K (AVX2): per block, eight int32 lanes; lane u
 * collects, in each 32-value group, values 4u..4u+3 times (code - 32) times
 * the group's scale (exact integers); then per lane one fused multiply-add
 * by d = d_x * d_w; then hsum8. */
static float q6_k_dot(const uint8_t *w, const uint8_t *dx, const int8_t *q, int nb) {
    float acc[8] = {0};
    for (int b = 0; b < nb; b++, w += Q6_K_BYTES, q += 256) {
        float d8;
        memcpy(&d8, dx + 4 * b, 4);
        const float d = d8 * f16_at(w + 208);
        int32_t sumi[8] = {0};
        for (int j = 0; j < 256; j++)
            sumi[(j % 32) / 4] += q6_k_scale(w, j) * (q6_k_code(w, j) - 32) * q[j];
        for (int u = 0; u < 8; u++) acc[u] = fmaf(d, (float)sumi[u], acc[u]);
    }
    return hsum8(acc);
}


/* dequantize_row_q6_K: value = (d * scale) * (code - 32), in float. */
void bn_q6_k_row_to_f32(const void *row, int K, float *dst) {
    const uint8_t *blk = row;
    for (int b = 0; b < K / 256; b++, blk += Q6_K_BYTES) {
        const float d = f16_at(blk + 208);
        for (int j = 0; j < 256; j++)
            dst[256 * b + j] = (d * (float)q6_k_scale(blk, j)) * (float)(q6_k_code(blk, j) - 32);
    }
}

/* ---- F32 ----------------------------------------------------------------------- */

size_t bn_f32_act_size(int K) {
    return bn_round64((size_t)K * 4);
}

void bn_f32_act_prep(const void *x, int K, void *act) {
    memcpy(act, x, (size_t)K * sizeof(float));
}

/* ggml_vec_dot_f32 as its AVX-512 build sums (the build that made the
 * reference logits): four accumulators of 16 lanes, fused multiply-adds over
 * chunks of 64; (a0 + a2) + (a1 + a3); the 16 lanes halved down to one
 * (l + l+8, l + l+4, l + l+2, l + l+1); the tail (K % 64) added one fused
 * product at a time in float (clang contracts `sum += x*y`). */
static float f32_dot(const float *w, const float *x, int K) {
    float acc[4][16] = {{0}};
    const int n64 = K & ~63;
    for (int i = 0; i < n64; i += 64)
        for (int r = 0; r < 4; r++)
            for (int l = 0; l < 16; l++)
                acc[r][l] = fmaf(w[i + 16 * r + l], x[i + 16 * r + l], acc[r][l]);
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    for (int half = 8; half >= 1; half /= 2)
        for (int l = 0; l < half; l++) v[l] = v[l] + v[l + half];
    float sum = v[0];
    for (int i = n64; i < K; i++) sum = fmaf(w[i], x[i], sum);
    return sum;
}

BN_GGML_HEAD_RECORDS(, q8_0_dot, q6_k_dot, f32_dot);
