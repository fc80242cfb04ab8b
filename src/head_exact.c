/* The exact LM head (docs/NUMERICS.md, Exact head).
 *
 * Per token: y[m] = the Q8 screen's logit (kernels.h, Q8 head), f[m] = the
 * logit `--head f16` computes (dot_f16 of the F16 row and xh = f16(x)). For
 * every row float bounds lo <= f <= up (below); tau = the k-th largest lo
 * over the rows whose exact value is not forced, and the candidates are
 * those with up >= tau. The forced rows, then candidates by decreasing up,
 * are recomputed with the F16 table's own kernel and written into the
 * logits row, until k candidates are done and the next one's up is below
 * vk, the k-th largest exact value so far. A row left out has f <= up < vk
 * (tau <= vk: see rescore_selected) and keeps y <= up < vk, while k
 * recomputed rows hold exact values >= vk: the k largest entries of the
 * mixed row (and their order, and the forced rows) are those of the F16
 * head's row, bit for bit.
 *
 * The bound. Let w be an F16 row, deq(w) its screen (q * dw per block), e =
 * w - deq(w); xh = f16(x), xq the screen's input with deq(xq) = qx * dx per
 * block, d = xh - deq(xq). With T = sum w_k xh_k and Q = sum deq(w)_k
 * deq(xq)_k (exact reals),
 *     T - Q = sum e_k xh_k + sum deq(w)_k d_k
 *     |T - Q| <= ||e|| ||xh|| + ||deq(w)|| ||d||          (Cauchy-Schwarz)
 * f is T rounded: the products of two halves are exact in float, and along
 * any path of dot_f16's order a product meets at most K/64 + 6 float
 * additions (its accumulator's chain, then (a0+a2)+(a1+a3), three halvings,
 * lane 0 + 1), then at most K%64 double additions and one rounding to float:
 *     |f - T| <= theta_f * sum |w_k xh_k| <= theta_f (||deq(w)|| + ||e||) ||xh||
 * with theta_f = 1.01 (K/64 + 7) u + (K%64 + 1) 2^-52, u = 2^-24 (the
 * standard gamma_n = n u / (1 - n u) <= 1.01 n u bound; the 1.01 covers the
 * products of (1 + delta) factors). y is Q rounded: per block
 * scale = dw * dx (one rounding), (float)isum * scale (one), then a chain of
 * K/32 additions:
 *     |y - Q| <= theta_q * sum_b |isum_b| dw_b dx_b + eta
 *            <= theta_q ||deq(w)|| ||deq(xq)|| + eta
 * with theta_q = 1.01 (K/32 + 2) u and eta = K/32 * 2^-100 for products
 * that fall into float's subnormals (each loses < 2^-149 * 2^19). So
 *     B = ||e|| ||xh|| + ||deq(w)|| ||d|| + theta_f (||deq(w)|| + ||e||) ||xh||
 *         + theta_q ||deq(w)|| ||deq(xq)|| + eta.
 * The row norms are stored at load (model.c) and the token norms computed
 * here, each rounded up. Per row B is evaluated in float (head_exact.h,
 * bn_head_exact_bounds) with coefficients enlarged by 2^-20 and a 2^-20 |y|
 * term, which cover its roundings and those of y +- B (docs/NUMERICS.md,
 * Exact head, "The bound in float"). A non-finite logit or norm, or a NaN
 * bound, makes every row recomputed. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "head_exact.h"

int bn_head_exact_init(bn_context *c) {
    bn_head_exact *hx = &c->hx;
    const size_t V = (size_t)c->hp.n_vocab, E = (size_t)c->hp.n_embd;
    hx->ids = calloc(V, sizeof *hx->ids);
    if (!hx->ids) return -1;
    if (c->model->head_type != BN_HEAD_EXACT) return 0;
    hx->xh = calloc(E, sizeof *hx->xh);
    hx->forced = calloc(V, sizeof *hx->forced);
    hx->lower = calloc(V, sizeof *hx->lower);
    hx->rows = calloc(V, sizeof *hx->rows);
    hx->cand = calloc(V, sizeof *hx->cand);
    return hx->xh && hx->forced && hx->lower && hx->rows && hx->cand ? 0 : -1;
}

void bn_head_exact_free(bn_head_exact *hx) {
    free(hx->ids);
    free(hx->xh);
    free(hx->forced);
    free(hx->lower);
    free(hx->rows);
    free(hx->cand);
}

int bn_head_exact_screens(bn_context *c, int n_out) {
    bn_head_exact *hx = &c->hx;
    if (c->model->head_type != BN_HEAD_EXACT) return 0;
    hx->k = hx->top_k;
    hx->n_smp_ids = 0;
    if (hx->sampler) hx->k = bn_sampler_logits_needed(hx->sampler, &hx->smp_ids, &hx->n_smp_ids);
    int screens = n_out == 1 && hx->k > 0 && hx->k < c->hp.n_vocab;
    if (!screens) hx->stats.full_rows += (uint64_t)n_out;
    return screens;
}

/* The float nearest above v (+Inf past the float range). */
static float round_up_float(double v) {
    const float f = (float)v;
    return (double)f < v ? nextafterf(f, INFINITY) : f;
}

/* Rounded up by the factor that covers a double sum of up to 2^22 terms. */
static double norm_up(double sum_sq) {
    return sqrt(sum_sq) * (1.0 + 0x1p-30);
}

void bn_head_exact_token_norms(int K, const uint16_t *xh, const void *xq, bn_head_token_norms *t) {
    /* The screen's input layout (kernels.h, Q8 head): int8 q[K], float dx[K/32]. */
    const int8_t *q = xq;
    const uint8_t *dx_bytes = (const uint8_t *)xq + K;
    double sxh = 0.0, sd = 0.0, sxq = 0.0;
    for (int b = 0; b < K / 32; b++) {
        float dx;
        memcpy(&dx, dx_bytes + 4 * b, sizeof dx);
        for (int i = 32 * b; i < 32 * b + 32; i++) {
            const double h = (double)bn_f16_to_f32(xh[i]);
            const double deq = (double)q[i] * (double)dx;   /* exact: 8 x 24 bits */
            sxh += h * h;
            sd += (h - deq) * (h - deq);
            sxq += deq * deq;
        }
    }
    t->xh = norm_up(sxh);
    t->d = norm_up(sd);
    t->xq = norm_up(sxq);
    /* B of the comment at the top, regrouped by row norm:
     *   ||e|| (1 + theta_f) ||xh|| + ||deq(w)|| (||d|| + theta_f ||xh|| + theta_q ||deq(xq)||) + eta,
     * times 1 + 2^-30 for these few double roundings. */
    const double u = 0x1p-24, up = 1.0 + 0x1p-30;
    const double theta_f = 1.01 * (K / 64 + 7) * u + (K % 64 + 1) * 0x1p-52;
    const double theta_q = 1.01 * (K / 32 + 2) * u;
    const double eta = (K / 32) * 0x1p-100;
    t->ce = (1.0 + theta_f) * t->xh * up;
    t->cw = (t->d + theta_f * t->xh + theta_q * t->xq) * up;
    t->c0 = eta * up;
    /* The float pass's coefficients (bn_head_exact_bounds): enlarged by
     * 2^-20 = 16 u, more than its six roundings lose, and f0 by 2^-125 for
     * what underflow loses (at most 2^-150 per operation). */
    const double grow = 1.0 + 0x1p-20;
    t->fe = round_up_float(t->ce * grow);
    t->fw = round_up_float(t->cw * grow);
    t->f0 = round_up_float((t->c0 + 0x1p-125) * grow);
}

void bn_head_exact_prepare(bn_context *c, const float *x, const void *xq) {
    bn_head_exact *hx = &c->hx;
    c->kern->fmt[BN_FMT_F16]->act_prep(x, c->hp.n_embd, hx->xh);
    bn_head_exact_token_norms(c->hp.n_embd, hx->xh, xq, &hx->norms);
}

/* The k-th largest of a[0..n) (1 <= k <= n); reorders a. Hoare's
 * selection with a middle pivot: O(n) on the data it sees. */
static float kth_largest(float *a, int n, int k) {
    int lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        const float pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (a[i] > pivot) i++;
            while (a[j] < pivot) j--;
            if (i <= j) {
                const float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return a[want];
    }
    return a[want];
}

/* A min-heap of the largest lower bounds seen: h[0] is the smallest kept. */
static void heap_add(float *h, int n, float v) {      /* n: the size before */
    int i = n;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static void heap_replace_min(float *h, int n, float v) {
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (!(h[c] < v)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = v;
}

/* Rows screened at a time: their bounds in a branch-free loop (it
 * vectorizes), then looked at one by one only when one of them reaches
 * the threshold, which after the first few thousand rows few do. */
enum { BOUND_BLOCK = 16 };

/* The bounds of rows [0, n) of a block; 1 when some upper bound reaches
 * thr, -1 when a logit is not finite or a bound is NaN. */
static inline int block_bounds(const float *y, const float *norms, const bn_head_token_norms *t, int n,
                               float thr, float *lo, float *up) {
    int hit = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        bn_head_exact_bounds(norms + 2 * i, t, y[i], &lo[i], &up[i]);
        hit |= up[i] >= thr;
        bad |= !(lo[i] <= up[i]) | !(fabsf(y[i]) <= FLT_MAX);
    }
    return bad ? -1 : hit;
}

/* Candidates by upper bound, largest first; equal bounds by row (a total
 * order: rows differ, and no bound is NaN). */
static int cand_before(const bn_head_cand *a, const bn_head_cand *b) {
    return a->upper > b->upper || (a->upper == b->upper && a->row < b->row);
}

static int by_upper(const void *pa, const void *pb) {
    const bn_head_cand *a = pa, *b = pb;
    return cand_before(a, b) ? -1 : cand_before(b, a);
}

/* Hoare's selection (as kth_largest) of the t first, then a sort of those
 * alone: the rescoring stops after a few hundred of a few thousand. */
void bn_head_cand_order(bn_head_cand *a, int n, int t) {
    if (t > n) t = n;
    if (t <= 0) return;
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        const bn_head_cand pivot = a[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_before(&a[i], &pivot)) i++;
            while (cand_before(&pivot, &a[j])) j--;
            if (i <= j) {
                const bn_head_cand x = a[i];
                a[i] = a[j];
                a[j] = x;
                i++;
                j--;
            }
        }
        if (t - 1 <= j) hi = j;
        else if (t - 1 >= i) lo = i;
        else break;
    }
    qsort(a, (size_t)t, sizeof *a, by_upper);
}

/* One pass: the heap keeps the k largest lower bounds so far, and a row is
 * recorded when its upper bound reaches the heap's least (-Inf until k
 * rows are in). That threshold only rises towards tau, so every row with
 * upper bound >= tau is recorded; the others are dropped at the end. */
int bn_head_exact_candidates(const float *y, const float *norms, int V, const bn_head_token_norms *t,
                             const uint8_t *forced, int k, float *heap, bn_head_cand *cand,
                             float *tau) {
    const bn_head_token_norms tk = *t;  /* a local copy: the loop's stores cannot alias it */
    int n_heap = 0, n_cand = 0;
    float thr = -INFINITY;
    for (int m0 = 0; m0 < V; m0 += BOUND_BLOCK) {
        float lo[BOUND_BLOCK], up[BOUND_BLOCK];
        const int n = V - m0 < BOUND_BLOCK ? V - m0 : BOUND_BLOCK;
        const int hit = n == BOUND_BLOCK ? block_bounds(y + m0, norms + 2 * (size_t)m0, &tk, BOUND_BLOCK, thr, lo, up)
                                         : block_bounds(y + m0, norms + 2 * (size_t)m0, &tk, n, thr, lo, up);
        if (hit < 0) return -1;
        if (!hit) continue;
        for (int i = 0; i < n; i++) {
            if (!(up[i] >= thr) || forced[m0 + i]) continue;
            cand[n_cand++] = (bn_head_cand){up[i], m0 + i};
            if (n_heap < k) {
                heap_add(heap, n_heap++, lo[i]);
                if (n_heap == k) thr = heap[0];
            } else if (lo[i] > heap[0]) {
                heap_replace_min(heap, k, lo[i]);
                thr = heap[0];
            }
        }
    }
    if (n_heap < k) return -1;
    *tau = heap[0];
    int n = 0;
    for (int i = 0; i < n_cand; i++)
        if (cand[i].upper >= *tau) cand[n++] = cand[i];
    return n;
}

/* Rescores hx->rows[r0..r1) on the pool. */
static void task_rescore(void *arg, int ith, int nth) {
    bn_context *c = arg;
    const bn_head_exact *hx = &c->hx;
    const bn_matrix *h = &c->model->head_f16;
    const bn_format_traits *f16 = c->kern->fmt[BN_FMT_F16];
    const int n = hx->r1 - hx->r0;
    const int i0 = hx->r0 + (int)((long long)n * ith / nth);
    const int i1 = hx->r0 + (int)((long long)n * (ith + 1) / nth);
    /* the row's bytes go through this part's xn row (n_embd floats, free
     * once the final norm is done): see bn_model_head_row_f16 */
    uint16_t *row = (uint16_t *)(c->xn + (size_t)ith * (size_t)c->hp.n_embd);
    for (int i = i0; i < i1; i++) {
        const int m = hx->rows[i];
        bn_model_head_row_f16(c->model, m, row);
        f16->gemv(row, h->K, 1, hx->xh, 0, 1, hx->logits + m);
    }
}

static void rescore(bn_context *c, int r0, int r1) {
    c->hx.r0 = r0;
    c->hx.r1 = r1;
    if (r1 > r0) bn_threadpool_run(c->pool, task_rescore, c);
}

/* Rows rescored per step: the first k (at least 8), then as many as are
 * done, up to 256 (few steps, few rows past the stop). Counts, not a share
 * of the threads, so the rows rescored (and so the whole logits row) do not
 * depend on the thread count. */
#define RESCORE_MIN 8
#define RESCORE_MAX 256

/* The selection of the comment at the top. The candidates are rescored in
 * order of their upper bounds, so the k-th largest exact value vk, which
 * rises above tau as rows are rescored, stops it early: every candidate left
 * has y + B < vk. A non-candidate has y + B < tau <= vk: of the >= k rows
 * with lower bounds >= tau (all candidates), each is either rescored, with
 * f >= tau, or left, with tau <= y + B < vk; so either k rescored values
 * are >= tau or tau < vk. Returns 0, or -1 when every row must be
 * recomputed. */
static int rescore_selected(bn_context *c, float *logits) {
    bn_head_exact *hx = &c->hx;
    const int V = c->hp.n_vocab, k = hx->k;
    if (!isfinite(hx->norms.xh) || !isfinite(hx->norms.d) || !isfinite(hx->norms.xq)) return -1;
    /* The forced rows first (each once); forced[] is cleared by the caller. */
    hx->n_rows = 0;
    for (int i = 0; i < hx->n_ids + hx->n_smp_ids; i++) {
        const int32_t id = i < hx->n_ids ? hx->ids[i] : hx->smp_ids[i - hx->n_ids];
        if (id >= 0 && id < V && !hx->forced[id]) {
            hx->forced[id] = 1;
            hx->rows[hx->n_rows++] = id;
        }
    }
    const int n_forced = hx->n_rows;
    if (k > V - n_forced) return -1;
    float tau;
    const int n_cand = bn_head_exact_candidates(logits, c->model->head_norms, V, &hx->norms, hx->forced, k,
                                                hx->lower, hx->cand, &tau);
    if (n_cand < 0) return -1;
    rescore(c, 0, n_forced);
    float vk = -INFINITY;
    /* cand[0..ordered) are in order; the rest is put in order as needed. */
    for (int next = 0, ordered = 0; next < n_cand;) {
        const int done = hx->n_rows - n_forced;
        int take = done < k ? k - done : done < RESCORE_MAX ? done : RESCORE_MAX;
        if (take < RESCORE_MIN) take = RESCORE_MIN;
        if (take > n_cand - next) take = n_cand - next;
        if (next + take > ordered) {
            bn_head_cand_order(hx->cand + ordered, n_cand - ordered, next + take - ordered);
            ordered = next + take;
        }
        if (done >= k && hx->cand[next].upper < vk) break;
        const int r0 = hx->n_rows;
        for (int i = 0; i < take; i++) hx->rows[hx->n_rows++] = hx->cand[next++].row;
        rescore(c, r0, hx->n_rows);
        if (hx->n_rows - n_forced >= k) {
            for (int i = n_forced; i < hx->n_rows; i++) {
                const float f = logits[hx->rows[i]];
                if (!isfinite(f)) return -1;
                hx->lower[i - n_forced] = f;
            }
            vk = kth_largest(hx->lower, hx->n_rows - n_forced, k);
        }
    }
    return 0;
}

void bn_head_exact_finish(bn_context *c, float *logits) {
    bn_head_exact *hx = &c->hx;
    const int V = c->hp.n_vocab;
    hx->logits = logits;
    if (rescore_selected(c, logits) != 0) {
        for (int m = 0; m < V; m++) hx->rows[m] = m;
        hx->n_rows = V;
        rescore(c, 0, V);
    }
    for (int i = 0; i < hx->n_ids + hx->n_smp_ids; i++) {
        const int32_t id = i < hx->n_ids ? hx->ids[i] : hx->smp_ids[i - hx->n_ids];
        if (id >= 0 && id < V) hx->forced[id] = 0;
    }
    hx->stats.screened_rows++;
    hx->stats.rescored_rows += (uint64_t)hx->n_rows;
}
