/* One worker thread per slot, a FIFO queue between them and the
 * connections (see scheduler.h). The decode loop follows src/cli/generate.c
 * step by step so that results match `bitnet -p`. Sharing the model is
 * safe: after bn_model_load it is only read (the KV cache, scratch and
 * thread pool live in each bn_context; the tokenizer keeps its scratch per
 * call). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "scheduler.h"

typedef struct slot {
    bn_sched *s;
    bn_context *ctx;
    float *logits;                  /* --ignore-eos copy of the logits */
    pthread_t thread;
    int started;
    bn_job *job;                    /* the running job, under s->mu */
} slot;

struct bn_sched {
    bn_model *model;
    const bn_tokenizer *tok;
    int n_slots, n_ctx, n_vocab;
    int max_piece;                  /* longest token text in bytes */
    int32_t *eog;                   /* the vocabulary's end-of-generation ids */
    int n_eog;
    slot *slots;

    pthread_mutex_t mu;             /* queue, stop, stats */
    pthread_cond_t cv;
    bn_job *head, *tail;
    int stop;
    bn_sched_stats st;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int bn_sched_n_ctx(const bn_sched *s) {
    return s->n_ctx;
}

int bn_job_init(bn_sched *s, bn_job *j, int32_t *prompt, int n_prompt) {
    memset(j, 0, sizeof *j);
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->n_predict = -1;
    j->sp = bn_sampler_default_params();
    /* As generate.c: at most n_ctx - n_prompt + 1 tokens (the last one is
     * sampled from the logits of a full context, never decoded); each
     * token gives at most max_piece bytes, plus U+FFFD for held bytes. */
    size_t most = (size_t)(s->n_ctx - n_prompt + 1);
    j->cap = most * (size_t)s->max_piece + 64;
    j->text = malloc(j->cap);
    if (!j->text) {
        free(prompt);
        memset(j, 0, sizeof *j);
        return -1;
    }
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    return 0;
}

void bn_job_destroy(bn_job *j) {
    if (!j->text) return;
    free(j->prompt);
    free(j->text);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    memset(j, 0, sizeof *j);
}

void bn_sched_submit(bn_sched *s, bn_job *j) {
    pthread_mutex_lock(&s->mu);
    j->queue_next = NULL;
    if (s->tail) s->tail->queue_next = j;
    else s->head = j;
    s->tail = j;
    s->st.queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void finish(bn_job *j, const char *reason) {
    pthread_mutex_lock(&j->mu);
    j->visible = j->len;
    j->finish = reason;
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Records a failure; the worker then finishes the job. */
static const char *job_fail(bn_job *j, const char *what, const char *err) {
    pthread_mutex_lock(&j->mu);
    j->failed = 1;
    snprintf(j->error, sizeof j->error, "%s%s", what, err);
    pthread_mutex_unlock(&j->mu);
    return "stop";
}

/* Length of the longest suffix of text[0..len) that starts a stop string. */
static size_t stop_prefix_suffix(const bn_job *j, const char *text, size_t len) {
    size_t best = 0;
    for (int i = 0; i < j->n_stop; i++) {
        size_t sl = strlen(j->stop[i]);
        for (size_t k = sl - 1 < len ? sl - 1 : len; k > best; k--)
            if (memcmp(text + len - k, j->stop[i], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* Appends a piece; returns 1 when a stop string now appears (the text is
 * cut where it starts). Called with j->mu held. */
static int append_piece(bn_job *j, const char *piece, int n, size_t longest) {
    if (n <= 0) return 0;
    if ((size_t)n > j->cap - j->len) n = (int)(j->cap - j->len);   /* never, by sizing */
    size_t from = j->len > longest ? j->len - longest + 1 : 0;
    memcpy(j->text + j->len, piece, (size_t)n);
    j->len += (size_t)n;
    size_t cut = j->len;
    for (int i = 0; i < j->n_stop; i++) {
        size_t sl = strlen(j->stop[i]);
        const char *hit = memmem(j->text + from, j->len - from, j->stop[i], sl);
        if (hit && (size_t)(hit - j->text) < cut) cut = (size_t)(hit - j->text);
    }
    if (cut < j->len) {
        j->len = cut;
        return 1;
    }
    size_t vis = j->len - stop_prefix_suffix(j, j->text, j->len);
    if (vis > j->visible) j->visible = vis;
    return 0;
}

/* Generates for one job; returns its finish reason. The job is not marked
 * done here: the worker reads its counts first (once done, the connection
 * may free it). */
static const char *run_job(slot *sl, bn_job *j) {
    bn_sched *s = sl->s;
    bn_context *c = sl->ctx;
    char err[256];
    pthread_mutex_lock(&j->mu);
    int cancelled = j->cancelled;
    pthread_mutex_unlock(&j->mu);
    if (cancelled) return "stop";
    bn_context_reset(c);
    bn_sampler_params sp = j->sp;
    if (sp.repeat_last_n < 0) sp.repeat_last_n = s->n_ctx;
    bn_sampler *smp = bn_sampler_new(&sp, s->n_vocab);
    if (!smp) {
        return job_fail(j, "out of memory (sampler)", "");
    }
    j->seed = bn_sampler_seed(smp);
    /* The exact head computes the logits this sampler reads (banned EOG ids
     * with ignore_eos leave top-k others exact). */
    bn_context_set_exact_head(c, 0, s->eog, j->ignore_eos ? s->n_eog : 0, NULL, 0);
    bn_context_set_sampler(c, smp);
    size_t longest = 0;
    for (int i = 0; i < j->n_stop; i++)
        if (strlen(j->stop[i]) > longest) longest = strlen(j->stop[i]);

    for (int i = 0; i < j->n_prompt; i++) bn_sampler_accept(smp, j->prompt[i]);
    double t0 = now_ms();
    if (bn_decode(c, j->prompt, j->n_prompt, 0, err, sizeof err) != 0) {
        bn_context_set_sampler(c, NULL);
        bn_sampler_free(smp);
        return job_fail(j, "decoding the prompt: ", err);
    }
    j->t_prompt_ms = now_ms() - t0;

    bn_detok dt;
    bn_detok_init(&dt, s->tok);
    char piece[512];
    const char *reason = "length";
    int hit_stop = 0;
    t0 = now_ms();
    for (;;) {
        if (j->n_predict >= 0 && j->n_gen >= j->n_predict) break;
        const float *logits = bn_get_logits(c, -1);
        if (j->ignore_eos) {
            memcpy(sl->logits, logits, (size_t)s->n_vocab * sizeof *logits);
            for (int i = 0; i < s->n_eog; i++) sl->logits[s->eog[i]] = -INFINITY;
            logits = sl->logits;
        }
        int32_t id = bn_sampler_sample(smp, logits);
        bn_sampler_accept(smp, id);
        if (bn_token_is_eog(s->tok, id)) {
            reason = "stop";
            break;
        }
        int np = bn_detok_push(&dt, id, piece, (int)sizeof piece);
        pthread_mutex_lock(&j->mu);
        j->n_gen++;
        int hit = append_piece(j, piece, np, longest);
        cancelled = j->cancelled;
        pthread_cond_broadcast(&j->cv);
        pthread_mutex_unlock(&j->mu);
        if (hit) {
            reason = "stop";
            hit_stop = 1;
            break;
        }
        if (cancelled) break;
        if (bn_context_n_past(c) >= s->n_ctx) break;        /* context full: "length" */
        if (bn_decode(c, &id, 1, 0, err, sizeof err) != 0) {
            bn_context_set_sampler(c, NULL);
            bn_sampler_free(smp);
            return job_fail(j, "decoding: ", err);
        }
    }
    /* bytes the decoder held back (an incomplete UTF-8 sequence), unless
     * a stop string already ended the text */
    int np = hit_stop ? 0 : bn_detok_flush(&dt, piece, (int)sizeof piece);
    pthread_mutex_lock(&j->mu);
    if (append_piece(j, piece, np, longest)) reason = "stop";
    j->t_gen_ms = now_ms() - t0;
    pthread_mutex_unlock(&j->mu);
    bn_context_set_sampler(c, NULL);
    bn_sampler_free(smp);
    return reason;
}

static void *worker(void *arg) {
    slot *sl = arg;
    bn_sched *s = sl->s;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->head) pthread_cond_wait(&s->cv, &s->mu);
        bn_job *j = s->head;
        if (!j) {                   /* stopping, queue empty */
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        s->head = j->queue_next;
        if (!s->head) s->tail = NULL;
        s->st.queued--;
        s->st.busy++;
        sl->job = j;
        if (s->stop) {              /* stopping: finish queued jobs as cancelled */
            pthread_mutex_lock(&j->mu);
            j->cancelled = 1;
            pthread_mutex_unlock(&j->mu);
        }
        pthread_mutex_unlock(&s->mu);

        const char *reason = run_job(sl, j);

        pthread_mutex_lock(&s->mu);
        sl->job = NULL;
        s->st.busy--;
        s->st.jobs_done++;
        s->st.prompt_tokens += (uint64_t)j->n_prompt;
        s->st.gen_tokens += (uint64_t)j->n_gen;
        s->st.prompt_ms += j->t_prompt_ms;
        s->st.gen_ms += j->t_gen_ms;
        pthread_mutex_unlock(&s->mu);
        finish(j, reason);          /* last: the connection may free the job after this */
    }
}

void bn_sched_stats_get(bn_sched *s, bn_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

bn_sched *bn_sched_new(bn_model *m, int n_slots, int n_ctx, int n_threads, char *err, size_t errlen) {
    bn_sched *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->model = m;
    s->tok = bn_model_tokenizer(m);
    s->n_slots = n_slots;
    s->n_vocab = bn_vocab_size(s->tok);
    s->st.n_slots = n_slots;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max_piece = 16;
    char buf[1024];
    for (int32_t id = 0; id < s->n_vocab; id++) {
        int n = bn_token_to_bytes(s->tok, id, 0, buf, (int)sizeof buf);
        if (n > s->max_piece) s->max_piece = n;
        s->n_eog += bn_token_is_eog(s->tok, id) != 0;
    }
    s->max_piece += 8 * 3;          /* bytes held back then flushed as U+FFFD */
    s->eog = malloc(((size_t)s->n_eog + 1) * sizeof *s->eog);
    s->slots = calloc((size_t)n_slots, sizeof *s->slots);
    if (!s->eog || !s->slots) {
        snprintf(err, errlen, "out of memory");
        bn_sched_free(s);
        return NULL;
    }
    int k = 0;
    for (int32_t id = 0; id < s->n_vocab; id++)
        if (bn_token_is_eog(s->tok, id)) s->eog[k++] = id;

    bn_context_params cp = bn_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    char e[256];
    for (int i = 0; i < n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->s = s;
        sl->ctx = bn_context_new(m, &cp, e, sizeof e);
        sl->logits = malloc((size_t)s->n_vocab * sizeof *sl->logits);
        if (!sl->ctx || !sl->logits) {
            snprintf(err, errlen, "slot %d: %s", i, sl->ctx ? "out of memory" : e);
            bn_sched_free(s);
            return NULL;
        }
        s->n_ctx = bn_context_n_ctx(sl->ctx);
    }
    for (int i = 0; i < n_slots; i++) {
        if (pthread_create(&s->slots[i].thread, NULL, worker, &s->slots[i]) != 0) {
            snprintf(err, errlen, "cannot start the worker thread of slot %d", i);
            bn_sched_free(s);
            return NULL;
        }
        s->slots[i].started = 1;
    }
    return s;
}

void bn_sched_free(bn_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        bn_job *j = s->slots[i].job;
        if (j) {
            pthread_mutex_lock(&j->mu);
            j->cancelled = 1;
            pthread_mutex_unlock(&j->mu);
        }
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        if (s->slots[i].started) pthread_join(s->slots[i].thread, NULL);
        bn_context_free(s->slots[i].ctx);
        free(s->slots[i].logits);
    }
    free(s->slots);
    free(s->eog);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
