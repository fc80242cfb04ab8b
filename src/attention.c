/* Attention over the f16 KV cache, and the cache's own operations: clearing
 * the blocks attention pads into, and the context shift (attention.h). */
#include <math.h>
#include <string.h>

#include "attention.h"
#include "rope.h"

/* llama.cpp pads the number of attended KV cells to a multiple of 32. */
#define KV_PAD 32

static int imin(int a, int b) { return a < b ? a : b; }

/* ---- the padded blocks of V ------------------------------------------------------ */

/* Zeroes V cells [from, to) of every layer. */
static void clear_v_cells(bn_context *c, int from, int to) {
    int kvd = c->kv_dim;
    if (to <= from) return;
    for (int l = 0; l < c->hp.n_layer; l++) {
        uint16_t *vt = c->v_cache + (size_t)l * c->n_ctx * kvd;
        for (int d = 0; d < kvd; d++)
            memset(vt + (size_t)d * c->n_ctx + from, 0, (size_t)(to - from) * sizeof *vt);
    }
}

/* P·V runs over whole blocks of KV_PAD positions (see task_attention). Before
 * a batch writes into a block for the first time, clear that block's V cells
 * so the cells not yet written hold 0, not values left from before a reset
 * (0 * a NaN left in memory would poison the sum). */
void bn_kv_prepare(bn_context *c, int pos0, int n) {
    for (int pos = (pos0 + KV_PAD - 1) / KV_PAD * KV_PAD; pos < pos0 + n; pos += KV_PAD)
        clear_v_cells(c, pos, imin(pos + KV_PAD, c->n_ctx));
}

/* ---- attention (docs/NUMERICS.md, Attention and F16 matmuls) --------------------- */

typedef struct attn_job {
    bn_context *c;
    int layer, pos0, n;
    const bn_numerics *num;
} attn_job;

/* One (token, head) pair per iteration, causal over positions 0..pos. Q is
 * rounded to f16 for its f16 products; the softmax is in float with the sum
 * in double, p = e * float(1/sum); P·V as the numerics profile says (by
 * default p rounded to f16; numerics.c). */
static void task_attention(void *arg, int ith, int nth) {
    const attn_job *s = arg;
    bn_context *c = s->c;
    const bn_kernels *kern = c->kern;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim, kvd = c->kv_dim;
    int group = hp->n_head / hp->n_head_kv;
    float scale = 1.0f / sqrtf((float)hd);
    float *score = c->scores + (size_t)ith * c->n_ctx;
    uint16_t *p16 = c->probs16 + (size_t)ith * c->n_ctx;
    uint16_t *q16 = c->tmp16 + (size_t)ith * (size_t)(hd > kvd ? hd : kvd);
    const uint16_t *kc = c->k_cache + (size_t)s->layer * c->n_ctx * kvd;
    const uint16_t *vt = c->v_cache + (size_t)s->layer * c->n_ctx * kvd;

    for (int job = ith; job < s->n * hp->n_head; job += nth) {
        int i = job / hp->n_head, h = job % hp->n_head;
        int n_kv = s->pos0 + i + 1;
        int kvh = h / group;
        kern->f32_to_f16(c->q + (size_t)i * hp->n_embd + (size_t)h * hd, q16, hd);

        kern->gemv_f16(kc + (size_t)kvh * c->n_ctx * hd, hd, q16, 0, n_kv, score);
        float max = -INFINITY;
        for (int t = 0; t < n_kv; t++) {
            score[t] *= scale;
            if (score[t] > max) max = score[t];
        }
        double sum = 0.0;
        for (int t = 0; t < n_kv; t++) {
            score[t] = expf(score[t] - max);
            sum += (double)score[t];
        }
        float inv = (float)(1.0 / sum);
        for (int t = 0; t < n_kv; t++) score[t] *= inv;

        /* Like llama.cpp, attend over a multiple of KV_PAD cells: the extra
         * cells have p = 0 and v = 0, which changes nothing but the kernel's
         * summation order (this is what makes the sums bitnet.cpp's). */
        int n_pad = imin((n_kv + KV_PAD - 1) / KV_PAD * KV_PAD, c->n_ctx);
        float *out = c->att + (size_t)i * hp->n_embd + (size_t)h * hd;
        s->num->attn_pv(kern, score, p16, n_kv, n_pad, vt + (size_t)kvh * hd * c->n_ctx,
                        (size_t)c->n_ctx, hd, out);
    }
}

void bn_attention(bn_context *c, int layer, int pos0, int n, const bn_numerics *num) {
    attn_job job = {.c = c, .layer = layer, .pos0 = pos0, .n = n, .num = num};
    bn_threadpool_run(c->pool, task_attention, &job);
}

/* ---- context shift (docs/NUMERICS.md, Context shift) ------------------------------ */

typedef struct shift_job {
    bn_context *c;
    int keep, n_discard, n_past;
    const float *cs;                /* cos, sin of the angles of position -n_discard */
} shift_job;

/* K: each (layer, KV head) row series moves down, row by row in increasing
 * position order (the destination is always below the source), each row
 * rotated in float on the way. Dims at and above n_rot are only moved. */
static void task_shift_k(void *arg, int ith, int nth) {
    const shift_job *s = arg;
    bn_context *c = s->c;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim;
    enum bn_rope_style style = c->model->arch->rope;
    float *row = c->xn + (size_t)ith * (size_t)(hp->n_embd > hp->n_ff ? hp->n_embd : hp->n_ff);
    for (int job = ith; job < hp->n_layer * hp->n_head_kv; job += nth) {
        uint16_t *k = c->k_cache + (size_t)job * c->n_ctx * hd;     /* [layer][kv_head] */
        for (int t = s->keep + s->n_discard; t < s->n_past; t++) {
            c->kern->f16_to_f32(k + (size_t)t * hd, row, hd);
            bn_rope_rotate(style, row, s->cs, hp->n_rot);
            c->kern->f32_to_f16(row, k + (size_t)(t - s->n_discard) * hd, hd);
        }
    }
}

/* V: one contiguous run of cells per (layer, dim) row. */
static void task_shift_v(void *arg, int ith, int nth) {
    const shift_job *s = arg;
    bn_context *c = s->c;
    int rows = c->hp.n_layer * c->kv_dim;
    size_t n_move = (size_t)(s->n_past - s->keep - s->n_discard);
    for (int r = ith; r < rows; r += nth) {
        uint16_t *v = c->v_cache + (size_t)r * c->n_ctx;
        memmove(v + s->keep, v + s->keep + s->n_discard, n_move * sizeof *v);
    }
}

void bn_kv_shift(bn_context *c, int keep, int n_discard) {
    int n_past = c->n_past;
    /* The same angles as a token at position -n_discard gets: RoPE composes,
     * rotating by p then by -n_discard is rotating by p - n_discard (up to
     * rounding). c->rope's first part is free between forward passes. */
    float *cs = c->rope;
    bn_rope_angles(cs, -n_discard, c->hp.n_rot, bn_rope_theta_scale(&c->hp));
    shift_job job = {.c = c, .keep = keep, .n_discard = n_discard, .n_past = n_past, .cs = cs};
    bn_threadpool_run(c->pool, task_shift_k, &job);
    bn_threadpool_run(c->pool, task_shift_v, &job);
    /* The cells freed at the end may lie in the block the next batch starts
     * in, which bn_kv_prepare does not clear: zero them, so every cell of
     * that block past n_past holds 0 again. */
    int new_past = n_past - n_discard;
    int block_end = imin((new_past + KV_PAD - 1) / KV_PAD * KV_PAD, c->n_ctx);
    clear_v_cells(c, new_past, imin(n_past, block_end));
}
