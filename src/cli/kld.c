/* llama-perplexity's log-probability file and its KL-divergence statistics
 * (`bitnet perplexity --kl-divergence-base FILE [--kl-divergence]`). The
 * file is llama.cpp's, so a base written by either program can be compared
 * by the other (docs/FORMAT.md, Log-probability file):
 *   "_logits_", u32 n_ctx, i32 n_vocab, i32 n_chunk,
 *   i32 tokens[n_chunk * n_ctx] (the windows' tokens as in the text, before
 *   BOS replaces each window's first), then per window one record for each
 *   scored position i in [n_ctx/2, n_ctx - 1): nv = 2 * ceil(n_vocab / 2) + 4
 *   u16, the first four holding two floats (scale, min_log_prob), then per
 *   token q = round((logit - lo) / scale), lo = max(min logit, max logit -
 *   16), 0 below lo; log p = scale * q + min_log_prob.
 * Everything read is untrusted: every count is checked against the model
 * and the file's exact size before anything is allocated. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char MAGIC[8] = {'_', 'l', 'o', 'g', 'i', 't', 's', '_'};

size_t bn_kld_record_len(int n_vocab) {
    return 2 * (((size_t)n_vocab + 1) / 2) + 4;
}

/* Scored positions per window. */
static int scored(int n_ctx) {
    return n_ctx - 1 - n_ctx / 2;
}

/* The largest logit, its first index, and log Σ exp(l - max) (float exp,
 * double sum, as llama-perplexity; the file's records take it as float). */
static double log_sum_exp(const float *l, int n, float *max_out, int *imax_out) {
    float mx = l[0];
    int imax = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > mx) {
            mx = l[i];
            imax = i;
        }
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)expf(l[i] - mx);
    *max_out = mx;
    if (imax_out) *imax_out = imax;
    return log(sum);
}

double bn_cli_log_prob(const float *logits, int n_vocab, int32_t target) {
    float mx;
    const double lse = log_sum_exp(logits, n_vocab, &mx, NULL);
    return (double)(logits[target] - mx) - lse;
}

void bn_kld_record(const float *logits, int n_vocab, uint16_t *rec) {
    float mx, lo = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] < lo) lo = logits[i];
    const float lse = (float)log_sum_exp(logits, n_vocab, &mx, NULL);
    if (lo < mx - 16.0f) lo = mx - 16.0f;       /* below e^-16 of the top: 0 */
    const float head[2] = {(mx - lo) / 65535.0f, lo - mx - lse};   /* scale, min log p */
    memcpy(rec, head, sizeof head);
    uint16_t *q = rec + 4;
    memset(q, 0, (bn_kld_record_len(n_vocab) - 4) * sizeof *q);
    if (head[0] == 0.0f) return;
    const float inv = 1.0f / head[0];
    for (int i = 0; i < n_vocab; i++)
        if (logits[i] > lo) {
            long v = lrintf(inv * (logits[i] - lo));    /* nearest, ties to even */
            q[i] = (uint16_t)(v < 0 ? 0 : v > 65535 ? 65535 : v);
        }
}

int bn_kld_write_header(FILE *f, int n_ctx, int n_vocab, int n_chunk, const int32_t *tokens) {
    uint32_t c = (uint32_t)n_ctx;
    int32_t v = n_vocab, k = n_chunk;
    return fwrite(MAGIC, 1, 8, f) == 8 && fwrite(&c, 4, 1, f) == 1 && fwrite(&v, 4, 1, f) == 1 &&
                   fwrite(&k, 4, 1, f) == 1 &&
                   fwrite(tokens, sizeof *tokens, (size_t)n_chunk * (size_t)n_ctx, f) ==
                       (size_t)n_chunk * (size_t)n_ctx
               ? 0
               : -1;
}

/* ---- reading a base ---------------------------------------------------------------- */

int bn_kld_open(const char *path, int n_vocab, bn_kld_base *b) {
    memset(b, 0, sizeof *b);
    b->f = fopen(path, "rb");
    if (!b->f) return bn_err("%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    char magic[8];
    uint32_t c;
    int32_t v, k;
    if (fstat(fileno(b->f), &st) != 0 || fread(magic, 1, 8, b->f) != 8 || fread(&c, 4, 1, b->f) != 1 ||
        fread(&v, 4, 1, b->f) != 1 || fread(&k, 4, 1, b->f) != 1 || memcmp(magic, MAGIC, 8) != 0) {
        bn_kld_close(b);
        return bn_err("%s: not a log-probability file (llama-perplexity --kl-divergence-base)", path);
    }
    if (v != n_vocab) {
        bn_kld_close(b);
        return bn_err("%s: written for a vocabulary of %d tokens, the model has %d", path, (int)v, n_vocab);
    }
    if (c < 4 || c > (1u << 20) || k < 1) {
        bn_kld_close(b);
        return bn_err("%s: bad header (n_ctx %u, %d windows)", path, c, (int)k);
    }
    /* sizes in 64 bits: n_ctx <= 2^20, n_vocab and n_chunk < 2^31 */
    const uint64_t n_tok = (uint64_t)c * (uint64_t)k;
    const uint64_t per_window = (uint64_t)scored((int)c) * bn_kld_record_len(n_vocab) * 2;
    const uint64_t want = 20 + 4 * n_tok + per_window * (uint64_t)k;
    if (per_window > UINT64_MAX / (uint64_t)k || (uint64_t)st.st_size != want || n_tok > SIZE_MAX / 4) {
        bn_kld_close(b);
        return bn_err("%s: %lld bytes, but its header (n_ctx %u, %d windows) needs %llu", path,
                      (long long)st.st_size, c, (int)k, (unsigned long long)want);
    }
    b->n_ctx = (int)c;
    b->n_chunk = (int)k;
    b->tokens = malloc((size_t)n_tok * sizeof *b->tokens);
    b->recs = malloc((size_t)scored(b->n_ctx) * bn_kld_record_len(n_vocab) * sizeof *b->recs);
    if (!b->tokens || !b->recs) {
        bn_kld_close(b);
        return bn_err("out of memory for %s", path);
    }
    if (fread(b->tokens, sizeof *b->tokens, (size_t)n_tok, b->f) != (size_t)n_tok) {
        bn_kld_close(b);
        return bn_err("%s: read error", path);
    }
    for (uint64_t i = 0; i < n_tok; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= n_vocab) {
            int bad = b->tokens[i];
            bn_kld_close(b);
            return bn_err("%s: token %d at %llu is outside the vocabulary", path, bad, (unsigned long long)i);
        }
    b->path = path;
    b->n_vocab = n_vocab;
    return 0;
}

int bn_kld_read_window(bn_kld_base *b) {
    const size_t n = (size_t)scored(b->n_ctx) * bn_kld_record_len(b->n_vocab);
    if (fread(b->recs, sizeof *b->recs, n, b->f) != n) return bn_err("%s: read error", b->path);
    for (int r = 0; r < scored(b->n_ctx); r++) {
        float head[2];
        memcpy(head, b->recs + (size_t)r * bn_kld_record_len(b->n_vocab), sizeof head);
        /* a writer's scale is at most 16/65535 and its minimum log p between
         * -16 - log n_vocab and 0: far looser bounds keep every log p finite */
        if (!(head[0] >= 0.0f && head[0] <= 1.0f && head[1] >= -1000.0f && head[1] <= 0.0f))
            return bn_err("%s: a record's scale or minimum log-probability is out of range", b->path);
    }
    return 0;
}

void bn_kld_close(bn_kld_base *b) {
    if (b->f) fclose(b->f);
    free(b->tokens);
    free(b->recs);
    memset(b, 0, sizeof *b);
}

/* ---- statistics ----------------------------------------------------------------------- */

void bn_kld_token(bn_kld_stats *s, const float *logits, int n_vocab, const uint16_t *rec, int32_t tok) {
    float mx, head[2];
    int imax;
    const float lse = (float)log_sum_exp(logits, n_vocab, &mx, &imax);
    memcpy(head, rec, sizeof head);
    const uint16_t *q = rec + 4;
    const float top = mx + lse;         /* log p_i = logits[i] - top */
    const float nll = top - logits[tok];
    const float nll_base = -(head[0] * q[tok] + head[1]);
    const double dn = (double)nll, db = (double)nll_base;
    s->sum_nll += dn;
    s->sum_nll2 += dn * dn;
    s->sum_nll_base += db;
    s->sum_nll_base2 += db * db;
    s->sum_nll_cross += dn * db;

    /* KL(base || this) over the tokens the base gives more than e^-16 */
    double kld = 0.0;
    int imax_base = 0;
    float top_base = 0.0f;
    for (int i = 0; i < n_vocab; i++) {
        const float lp_base = head[0] * q[i] + head[1];
        if (i == 0 || lp_base > top_base) {
            top_base = lp_base;
            imax_base = i;
        }
        if (lp_base > -16.0f) kld += (double)(expf(lp_base) * (lp_base - logits[i] + top));
    }
    const float p_diff = expf(-nll) - expf(-nll_base);
    const double dp = (double)p_diff;
    s->kld[s->count] = (float)kld;
    s->p_diff[s->count] = p_diff;
    s->sum_kld += kld;
    s->sum_kld2 += kld * kld;
    s->sum_p_diff += dp;
    s->sum_p_diff2 += dp * dp;
    s->sum_p_diff4 += dp * dp * dp * dp;
    if (fabsf(p_diff) > s->max_p_diff) s->max_p_diff = fabsf(p_diff);
    s->same_top += imax == imax_base;
    s->count++;
}

/* Mean and its standard error. */
static void mean_err(double sum, double sum2, long n, double *mean, double *err) {
    *mean = n > 0 ? sum / (double)n : 0.0;
    double var = n > 0 ? sum2 / (double)n - *mean * *mean : 0.0;
    *err = var > 0.0 && n > 10 ? sqrt(var / (double)(n - 1)) : 0.0;
}

/* ln PPL(this) - ln PPL(base) and its error (the two are correlated). */
static void log_ratio(const bn_kld_stats *s, double *val, double *err) {
    double a, ea, b, eb;
    mean_err(s->sum_nll, s->sum_nll2, s->count, &a, &ea);
    mean_err(s->sum_nll_base, s->sum_nll_base2, s->count, &b, &eb);
    double n = (double)s->count;
    double cov = s->count >= 10 ? (s->sum_nll_cross / n - (s->sum_nll / n) * (s->sum_nll_base / n)) / (n - 1) : 0.0;
    *val = a - b;
    double v = ea * ea + eb * eb - 2.0 * cov;
    *err = v > 0.0 ? sqrt(v) : 0.0;
}

static void rms_p_diff(const bn_kld_stats *s, double *val, double *err) {
    double mse, emse;
    mean_err(s->sum_p_diff2, s->sum_p_diff4, s->count, &mse, &emse);
    *val = sqrt(mse);
    *err = *val > 0.0 ? 0.5 / *val * emse : 0.0;
}

void bn_kld_print_window(const bn_kld_stats *s, int window) {
    double lp, elp, r, er, k, ek, rms, erms;
    mean_err(s->sum_nll, s->sum_nll2, s->count, &lp, &elp);
    log_ratio(s, &r, &er);
    mean_err(s->sum_kld, s->sum_kld2, s->count, &k, &ek);
    rms_p_diff(s, &rms, &erms);
    double top = (double)s->same_top / (double)s->count;
    double etop = s->count > 1 ? sqrt(top * (1.0 - top) / (double)(s->count - 1)) : 0.0;
    printf("%4d  PPL %10.4f ± %8.4f  ln(PPL/PPL base) %9.5f ± %8.5f  KLD %9.6f ± %8.6f  "
           "RMS Δp %6.3f ± %5.3f %%  same top %7.3f ± %5.3f %%\n",
           window, exp(lp), exp(lp) * elp, r, er, k, ek, 100.0 * rms, 100.0 * erms, 100.0 * top, 100.0 * etop);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* The value at fraction f of sorted v (linear between neighbours). */
static double percentile(const float *v, long n, double f) {
    double at = f * (double)(n - 1);
    long i = (long)at;
    if (i >= n - 1) return (double)v[n - 1];
    return (1.0 - (at - (double)i)) * (double)v[i] + (at - (double)i) * (double)v[i + 1];
}

void bn_kld_print_summary(bn_kld_stats *s) {
    if (s->count < 1) return;
    const long n = s->count;
    double lp, elp, lb, elb, r, er, k, ek, d, ed, rms, erms;
    mean_err(s->sum_nll, s->sum_nll2, n, &lp, &elp);
    mean_err(s->sum_nll_base, s->sum_nll_base2, n, &lb, &elb);
    log_ratio(s, &r, &er);
    mean_err(s->sum_kld, s->sum_kld2, n, &k, &ek);
    mean_err(s->sum_p_diff, s->sum_p_diff2, n, &d, &ed);
    rms_p_diff(s, &rms, &erms);
    qsort(s->kld, (size_t)n, sizeof *s->kld, cmp_float);
    qsort(s->p_diff, (size_t)n, sizeof *s->p_diff, cmp_float);
    const double top = (double)s->same_top / (double)n;
    printf("\n%ld tokens scored\n", n);
    printf("PPL                 %10.6f ± %9.6f\n", exp(lp), exp(lp) * elp);
    printf("PPL of the base     %10.6f ± %9.6f\n", exp(lb), exp(lb) * elb);
    printf("ln(PPL/PPL base)    %10.6f ± %9.6f\n", r, er);
    printf("PPL/PPL base        %10.6f ± %9.6f\n", exp(r), exp(r) * er);
    printf("KLD mean            %10.6f ± %9.6f\n", k, ek);
    const double kq[] = {1.0, 0.999, 0.99, 0.5, 0.1, 0.01, 0.0};
    const char *kn[] = {"maximum", "99.9%", "99%", "median", "10%", "1%", "minimum"};
    for (int i = 0; i < 7; i++) printf("KLD %-15s %10.6f\n", kn[i], percentile(s->kld, n, kq[i]));
    printf("Δp mean             %9.3f ± %.3f %%\n", 100.0 * d, 100.0 * ed);
    const double pq[] = {1.0, 0.99, 0.9, 0.5, 0.1, 0.01, 0.0};
    const char *pn[] = {"maximum", "99%", "90%", "median", "10%", "1%", "minimum"};
    for (int i = 0; i < 7; i++) printf("Δp %-16s %9.3f %%\n", pn[i], 100.0 * percentile(s->p_diff, n, pq[i]));
    printf("Δp RMS              %9.3f ± %.3f %%\n", 100.0 * rms, 100.0 * erms);
    printf("same top token      %9.3f ± %.3f %%\n", 100.0 * top,
           n > 1 ? 100.0 * sqrt(top * (1.0 - top) / (double)(n - 1)) : 0.0);
}
