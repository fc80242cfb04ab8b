/* Attention over a q8_0 KV cache, plain C: the definition every variant
 * reproduces bit for bit (kernels.h, attn_q8_qk / attn_q8_pv; docs/
 * NUMERICS.md, "Quantized KV cache"), the cache's layout (rows in and out
 * of the interleaved groups), and the quantizers of the cache rows and of
 * the query, which every variant shares.
 *
 * Scores: the integer block sums are exact, so only the float steps need an
 * order: per block, in increasing block order, s = s + isum * (dq * dk).
 * P·V: per block of 32 dims and block of BN_KVQ8_PBLOCK positions, the
 * probabilities times V's scales are quantized to int16 against their
 * largest; the int32 sums of int16 p times int8 v are exact, and one fused
 * multiply-add per block adds them to the output. */
#include <math.h>
#include <string.h>

#include "kernels.h"

#define QK 32                       /* values per q8_0 block */

/* One block of 32: q[i] and the block's scale d (unrounded). */
static float quantize_block(const float *x, int8_t *q) {
    float amax = 0.0f;
    for (int i = 0; i < QK; i++) {
        float a = fabsf(x[i]);
        if (a > amax) amax = a;
    }
    float d = amax / 127.0f;
    float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < QK; i++) {
        float v = x[i] * id;
        /* clamp in float first: a NaN (Inf * 0) becomes -127, and the
         * conversion below never sees a value out of range */
        if (!(v >= -127.0f)) v = -127.0f;
        if (v > 127.0f) v = 127.0f;
        q[i] = (int8_t)bn_round_half_even(v);
    }
    return d;
}

void bn_q8_kv_quantize(const float *x, int n, int8_t *q, uint16_t *d) {
    for (int b = 0; b < n / QK; b++) d[b] = bn_f32_to_f16(quantize_block(x + b * QK, q + b * QK));
}

void bn_q8_query_quantize(const float *x, int n, int8_t *q, float *d) {
    for (int b = 0; b < n / QK; b++) d[b] = quantize_block(x + b * QK, q + b * QK);
}

void bn_q8_kv_dequantize(const int8_t *q, const uint16_t *d, int n, float *x) {
    for (int i = 0; i < n; i++) x[i] = (float)q[i] * bn_f16_to_f32(d[i / QK]);
}

/* ---- the layout (kernels.h, BN_KVQ8_GROUP) --------------------------------------- */

static size_t value_index(enum bn_kvq8_kind kind, int t, int d, int hd) {
    return kind == BN_KVQ8_K ? bn_kq8_index(t, d, hd) : bn_vq8_index(t, d, hd);
}

void bn_q8_kv_row_read(enum bn_kvq8_kind kind, const int8_t *vals, const uint16_t *sc, int hd, int t,
                       int8_t *q, uint16_t *d) {
    for (int i = 0; i < hd; i++) q[i] = vals[value_index(kind, t, i, hd)];
    for (int b = 0; b < hd / QK; b++) d[b] = sc[bn_q8d_index(t, b, hd)];
}

void bn_q8_kv_row_write(enum bn_kvq8_kind kind, int8_t *vals, uint16_t *sc, int hd, int t,
                        const int8_t *q, const uint16_t *d) {
    for (int i = 0; i < hd; i++) vals[value_index(kind, t, i, hd)] = q[i];
    for (int b = 0; b < hd / QK; b++) sc[bn_q8d_index(t, b, hd)] = d[b];
}

#define MAX_HD BN_KVQ8_MAX_HD     /* checked where a q8_0 cache is made (context.c) */

void bn_q8_kv_put(enum bn_kvq8_kind kind, const float *x, int hd, int8_t *vals, uint16_t *sc, int t) {
    int8_t q[MAX_HD];
    uint16_t d[MAX_HD / QK];
    bn_q8_kv_quantize(x, hd, q, d);
    bn_q8_kv_row_write(kind, vals, sc, hd, t, q, d);
}

void bn_q8_kv_get(enum bn_kvq8_kind kind, const int8_t *vals, const uint16_t *sc, int hd, int t, float *x) {
    int8_t q[MAX_HD];
    uint16_t d[MAX_HD / QK];
    bn_q8_kv_row_read(kind, vals, sc, hd, t, q, d);
    bn_q8_kv_dequantize(q, d, hd, x);
}

/* ---- the kernels ------------------------------------------------------------------- */

void bn_attn_q8_qk_ref(const int8_t *q, const float *qd, int nq, const int8_t *k,
                       const uint16_t *kd, int nk, int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    for (int r = 0; r < nq; r++)
        for (int j = 0; j < nk; j++) {
            const int8_t *qr = q + (size_t)r * hd;
            float sum = 0.0f;
            for (int b = 0; b < nb; b++) {
                int32_t isum = 0;
                for (int i = b * QK; i < (b + 1) * QK; i++) isum += (int32_t)qr[i] * k[bn_kq8_index(j, i, hd)];
                float scale = qd[(size_t)r * nb + b] * bn_f16_to_f32(kd[bn_q8d_index(j, b, hd)]);
                sum = sum + (float)isum * scale;
            }
            s[(size_t)r * lds + j] = sum;
        }
}

void bn_attn_q8_pv_ref(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                       const uint16_t *vd, int hd, int d0, int nd, float *acc) {
    enum { PB = BN_KVQ8_PBLOCK };
    for (int r = 0; r < np; r++)
        for (int b = d0 / QK; b < (d0 + nd) / QK; b++)
            for (int tb = t0; tb < t1; tb += PB) {
                int te = tb + PB < t1 ? tb + PB : t1;
                float pp[PB], m = 0.0f;
                for (int t = tb; t < te; t++) {
                    pp[t - tb] = p[(size_t)r * ldp + t] * bn_f16_to_f32(vd[bn_q8d_index(t, b, hd)]);
                    if (pp[t - tb] > m) m = pp[t - tb];
                }
                if (!(m > 0.0f)) continue;          /* nothing to add (p = 0 past a row's end) */
                const float id = 32767.0f / m, scale = m / 32767.0f;
                int32_t pq[PB];
                for (int t = tb; t < te; t++) {
                    float x = pp[t - tb] * id;
                    pq[t - tb] = bn_round_half_even(x < 32767.0f ? x : 32767.0f);
                }
                for (int d = b * QK; d < (b + 1) * QK; d++) {
                    int32_t isum = 0;
                    for (int t = tb; t < te; t++) isum += pq[t - tb] * v[bn_vq8_index(t, d, hd)];
                    float *a = acc + (size_t)r * nd + (d - d0);
                    *a = fmaf((float)isum, scale, *a);
                }
            }
}
