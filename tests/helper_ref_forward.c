/* Plain reference forward pass (see helper_ref_forward.h). Every loop is the
 * textbook one: sequential float sums, one token at a time, weights decoded
 * from I2_S on the fly. Only the scalar f16 conversions are shared with the
 * engine (they are checked bit for bit against F16C by the kernel tests). */
#include "helper_ref_forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ref_forward {
    const bn_model *m;
    int n_ctx, pos, kv_dim;
    uint16_t *kc, *vc;              /* [layer][pos][kv_dim] f16 */
    float *x, *xn, *q, *k, *v, *att, *g, *u, *sc;
    int8_t *aq;
};

ref_forward *ref_forward_new(const bn_model *m, int n_ctx) {
    const bn_hparams *hp = &m->hp;
    ref_forward *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    int E = hp->n_embd, F = hp->n_ff, W = E > F ? E : F;
    r->m = m;
    r->n_ctx = n_ctx;
    r->kv_dim = hp->n_head_kv * hp->head_dim;
    size_t cache = (size_t)hp->n_layer * (size_t)n_ctx * (size_t)r->kv_dim;
    r->kc = calloc(cache, sizeof(uint16_t));
    r->vc = calloc(cache, sizeof(uint16_t));
    r->x = calloc((size_t)E, sizeof(float));
    r->xn = calloc((size_t)W, sizeof(float));
    r->q = calloc((size_t)E, sizeof(float));
    r->k = calloc((size_t)r->kv_dim, sizeof(float));
    r->v = calloc((size_t)r->kv_dim, sizeof(float));
    r->att = calloc((size_t)E, sizeof(float));
    r->g = calloc((size_t)F, sizeof(float));
    r->u = calloc((size_t)F, sizeof(float));
    r->sc = calloc((size_t)n_ctx, sizeof(float));
    r->aq = calloc((size_t)W, 1);
    if (!r->kc || !r->vc || !r->x || !r->xn || !r->q || !r->k || !r->v || !r->att || !r->g ||
        !r->u || !r->sc || !r->aq) {
        ref_forward_free(r);
        return NULL;
    }
    return r;
}

void ref_forward_free(ref_forward *r) {
    if (!r) return;
    free(r->kc);
    free(r->vc);
    free(r->x);
    free(r->xn);
    free(r->q);
    free(r->k);
    free(r->v);
    free(r->att);
    free(r->g);
    free(r->u);
    free(r->sc);
    free(r->aq);
    free(r);
}

static float f16r(float x) { return bn_f16_to_f32(bn_f32_to_f16(x)); }

/* A dot product of f16 values (products exact in float) in the summation
 * order of bitnet.cpp's AVX-512 build, written out again here so this
 * reference stays independent of the kernels: 64-element chunks into 4 x 16
 * float lanes, (c0+c2)+(c1+c3), lanes halved 16->8->4->2, lane 0 + lane 1,
 * the tail added in double. */
static float dot_bitnet_order(const float *a, const float *b, int n) {
    float acc[64] = {0};
    int n64 = n & ~63;
    for (int i = 0; i < n64; i += 64)
        for (int j = 0; j < 64; j++) acc[j] += a[i + j] * b[i + j];
    float v[16];
    for (int l = 0; l < 16; l++) v[l] = (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
    for (int half = 8; half >= 2; half /= 2)
        for (int l = 0; l < half; l++) v[l] += v[l + half];
    double sum = (double)(v[0] + v[1]);
    for (int i = n64; i < n; i++) sum += (double)(a[i] * b[i]);
    return (float)sum;
}

/* y = x / rms(x) * w with ggml's roundings (SPEC 4.2). */
static void rms_norm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) {
        float sq = x[i] * x[i];
        ss += sq;
    }
    float mean = (float)(ss / (double)n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) {
        float t = x[i] * scale;
        y[i] = t * w[i];
    }
}

/* SPEC 4.5: per-token absmax int8 quantization; returns the scale s. */
static float quantize(const float *x, int n, int8_t *q) {
    double amax = 1e-5;
    for (int i = 0; i < n; i++)
        if (fabs((double)x[i]) > amax) amax = fabs((double)x[i]);
    float s = (float)(127.0 / amax);
    for (int i = 0; i < n; i++) {
        float v = x[i] * s;
        float r = nearbyintf(v);            /* ties to even in the default mode */
        if (r > 127.0f) r = 127.0f;
        if (r < -128.0f) r = -128.0f;
        q[i] = (int8_t)r;
    }
    return s;
}

/* The ternary weight (row m, column k) of an I2_S tensor with rows of K:
 * flat index f, 128-weight blocks, byte 32*block + f%32, group (f%128)/32 in
 * bits 7-6 down to 1-0; codes 0,1,2 = -1,0,+1 (3 reads as 0). */
static int i2s_at(const uint8_t *payload, int K, int m, int k) {
    size_t f = (size_t)m * (size_t)K + (size_t)k;
    uint8_t byte = payload[(f / 128) * 32 + f % 32];
    int code = (byte >> (6 - 2 * (int)((f % 128) / 32))) & 3;
    return code == 0 ? -1 : code == 2 ? 1 : 0;
}

/* BitLinear: y = ((float)Σ w·q / s) · scale, the input quantized here. */
static void bitlinear(const bn_ternary *w, const float *x, int8_t *q, float *y) {
    float s = quantize(x, w->K, q);
    for (int m = 0; m < w->M; m++) {
        int32_t acc = 0;
        for (int k = 0; k < w->K; k++) acc += i2s_at(w->i2s, w->K, m, k) * q[k];
        y[m] = ((float)acc / s) * w->scale;
    }
}

/* NEOX RoPE on one head: pairs (i, i + n_rot/2), angle pos·base^(-2i/n_rot)
 * formed by repeated float multiplication as ggml does. */
static void rope(float *x, int pos, int n_rot, float base) {
    float step = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        float c = cosf(theta), s = sinf(theta);
        float a = x[i], b = x[i + n_rot / 2];
        x[i] = a * c - b * s;
        x[i + n_rot / 2] = a * s + b * c;
        theta = theta * step;
    }
}

int ref_forward_token(ref_forward *r, int32_t token, float *logits) {
    const bn_model *m = r->m;
    const bn_hparams *hp = &m->hp;
    int E = hp->n_embd, F = hp->n_ff, hd = hp->head_dim, kvd = r->kv_dim;
    if (r->pos >= r->n_ctx || token < 0 || token >= hp->n_vocab) return -1;
    int pos = r->pos++;

    for (int i = 0; i < E; i++) r->x[i] = bn_f16_to_f32(m->tok_embd[(size_t)token * E + i]);

    for (int l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        uint16_t *kc = r->kc + (size_t)l * r->n_ctx * kvd;
        uint16_t *vc = r->vc + (size_t)l * r->n_ctx * kvd;

        /* attention block */
        rms_norm(r->xn, r->x, L->norm[BN_NORM_ATTN], E, hp->rms_eps);
        bitlinear(&L->proj[BN_PROJ_Q], r->xn, r->aq, r->q);
        bitlinear(&L->proj[BN_PROJ_K], r->xn, r->aq, r->k);
        bitlinear(&L->proj[BN_PROJ_V], r->xn, r->aq, r->v);
        for (int h = 0; h < hp->n_head; h++) rope(r->q + h * hd, pos, hp->n_rot, hp->rope_theta);
        for (int h = 0; h < hp->n_head_kv; h++) rope(r->k + h * hd, pos, hp->n_rot, hp->rope_theta);
        for (int d = 0; d < kvd; d++) {
            kc[(size_t)pos * kvd + d] = bn_f32_to_f16(r->k[d]);
            vc[(size_t)pos * kvd + d] = bn_f32_to_f16(r->v[d]);
        }
        float scale = 1.0f / sqrtf((float)hd);
        /* P·V runs over the cells padded to a multiple of 32 (llama.cpp's
         * KV padding); the padding's zero probabilities add nothing, but
         * they decide where the 64-element chunks end. */
        const int n_pad = (pos + 1 + 31) / 32 * 32;
        float *qv = malloc(sizeof(float) * (size_t)hd), *kv = malloc(sizeof(float) * (size_t)hd);
        float *pv = calloc((size_t)n_pad, sizeof(float)), *vv = calloc((size_t)n_pad, sizeof(float));
        if (!qv || !kv || !pv || !vv) abort();
        for (int h = 0; h < hp->n_head; h++) {
            int kvh = h / (hp->n_head / hp->n_head_kv);
            const float *qh = r->q + h * hd;
            for (int d = 0; d < hd; d++) qv[d] = f16r(qh[d]);
            float mx = -INFINITY;
            for (int t = 0; t <= pos; t++) {
                for (int d = 0; d < hd; d++) kv[d] = bn_f16_to_f32(kc[(size_t)t * kvd + kvh * hd + d]);
                r->sc[t] = dot_bitnet_order(qv, kv, hd) * scale;
                if (r->sc[t] > mx) mx = r->sc[t];
            }
            double sum = 0;
            for (int t = 0; t <= pos; t++) {
                r->sc[t] = expf(r->sc[t] - mx);
                sum += r->sc[t];
            }
            float inv = (float)(1.0 / sum);
            for (int t = 0; t <= pos; t++) pv[t] = f16r(r->sc[t] * inv);
            for (int d = 0; d < hd; d++) {
                for (int t = 0; t <= pos; t++) vv[t] = bn_f16_to_f32(vc[(size_t)t * kvd + kvh * hd + d]);
                r->att[h * hd + d] = dot_bitnet_order(pv, vv, n_pad);
            }
        }
        free(qv);
        free(kv);
        free(pv);
        free(vv);
        rms_norm(r->xn, r->att, L->norm[BN_NORM_ATTN_SUB], E, hp->rms_eps);
        bitlinear(&L->proj[BN_PROJ_O], r->xn, r->aq, r->att);
        for (int i = 0; i < E; i++) r->x[i] += r->att[i];

        /* feed-forward block */
        rms_norm(r->xn, r->x, L->norm[BN_NORM_FFN], E, hp->rms_eps);
        bitlinear(&L->proj[BN_PROJ_GATE], r->xn, r->aq, r->g);
        bitlinear(&L->proj[BN_PROJ_UP], r->xn, r->aq, r->u);
        for (int i = 0; i < F; i++) {
            float a = r->g[i] > 0.0f ? r->g[i] : 0.0f;
            r->g[i] = (a * a) * r->u[i];
        }
        rms_norm(r->xn, r->g, L->norm[BN_NORM_FFN_SUB], F, hp->rms_eps);
        bitlinear(&L->proj[BN_PROJ_DOWN], r->xn, r->aq, r->att);
        for (int i = 0; i < E; i++) r->x[i] += r->att[i];
    }

    /* tied f16 LM head on the f16-rounded final norm */
    rms_norm(r->xn, r->x, m->output_norm, E, hp->rms_eps);
    for (int i = 0; i < E; i++) r->xn[i] = f16r(r->xn[i]);
    float *row = malloc(sizeof(float) * (size_t)E);
    if (!row) abort();
    for (int v = 0; v < hp->n_vocab; v++) {
        for (int i = 0; i < E; i++) row[i] = bn_f16_to_f32(m->tok_embd[(size_t)v * E + i]);
        logits[v] = dot_bitnet_order(row, r->xn, E);
    }
    free(row);
    return 0;
}
