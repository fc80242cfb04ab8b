/* Attention over the KV cache (f16, or q8_0 for K and/or V), and the
 * cache's own operations: clearing the blocks attention pads into, and the
 * context shift (attention.h). */
#include <math.h>
#include <string.h>

#include "attention.h"
#include "rope.h"
#include "util.h"

/* llama.cpp pads the number of attended KV cells to a multiple of 32. */
#define KV_PAD 32


/* ---- the padded blocks of V ------------------------------------------------------ */

/* Zeroes V cells [from, to) of every layer. A q8_0 V needs none: its P·V
 * stops at the last written cell (see attention_chunk). */
static void clear_v_cells(bn_context *c, int from, int to) {
    int kvd = c->kv_dim;
    if (to <= from || c->type_v != BN_KV_F16) return;
    for (int l = 0; l < c->hp.n_layer; l++) {
        uint16_t *vt = c->v_cache + (size_t)l * c->n_ctx * kvd;
        for (int d = 0; d < kvd; d++)
            memset(vt + (size_t)d * c->n_ctx + from, 0, (size_t)(to - from) * sizeof *vt);
    }
}

/* P·V of a short row runs over whole blocks of KV_PAD positions, and that of
 * a long row up to the next multiple of 8 past the chunk's last token (see
 * below): cells no token has written yet, with p = 0. Before a batch writes
 * into a block for the first time, clear that block's V cells so those cells
 * hold 0, not values left from before a reset (0 * a NaN left in memory
 * would poison the sum). */
void bn_kv_prepare(bn_context *c, int pos0, int n) {
    for (int pos = (pos0 + KV_PAD - 1) / KV_PAD * KV_PAD; pos < pos0 + n; pos += KV_PAD)
        clear_v_cells(c, pos, imin(pos + KV_PAD, c->n_ctx));
}

void bn_kv_truncate(bn_context *c, int n_keep) {
    clear_v_cells(c, n_keep, imin((n_keep + KV_PAD - 1) / KV_PAD * KV_PAD, c->n_ctx));
}

/* ---- attention (docs/NUMERICS.md, Attention and F16 matmuls) --------------------- */

/* A query row (token, head) attending over at most LONG_FROM cells goes the
 * way bitnet.cpp's decode does, in its summation orders; longer rows take
 * bitnet.c's own order (kernels.h, attn_qk/attn_softmax/attn_pv; docs/
 * NUMERICS.md, "Attention over long contexts"), which the kernels run in
 * cache-sized tiles shared by many rows. The choice depends on the row's own
 * position only, so a batch still gives the bits of token-by-token decoding. */
#define LONG_FROM 256
#define KEY_BLOCK 256               /* keys per scores job */
#define DIM_BLOCK 16                /* V dims per P·V job */
#define T_TILE 256                  /* cells per P·V kernel call (a multiple of 8) */

typedef struct attn_job {
    bn_context *c;                  /* scratch (q, att, ...) and pool */
    const bn_context *kv;           /* whose KV cache the rows attend (c, or a sequence) */
    bn_context *const *seqs;        /* short rows of bn_attention_multi: row i
                                       attends seqs[i]'s cache; NULL otherwise */
    int layer;
    int pos0;                       /* position of the batch's first token */
    int i0, n;                      /* this run: batch rows i0 .. i0+n-1 */
    int n_kv_max;                   /* cells the last token of the chunk attends */
    int t_pad;                      /* P·V length of long rows (attention_chunk) */
    const bn_numerics *num;
} attn_job;

static float attn_scale(const bn_context *c) {
    return c->model->attn_scale;    /* 1/sqrt(head_dim), or the file's attention.scale */
}

/* Softmax of bitnet.cpp's decode (docs/NUMERICS.md, Attention): scores
 * scaled, the max subtracted, expf, the sum in double in order,
 * p = e * float(1/sum). */
static void softmax_exact(float *score, int n_kv, float scale) {
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
}

/* Like llama.cpp, P·V of a short row attends over a multiple of KV_PAD
 * cells: the extra cells have p = 0 and v = 0, which changes nothing but the
 * kernel's summation order (this is what makes the sums bitnet.cpp's). */
static int short_pad(const bn_context *c, int n_kv) {
    return imin((n_kv + KV_PAD - 1) / KV_PAD * KV_PAD, c->n_ctx);
}

/* A q8_0 cache (K or V) has no bitnet.cpp order to follow: every row of
 * such a context takes the chunked path, whatever its length (docs/
 * NUMERICS.md, "Quantized KV cache"). */
static int quantized(const bn_context *c) {
    return c->type_k != BN_KV_F16 || c->type_v != BN_KV_F16;
}

/* A row is long when it attends more than LONG_FROM cells (or the cache is
 * quantized) and the context has the long path at all. */
static int is_long(const bn_context *c, int n_kv) {
    return c->attn_chunk > 0 && (n_kv > LONG_FROM || quantized(c));
}

/* Short rows: one (token, head) pair per iteration, everything of a row
 * in one go (per-part scratch). With seqs, every row of the batch whose
 * own sequence is short, each against its sequence's cache. */
static void task_attention_short(void *arg, int ith, int nth) {
    const attn_job *s = arg;
    bn_context *c = s->c;
    const bn_kernels *kern = c->kern;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim, kvd = c->kv_dim;
    int group = hp->n_head / hp->n_head_kv;
    float *score = c->scores + (size_t)ith * c->n_ctx;
    uint16_t *p16 = c->probs16 + (size_t)ith * c->n_ctx;
    uint16_t *q16 = c->tmp16 + (size_t)ith * (size_t)(hd > kvd ? hd : kvd);
    size_t layer_kv = (size_t)s->layer * c->n_ctx * kvd;

    for (int job = ith; job < s->n * hp->n_head; job += nth) {
        int i = s->i0 + job / hp->n_head, h = job % hp->n_head;
        const bn_context *kv = s->seqs ? s->seqs[i] : s->kv;
        int n_kv = s->seqs ? kv->n_past + 1 : s->pos0 + i + 1;
        if (s->seqs && is_long(c, n_kv)) continue;      /* the chunked path's */
        const uint16_t *kc = kv->k_cache + layer_kv;
        const uint16_t *vt = kv->v_cache + layer_kv;
        int kvh = h / group;
        kern->f32_to_f16(c->q + (size_t)i * c->q_dim + (size_t)h * hd, q16, hd);
        kern->gemv_f16(kc + (size_t)kvh * c->n_ctx * hd, hd, q16, 0, n_kv, score);
        softmax_exact(score, n_kv, attn_scale(c));
        float *out = c->att + (size_t)i * c->q_dim + (size_t)h * hd;
        s->num->attn_pv(kern, score, p16, n_kv, short_pad(c, n_kv), vt + (size_t)kvh * hd * c->n_ctx,
                        (size_t)c->n_ctx, hd, out);
    }
}

/* Chunks of long rows run in three steps over the chunk's rows, laid out
 * by KV head so that a head's rows are contiguous:
 * row(i, h) = ((h / group) * attn_chunk + i) * group + h % group. */
static int row_of(const bn_context *c, int i, int h) {
    int group = c->hp.n_head / c->hp.n_head_kv;
    return ((h / group) * c->attn_chunk + i) * group + h % group;
}

static int chunk_n_kv(const attn_job *s, int i) {
    return s->pos0 + s->i0 + i + 1;
}

/* Step 1, scores: job = (KV head, block of KEY_BLOCK keys); the head's rows
 * take the block's keys up to n_kv_max (a row ignores those past its own
 * n_kv, which this batch has written). */
static void task_scores(void *arg, int ith, int nth) {
    const attn_job *s = arg;
    bn_context *c = s->c;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    int n_blocks = (s->n_kv_max + KEY_BLOCK - 1) / KEY_BLOCK;
    size_t ld = (size_t)c->n_ctx;
    for (int job = ith; job < hp->n_head_kv * n_blocks; job += nth) {
        int g = job / n_blocks, t0 = job % n_blocks * KEY_BLOCK;
        int t1 = imin(t0 + KEY_BLOCK, s->n_kv_max);
        size_t cell0 = ((size_t)s->layer * hp->n_head_kv + g) * c->n_ctx + (size_t)t0;
        size_t r0 = (size_t)row_of(c, 0, g * group);
        if (c->type_k == BN_KV_Q8_0) {
            /* t0 starts a group of the series (KEY_BLOCK is a multiple of 8) */
            size_t first = bn_kvq8_series(c, s->layer, g) + (size_t)t0;
            c->kern->attn_q8_qk(c->att_q8 + r0 * hd, c->att_qd + r0 * (hd / 32), s->n * group,
                                s->kv->k_q8 + first * hd, s->kv->k_q8d + first * (hd / 32),
                                t1 - t0, hd, c->att_p + r0 * ld + t0, ld);
        } else
            c->kern->attn_qk(c->att_q + r0 * hd, (size_t)hd, s->n * group, s->kv->k_cache + cell0 * hd,
                             t1 - t0, hd, c->att_p + r0 * ld + t0, ld);
    }
}

/* Step 2, softmax: job = row; zeros up to t_pad. */
static void task_softmax(void *arg, int ith, int nth) {
    const attn_job *s = arg;
    bn_context *c = s->c;
    int n_head = c->hp.n_head;
    float scale = attn_scale(c);
    for (int job = ith; job < s->n * n_head; job += nth) {
        int i = job / n_head, h = job % n_head;
        float *p = c->att_p + (size_t)row_of(c, i, h) * c->n_ctx;
        c->kern->attn_softmax(p, chunk_n_kv(s, i), s->t_pad, scale);
    }
}

/* Step 3 with a q8_0 V: job = (KV head, block of DIM_BLOCK_Q8 dims, two
 * cache lines of each pair of positions); the head's rows accumulate in
 * att_acc a T_TILE of cells at a time (each output one chain of FMAs, one
 * per block of positions, in order), then go to their place in att. */
#define DIM_BLOCK_Q8 64

static void task_pv_q8(void *arg, int ith, int nth) {
    const attn_job *s = arg;
    bn_context *c = s->c;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    int n_dblocks = (hd + DIM_BLOCK_Q8 - 1) / DIM_BLOCK_Q8, nr = s->n * group;
    size_t ld = (size_t)c->n_ctx;
    float *acc = c->att_acc + (size_t)ith * bn_attention_acc_floats(hp, c->attn_chunk);
    for (int job = ith; job < hp->n_head_kv * n_dblocks; job += nth) {
        int g = job / n_dblocks, d0 = job % n_dblocks * DIM_BLOCK_Q8, nd = imin(DIM_BLOCK_Q8, hd - d0);
        size_t series = bn_kvq8_series(c, s->layer, g);
        const int8_t *v = s->kv->v_q8 + series * hd;
        const uint16_t *vd = s->kv->v_q8d + series * (hd / 32);
        const float *p = c->att_p + (size_t)row_of(c, 0, g * group) * ld;
        memset(acc, 0, (size_t)nr * nd * sizeof *acc);
        for (int t0 = 0; t0 < s->t_pad; t0 += T_TILE)      /* T_TILE: whole P·V blocks */
            c->kern->attn_q8_pv(p, ld, nr, t0, imin(t0 + T_TILE, s->t_pad), v, vd, hd, d0, nd, acc);
        for (int r = 0; r < nr; r++) {
            int i = r / group, h = g * group + r % group;
            float *out = c->att + (size_t)(s->i0 + i) * c->q_dim + (size_t)h * hd + d0;
            memcpy(out, acc + (size_t)r * nd, (size_t)nd * sizeof *out);
        }
    }
}

/* Step 3, P·V: job = (KV head, block of DIM_BLOCK dims): the head's rows
 * through the kernel a T_TILE of cells at a time (lanes carried in
 * att_acc), then each output's 8 lanes summed in the kernels' order. */
static void task_pv(void *arg, int ith, int nth) {
    const attn_job *s = arg;
    bn_context *c = s->c;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    int n_dblocks = (hd + DIM_BLOCK - 1) / DIM_BLOCK, nr = s->n * group;
    size_t ld = (size_t)c->n_ctx;
    float *acc = c->att_acc + (size_t)ith * bn_attention_acc_floats(hp, c->attn_chunk);
    for (int job = ith; job < hp->n_head_kv * n_dblocks; job += nth) {
        int g = job / n_dblocks, d0 = job % n_dblocks * DIM_BLOCK, nd = imin(DIM_BLOCK, hd - d0);
        const uint16_t *vt = s->kv->v_cache + ((size_t)s->layer * c->kv_dim + (size_t)g * hd + d0) * ld;
        const float *p = c->att_p + (size_t)row_of(c, 0, g * group) * ld;
        memset(acc, 0, (size_t)nr * nd * 8 * sizeof *acc);
        for (int t0 = 0; t0 < s->t_pad; t0 += T_TILE)
            c->kern->attn_pv(p, ld, nr, t0, imin(t0 + T_TILE, s->t_pad), vt, ld, nd, acc);
        for (int r = 0; r < nr; r++) {
            int i = r / group, h = g * group + r % group;
            float *out = c->att + (size_t)(s->i0 + i) * c->q_dim + (size_t)h * hd + d0;
            for (int d = 0; d < nd; d++) {
                const float *a = acc + ((size_t)r * nd + d) * 8;
                out[d] = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
            }
        }
    }
}

/* One chunk of up to attn_chunk tokens, every row long: their q rounded to
 * f16 (kept as floats) into att_q, or quantized to q8_0 blocks into
 * att_q8/att_qd for a q8_0 K, then the three steps. The P·V of a row runs
 * to t_pad: its probabilities past its own n_kv are 0 and those cells hold
 * finite values (written by this batch, or zeroed by bn_kv_prepare), so
 * they add nothing. An f16 V's lanes need t_pad = n_kv_max rounded up to 8;
 * a q8_0 V's chains stop at n_kv_max itself (no cell to clear). */
static void attention_chunk(attn_job *s) {
    bn_context *c = s->c;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim;
    s->n_kv_max = chunk_n_kv(s, s->n - 1);
    s->t_pad = c->type_v == BN_KV_Q8_0 ? s->n_kv_max : (s->n_kv_max + 7) / 8 * 8;
    for (int i = 0; i < s->n; i++)
        for (int h = 0; h < hp->n_head; h++) {
            const float *qf = c->q + (size_t)(s->i0 + i) * c->q_dim + (size_t)h * hd;
            size_t row = (size_t)row_of(c, i, h);
            if (c->type_k == BN_KV_Q8_0) {
                bn_q8_query_quantize(qf, hd, c->att_q8 + row * hd, c->att_qd + row * (hd / 32));
                continue;
            }
            c->kern->f32_to_f16(qf, c->tmp16, hd);
            c->kern->f16_to_f32(c->tmp16, c->att_q + row * hd, hd);
        }
    bn_threadpool_run(c->pool, task_scores, s);
    bn_threadpool_run(c->pool, task_softmax, s);
    bn_threadpool_run(c->pool, c->type_v == BN_KV_Q8_0 ? task_pv_q8 : task_pv, s);
}

/* Rows of a chunk: enough to share each K/V tile among many rows, few
 * enough that their probabilities stay a few MB. */
#define CHUNK_ROWS 256

int bn_attention_chunk(const bn_hparams *hp, int n_ctx, int n_batch, int every_row) {
    if ((!every_row && n_ctx <= LONG_FROM) || hp->head_dim % 8 != 0) return 0;
    return imax(1, imin(CHUNK_ROWS / hp->n_head, n_batch));
}

size_t bn_attention_acc_floats(const bn_hparams *hp, int chunk) {
    /* f16 V: 8 lanes per dim of DIM_BLOCK; q8_0 V: one float per dim of
     * DIM_BLOCK_Q8 (fewer) */
    return (size_t)chunk * (size_t)(hp->n_head / hp->n_head_kv) * DIM_BLOCK * 8;
}

void bn_attention(bn_context *c, int layer, int pos0, int n, const bn_numerics *num) {
    attn_job job = {.c = c, .kv = c, .layer = layer, .pos0 = pos0, .num = num};
    /* The tokens whose rows are short, at once; the rest in chunks. */
    int n_short = c->attn_chunk > 0 ? imin(n, imax(0, LONG_FROM - pos0)) : n;
    if (c->attn_chunk > 0 && quantized(c)) n_short = 0;
    if (n_short > 0) {
        job.i0 = 0;
        job.n = n_short;
        bn_threadpool_run(c->pool, task_attention_short, &job);
    }
    for (int i0 = n_short; i0 < n; i0 += c->attn_chunk) {
        job.i0 = i0;
        job.n = imin(c->attn_chunk, n - i0);
        attention_chunk(&job);
    }
}

/* Every row its own sequence, one token each: the short rows in one run,
 * each long row as a chunk of one token against its own cache (positioned
 * so that its n_kv is its sequence's n_past + 1). Either way a row goes
 * through exactly the calls its sequence decoded alone would make. */
void bn_attention_multi(bn_context *c, bn_context *const *seqs, int layer, int n,
                        const bn_numerics *num) {
    attn_job job = {.c = c, .seqs = seqs, .layer = layer, .i0 = 0, .n = n, .num = num};
    if (!quantized(c)) bn_threadpool_run(c->pool, task_attention_short, &job);
    job.seqs = NULL;
    for (int i = 0; i < n; i++) {
        if (!is_long(c, seqs[i]->n_past + 1)) continue;
        job.kv = seqs[i];
        job.i0 = i;
        job.n = 1;
        job.pos0 = seqs[i]->n_past - i;
        attention_chunk(&job);
    }
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
        size_t cell0 = (size_t)job * c->n_ctx;                      /* [layer][kv_head] */
        size_t series = (size_t)job * bn_kvq8_positions(c);          /* the same, q8_0 */
        int8_t *kq = c->k_q8 ? c->k_q8 + series * hd : NULL;
        uint16_t *kqd = c->k_q8d ? c->k_q8d + series * (hd / 32) : NULL;
        for (int t = s->keep + s->n_discard; t < s->n_past; t++) {
            size_t src = cell0 + (size_t)t, dst = src - (size_t)s->n_discard;
            if (c->type_k == BN_KV_Q8_0) {
                /* dequantize, rotate, quantize again (docs/NUMERICS.md,
                 * "Quantized KV cache") */
                bn_q8_kv_get(BN_KVQ8_K, kq, kqd, hd, t, row);
                bn_rope_rotate(style, row, s->cs, hp->n_rot);
                bn_q8_kv_put(BN_KVQ8_K, row, hd, kq, kqd, t - s->n_discard);
                continue;
            }
            c->kern->f16_to_f32(c->k_cache + src * hd, row, hd);
            bn_rope_rotate(style, row, s->cs, hp->n_rot);
            c->kern->f32_to_f16(row, c->k_cache + dst * hd, hd);
        }
    }
}

/* V: one contiguous run of cells per (layer, dim) row; a q8_0 V, row by
 * row in increasing position order per (layer, KV head) series, values
 * and scales moved as they are (a row's bytes are spread over its group). */
static void task_shift_v(void *arg, int ith, int nth) {
    const shift_job *s = arg;
    bn_context *c = s->c;
    int rows = c->hp.n_layer * c->kv_dim;
    size_t n_move = (size_t)(s->n_past - s->keep - s->n_discard);
    if (c->type_v == BN_KV_Q8_0) {
        int hd = c->hp.head_dim;
        int8_t q[BN_KVQ8_MAX_HD];
        uint16_t d[BN_KVQ8_MAX_HD / 32];
        for (int job = ith; job < c->hp.n_layer * c->hp.n_head_kv; job += nth) {
            size_t series = (size_t)job * bn_kvq8_positions(c);
            int8_t *v = c->v_q8 + series * hd;
            uint16_t *vd = c->v_q8d + series * (hd / 32);
            for (int t = s->keep + s->n_discard; t < s->n_past; t++) {
                bn_q8_kv_row_read(BN_KVQ8_V, v, vd, hd, t, q, d);
                bn_q8_kv_row_write(BN_KVQ8_V, v, vd, hd, t - s->n_discard, q, d);
            }
        }
        return;
    }
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
