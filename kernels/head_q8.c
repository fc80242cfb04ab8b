/* The quantized LM head ("Q8 head", kernels.h) in plain C for any tile
 * height R: the definition of its numerics. The reference variant uses
 * R = 1 (row-major); SIMD variants use their own R with their own loops and
 * must agree bit for bit (tests/test_head_q8.c). */
#include <math.h>
#include <string.h>

#include "kernels.h"

static int32_t clamp127(int32_t v) {
    return v > 127 ? 127 : v < -127 ? -127 : v;
}

size_t bn_head_q8_size_tiled(int R, int K, int M) {
    const size_t tiles = ((size_t)M + (size_t)R - 1) / (size_t)R;
    return tiles * (size_t)R * (size_t)K / 16 * 17;
}

/* f16 -> f32, exact for finite values: the f16 bits moved into a float's
 * places (sign to bit 31, exponent/mantissa shifted by 13) read as 2^-112
 * times the value (an f16 subnormal as a float subnormal), so a
 * multiplication by 2^112 (exact: the result is a normal float or zero)
 * rescales it. Branch-free so the loops below vectorize; blocks with an
 * Inf/NaN use bn_f16_to_f32. */
static inline float f16_finite_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)(h & 0x7fffu) << 13 | (uint32_t)(h & 0x8000u) << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f * 0x1p112f;
}

/* bn_f32_to_f16 for a positive float whose f16 is normal (2^-14 <= v <
 * 65520): rebias, then round to nearest even on the 13 dropped bits by
 * adding 0xfff plus the kept lsb (a carry ripples into the exponent as it
 * should). Anything else takes the general routine. */
static inline uint16_t f32_to_f16_pos(float v) {
    uint32_t x;
    memcpy(&x, &v, sizeof x);
    if (x < 0x38800000u || x >= 0x477ff000u) return bn_f32_to_f16(v);
    return (uint16_t)(((x + 0x0fffu + ((x >> 13) & 1u)) >> 13) - (112u << 10));
}

uint16_t bn_q8_block_quantize(const uint16_t *w, int8_t *q) {
    float f[32], amax = 0.0f;
    /* Finite f16 magnitudes order as their bit patterns do. */
    uint16_t mx = 0;
    for (int i = 0; i < 32; i++) {
        const uint16_t a = (uint16_t)(w[i] & 0x7fffu);
        mx = a > mx ? a : mx;
    }
    if (mx < 0x7c00u) {
        for (int i = 0; i < 32; i++) f[i] = f16_finite_to_f32(w[i]);
        amax = f16_finite_to_f32(mx);
    } else {                /* an Inf or NaN: the plain definition */
        for (int i = 0; i < 32; i++) {
            f[i] = bn_f16_to_f32(w[i]);
            float a = f[i] < 0 ? -f[i] : f[i];
            if (a > amax) amax = a;
        }
    }
    const uint16_t dh = f32_to_f16_pos(amax / 127.0f);
    const float d = f16_finite_to_f32(dh);
    if (d == 0.0f) {
        memset(q, 0, 32);
        return 0;
    }
    /* d may round below amax/127 (or into the f16 subnormals): |w/d| stays
     * below 2 * 127 + 1, well inside rne's range, and the clamp applies. */
    for (int i = 0; i < 32; i++) q[i] = (int8_t)clamp127(bn_round_half_even(f[i] / d));
    return dh;
}

/* Byte offset of weight (r, k) inside a tile, and of scale (r, b). */
static size_t w_off(int R, int r, int k) {
    return (size_t)32 * R * (k / 32) + (size_t)4 * R * ((k % 32) / 4) + (size_t)4 * r + (size_t)(k % 4);
}

static size_t s_off(int R, int K, int r, int b) {
    return (size_t)R * K + 2 * ((size_t)R * b + r);
}

/* A row's block b is 8 groups of 4 bytes, 4R bytes apart (contiguous for
 * R = 1): written group by group, not byte by byte. */
void bn_head_q8_quantize_tiled(int R, const uint16_t *W, int K, int M, int m0, int m1, void *dst) {
    uint8_t *out = dst;
    const size_t tile_bytes = (size_t)R * K / 16 * 17;
    /* The call that ends at M also writes the padding rows of the last tile. */
    const int end = m1 == M ? (M + R - 1) / R * R : m1;
    for (int m = m0; m < end; m++) {
        uint8_t *tile = out + (size_t)(m / R) * tile_bytes;
        const int r = m % R;
        for (int b = 0; b < K / 32; b++) {
            int8_t q[32];
            uint16_t dh = 0;
            if (m < M) dh = bn_q8_block_quantize(W + (size_t)m * K + 32 * b, q);
            else memset(q, 0, sizeof q);
            uint8_t *blk = tile + w_off(R, r, 32 * b);
            if (R == 1) memcpy(blk, q, 32);
            else for (int j = 0; j < 8; j++) memcpy(blk + (size_t)4 * R * j, q + 4 * j, 4);
            memcpy(tile + s_off(R, K, r, b), &dh, 2);
        }
    }
}

void bn_act_q8_quantize_ref(const float *x, int K, void *xq) {
    int8_t *q = xq;
    uint8_t *tail = (uint8_t *)xq + K;
    for (int b = 0; b < K / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) {
            float a = xb[i] < 0 ? -xb[i] : xb[i];
            if (a > amax) amax = a;
        }
        const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            /* |x·id| <= 127 up to one rounding: rne is valid, the clamp is
             * only a guard. */
            const int32_t v = clamp127(bn_round_half_even(xb[i] * id));
            q[32 * b + i] = (int8_t)v;
            sum += v;
        }
        memcpy(tail + 4 * b, &d, 4);
        memcpy(tail + 4 * (K / 32) + 4 * b, &sum, 4);
    }
}

void bn_head_q8_gemv_tiled(int R, const void *Wq, int K, const void *xq, int m0, int m1, float *y) {
    const uint8_t *w = Wq;
    const int8_t *qx = xq;
    const uint8_t *tail = (const uint8_t *)xq + K;
    const size_t tile_bytes = (size_t)R * K / 16 * 17;
    for (int m = m0; m < m1; m++) {
        const uint8_t *tile = w + (size_t)(m / R) * tile_bytes;
        const int r = m % R;
        float acc = 0.0f;
        for (int b = 0; b < K / 32; b++) {
            int32_t isum = 0;       /* |isum| <= 32 · 127 · 127: exact */
            for (int i = 0; i < 32; i++)
                isum += (int8_t)tile[w_off(R, r, 32 * b + i)] * qx[32 * b + i];
            uint16_t dh;
            float dx;
            memcpy(&dh, tile + s_off(R, K, r, b), 2);
            memcpy(&dx, tail + 4 * b, 4);
            const float scale = bn_f16_to_f32(dh) * dx;
            acc = acc + (float)isum * scale;
        }
        y[m - m0] = acc;
    }
}

/* The screen's error norms of row m (docs/NUMERICS.md, Exact head), read
 * back from the packed tile and the row's F16 weights w: e = w - q * dw and
 * q * dw itself. Every e_k is exact in double (an f16 minus an 8-bit integer
 * times an f16: at most 41 significant bits); the sums of squares round,
 * which the exact head's margins cover whatever the order of the additions
 * (all terms are >= 0). Weight k goes to lane k % 8 and the lanes are added
 * at the end (bn_head_q8_sum_lanes): eight independent chains instead of
 * one K long, which SIMD variants run as vectors with the same bits (the
 * load runs this for every row of the table: as one chain it was 40 % of a
 * short run's time). */
double bn_head_q8_sum_lanes(const double l[8]) {
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

void bn_head_q8_row_norms(int R, const void *Wq, const uint16_t *w, int K, int m, double *err2,
                          double *deq2) {
    const size_t tile_bytes = (size_t)R * K / 16 * 17;
    const uint8_t *tile = (const uint8_t *)Wq + (size_t)(m / R) * tile_bytes;
    const int r = m % R;
    double e2[8] = {0}, d2[8] = {0};
    uint16_t special = 0;           /* an Inf or NaN weight: its bounds are Inf */
    for (int b = 0; b < K / 32; b++) {
        uint16_t dh;
        memcpy(&dh, tile + s_off(R, K, r, b), 2);
        const double dw = (double)f16_finite_to_f32(dh);
        for (int j = 0; j < 32; j += 8) {
            int8_t q[8];            /* two groups of 4, apart in a tiled layout */
            memcpy(q, tile + w_off(R, r, 32 * b + j), 4);
            memcpy(q + 4, tile + w_off(R, r, 32 * b + j + 4), 4);
            const uint16_t *wj = w + 32 * b + j;
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++) {
                const double deq = (double)q[i] * dw;
                const double e = (double)f16_finite_to_f32(wj[i]) - deq;
                special |= (uint16_t)((wj[i] & 0x7c00u) == 0x7c00u);
                e2[i] += e * e;
                d2[i] += deq * deq;
            }
        }
    }
    *err2 = special ? (double)INFINITY : bn_head_q8_sum_lanes(e2);
    *deq2 = special ? (double)INFINITY : bn_head_q8_sum_lanes(d2);
}
