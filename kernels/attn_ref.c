/* Attention over long contexts, plain C: the definition of the order every
 * variant reproduces bit for bit (kernels.h, attn_qk / attn_softmax /
 * attn_pv; docs/NUMERICS.md, "Attention over long contexts").
 *
 * Eight lanes everywhere: element i of a sum goes to lane i mod 8, each lane
 * adds its terms in increasing i, and the lanes are combined as
 * ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)) - the shape of an 8-wide
 * vector's horizontal sum, so SIMD code keeps whole vectors in registers.
 * Every product is of two f16 values, exact in float, so a fused
 * multiply-add gives the same bits as the multiply and add written here. */
#include <math.h>

#include "kernels.h"

#define LANES 8

static float lanes_sum(const float a[LANES]) {
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

void bn_attn_qk_ref(const float *q, size_t ldq, int nq, const uint16_t *k, int nk, int hd,
                    float *s, size_t lds) {
    for (int r = 0; r < nq; r++) {
        const float *qr = q + (size_t)r * ldq;
        for (int j = 0; j < nk; j++) {
            const uint16_t *kj = k + (size_t)j * hd;
            float a[LANES] = {0};
            for (int x = 0; x < hd; x++) a[x % LANES] += qr[x] * bn_f16_to_f32(kj[x]);
            s[(size_t)r * lds + j] = lanes_sum(a);
        }
    }
}

/* 1/k! for k = 2..7, as floats. */
static const float EXP_C[8] = {1.0f, 1.0f, 0.5f, 0.166666672f, 0.0416666679f, 0.00833333377f,
                               0.00138888892f, 0.000198412701f};

float bn_attn_exp(float x) {
    if (x != x) return x;           /* NaN (only from a corrupt cache): no int conversion */
    if (x < -87.0f) return 0.0f;
    float n = rintf(x * 1.44269502f);
    float r = (x - n * 0.693359375f) - n * -2.12194442e-4f;
    float p = EXP_C[7];
    for (int k = 6; k >= 0; k--) p = p * r + EXP_C[k];
    union { uint32_t u; float f; } two_n = {.u = (uint32_t)((int)n + 127) << 23};
    return p * two_n.f;
}

void bn_attn_softmax_ref(float *s, int n, int n_pad, float scale) {
    float m = -INFINITY;
    for (int t = 0; t < n; t++) {
        s[t] *= scale;
        if (s[t] > m) m = s[t];
    }
    double lane[LANES] = {0};
    for (int t = 0; t < n; t++) {
        s[t] = bn_attn_exp(s[t] - m);
        lane[t % LANES] += (double)s[t];
    }
    double sum = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    float inv = (float)(1.0 / sum);
    for (int t = 0; t < n; t++) s[t] = bn_f16_to_f32(bn_f32_to_f16(s[t] * inv));
    for (int t = n; t < n_pad; t++) s[t] = 0.0f;
}

void bn_attn_pv_ref(const float *p, size_t ldp, int np, int t0, int t1, const uint16_t *vt,
                    size_t ldv, int nd, float *acc) {
    for (int r = 0; r < np; r++)
        for (int d = 0; d < nd; d++) {
            const float *pr = p + (size_t)r * ldp;
            const uint16_t *vd = vt + (size_t)d * ldv;
            float *a = acc + ((size_t)r * nd + d) * LANES;
            for (int t = t0; t < t1; t++) a[t % LANES] += pr[t] * bn_f16_to_f32(vd[t]);
        }
}
