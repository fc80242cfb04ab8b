/* The BitNet transformers (docs/NUMERICS.md: "bitnet-b1.58 graph",
 * "bitnet graph", "llama graph"), for a batch of tokens at once:
 *
 *   h = embed(token)
 *   per layer:
 *     a = rmsnorm(h, attn_norm);  q, k, v = BitLinear(a);  RoPE(q, k)
 *     store k, v in the f16 cache;  o = attention(q, cache)
 *     h += BitLinear_o(rmsnorm(o, attn_sub_norm))       (no norm without sub-norms)
 *     f = rmsnorm(h, ffn_norm);  m = act(gate(f)) * up(f)   (act: relu^2 or silu)
 *     h += BitLinear_down(rmsnorm(m, ffn_sub_norm))
 *   logits = head(rmsnorm(h, output_norm))
 *
 * where a BitLinear's output is multiplied by the layer's scale tensor and
 * plus its bias when the file has them. The architecture's switches
 * (arch.h) choose the activation, the RoPE pairs and whether sub-norms
 * exist; the query width n_head * head_dim may differ from n_embd (Falcon3);
 * every matrix is used through its format's traits (kernels.h), and where a
 * prompt batch may round like bitnet.cpp's, through the context's numerics
 * profile (context.h).
 *
 * By default one set of numerics serves every batch size: bitnet.cpp's
 * single-token (decode) path, so a prompt evaluated as one batch and token
 * by token gives the same bits. Each step is a task on the thread pool, cut
 * into nth parts (ith = part index, which also picks the part's scratch);
 * every output element is computed within one part by the same operations
 * whatever nth is, so results do not depend on the thread count either. */
#include <math.h>
#include <string.h>

#include "attention.h"
#include "context.h"
#include "rope.h"
#include "util.h"

/* ---- small helpers ----------------------------------------------------------- */


/* Part ith's share [*m0, *m1) of M rows, cut at multiples of `block`. */
static void split_rows(int M, int block, int ith, int nth, int *m0, int *m1) {
    if (block < 1) block = 1;
    long long nb = (M + block - 1) / block;
    *m0 = (int)(nb * ith / nth) * block;
    *m1 = imin(M, (int)(nb * (ith + 1) / nth) * block);
}

/* RMSNorm exactly as ggml: squares rounded to float, summed in double in
 * order; the mean rounded to float; y = (x * scale) * w. */
static float rms_scale(double sum, int n, float eps) {
    float mean = (float)(sum / n);
    return 1.0f / sqrtf(mean + eps);
}

static void rms_apply(float *y, const float *x, const float *w, int n, float scale) {
    for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

static void rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    rms_apply(y, x, w, n, rms_scale(sum, n, eps));
}

/* ---- per-token steps ----------------------------------------------------------- */

typedef struct step {
    bn_context *c;
    int n;                          /* tokens in the batch */
    int pos0;                       /* position of the first */
    bn_context *const *seqs;        /* bn_forward_multi: row i is one token of the
                                       sequence seqs[i] (its cache, its position);
                                       NULL: every row is c's, at pos0 + i */
    int layer;
    const bn_numerics *num;         /* the context's profile for this batch size */
    const int32_t *tokens;
    /* norm_quant: input rows of width K and the norm's weights */
    const float *in;
    const float *norm_w;
    int K;
    /* head */
    int out_first;                  /* first token whose logits are kept */
    const bn_matrix *head_w;        /* the head's table for this batch */
    const bn_format_traits *head;   /* its format for this batch */
    int screen;                     /* 1: the exact head's screen (head_exact.h) */
    float *logits;
} step;

static void task_embed(void *arg, int ith, int nth) {
    const step *s = arg;
    const bn_context *c = s->c;
    int E = c->hp.n_embd;
    for (int i = ith; i < s->n; i += nth) {
        /* xn is free until the first norm: its row i holds the stored row
         * (at most E floats' worth: an F32 row). */
        bn_model_embedding_row(c->model, s->tokens[i], c->xn + (size_t)i * E, c->x + (size_t)i * E);
    }
}

/* The ternary projections' format (every BitLinear weight has it). */
static const bn_format_traits *ternary(const bn_context *c) {
    return c->kern->fmt[BN_FMT_TERNARY];
}

/* The glue loops of the context's kernel variant (kernels.h). */
static const bn_glue_kernels *glue(const bn_context *c) {
    return c->kern->glue;
}

/* RMSNorm rows whose sums of squares are taken side by side (the glue's
 * sum_squares runs each row's ordered chain in its own vector lane). */
enum { NORM_ROWS = 8 };

/* RMSNorm, int8 quantization and the format's activation preparation of
 * each token: done once per input and shared by the projections that read
 * it. Without norm weights (no sub-norm in this architecture) the input is
 * quantized as it is. The rows are Kp = whole I2_S blocks wide (the
 * kernels' width): past K the normed row counts as zeros, which change
 * neither the absmax nor any other q, and add nothing to the dots
 * (docs/FORMAT.md, Unaligned I2_S rows). The normed row itself is never
 * stored: norm_quantize_act computes each value where it quantizes it
 * (docs/NUMERICS.md, RMSNorm; BitLinear). This part's tokens are ith,
 * ith + nth, ...: NORM_ROWS of them at a time. */
static void task_norm_quant(void *arg, int ith, int nth) {
    const step *s = arg;
    bn_context *c = s->c;
    const bn_glue_kernels *g = glue(c);
    int K = s->K, Kp = bn_ternary_kpad(K);
    size_t prep_size = ternary(c)->act_size(Kp);
    /* A batch goes to gemm, which may need less of each token's input
     * (kernels.h, act_prep_batch: t3 skips its lookup tables). */
    void (*prep)(const void *, int, void *) =
        s->n > 1 && ternary(c)->act_prep_batch ? ternary(c)->act_prep_batch : ternary(c)->act_prep;
    for (int i0 = ith; i0 < s->n; i0 += NORM_ROWS * nth) {
        int rows = imin(NORM_ROWS, (s->n - 1 - i0) / nth + 1);
        double sums[NORM_ROWS];
        if (s->norm_w) g->sum_squares(s->in + (size_t)i0 * K, (size_t)nth * K, rows, K, sums);
        for (int r = 0; r < rows; r++) {
            int i = i0 + r * nth;
            float scale = s->norm_w ? rms_scale(sums[r], K, c->hp.rms_eps) : 1.0f;
            int8_t *aq = c->act_q + (size_t)i * Kp;
            c->act_scale[i] = g->norm_quantize_act(s->in + (size_t)i * K, s->norm_w, scale, K,
                                                   Kp, aq, &c->act_sum[i]);
            prep(aq, Kp, c->act_prep + (size_t)i * prep_size);
        }
    }
}

/* ---- BitLinear (docs/NUMERICS.md, BitLinear) ------------------------------------- */

/* Exact integer dots of rows [m0, m1) of w for the batch's prepared inputs:
 * dot[i * ldd + (m - m0)]. GEMV for one token, GEMM for more (same integers). */
static void ternary_dots(const bn_context *c, const bn_ternary *w, int n, int m0, int m1,
                         int32_t *dot, int ldd) {
    if (n == 1)
        ternary(c)->gemv(w->packed, w->Kp, w->M, c->act_prep, m0, m1, dot);
    else
        ternary(c)->gemm(w->packed, w->Kp, w->M, c->act_prep, n, m0, m1, dot, ldd);
}

/* A part's rows are done a tile at a time so that a batch's dots are read back
 * from cache, not memory; a single token takes its whole range at once. Tiles
 * are whole multiples of tile_rows, as the kernels require. */
static int row_tile(const bn_context *c, int n, int m0, int m1) {
    if (n == 1) return m1 - m0;
    int rb = ternary(c)->tile_rows > 0 ? ternary(c)->tile_rows : 1;
    return (c->dot_tile + rb - 1) / rb * rb;
}

/* This part's int32 scratch for two tiles of dots (see context.c). */
static int32_t *part_dots(const bn_context *c, int ith) {
    return c->dot + (size_t)ith * c->dot_part;
}

/* A projection's output after the epilogue: times its scale tensor, plus
 * its bias, where the layer has them (docs/NUMERICS.md, bitnet graph). */
static int has_post(const bn_ternary *w) {
    return w->bias || w->out_scale != 1.0f;
}

static float post(const bn_ternary *w, int m, float y) {
    y = y * w->out_scale;
    return w->bias ? y + w->bias[m] : y;
}

/* y[i * M + m] = epilogue(dot) for this part's rows; accumulate adds it to y
 * (the residual connection) instead of storing. */
static void bitlinear(const step *s, const bn_ternary *w, float *y, int accumulate, int ith,
                      int nth) {
    const bn_context *c = s->c;
    int m0, m1, M = w->M;
    int32_t *dot = part_dots(c, ith);
    float ws = w->scale;
    split_rows(M, ternary(c)->tile_rows, ith, nth, &m0, &m1);
    int tile = row_tile(c, s->n, m0, m1);
    for (int t0 = m0; t0 < m1; t0 += tile) {
        int t1 = imin(t0 + tile, m1);
        ternary_dots(c, w, s->n, t0, t1, dot, tile);
        for (int i = 0; i < s->n; i++) {
            const int32_t *d = dot + (size_t)i * tile;
            float *yi = y + (size_t)i * M + t0;
            float as = c->act_scale[i];
            if (has_post(w))
                for (int m = t0; m < t1; m++) {
                    float v = post(w, m, bn_ternary_epilogue(d[m - t0], as, ws));
                    yi[m - t0] = accumulate ? yi[m - t0] + v : v;
                }
            else if (accumulate)
                glue(c)->epilogue_add(d, t1 - t0, as, ws, yi);
            else
                glue(c)->epilogue(d, t1 - t0, as, ws, yi);
        }
    }
}

static void task_qkv(void *arg, int ith, int nth) {
    const step *s = arg;
    bn_context *c = s->c;
    const bn_layer *L = &c->model->layers[s->layer];
    bitlinear(s, &L->proj[BN_PROJ_Q], c->q, 0, ith, nth);
    bitlinear(s, &L->proj[BN_PROJ_K], c->k, 0, ith, nth);
    bitlinear(s, &L->proj[BN_PROJ_V], c->v, 0, ith, nth);
}

static void task_attn_out(void *arg, int ith, int nth) {
    const step *s = arg;
    bitlinear(s, &s->c->model->layers[s->layer].proj[BN_PROJ_O], s->c->x, 1, ith, nth);
}

/* Either product where gate or up has a scale or a bias. */
static void glu_product_post(const bn_ternary *wg, const bn_ternary *wu, int relu2,
                             const int32_t *dg, const int32_t *du, float *out, int m0, int m1,
                             float as) {
    for (int m = m0; m < m1; m++) {
        float g = post(wg, m, bn_ternary_epilogue(dg[m], as, wg->scale));
        float u = post(wu, m, bn_ternary_epilogue(du[m], as, wu->scale));
        if (relu2) {
            float r = (g + fabsf(g)) * 0.5f;
            out[m] = (r * r) * u;
        } else {
            out[m] = (g / (1.0f + bn_silu_exp(g))) * u;
        }
    }
}

/* gate and up share the quantized input; m = act(gate) * up. */
static void task_gate_up(void *arg, int ith, int nth) {
    const step *s = arg;
    bn_context *c = s->c;
    const bn_layer *L = &c->model->layers[s->layer];
    const bn_ternary *wg = &L->proj[BN_PROJ_GATE], *wu = &L->proj[BN_PROJ_UP];
    void (*product)(const int32_t *, const int32_t *, int, float, float, float, float *) =
        c->model->arch->ffn_act == BN_FFN_RELU2 ? glue(c)->relu2_glu : glue(c)->silu_glu;
    int F = c->hp.n_ff, m0, m1;
    split_rows(F, ternary(c)->tile_rows, ith, nth, &m0, &m1);
    int tile = row_tile(c, s->n, m0, m1);
    int32_t *dot_g = part_dots(c, ith);
    int32_t *dot_u = dot_g + (size_t)s->n * tile;
    for (int t0 = m0; t0 < m1; t0 += tile) {
        int t1 = imin(t0 + tile, m1);
        ternary_dots(c, wg, s->n, t0, t1, dot_g, tile);
        ternary_dots(c, wu, s->n, t0, t1, dot_u, tile);
        for (int i = 0; i < s->n; i++)
            if (has_post(wg) || has_post(wu))
                glu_product_post(wg, wu, c->model->arch->ffn_act == BN_FFN_RELU2,
                                 dot_g + (size_t)i * tile - t0, dot_u + (size_t)i * tile - t0,
                                 c->ffn + (size_t)i * F, t0, t1, c->act_scale[i]);
            else
                product(dot_g + (size_t)i * tile, dot_u + (size_t)i * tile, t1 - t0,
                        c->act_scale[i], wg->scale, wu->scale, c->ffn + (size_t)i * F + t0);
    }
}

static void task_ffn_down(void *arg, int ith, int nth) {
    const step *s = arg;
    bitlinear(s, &s->c->model->layers[s->layer].proj[BN_PROJ_DOWN], s->c->x, 1, ith, nth);
}

/* ---- RoPE and the KV cache (docs/NUMERICS.md, RoPE; attention.c) ---------------- */

/* The context whose KV cache row i of the batch belongs to, and its position. */
static bn_context *row_cache(const step *s, int i) {
    return s->seqs ? s->seqs[i] : s->c;
}

static int row_pos(const step *s, int i) {
    return s->seqs ? s->seqs[i]->n_past : s->pos0 + i;
}

/* Rotates each token's q and k (rope.h), then writes k and v to its
 * sequence's cache at its position (f16, or q8_0 blocks). */
static void task_rope_store(void *arg, int ith, int nth) {
    const step *s = arg;
    bn_context *c = s->c;
    const bn_hparams *hp = &c->hp;
    int hd = hp->head_dim, n_rot = hp->n_rot, kvd = c->kv_dim;
    float theta_scale = bn_rope_theta_scale(hp);
    float *cs = c->rope + (size_t)ith * n_rot;
    uint16_t *tmp = c->tmp16 + (size_t)ith * (size_t)(hd > kvd ? hd : kvd);
    size_t layer_kv = (size_t)s->layer * c->n_ctx * kvd;
    enum bn_rope_style style = c->model->arch->rope;

    for (int i = ith; i < s->n; i += nth) {
        int pos = row_pos(s, i);
        bn_context *kv = row_cache(s, i);
        bn_rope_angles(cs, pos, n_rot, theta_scale);
        float *q = c->q + (size_t)i * c->q_dim;
        float *k = c->k + (size_t)i * kvd;
        for (int h = 0; h < hp->n_head; h++) bn_rope_rotate(style, q + h * hd, cs, n_rot);
        for (int h = 0; h < hp->n_head_kv; h++) bn_rope_rotate(style, k + h * hd, cs, n_rot);

        float *v = c->v + (size_t)i * kvd;
        for (int h = 0; h < hp->n_head_kv; h++) {
            size_t cell = layer_kv / hd + (size_t)h * c->n_ctx + (size_t)pos;  /* [layer][h][pos] */
            size_t series = bn_kvq8_series(c, s->layer, h);                   /* q8_0: kernels.h layout */
            if (c->type_k == BN_KV_Q8_0)
                bn_q8_kv_put(BN_KVQ8_K, k + h * hd, hd, kv->k_q8 + series * hd, kv->k_q8d + series * (hd / 32),
                             pos);
            else
                c->kern->f32_to_f16(k + h * hd, kv->k_cache + cell * hd, hd);
            if (c->type_v == BN_KV_Q8_0)
                bn_q8_kv_put(BN_KVQ8_V, v + h * hd, hd, kv->v_q8 + series * hd, kv->v_q8d + series * (hd / 32),
                             pos);
        }
        if (c->type_v == BN_KV_Q8_0) continue;
        c->kern->f32_to_f16(v, tmp, kvd);
        uint16_t *vt = kv->v_cache + layer_kv;
        for (int d = 0; d < kvd; d++) vt[(size_t)d * c->n_ctx + pos] = tmp[d];
    }
}

/* ---- LM head (docs/NUMERICS.md, LM head) ---------------------------- */

/* The final norm of each kept token, prepared by the head's format (f16
 * rounding for an F16 table, as bitnet.cpp's f16 matmul does; blocks of 32
 * for the Q8 head; float rows for bitnet.cpp's batch head). */
static void task_final_norm(void *arg, int ith, int nth) {
    const step *s = arg;
    bn_context *c = s->c;
    int E = c->hp.n_embd;
    float *tmp = c->xn + (size_t)ith * E;   /* xn is free now; one row per part */
    for (int i = s->out_first + ith; i < s->n; i += nth) {
        uint8_t *in = c->head_in + (size_t)(i - s->out_first) * s->head->act_size(E);
        rmsnorm(tmp, c->x + (size_t)i * E, c->model->output_norm, E, c->hp.rms_eps);
        s->head->act_prep(tmp, E, in);
        if (s->screen) bn_head_exact_prepare(row_cache(s, i), tmp, in);  /* the rescoring's input */
    }
}

/* Rows split across threads; the format's gemm takes a few rows at a time
 * against every kept token, so each slice of the table is read once per
 * batch. */
static void task_lm_head(void *arg, int ith, int nth) {
    const step *s = arg;
    bn_context *c = s->c;
    const bn_matrix *h = s->head_w;
    int V = c->hp.n_vocab, m0, m1;
    split_rows(V, s->head->tile_rows, ith, nth, &m0, &m1);
    if (m1 > m0)
        s->head->gemm(h->W, h->K, V, c->head_in, s->n - s->out_first, m0, m1, s->logits + m0, V);
}

/* The last layer's K/V are in the cache now; from here on only rows whose
 * logits are kept matter. With one kept row, move it to row 0 and go on as a
 * batch of one token at its position (same numbers, 1/n of the work). */
static void keep_last_token(bn_context *c, step *s) {
    int i = s->n - 1, E = c->hp.n_embd;
    memmove(c->x, c->x + (size_t)i * E, (size_t)E * sizeof *c->x);
    memmove(c->q, c->q + (size_t)i * c->q_dim, (size_t)c->q_dim * sizeof *c->q);
    s->pos0 += i;
    s->n = 1;
}

/* ---- the whole pass ------------------------------------------------------------------------ */

/* The pass over s's rows: bn_forward (one sequence) and bn_forward_multi
 * (a token of each of several) differ only in where each row's K/V go and
 * which cache its attention reads (row_cache, row_pos). */
static void forward(step s, int all, float *logits) {
    bn_context *c = s.c;
    const bn_hparams *hp = &c->hp;
    bn_threadpool *pool = c->pool;

    if (s.seqs)
        for (int i = 0; i < s.n; i++) bn_kv_prepare(s.seqs[i], s.seqs[i]->n_past, 1);
    else
        bn_kv_prepare(c, s.pos0, s.n);
    bn_threadpool_run(pool, task_embed, &s);
    for (int l = 0; l < hp->n_layer; l++) {
        const bn_layer *L = &c->model->layers[l];
        s.layer = l;

        s.in = c->x, s.norm_w = L->norm[BN_NORM_ATTN], s.K = hp->n_embd;
        bn_threadpool_run(pool, task_norm_quant, &s);
        bn_threadpool_run(pool, task_qkv, &s);
        bn_threadpool_run(pool, task_rope_store, &s);
        if (l == hp->n_layer - 1) {
            if (!logits) break;         /* a batch without outputs: the cache is all it leaves */
            if (!all && s.n > 1) keep_last_token(c, &s);
        }
        if (s.seqs)
            bn_attention_multi(c, s.seqs, l, s.n, s.num);
        else
            bn_attention(c, l, s.pos0, s.n, s.num);

        s.in = c->att, s.norm_w = L->norm[BN_NORM_ATTN_SUB], s.K = c->q_dim;
        bn_threadpool_run(pool, task_norm_quant, &s);
        bn_threadpool_run(pool, task_attn_out, &s);

        s.in = c->x, s.norm_w = L->norm[BN_NORM_FFN], s.K = hp->n_embd;
        bn_threadpool_run(pool, task_norm_quant, &s);
        bn_threadpool_run(pool, task_gate_up, &s);

        s.in = c->ffn, s.norm_w = L->norm[BN_NORM_FFN_SUB], s.K = hp->n_ff;
        bn_threadpool_run(pool, task_norm_quant, &s);
        bn_threadpool_run(pool, task_ffn_down, &s);
    }
    if (!logits) return;

    s.out_first = all ? 0 : s.n - 1;
    /* An exact head either screens a single row and rescores it, or computes
     * every row from its F16 table, as `--head f16` does. Several sequences'
     * rows are each one token of its own sequence, screened and rescored for
     * its own sampler, when every row's sampler allows a screen (else all
     * are computed whole: the same exact top logits, so the same tokens). */
    if (s.seqs) {
        int screens = 0;
        for (int i = 0; i < s.n; i++) screens += bn_head_exact_screens(s.seqs[i], 1);
        s.screen = screens == s.n;
        if (!s.screen && screens > 0)   /* those that would have screened are whole too */
            for (int i = 0; i < s.n; i++) {
                bn_head_exact *hx = &s.seqs[i]->hx;
                if (hx->k > 0 && hx->k < hp->n_vocab) hx->stats.full_rows++;
            }
    } else {
        s.screen = bn_head_exact_screens(c, s.n - s.out_first);
    }
    s.head_w = c->model->head_type == BN_HEAD_EXACT && !s.screen ? &c->model->head_f16
                                                                 : &c->model->head;
    enum bn_format head = s.head_w->fmt;
    if (s.n - s.out_first >= 2) head = s.num->head_format(head);
    s.head = c->kern->fmt[head];
    s.logits = logits;
    bn_threadpool_run(pool, task_final_norm, &s);
    bn_threadpool_run(pool, task_lm_head, &s);
    if (s.screen && s.seqs)
        for (int i = 0; i < s.n; i++) bn_head_exact_finish(s.seqs[i], logits + (size_t)i * hp->n_vocab);
    else if (s.screen)
        bn_head_exact_finish(c, logits);
}

void bn_forward(bn_context *c, const int32_t *tokens, int n, int all, float *logits) {
    /* Decided for the whole batch: bitnet.cpp computes the last layer's
     * attention for every token of the batch too, before it keeps only the
     * rows whose logits are wanted (keep_last_token). */
    step s = {.c = c, .n = n, .pos0 = c->n_past, .tokens = tokens,
              .num = n >= 2 ? c->batch_numerics : c->decode_numerics};
    forward(s, all, logits);
}

void bn_forward_multi(bn_context *c, bn_context *const *seqs, const int32_t *tokens, int n,
                      float *logits) {
    /* Each row is a single-token decode of its own sequence: the decode
     * numerics, and every row's logits kept (never keep_last_token). */
    step s = {.c = c, .n = n, .seqs = seqs, .tokens = tokens, .num = c->decode_numerics};
    forward(s, 1, logits);
}
