/* Plain reference forward pass (see helper_ref_forward.h). Every loop is the
 * textbook one: sequential float sums, one token at a time, weights decoded
 * from the file's bytes on the fly. Only the scalar f16 conversions are
 * shared with the engine (they are checked bit for bit against F16C by the
 * kernel tests); the graph switches are read from the architecture's name
 * and the file's tensors, not from the engine's table. */
#include "helper_ref_forward.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ref_forward {
    const bn_model *m;
    int n_ctx, pos, kv_dim, q_dim;
    int relu2, neox, sub_norms;     /* the graph, from the architecture's name */
    float attn_scale;
    const gguf_tensor *embd, *head;
    uint16_t *kc, *vc;              /* [layer][pos][kv_dim] f16 */
    float *x, *xn, *q, *k, *v, *att, *g, *u, *sc, *row;
    int8_t *aq;
};

static int arch_is(const bn_model *m, const char *name) {
    return strcmp(m->hp.arch, name) == 0;
}

ref_forward *ref_forward_new(const bn_model *m, int n_ctx) {
    const bn_hparams *hp = &m->hp;
    ref_forward *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->m = m;
    r->n_ctx = n_ctx;
    r->kv_dim = hp->n_head_kv * hp->head_dim;
    r->q_dim = hp->n_head * hp->head_dim;
    const int b158 = arch_is(m, "bitnet-b1.58") || arch_is(m, "bitnet-25");
    r->relu2 = b158;
    r->neox = b158 || arch_is(m, "bitnet");
    r->sub_norms = !arch_is(m, "llama");
    /* llama: attention.scale when the file has it, else 1/sqrt(head_dim). */
    r->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    if (arch_is(m, "llama")) gguf_get_f32(&m->gguf, "llama.attention.scale", &r->attn_scale);
    r->embd = gguf_find_tensor(&m->gguf, "token_embd.weight");
    r->head = arch_is(m, "llama") ? gguf_find_tensor(&m->gguf, "output.weight") : NULL;
    if (!r->head) r->head = r->embd;

    int E = hp->n_embd, F = hp->n_ff;
    int W = E > F ? E : F;
    if (r->q_dim > W) W = r->q_dim;
    size_t cache = (size_t)hp->n_layer * (size_t)n_ctx * (size_t)r->kv_dim;
    r->kc = calloc(cache, sizeof(uint16_t));
    r->vc = calloc(cache, sizeof(uint16_t));
    r->x = calloc((size_t)E, sizeof(float));
    r->xn = calloc((size_t)W, sizeof(float));
    r->q = calloc((size_t)r->q_dim, sizeof(float));
    r->k = calloc((size_t)r->kv_dim, sizeof(float));
    r->v = calloc((size_t)r->kv_dim, sizeof(float));
    r->att = calloc((size_t)W, sizeof(float));
    r->g = calloc((size_t)F, sizeof(float));
    r->u = calloc((size_t)F, sizeof(float));
    r->sc = calloc((size_t)n_ctx, sizeof(float));
    r->row = calloc((size_t)E, sizeof(float));
    r->aq = calloc((size_t)W, 1);
    if (!r->embd || !r->kc || !r->vc || !r->x || !r->xn || !r->q || !r->k || !r->v || !r->att ||
        !r->g || !r->u || !r->sc || !r->row || !r->aq) {
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
    free(r->row);
    free(r->aq);
    free(r);
}

static float f16r(float x) { return bn_f16_to_f32(bn_f32_to_f16(x)); }

static float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return bn_f16_to_f32(h);
}

/* ---- tables: rows of token_embd / output decoded from the file ------------------ */

/* Row `v` of a [E, V] table as floats (docs/FORMAT.md, F16 and BF16, Q8_0,
 * Q6_K). */
static void table_row(const gguf_tensor *t, int E, int v, float *out) {
    const uint64_t row_bytes = t->nbytes / t->ne[1];
    const uint8_t *p = t->data + (uint64_t)v * row_bytes;
    switch (t->type) {
    case GGML_F16:
        for (int i = 0; i < E; i++) out[i] = f16_at(p + 2 * i);
        break;
    case GGML_F32:
        memcpy(out, p, (size_t)E * sizeof(float));
        break;
    case GGML_Q8_0:
        for (int i = 0; i < E; i++) out[i] = (float)(int8_t)p[34 * (i / 32) + 2 + i % 32] * f16_at(p + 34 * (i / 32));
        break;
    case GGML_Q6_K:
        for (int i = 0; i < E; i++) {
            const uint8_t *b = p + 210 * (i / 256);
            int j = i % 256, h = j / 128, l = j % 32, grp = (j % 128) / 32;
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            int lo = grp == 0 ? ql[l] & 15 : grp == 1 ? ql[l + 32] & 15 : grp == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
            int code = lo | ((qh[l] >> (2 * grp)) & 3) << 4;
            float d = f16_at(b + 208);
            out[i] = (d * (float)(int8_t)b[192 + j / 16]) * (float)(code - 32);
        }
        break;
    default:
        abort();
    }
}

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

/* ggml's x86 horizontal sum of eight lanes: (l + l+4), then (0+2) + (1+3). */
static float hsum8(const float *a) {
    float r0 = a[0] + a[4], r1 = a[1] + a[5], r2 = a[2] + a[6], r3 = a[3] + a[7];
    return (r0 + r2) + (r1 + r3);
}

/* The LM head's logit for row v of a table of this type, against the final
 * hidden state y (docs/NUMERICS.md, LM head and "ggml Q8_0 head"). */
static float head_logit(const ref_forward *r, int v, const float *y) {
    const gguf_tensor *t = r->head;
    const int E = r->m->hp.n_embd;
    const uint8_t *p = t->data + (uint64_t)v * (t->nbytes / t->ne[1]);
    float acc[8] = {0};
    switch (t->type) {
    case GGML_F16: {                            /* y already rounded to f16 */
        table_row(t, E, v, r->row);
        return dot_bitnet_order(r->row, y, E);
    }
    case GGML_F32: {                            /* ggml_vec_dot_f32, AVX-512 order */
        float a[4][16] = {{0}};
        int n64 = E & ~63;
        const float *w = (const float *)p;
        for (int i = 0; i < n64; i += 64)
            for (int j = 0; j < 64; j++) a[j / 16][j % 16] = fmaf(w[i + j], y[i + j], a[j / 16][j % 16]);
        float s16[16];
        for (int l = 0; l < 16; l++) s16[l] = (a[0][l] + a[2][l]) + (a[1][l] + a[3][l]);
        for (int half = 8; half >= 1; half /= 2)
            for (int l = 0; l < half; l++) s16[l] += s16[l + half];
        float s = s16[0];
        for (int i = n64; i < E; i++) s = fmaf(w[i], y[i], s);
        return s;
    }
    case GGML_Q8_0:                             /* y quantized to Q8_0 per block */
        for (int b = 0; b < E / 32; b++) {
            const float *yb = y + 32 * b;
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) amax = fabsf(yb[i]) > amax ? fabsf(yb[i]) : amax;
            float dx = f16r(amax / 127.0f), id = amax != 0.0f ? 127.0f / amax : 0.0f;
            float d = f16_at(p + 34 * b) * dx;
            for (int l = 0; l < 8; l++) {
                int32_t s = 0;
                for (int i = 4 * l; i < 4 * l + 4; i++)
                    s += (int8_t)p[34 * b + 2 + i] * (int32_t)nearbyintf(yb[i] * id);
                acc[l] = fmaf(d, (float)s, acc[l]);
            }
        }
        return hsum8(acc);
    case GGML_Q6_K:                             /* y quantized to Q8_K per 256 */
        for (int b = 0; b < E / 256; b++) {
            const float *yb = y + 256 * b;
            const uint8_t *blk = p + 210 * b;
            float amax = 0.0f, mx = 0.0f;
            for (int i = 0; i < 256; i++)
                if (fabsf(yb[i]) > amax) amax = fabsf(yb[i]), mx = yb[i];
            float iscale = amax != 0.0f ? -127.0f / mx : 0.0f;
            float dy = amax != 0.0f ? 1.0f / iscale : 0.0f;
            int32_t s[8] = {0};
            for (int j = 0; j < 256; j++) {
                int qy = (int)nearbyintf(iscale * yb[j]);
                if (qy > 127) qy = 127;
                int h = j / 128, l = j % 32, grp = (j % 128) / 32;
                const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
                int lo = grp == 0 ? ql[l] & 15 : grp == 1 ? ql[l + 32] & 15 : grp == 2 ? ql[l] >> 4 : ql[l + 32] >> 4;
                int code = lo | ((qh[l] >> (2 * grp)) & 3) << 4;
                s[(j % 32) / 4] += (int8_t)blk[192 + j / 16] * (code - 32) * qy;
            }
            float d = dy * f16_at(blk + 208);
            for (int l = 0; l < 8; l++) acc[l] = fmaf(d, (float)s[l], acc[l]);
        }
        return hsum8(acc);
    }
    abort();
}

/* ---- the layers ----------------------------------------------------------------- */

/* y = x / rms(x) * w with ggml's roundings (docs/NUMERICS.md, RMSNorm). */
static void rms_norm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) {
        float sq = x[i] * x[i];
        ss += (double)sq;
    }
    float mean = (float)(ss / (double)n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) {
        float t = x[i] * scale;
        y[i] = t * w[i];
    }
}

/* docs/NUMERICS.md, BitLinear: per-token absmax int8 quantization; returns
 * the scale s. */
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
 * bits 7-6 down to 1-0; codes 0,1,2 = -1,0,+1 (3 reads as 0). Rows of any K
 * (docs/FORMAT.md, Unaligned I2_S rows). */
static int i2s_at(const uint8_t *payload, int K, int m, int k) {
    size_t f = (size_t)m * (size_t)K + (size_t)k;
    uint8_t byte = payload[(f / 128) * 32 + f % 32];
    int code = (byte >> (6 - 2 * (int)((f % 128) / 32))) & 3;
    return code == 0 ? -1 : code == 2 ? 1 : 0;
}

/* A small F32 or F16 vector tensor of the file, by name; NULL if absent. */
static const gguf_tensor *vec_tensor(const bn_model *m, int il, const char *suffix, const char *ext) {
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.%s", il, suffix, ext);
    return gguf_find_tensor(&m->gguf, name);
}

static float vec_at(const gguf_tensor *t, int i) {
    if (t->type == GGML_F16) return f16_at(t->data + 2 * (size_t)i);
    float f;
    memcpy(&f, t->data + 4 * (size_t)i, 4);
    return f;
}

/* A norm's weights as floats (into w). */
static const float *norm_w(const bn_model *m, int il, const char *suffix, float *w, int n) {
    const gguf_tensor *t = vec_tensor(m, il, suffix, "weight");
    if (!t) abort();
    for (int i = 0; i < n; i++) w[i] = vec_at(t, i);
    return w;
}

/* BitLinear: y = ((float)Σ w·q / s) · scale, the input quantized here; then
 * times the projection's scale tensor (arch `bitnet`) and plus its bias,
 * when the file has them: attention biases in every graph, FFN biases in
 * `llama` only (build_bitnet and build_bitnet_158 never add them). */
static void bitlinear(const bn_model *m, int il, const char *suffix, const bn_ternary *w,
                      const float *x, int8_t *q, float *y) {
    float s = quantize(x, w->K, q);
    const int ffn = strncmp(suffix, "ffn_", 4) == 0;
    const gguf_tensor *sc = arch_is(m, "bitnet") ? vec_tensor(m, il, suffix, "scale") : NULL;
    const gguf_tensor *bias = !ffn || arch_is(m, "llama") ? vec_tensor(m, il, suffix, "bias") : NULL;
    for (int r = 0; r < w->M; r++) {
        int32_t acc = 0;
        for (int k = 0; k < w->K; k++) acc += i2s_at(w->i2s, w->K, r, k) * q[k];
        float v = ((float)acc / s) * w->scale;
        if (sc) v = v * vec_at(sc, 0);
        if (bias) v = v + vec_at(bias, r);
        y[r] = v;
    }
}

/* RoPE on one head: NEOX pairs (i, i + n_rot/2) or NORM pairs (2i, 2i+1),
 * angle pos·base^(-2i/n_rot) formed by repeated float multiplication as ggml
 * does. */
static void rope(float *x, int pos, int n_rot, float base, int neox) {
    float step = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        float c = cosf(theta), s = sinf(theta);
        int i0 = neox ? i : 2 * i, i1 = neox ? i + n_rot / 2 : 2 * i + 1;
        float a = x[i0], b = x[i1];
        x[i0] = a * c - b * s;
        x[i1] = a * s + b * c;
        theta = theta * step;
    }
}

int ref_forward_token(ref_forward *r, int32_t token, float *logits) {
    const bn_model *m = r->m;
    const bn_hparams *hp = &m->hp;
    int E = hp->n_embd, F = hp->n_ff, hd = hp->head_dim, kvd = r->kv_dim, Q = r->q_dim;
    if (r->pos >= r->n_ctx || token < 0 || token >= hp->n_vocab) return -1;
    int pos = r->pos++;
    float *w = malloc(sizeof(float) * (size_t)(E > F ? (E > Q ? E : Q) : (F > Q ? F : Q)));
    if (!w) abort();

    table_row(r->embd, E, token, r->x);

    for (int l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &m->layers[l];
        uint16_t *kc = r->kc + (size_t)l * r->n_ctx * kvd;
        uint16_t *vc = r->vc + (size_t)l * r->n_ctx * kvd;

        /* attention block */
        rms_norm(r->xn, r->x, norm_w(m, l, "attn_norm", w, E), E, hp->rms_eps);
        bitlinear(m, l, "attn_q", &L->proj[BN_PROJ_Q], r->xn, r->aq, r->q);
        bitlinear(m, l, "attn_k", &L->proj[BN_PROJ_K], r->xn, r->aq, r->k);
        bitlinear(m, l, "attn_v", &L->proj[BN_PROJ_V], r->xn, r->aq, r->v);
        for (int h = 0; h < hp->n_head; h++) rope(r->q + h * hd, pos, hp->n_rot, hp->rope_theta, r->neox);
        for (int h = 0; h < hp->n_head_kv; h++) rope(r->k + h * hd, pos, hp->n_rot, hp->rope_theta, r->neox);
        for (int d = 0; d < kvd; d++) {
            kc[(size_t)pos * kvd + d] = bn_f32_to_f16(r->k[d]);
            vc[(size_t)pos * kvd + d] = bn_f32_to_f16(r->v[d]);
        }
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
                r->sc[t] = dot_bitnet_order(qv, kv, hd) * r->attn_scale;
                if (r->sc[t] > mx) mx = r->sc[t];
            }
            double sum = 0;
            for (int t = 0; t <= pos; t++) {
                r->sc[t] = expf(r->sc[t] - mx);
                sum += (double)r->sc[t];
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
        if (r->sub_norms)
            rms_norm(r->xn, r->att, norm_w(m, l, "attn_sub_norm", w, Q), Q, hp->rms_eps);
        else
            memcpy(r->xn, r->att, (size_t)Q * sizeof(float));
        bitlinear(m, l, "attn_output", &L->proj[BN_PROJ_O], r->xn, r->aq, r->att);
        for (int i = 0; i < E; i++) r->x[i] += r->att[i];

        /* feed-forward block */
        rms_norm(r->xn, r->x, norm_w(m, l, "ffn_norm", w, E), E, hp->rms_eps);
        bitlinear(m, l, "ffn_gate", &L->proj[BN_PROJ_GATE], r->xn, r->aq, r->g);
        bitlinear(m, l, "ffn_up", &L->proj[BN_PROJ_UP], r->xn, r->aq, r->u);
        for (int i = 0; i < F; i++) {
            float g = r->g[i];
            if (r->relu2) {
                float a = g > 0.0f ? g : 0.0f;
                r->g[i] = (a * a) * r->u[i];
            } else {
                r->g[i] = (g / (1.0f + expf(-g))) * r->u[i];
            }
        }
        if (r->sub_norms)
            rms_norm(r->xn, r->g, norm_w(m, l, "ffn_sub_norm", w, F), F, hp->rms_eps);
        else
            memcpy(r->xn, r->g, (size_t)F * sizeof(float));
        bitlinear(m, l, "ffn_down", &L->proj[BN_PROJ_DOWN], r->xn, r->aq, r->att);
        for (int i = 0; i < E; i++) r->x[i] += r->att[i];
    }

    /* the LM head on the final norm (rounded to f16 for an F16 table) */
    const gguf_tensor *on = gguf_find_tensor(&m->gguf, "output_norm.weight");
    for (int i = 0; i < E; i++) w[i] = vec_at(on, i);
    rms_norm(r->xn, r->x, w, E, hp->rms_eps);
    if (r->head->type == GGML_F16)
        for (int i = 0; i < E; i++) r->xn[i] = f16r(r->xn[i]);
    for (int v = 0; v < hp->n_vocab; v++) logits[v] = head_logit(r, v, r->xn);
    free(w);
    return 0;
}
