/* `bitnet perplexity`: llama-perplexity's method. The whole file is
 * tokenized once (BOS per the vocabulary, specials not parsed) and cut into
 * non-overlapping windows of n_ctx tokens; each window starts with BOS in
 * place of its first token and only its second half is scored: for i in
 * [n_ctx/2, n_ctx-1) the negative log-likelihood of token i+1 given the
 * logits at i. Prints the running value per window and the final estimate.
 * With --kl-divergence-base it also writes each scored position's log-
 * probabilities (kld.c); with --kl-divergence it scores the windows of such
 * a file instead and compares (KL divergence of the base from this run). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Decodes one window from an empty cache, BOS in place of its first token.
 * 0, or 1 after printing the error. */
static int eval_window(bn_context *c, int32_t *w, int n_ctx, const bn_tokenizer *tok, int add_bos) {
    char err[256];
    int32_t saved = w[0];
    if (add_bos) w[0] = bn_token_bos(tok);
    bn_context_reset(c);
    int ok = bn_decode(c, w, n_ctx, 1, err, sizeof err) == 0;
    w[0] = saved;
    return ok ? 0 : bn_err("decoding: %s", err);
}

/* The context of a run over windows of n_ctx (the caller checked the size). */
static bn_context *window_context(const bn_cli_opts *o, bn_model *m, int n_ctx) {
    bn_cli_opts co = *o;
    co.n_ctx = n_ctx;
    if (co.n_batch == 0 || co.n_batch > n_ctx) co.n_batch = n_ctx;
    bn_context *c = bn_cli_new_context(&co, m, n_ctx);
    if (c)
        fprintf(stderr, "perplexity: windows of %d, batch %d, %d threads\n", n_ctx, co.n_batch,
                bn_context_n_threads(c));
    return c;
}

/* --kl-divergence: the base's windows, scored by this model and compared. */
static int compare_with_base(const bn_cli_opts *o, bn_model *m, double load_ms) {
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    const int n_vocab = bn_model_hparams(m)->n_vocab;
    bn_kld_base b;
    if (bn_kld_open(o->kld_base, n_vocab, &b) != 0) return 1;
    bn_context *c = NULL;
    bn_kld_stats s = {0};
    int rc = 1;
    const int n_ctx = b.n_ctx, first = n_ctx / 2;
    const int n_chunk = o->n_chunks >= 0 && o->n_chunks < b.n_chunk ? o->n_chunks : b.n_chunk;
    if (n_chunk < 1) {
        bn_err("perplexity: --chunks 0 scores nothing");
        goto done;
    }
    if (o->n_ctx != 0 && o->n_ctx != n_ctx) {
        bn_err("%s: written with windows of %d; -c %d would score other windows (leave -c out)",
               o->kld_base, n_ctx, o->n_ctx);
        goto done;
    }
    if (n_ctx > bn_model_hparams(m)->n_ctx_train) {
        bn_err("%s: windows of %d, past the model's context length %d", o->kld_base, n_ctx,
               bn_model_hparams(m)->n_ctx_train);
        goto done;
    }
    bn_cli_log_load(o, m, load_ms);     /* the base is sound: the run starts */
    s.kld = malloc(((size_t)n_chunk * (size_t)(n_ctx - 1 - first) + 1) * sizeof *s.kld);
    s.p_diff = malloc(((size_t)n_chunk * (size_t)(n_ctx - 1 - first) + 1) * sizeof *s.p_diff);
    if (!s.kld || !s.p_diff) {
        bn_err("out of memory");
        goto done;
    }
    c = window_context(o, m, n_ctx);
    if (!c) goto done;
    fprintf(stderr, "perplexity: comparing with %s: %d of its %d windows\n", o->kld_base, n_chunk, b.n_chunk);
    bn_cli_print_full_rows_head(m);
    const size_t rl = bn_kld_record_len(n_vocab);
    for (int j = 0; j < n_chunk; j++) {
        int32_t *w = b.tokens + (size_t)j * n_ctx;
        if (bn_kld_read_window(&b) != 0 || eval_window(c, w, n_ctx, tok, bn_add_bos(tok)) != 0) goto done;
        for (int i = first; i < n_ctx - 1; i++)
            bn_kld_token(&s, bn_get_logits(c, i), n_vocab, b.recs + (size_t)(i - first) * rl, w[i + 1]);
        bn_kld_print_window(&s, j + 1);
        fflush(stdout);
    }
    bn_kld_print_summary(&s);
    rc = 0;
done:
    bn_context_free(c);
    free(s.kld);
    free(s.p_diff);
    bn_kld_close(&b);
    return rc;
}

int bn_cmd_perplexity(const bn_cli_opts *o) {
    if (o->kld && !o->kld_base)
        return bn_err("perplexity: --kl-divergence needs --kl-divergence-base FILE (the base to compare with)");
    if (o->kld && o->file)
        return bn_err("perplexity: -f is not used with --kl-divergence: the tokens come from %s", o->kld_base);
    if (!o->kld && !o->file) return bn_err("perplexity: -f FILE is required (see bitnet --help)");
    if (o->hellaswag && (o->kld || o->kld_base))
        return bn_err("perplexity: --hellaswag and --kl-divergence-base are separate runs");
    if (o->kld) {
        double load_ms = 0;
        bn_model *km = bn_cli_load_model(o, 0, &load_ms);
        if (!km) return 1;
        int krc = compare_with_base(o, km, load_ms);
        bn_model_free(km);
        return krc;
    }
    size_t len = 0;
    char *text = bn_cli_read_file(o->file, &len);
    if (!text) return 1;
    if (len == 0) {
        free(text);
        return bn_err("%s: empty file", o->file);
    }
    double load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    if (m && o->hellaswag) {
        int hrc = bn_cli_hellaswag(o, m, load_ms, text, len);
        bn_model_free(m);
        free(text);
        return hrc;
    }
    bn_context *c = NULL;
    int32_t *toks = NULL;
    uint16_t *recs = NULL;
    FILE *out = NULL;
    int n_tok = 0, rc = 1;
    if (!m) goto done;
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    const int n_vocab = bn_model_hparams(m)->n_vocab;
    const int add_bos = bn_add_bos(tok);
    toks = bn_cli_tokenize(tok, text, len, add_bos, 0, &n_tok);
    if (!toks) goto done;

    int n_ctx = o->n_ctx == 0 ? 512 : o->n_ctx;
    if (n_ctx > bn_model_hparams(m)->n_ctx_train) {
        fprintf(stderr, "note: -c %d capped to the model's context length %d\n", n_ctx,
                bn_model_hparams(m)->n_ctx_train);
        n_ctx = bn_model_hparams(m)->n_ctx_train;
    }
    if (n_ctx < 4) {
        bn_err("perplexity: -c %d is too small (at least 4)", n_ctx);
        goto done;
    }
    if (n_tok < 2 * n_ctx) {
        bn_err("%s: %d tokens; perplexity with a context of %d needs at least %d", o->file,
               n_tok, n_ctx, 2 * n_ctx);
        goto done;
    }
    const int n_all = n_tok / n_ctx, first = n_ctx / 2;
    const int n_chunk = o->n_chunks >= 0 && o->n_chunks < n_all ? o->n_chunks : n_all;
    if (n_chunk < 1) {
        bn_err("perplexity: --chunks 0 scores nothing");
        goto done;
    }
    if (o->kld_base) {
        out = fopen(o->kld_base, "wb");
        recs = malloc((size_t)(n_ctx - 1 - first) * bn_kld_record_len(n_vocab) * sizeof *recs);
        if (!out || !recs) {
            bn_err("%s: cannot write: %s", o->kld_base, out ? "out of memory" : strerror(errno));
            goto done;
        }
    }
    bn_cli_log_load(o, m, load_ms);
    c = window_context(o, m, n_ctx);
    if (!c) goto done;
    fprintf(stderr, "perplexity: %d tokens, %d windows\n", n_tok, n_chunk);
    if (out) {
        if (bn_kld_write_header(out, n_ctx, n_vocab, n_chunk, toks) != 0) goto write_error;
        fprintf(stderr, "perplexity: writing the log-probabilities to %s\n", o->kld_base);
    }
    bn_cli_print_full_rows_head(m);
    double nll = 0.0, nll2 = 0.0, t0 = bn_now_ms();
    long count = 0;
    for (int j = 0; j < n_chunk; j++) {
        int32_t *w = toks + (size_t)j * n_ctx;
        if (eval_window(c, w, n_ctx, tok, add_bos) != 0) goto done;
        for (int i = first; i < n_ctx - 1; i++) {
            const float *logits = bn_get_logits(c, i);
            double lp = bn_cli_log_prob(logits, n_vocab, w[i + 1]);
            nll -= lp;
            nll2 += lp * lp;
            count++;
            if (recs) bn_kld_record(logits, n_vocab, recs + (size_t)(i - first) * bn_kld_record_len(n_vocab));
        }
        const size_t n_rec = (size_t)(n_ctx - 1 - first) * bn_kld_record_len(n_vocab);
        if (recs && fwrite(recs, sizeof *recs, n_rec, out) != n_rec) goto write_error;
        if (j == 0)
            fprintf(stderr, "perplexity: %.2f seconds per window\n", (bn_now_ms() - t0) / 1e3);
        printf("[%d]%.4f,", j + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    if (out) {
        int failed = fclose(out) != 0;
        out = NULL;
        if (failed) goto write_error;
    }
    double mean = nll / (double)count;
    double var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    double sd = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0.0;
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sd * ppl);
    fprintf(stderr, "perplexity: %ld tokens scored in %.2f s\n", count, (bn_now_ms() - t0) / 1e3);
    rc = 0;
    goto done;
write_error:
    bn_err("%s: write error: %s", o->kld_base, strerror(errno));
done:
    if (out) fclose(out);
    free(recs);
    bn_context_free(c);
    free(toks);
    bn_model_free(m);
    free(text);
    return rc;
}
