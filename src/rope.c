/* RoPE angles and rotation (rope.h; docs/NUMERICS.md, RoPE). */
#include <math.h>

#include "rope.h"

float bn_rope_theta_scale(const bn_hparams *hp) {
    return powf(hp->rope_theta, -2.0f / (float)hp->n_rot);
}

void bn_rope_angles(float *cs, int pos, int n_rot, float theta_scale) {
    float theta = (float)pos;
    for (int p = 0; p < n_rot / 2; p++) {
        cs[2 * p] = cosf(theta);
        cs[2 * p + 1] = sinf(theta);
        theta *= theta_scale;
    }
}

/* NEOX: pairs (i, i + n_rot/2). */
static void rope_neox(float *x, const float *cs, int n_rot) {
    int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        float x0 = x[i], x1 = x[i + half];
        float cos_t = cs[2 * i], sin_t = cs[2 * i + 1];
        x[i] = x0 * cos_t - x1 * sin_t;
        x[i + half] = x0 * sin_t + x1 * cos_t;
    }
}

/* NORM (llama): adjacent pairs (2i, 2i + 1), the same angles. */
static void rope_norm(float *x, const float *cs, int n_rot) {
    for (int i = 0; i < n_rot / 2; i++) {
        float x0 = x[2 * i], x1 = x[2 * i + 1];
        float cos_t = cs[2 * i], sin_t = cs[2 * i + 1];
        x[2 * i] = x0 * cos_t - x1 * sin_t;
        x[2 * i + 1] = x0 * sin_t + x1 * cos_t;
    }
}

void bn_rope_rotate(enum bn_rope_style style, float *x, const float *cs, int n_rot) {
    if (style == BN_ROPE_NEOX)
        rope_neox(x, cs, n_rot);
    else
        rope_norm(x, cs, n_rot);
}
