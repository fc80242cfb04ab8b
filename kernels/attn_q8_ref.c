/* Attention over a q8_0 KV cache, plain C: the definition every variant
 * reproduces bit for bit (kernels.h, attn_q8_qk / attn_q8_pv; docs/
 * NUMERICS.md, "Quantized KV cache"), and the quantizers of the cache rows
 * and of the query, which every variant shares.
 *
 * Scores: the integer block sums are exact, so only the float steps need an
 * order: per block, in increasing block order, s = s + isum * (dq * dk).
 * P·V: one fused multiply-add per position, in increasing position order,
 * per output dim; a dequantized value (int8 times an f16) is exact. */
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

void bn_attn_q8_qk_ref(const int8_t *q, const float *qd, int nq, const int8_t *k,
                       const uint16_t *kd, int nk, int hd, float *s, size_t lds) {
    const int nb = hd / QK;
    for (int r = 0; r < nq; r++)
        for (int j = 0; j < nk; j++) {
            const int8_t *qr = q + (size_t)r * hd, *kj = k + (size_t)j * hd;
            float sum = 0.0f;
            for (int b = 0; b < nb; b++) {
                int32_t isum = 0;
                for (int i = b * QK; i < (b + 1) * QK; i++) isum += (int32_t)qr[i] * kj[i];
                float scale = qd[(size_t)r * nb + b] * bn_f16_to_f32(kd[(size_t)j * nb + b]);
                sum = sum + (float)isum * scale;
            }
            s[(size_t)r * lds + j] = sum;
        }
}

void bn_attn_q8_pv_ref(const float *p, size_t ldp, int np, int t0, int t1, const int8_t *v,
                       const uint16_t *vd, int hd, int nd, float *acc) {
    const int nb = hd / QK;
    for (int r = 0; r < np; r++)
        for (int d = 0; d < nd; d++) {
            float a = acc[(size_t)r * nd + d];
            for (int t = t0; t < t1; t++) {
                float x = (float)v[(size_t)t * hd + d] * bn_f16_to_f32(vd[(size_t)t * nb + d / QK]);
                a = fmaf(p[(size_t)r * ldp + t], x, a);
            }
            acc[(size_t)r * nd + d] = a;
        }
}
