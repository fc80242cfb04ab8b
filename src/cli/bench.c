/* `bitnet bench`: llama-bench's habit. pp = one bn_decode of -p random
 * tokens after a reset (the batch path); tg = -n single-token decodes of
 * fixed random ids (the decode path); tokenization and sampling excluded.
 * At depth -d D both run after D tokens already fill the cache (decoded
 * untimed before each run), as llama-bench's -d. Every combination of
 * threads, depth and size is a row. One warm-up run per test, then -r timed
 * repetitions: mean ± std of t/s. -np N adds tg rows of N sequences decoded
 * together (bn_decode_multi, the server's continuous batching), their
 * tokens per second summed.
 * For tg it also reports the bytes touched per generated token (packed
 * ternary weights + LM head + KV cache read) and the bandwidth they imply,
 * so the distance to the memory roofline is visible. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct bench_result {
    int threads, depth, n_prompt, n_gen;
    int n_seq;                      /* tg of this many sequences at once (-np) */
    double mean, std;               /* tokens per second */
    double samples[1000];
    int n_samples;
    double bytes_per_token;         /* tg only */
    double rescored_per_token;      /* tg, exact head: F16 rows recomputed per token */
    double rescored_bytes;          /* their F16 bytes per token */
} bench_result;

/* Deterministic "random" token ids (an LCG): the same on every run. */
static void fill_tokens(int32_t *t, int n, int n_vocab) {
    uint64_t x = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t[i] = (int32_t)((x >> 33) % (uint64_t)n_vocab);
    }
}

/* One run of a test; returns its seconds, or -1 after printing the error. */
static double run_once(bn_context *c, const int32_t *toks, int depth, int n_prompt, int n_gen) {
    char err[256];
    bn_context_reset(c);
    if (depth > 0 && bn_decode(c, toks, depth, 0, err, sizeof err) != 0) {
        bn_err("bench: %s", err);
        return -1;
    }
    double t0 = bn_now_ms();
    if (n_prompt > 0 && bn_decode(c, toks, n_prompt, 0, err, sizeof err) != 0) {
        bn_err("bench: %s", err);
        return -1;
    }
    for (int i = 0; i < n_gen; i++) {
        if (bn_decode(c, &toks[i], 1, 0, err, sizeof err) != 0) {
            bn_err("bench: %s", err);
            return -1;
        }
    }
    return (bn_now_ms() - t0) / 1e3;
}

/* -np: n_gen steps of one token of each of the n sequences seqs[0..n)
 * (seqs[0] is the context that owns the scratch), in one forward pass per
 * step, after depth tokens of each decoded untimed. Each sequence has its
 * own ids (a different rotation of toks). Returns seconds, or -1. */
static double run_once_multi(bn_context *const *seqs, int n, const int32_t *toks, int n_toks, int depth,
                             int n_gen) {
    char err[256];
    int32_t step[BN_CLI_MAX_SEQS];
    for (int s = 0; s < n; s++) {
        bn_context_reset(seqs[s]);
        if (depth > 0 && bn_decode(seqs[s], toks, depth, 0, err, sizeof err) != 0) {
            bn_err("bench: %s", err);
            return -1;
        }
    }
    double t0 = bn_now_ms();
    for (int i = 0; i < n_gen; i++) {
        for (int s = 0; s < n; s++) step[s] = toks[(i + 7 * s) % n_toks];
        if (bn_decode_multi(seqs, step, n, err, sizeof err) != 0) {
            bn_err("bench: %s", err);
            return -1;
        }
    }
    return (bn_now_ms() - t0) / 1e3;
}

/* Bytes one generated token touches, averaged over positions depth ..
 * depth+n_gen-1: the ternary weights, the LM head, the KV cache read so far
 * (at the context's cache types), one embedding row. */
static double tg_bytes_per_token(const bn_model_desc *d, const bn_context *c, int n_vocab, int depth,
                                 int n_gen) {
    double mean_pos = depth + (n_gen + 1) / 2.0;
    return (double)d->ternary_bytes + (double)d->head_bytes +
           (double)bn_context_kv_bytes_per_pos(c) * mean_pos + (double)d->embd_bytes / n_vocab;
}

/* One test: a single sequence (n_seq 1: pp or tg) or n_seq sequences'
 * tg (seqs[0] == c). */
static int run_test(bn_context *c, bn_context *const *seqs, int n_seq, const bn_model_desc *d,
                    const bn_hparams *hp, const int32_t *toks, int n_toks, int depth, int n_prompt,
                    int n_gen, int reps, bench_result *r) {
    const int n_vocab = hp->n_vocab;
    memset(r, 0, sizeof *r);
    r->threads = bn_context_n_threads(c);
    r->depth = depth;
    r->n_prompt = n_prompt;
    r->n_gen = n_gen;
    r->n_seq = n_seq;
    double sec = n_seq > 1 ? run_once_multi(seqs, n_seq, toks, n_toks, depth, n_gen)
                           : run_once(c, toks, depth, n_prompt, n_gen);    /* warm-up */
    if (sec < 0) return 1;
    bn_head_stats hs0, hs1;
    bn_context_head_stats(c, &hs0);
    double sum = 0;
    for (int i = 0; i < reps; i++) {
        sec = n_seq > 1 ? run_once_multi(seqs, n_seq, toks, n_toks, depth, n_gen)
                        : run_once(c, toks, depth, n_prompt, n_gen);
        if (sec < 0) return 1;
        r->samples[i] = (double)n_seq * (n_prompt + n_gen) / (sec > 0 ? sec : 1e-9);
        sum += r->samples[i];
    }
    r->n_samples = reps;
    r->mean = sum / reps;
    double var = 0;
    for (int i = 0; i < reps; i++) var += (r->samples[i] - r->mean) * (r->samples[i] - r->mean);
    r->std = reps > 1 ? sqrt(var / (reps - 1)) : 0.0;
    if (n_gen > 0) r->bytes_per_token = tg_bytes_per_token(d, c, n_vocab, depth, n_gen);
    /* An exact head also reads the F16 rows it recomputes (2 bytes a weight). */
    bn_context_head_stats(c, &hs1);
    if (n_gen > 0 && hs1.screened_rows > hs0.screened_rows) {
        r->rescored_per_token = (double)(hs1.rescored_rows - hs0.rescored_rows) /
                                (double)(hs1.screened_rows - hs0.screened_rows);
        r->rescored_bytes = r->rescored_per_token * 2.0 * (double)hp->n_embd;
        r->bytes_per_token += r->rescored_bytes;
    }
    return 0;
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void human_size(double bytes, char *out, size_t cap) {
    if (bytes >= 1024.0 * 1024 * 1024) snprintf(out, cap, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
    else snprintf(out, cap, "%.2f MiB", bytes / (1024.0 * 1024));
}

static void human_count(double n, char *out, size_t cap) {
    if (n >= 1e9) snprintf(out, cap, "%.2f B", n / 1e9);
    else snprintf(out, cap, "%.2f M", n / 1e6);
}

/* The KV cache types as llama-bench shows them: columns only when one is
 * not f16. */
static const char *type_name(int type) {
    const char *s = bn_kv_type_name(type);
    return s ? s : "?";
}

static void print_markdown(const char *model, const bn_model_desc *d, const bn_cli_opts *o,
                           const bench_result *r, int n) {
    char size[32], params[32], types[64] = "";
    human_size((double)d->file_bytes, size, sizeof size);
    human_count((double)d->n_params, params, sizeof params);
    const int show_types = o->type_k != BN_KV_F16 || o->type_v != BN_KV_F16;
    if (show_types) snprintf(types, sizeof types, " %s | %s |", type_name(o->type_k), type_name(o->type_v));
    printf("| model | size | params | kernel | threads |%s depth | test | t/s |\n",
           show_types ? " type_k | type_v |" : "");
    printf("| --- | ---: | ---: | --- | ---: |%s ---: | ---: | ---: |\n", show_types ? " --- | --- |" : "");
    for (int i = 0; i < n; i++) {
        char test[32];
        if (r[i].n_seq > 1) snprintf(test, sizeof test, "tg%d x%d", r[i].n_gen, r[i].n_seq);
        else if (r[i].n_gen > 0) snprintf(test, sizeof test, "tg%d", r[i].n_gen);
        else snprintf(test, sizeof test, "pp%d", r[i].n_prompt);
        printf("| %s | %s | %s | %s | %d |%s %d | %s | %.2f ± %.2f |\n", model, size, params,
               d->kernel, r[i].threads, types, r[i].depth, test, r[i].mean, r[i].std);
    }
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (r[i].n_gen == 0 || r[i].n_seq > 1) continue;   /* several sequences: no one token's bytes */
        if (first) printf("\n");
        first = 0;
        char at[64] = "";
        if (r[i].depth > 0) snprintf(at, sizeof at, " @ d%d", r[i].depth);
        if (show_types)
            snprintf(at + strlen(at), sizeof at - strlen(at), ", KV %s/%s", type_name(o->type_k),
                     type_name(o->type_v));
        const double rescored = r[i].rescored_bytes;
        printf("tg%d%s, %d threads: %.1f MB touched per token (ternary %.1f + head %.1f + KV/embd %.1f) "
               "-> %.2f GB/s at %.2f t/s\n",
               r[i].n_gen, at, r[i].threads, r[i].bytes_per_token / 1e6, (double)d->ternary_bytes / 1e6,
               ((double)d->head_bytes + rescored) / 1e6,
               (r[i].bytes_per_token - (double)d->ternary_bytes - (double)d->head_bytes - rescored) / 1e6,
               r[i].bytes_per_token * r[i].mean / 1e9, r[i].mean);
        if (r[i].rescored_per_token > 0)
            printf("  exact head (top-%d): %.1f F16 rows rescored per token, %.2f MB of the head's\n",
                   bn_sampler_default_params().top_k, r[i].rescored_per_token, rescored / 1e6);
    }
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') printf("\\%c", ch);
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    putchar('"');
}

/* The test's name as llama-bench writes it: pp512, tg128. */
static void test_name(const bench_result *r, char *out, size_t cap) {
    snprintf(out, cap, "%s%d", r->n_gen > 0 ? "tg" : "pp", r->n_gen > 0 ? r->n_gen : r->n_prompt);
}

/* One JSON object per result: in an array (json), or one per line (jsonl). */
static void print_json(const char *model, const bn_model_desc *d, const bn_cli_opts *o,
                       const bench_result *r, int n, int lines) {
    if (!lines) printf("[\n");
    for (int i = 0; i < n; i++) {
        char test[32];
        test_name(&r[i], test, sizeof test);
        printf("%s{\"model\": ", lines ? "" : "  ");
        print_json_string(model);
        printf(", \"arch\": ");
        print_json_string(d->arch);
        printf(", \"size\": %llu, \"params\": %llu, \"kernel\": ",
               (unsigned long long)d->file_bytes, (unsigned long long)d->n_params);
        print_json_string(d->kernel);
        printf(", \"type_k\": \"%s\", \"type_v\": \"%s\"", type_name(o->type_k), type_name(o->type_v));
        printf(", \"threads\": %d, \"test\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, "
               "\"n_depth\": %d, \"n_seq\": %d, \"avg_ts\": %.4f, \"stddev_ts\": %.4f, \"samples_ts\": [",
               r[i].threads, test, r[i].n_prompt, r[i].n_gen, r[i].depth, r[i].n_seq, r[i].mean, r[i].std);
        for (int k = 0; k < r[i].n_samples; k++) printf("%s%.4f", k ? ", " : "", r[i].samples[k]);
        printf("]");
        if (r[i].n_gen > 0 && r[i].n_seq == 1)
            printf(", \"bytes_per_token\": %.0f, \"gbps\": %.4f, \"rescored_rows_per_token\": %.2f",
                   r[i].bytes_per_token, r[i].bytes_per_token * r[i].mean / 1e9,
                   r[i].rescored_per_token);
        printf("}%s\n", !lines && i + 1 < n ? "," : "");
    }
    if (!lines) printf("]\n");
}

/* A CSV field: quoted, inner quotes doubled. */
static void print_csv_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"') putchar('"');
        putchar(*s);
    }
    putchar('"');
}

/* The JSON fields as columns (samples space-separated in one field; the
 * byte columns empty where a row has none), a header line first. */
static void print_csv(const char *model, const bn_model_desc *d, const bn_cli_opts *o,
                      const bench_result *r, int n) {
    printf("model,arch,size,params,kernel,type_k,type_v,threads,test,n_prompt,n_gen,n_depth,n_seq,"
           "avg_ts,stddev_ts,samples_ts,bytes_per_token,gbps,rescored_rows_per_token\n");
    for (int i = 0; i < n; i++) {
        char test[32];
        test_name(&r[i], test, sizeof test);
        print_csv_string(model);
        putchar(',');
        print_csv_string(d->arch);
        printf(",%llu,%llu,", (unsigned long long)d->file_bytes, (unsigned long long)d->n_params);
        print_csv_string(d->kernel);
        printf(",%s,%s,%d,%s,%d,%d,%d,%d,%.4f,%.4f,\"", type_name(o->type_k), type_name(o->type_v),
               r[i].threads, test, r[i].n_prompt, r[i].n_gen, r[i].depth, r[i].n_seq, r[i].mean, r[i].std);
        for (int k = 0; k < r[i].n_samples; k++) printf("%s%.4f", k ? " " : "", r[i].samples[k]);
        printf("\",");
        if (r[i].n_gen > 0 && r[i].n_seq == 1)
            printf("%.0f,%.4f,%.2f\n", r[i].bytes_per_token, r[i].bytes_per_token * r[i].mean / 1e9,
                   r[i].rescored_per_token);
        else
            printf(",,\n");
    }
}

/* `bench --kernels`: the ternary kernels alone (src/bench_kernels.c). */
static int bench_kernels(const bn_cli_opts *o) {
    if (o->model || o->bench_p.n || o->bench_n.n || o->bench_d.n || o->bench_format != BN_BENCH_MD)
        return bn_err("bench --kernels takes only -t, -r and --variants");
    bn_cli_log_notes(o);
    if (o->bench_t.n > BN_BENCH_MAX_THREADS)
        return bn_err("bench --kernels: at most %d thread counts", BN_BENCH_MAX_THREADS);
    bn_bench_kernels_opts ko;
    bn_bench_kernels_default_opts(&ko);
    for (int i = 0; i < o->bench_t.n; i++) ko.threads[i] = o->bench_t.v[i];
    if (o->bench_t.n) ko.n_threads = o->bench_t.n;
    ko.reps = o->reps;
    ko.variants = o->variants;
    return bn_bench_kernels(stdout, &ko) == 0 ? 0 : 1;
}

int bn_cmd_bench(const bn_cli_opts *o) {
    if (o->kernels) return bench_kernels(o);
    if (o->variants) return bn_err("--variants needs --kernels");
    double load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    if (!m) return 1;
    const bn_hparams *hp = bn_model_hparams(m);
    bn_model_desc desc;
    bn_model_describe(m, &desc);
    bn_cli_list lp = o->bench_p, ln = o->bench_n, lt = o->bench_t, ld = o->bench_d, lnp = o->bench_np;
    if (lnp.n == 0) {
        lnp.v[0] = 1;
        lnp.n = 1;
    }
    int max_seq = 1;
    for (int i = 0; i < lnp.n; i++) if (lnp.v[i] > max_seq) max_seq = lnp.v[i];
    if (ld.n == 0) {
        ld.v[0] = 0;
        ld.n = 1;
    }
    int max_depth = 0;
    for (int i = 0; i < ld.n; i++) if (ld.v[i] > max_depth) max_depth = ld.v[i];
    if (lp.n == 0) lp.v[lp.n++] = 512;
    if (ln.n == 0) ln.v[ln.n++] = 128;
    int max_len = 1;
    for (int i = 0; i < lp.n; i++) if (lp.v[i] > max_len) max_len = lp.v[i];
    for (int i = 0; i < ln.n; i++) if (ln.v[i] > max_len) max_len = ln.v[i];
    if ((long)max_depth + max_len > BN_MAX_CTX) {
        bn_err("-d %d with %d tokens needs a context of more than %d tokens", max_depth, max_len,
               BN_MAX_CTX);
        bn_model_free(m);
        return 1;
    }
    bn_cli_log_load(o, m, load_ms);
    if (lt.n == 0) {
        lt.v[0] = bn_physical_cores();
        lt.n = 1;
    }
    int n_toks = max_len > max_depth ? max_len : max_depth;
    int32_t *toks = malloc((size_t)n_toks * sizeof *toks);
    bench_result *res = calloc((size_t)lt.n * (size_t)ld.n * (size_t)(lp.n + ln.n * lnp.n), sizeof *res);
    bn_context *seqs[BN_CLI_MAX_SEQS] = {0};
    int n_res = 0, rc = 1;
    if (!toks || !res) {
        bn_err("out of memory");
        goto done;
    }
    fill_tokens(toks, n_toks, hp->n_vocab);
    for (int ti = 0; ti < lt.n; ti++) {
        bn_cli_opts co = *o;
        co.n_threads = lt.v[ti];
        /* As llama-bench: the context is what the deepest test needs, even
         * past the model's training length (RoPE extrapolates; speed is
         * what is measured). */
        co.n_ctx = max_depth + max_len;
        co.quiet_ctx_note = 1;
        /* pp: the whole prompt in one batch; the depth fills in batches of
         * at least 512 */
        co.n_batch = max_len > 512 ? max_len : 512;
        /* -np: the other sequences share c's scratch, so its logits rows
         * hold one per sequence */
        bn_context *c = bn_cli_new_context(&co, m, max_seq);
        if (!c) goto done;
        seqs[0] = c;
        for (int s = 1; s < max_seq; s++) {
            char err[256];
            if (!(seqs[s] = bn_context_new_sequence(c, err, sizeof err))) {
                bn_err("bench -np %d: %s", max_seq, err);
                goto free_seqs;
            }
        }
        /* An exact head computes what `bitnet -p`'s default sampler reads
         * (top-k 40), not every row. */
        for (int s = 0; s < max_seq; s++)
            bn_context_set_exact_head(seqs[s], bn_sampler_default_params().top_k, NULL, 0, NULL, 0);
        for (int di = 0; di < ld.n; di++) {
            const int depth = ld.v[di];
            for (int i = 0; i < lp.n + ln.n * lnp.n; i++) {
                const int pp = i < lp.n ? lp.v[i] : 0, tg = i < lp.n ? 0 : ln.v[(i - lp.n) % ln.n];
                const int n_seq = i < lp.n ? 1 : lnp.v[(i - lp.n) / ln.n];
                if (pp == 0 && tg == 0) continue;
                fprintf(stderr, "bench: %s%d, depth %d, %d threads", pp ? "pp" : "tg", pp ? pp : tg,
                        depth, lt.v[ti]);
                if (n_seq > 1) fprintf(stderr, ", %d sequences", n_seq);
                fputc('\n', stderr);
                if (run_test(c, seqs, n_seq, &desc, hp, toks, n_toks, depth, pp, tg, o->reps, &res[n_res]))
                    goto free_seqs;
                n_res++;
            }
        }
        for (int s = max_seq - 1; s >= 0; s--) {   /* sequences before their base */
            bn_context_free(seqs[s]);
            seqs[s] = NULL;
        }
    }
    const char *name = base_name(bn_cli_model_path(o));
    if (o->bench_format == BN_BENCH_MD) print_markdown(name, &desc, o, res, n_res);
    else if (o->bench_format == BN_BENCH_CSV) print_csv(name, &desc, o, res, n_res);
    else print_json(name, &desc, o, res, n_res, o->bench_format == BN_BENCH_JSONL);
    rc = 0;
free_seqs:
    for (int s = max_seq - 1; s >= 0; s--) bn_context_free(seqs[s]);
done:
    free(res);
    free(toks);
    bn_model_free(m);
    return rc;
}
