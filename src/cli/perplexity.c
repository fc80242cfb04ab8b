/* `bitnet perplexity`: llama-perplexity's method. The whole file is
 * tokenized once (BOS per the vocabulary, specials not parsed) and cut into
 * non-overlapping windows of n_ctx tokens; each window starts with BOS in
 * place of its first token and only its second half is scored: for i in
 * [n_ctx/2, n_ctx-1) the negative log-likelihood of token i+1 given the
 * logits at i. Prints the running value per window and the final estimate. */
#include <math.h>
#include <stdlib.h>

#include "cli.h"

/* log softmax(logits)[target], as llama-perplexity (float exp, double sum). */
static double log_prob(const float *logits, int n_vocab, int32_t target) {
    float mx = logits[0];
    for (int i = 1; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0.0;
    for (int i = 0; i < n_vocab; i++) sum += (double)expf(logits[i] - mx);
    return (double)(logits[target] - mx) - log(sum);
}

int bn_cmd_perplexity(const bn_cli_opts *o) {
    if (!o->file) return bn_err("perplexity: -f FILE is required (see bitnet --help)");
    size_t len = 0;
    char *text = bn_cli_read_file(o->file, &len);
    if (!text) return 1;
    if (len == 0) {
        free(text);
        return bn_err("%s: empty file", o->file);
    }
    double load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    bn_context *c = NULL;
    int32_t *toks = NULL;
    int n_tok = 0, rc = 1;
    if (!m) goto done;
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    const int n_vocab = bn_model_hparams(m)->n_vocab;
    const int add_bos = bn_add_bos(tok);
    toks = bn_cli_tokenize(tok, text, len, add_bos, 0, &n_tok);
    if (!toks) goto done;

    bn_cli_opts co = *o;
    if (co.n_ctx == 0) co.n_ctx = 512;
    if (co.n_ctx > bn_model_hparams(m)->n_ctx_train) {
        fprintf(stderr, "note: -c %d capped to the model's context length %d\n", co.n_ctx,
                bn_model_hparams(m)->n_ctx_train);
        co.n_ctx = bn_model_hparams(m)->n_ctx_train;
    }
    const int n_ctx = co.n_ctx;
    if (n_ctx < 4) {
        bn_err("perplexity: -c %d is too small (at least 4)", n_ctx);
        goto done;
    }
    if (n_tok < 2 * n_ctx) {
        bn_err("%s: %d tokens; perplexity with a context of %d needs at least %d", o->file,
               n_tok, n_ctx, 2 * n_ctx);
        goto done;
    }
    bn_cli_log_load(o, m, load_ms);
    if (co.n_batch == 0 || co.n_batch > n_ctx) co.n_batch = n_ctx;
    c = bn_cli_new_context(&co, m, n_ctx);
    if (!c) goto done;

    const int n_chunk = n_tok / n_ctx, first = n_ctx / 2;
    fprintf(stderr, "perplexity: %d tokens, %d windows of %d, batch %d, %d threads\n", n_tok,
            n_chunk, n_ctx, co.n_batch, bn_context_n_threads(c));
    bn_cli_print_full_rows_head(m);
    double nll = 0.0, nll2 = 0.0, t0 = bn_now_ms();
    long count = 0;
    char err[256];
    for (int j = 0; j < n_chunk; j++) {
        int32_t *w = toks + (size_t)j * n_ctx;
        int32_t saved = w[0];
        if (add_bos) w[0] = bn_token_bos(tok);
        bn_context_reset(c);
        int ok = bn_decode(c, w, n_ctx, 1, err, sizeof err) == 0;
        w[0] = saved;
        if (!ok) {
            bn_err("decoding: %s", err);
            goto done;
        }
        for (int i = first; i < n_ctx - 1; i++) {
            double lp = log_prob(bn_get_logits(c, i), n_vocab, w[i + 1]);
            nll -= lp;
            nll2 += lp * lp;
            count++;
        }
        if (j == 0)
            fprintf(stderr, "perplexity: %.2f seconds per window\n", (bn_now_ms() - t0) / 1e3);
        printf("[%d]%.4f,", j + 1, exp(nll / (double)count));
        fflush(stdout);
    }
    printf("\n");
    double mean = nll / (double)count;
    double var = nll2 / (double)count - mean * mean;
    double ppl = exp(mean);
    double sd = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) : 0.0;
    printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, sd * ppl);
    fprintf(stderr, "perplexity: %ld tokens scored in %.2f s\n", count, (bn_now_ms() - t0) / 1e3);
    rc = 0;
done:
    bn_context_free(c);
    free(toks);
    bn_model_free(m);
    free(text);
    return rc;
}
