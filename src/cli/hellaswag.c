/* `bitnet perplexity --hellaswag -f FILE`: llama-perplexity's HellaSwag
 * score. FILE holds tasks of six lines (llama.cpp's hellaswag_val_full.txt):
 * a context, the index 0-3 of the right ending, and four endings. Each
 * ending is tokenized as "context ending" (BOS per the vocabulary); the
 * tokens the four share are decoded once, then each ending on top of them
 * (the cache truncated back in between). An ending's score is the mean log
 * probability of its tokens, the first one given the shared part; the task
 * counts when the right ending scores highest (acc_norm). llama-perplexity
 * draws its tasks at random; this takes the first --hellaswag-tasks of the
 * file in order, so with every task the two score the same set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { ENDINGS = 4 };

/* Splits text (NUL-terminated at len, as bn_cli_read_file leaves it) into
 * lines at '\n' in place; a '\r' stays, as llama.cpp reads them. Returns
 * the count and the starts in *lines (the caller frees), or -1. */
static int split_lines(char *text, size_t len, char ***lines) {
    int n = len > 0 && text[len - 1] != '\n';
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (!(*lines = malloc(((size_t)n + 1) * sizeof **lines))) return -1;
    int k = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\n') {
            text[i] = '\0';
            (*lines)[k++] = text + start;
            start = i + 1;
        }
    if (start < len) (*lines)[k++] = text + start;
    return k;
}

/* One task: the four endings' mean log-probabilities into score[]. 0, or 1
 * after printing the error. */
static int score_task(bn_context *c, const bn_tokenizer *tok, int n_vocab, int n_ctx, int task,
                      const char *context, char *const ending[ENDINGS], double score[ENDINGS]) {
    int32_t *seq[ENDINGS] = {0};
    int n[ENDINGS], rc = 1;
    char err[256];
    for (int s = 0; s < ENDINGS; s++) {
        size_t lc = strlen(context), le = strlen(ending[s]);
        char *text = malloc(lc + le + 2);
        if (!text) goto done;
        memcpy(text, context, lc);
        text[lc] = ' ';
        memcpy(text + lc + 1, ending[s], le + 1);
        seq[s] = bn_cli_tokenize(tok, text, lc + le + 1, bn_add_bos(tok), 0, &n[s]);
        free(text);
        if (!seq[s]) goto done;
        if (n[s] > n_ctx) {
            bn_err("task %d: ending %d is %d tokens, more than the context (-c %d)", task, s, n[s], n_ctx);
            goto done;
        }
    }
    /* the shared tokens, leaving every ending at least one of its own */
    int cp = 0, shortest = n[0];
    for (int s = 1; s < ENDINGS; s++) shortest = n[s] < shortest ? n[s] : shortest;
    while (cp < shortest - 1 && seq[0][cp] == seq[1][cp] && seq[0][cp] == seq[2][cp] && seq[0][cp] == seq[3][cp])
        cp++;
    if (cp < 1) {
        bn_err("task %d: an ending has no token past BOS", task);
        goto done;
    }
    bn_context_reset(c);
    if (bn_decode(c, seq[0], cp, 0, err, sizeof err) != 0) {
        bn_err("decoding task %d: %s", task, err);
        goto done;
    }
    double first[ENDINGS];          /* the shared part's last logits, before the endings overwrite them */
    for (int s = 0; s < ENDINGS; s++)
        first[s] = bn_cli_log_prob(bn_get_logits(c, 0), n_vocab, seq[s][cp]);
    for (int s = 0; s < ENDINGS; s++) {
        double sum = first[s];
        const int rest = n[s] - 1 - cp;     /* tokens decoded to predict the ending's next ones */
        if (rest > 0) {
            if (bn_context_truncate(c, cp, err, sizeof err) != 0 ||
                bn_decode(c, seq[s] + cp, rest, 1, err, sizeof err) != 0) {
                bn_err("decoding task %d: %s", task, err);
                goto done;
            }
            for (int i = 0; i < rest; i++)
                sum += bn_cli_log_prob(bn_get_logits(c, i), n_vocab, seq[s][cp + i + 1]);
        }
        score[s] = sum / (double)(rest + 1);
    }
    rc = 0;
done:
    for (int s = 0; s < ENDINGS; s++) free(seq[s]);
    return rc;
}

int bn_cli_hellaswag(const bn_cli_opts *o, bn_model *m, double load_ms, char *text, size_t len) {
    char **lines = NULL;
    int n_lines = split_lines(text, len, &lines);
    if (n_lines < 0) return bn_err("out of memory");
    int rc = 1;
    bn_context *c = NULL;
    if (n_lines == 0 || n_lines % 6 != 0) {
        bn_err("%s: %d lines, not tasks of 6 (context, right ending 0-3, four endings)", o->file, n_lines);
        goto done;
    }
    int n_tasks = n_lines / 6;
    for (int t = 0; t < n_tasks; t++) {
        const char *g = lines[6 * t + 1];
        if (!(g[0] >= '0' && g[0] <= '3' && (g[1] == '\0' || (g[1] == '\r' && g[2] == '\0')))) {
            bn_err("%s: line %d: the right ending must be 0, 1, 2 or 3, got '%.20s'", o->file, 6 * t + 2, g);
            goto done;
        }
    }
    if (o->n_tasks >= 0 && o->n_tasks < n_tasks) n_tasks = o->n_tasks;
    if (n_tasks < 1) {
        bn_err("perplexity: --hellaswag-tasks 0 scores nothing");
        goto done;
    }
    bn_cli_log_load(o, m, load_ms);     /* the file is sound: the run starts */
    const bn_hparams *hp = bn_model_hparams(m);
    const int n_ctx = o->n_ctx > 0 && o->n_ctx < hp->n_ctx_train ? o->n_ctx : hp->n_ctx_train;
    bn_cli_opts co = *o;
    co.n_ctx = n_ctx;
    if (co.n_batch == 0 || co.n_batch > n_ctx) co.n_batch = n_ctx;
    c = bn_cli_new_context(&co, m, n_ctx);
    if (!c) goto done;
    fprintf(stderr, "hellaswag: %d of the file's %d tasks, in order; context %d, %d threads\n", n_tasks,
            n_lines / 6, n_ctx, bn_context_n_threads(c));
    bn_cli_print_full_rows_head(m);
    printf("task\tacc_norm\n");
    long right = 0;
    for (int t = 0; t < n_tasks; t++) {
        double score[ENDINGS];
        if (score_task(c, bn_model_tokenizer(m), hp->n_vocab, n_ctx, t + 1, lines[6 * t], &lines[6 * t + 2],
                       score) != 0)
            goto done;
        int best = 0;
        for (int s = 1; s < ENDINGS; s++)
            if (score[s] > score[best]) best = s;
        right += best == lines[6 * t + 1][0] - '0';
        printf("%d\t%.8f\n", t + 1, 100.0 * (double)right / (double)(t + 1));
        fflush(stdout);
    }
    const double p = (double)right / (double)n_tasks;
    printf("\nHellaSwag acc_norm: %.4f %% ± %.4f over %d tasks\n", 100.0 * p,
           n_tasks > 1 ? 100.0 * sqrt(p * (1.0 - p) / (double)(n_tasks - 1)) : 0.0, n_tasks);
    rc = 0;
done:
    bn_context_free(c);
    free(lines);
    return rc;
}
