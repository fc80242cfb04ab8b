/* The exact LM head (docs/NUMERICS.md, Exact head): the Q8 table screens
 * every row, a per-row bound on |F16 logit - screened logit| picks the rows
 * that could be among the logits the sampler reads, and those rows are
 * recomputed from the F16 table with the kernel `--head f16` uses. The
 * context holds this state; forward.c calls the three steps below. */
#ifndef BN_HEAD_EXACT_H
#define BN_HEAD_EXACT_H

#include <math.h>
#include <stdint.h>

#include "bitnet.h"

struct bn_context;

/* One token's norms for the bound (each rounded up), and the bound's
 * coefficients made from them (head_exact.c). */
/* One token's norms for the bound (each rounded up), and the bound's
 * coefficients made from them (head_exact.c). */
typedef struct bn_head_token_norms {
    double xh;                      /* ||xh||_2, xh the input rounded to f16 */
    double d;                       /* ||xh - deq(xq)||_2, xq the screen's int8 input */
    double xq;                      /* ||deq(xq)||_2 */
    double ce, cw, c0;              /* B <= ce ||e|| + cw ||deq(w)|| + c0 (exact reals) */
    float fe, fw, f0;               /* the float pass's: ce, cw, c0 enlarged, rounded up */
} bn_head_token_norms;

/* The norms of xh[0..K) and the Q8 screen's prepared input xq (kernels.h,
 * Q8 head layout), and the coefficients. */
void bn_head_exact_token_norms(int K, const uint16_t *xh, const void *xq, bn_head_token_norms *t);

/* Float bounds of a row's F16 logit f around its screened logit y, with
 * the stored norms row[0] >= ||w - deq(w)||_2, row[1] >= ||deq(w)||_2:
 * *lo <= f <= *up, every rounding of this float arithmetic covered by the
 * enlarged coefficients and the 2^-20 |y| term (head_exact.c). A few float
 * operations: it runs for every row of the vocabulary per token, and the
 * selection's loop over rows vectorizes. */
static inline void bn_head_exact_bounds(const float row[2], const bn_head_token_norms *t, float y,
                                        float *lo, float *up) {
    const float B = ((row[0] * t->fe + row[1] * t->fw) + t->f0) + fabsf(y) * 0x1p-20f;
    *lo = y - B;
    *up = y + B;
}

typedef struct bn_head_cand {
    float upper;                    /* >= the row's F16 logit */
    int32_t row;
} bn_head_cand;

/* The screen's candidates (docs/NUMERICS.md, Exact head): over the rows m
 * of y[0..V) with forced[m] == 0, tau = the k-th largest lower bound, and
 * the rows with upper bound >= tau, written to cand in no particular
 * order. heap: k floats of scratch. Returns their count, or -1 when a
 * logit is not finite or a bound is NaN (then every row must be
 * recomputed). Needs 1 <= k <= the rows not forced. */
int bn_head_exact_candidates(const float *y, const float *norms, int V, const bn_head_token_norms *t,
                             const uint8_t *forced, int k, float *heap, bn_head_cand *cand,
                             float *tau);
/* Puts the first t of a[0..n) by upper bound (largest first, equal ones by
 * row) in that order at a[0..t); O(n + t log t). */
void bn_head_cand_order(bn_head_cand *a, int n, int t);

typedef struct bn_head_exact {
    /* What the next bn_decode must get exact: the largest top_k logits
     * (<= 0: every logit) and the rows ids[0..n_ids) (the caller's: banned
     * or penalised ids). A sampler, when set, replaces top_k and adds its
     * penalty window at every bn_decode (bn_sampler_logits_needed). */
    const bn_sampler *sampler;
    int top_k;
    int32_t *ids;                   /* [n_vocab] */
    int n_ids;
    int k;                          /* this token's: top_k or the sampler's */
    const int32_t *smp_ids;         /* this token's sampler window */
    int n_smp_ids;

    /* Per token, sized in bn_head_exact_init when the model's head is exact. */
    uint16_t *xh;                   /* the final state rounded to f16 (the F16 rows' input) */
    bn_head_token_norms norms;
    uint8_t *forced;                /* [n_vocab] 1 for the ids of this token */
    float *lower;                   /* [n_vocab] selection scratch */
    bn_head_cand *cand;             /* [n_vocab] rows that may need rescoring */
    int32_t *rows;                  /* [n_vocab] rows recomputed this token: forced ones,
                                       then candidates by upper bound */
    int n_rows;
    float *logits;                  /* the row being finished (for the rescoring task) */
    int r0, r1;                     /* the rows[] range the rescoring task does */

    bn_head_stats stats;
} bn_head_exact;

/* Buffers for a context whose model has an exact head (nothing otherwise).
 * 0, or -1 when out of memory. */
int bn_head_exact_init(struct bn_context *c);
void bn_head_exact_free(bn_head_exact *hx);

/* 1 when the logits of this forward pass (n_out rows) are screened and
 * rescored, 0 when they are computed whole (every row wanted exact, or the
 * model's head is not exact). Reads the sampler's needs. */
int bn_head_exact_screens(struct bn_context *c, int n_out);
/* The final state x (n_embd floats) of the kept token, whose screen input
 * is already at xq (the Q8 head's act_prep): the f16 input and the norms. */
void bn_head_exact_prepare(struct bn_context *c, const float *x, const void *xq);
/* Selects and recomputes the rows of the screened logits row (on the
 * context's pool). */
void bn_head_exact_finish(struct bn_context *c, float *logits);

#endif
