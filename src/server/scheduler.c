/* Continuous batching (see scheduler.h): one driver thread, N slots, a FIFO
 * queue between them and the connections. Each turn of the driver:
 *
 *   0. slot actions waiting (save, restore, erase) run on the slots they
 *      name, if those run no job;
 *   1. queued jobs take free slots;
 *   2. slots with prompt left decode some of it (bn_decode on their own
 *      sequence; PREFILL_CHUNK tokens in all while others generate, so a
 *      long prompt delays their next token by one chunk only; every
 *      waiting prompt whole when nobody generates);
 *   3. one step: the next token of every generating slot in one forward
 *      pass (bn_decode_multi), then each slot samples from its own logits.
 *
 * A job that asks for log-probabilities gets them here, on the driver,
 * from the logits of each step (record_lp); see scheduler.h.
 *
 * A slot's life follows src/cli/generate.c step by step so that results
 * match `bitnet -p`: same sampler, penalty history and stop rules, and the
 * default numerics give a prompt the same bits in chunks as in one batch.
 * Sharing the model is safe: after bn_model_load it is only read (the
 * tokenizer keeps its scratch per call); the contexts are only touched by
 * the driver. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "scheduler.h"

/* Prompt tokens decoded per step while other slots generate: a step of 8
 * streams costs about as much as a few dozen prompt tokens in a batch. */
#define PREFILL_CHUNK 64

/* Rows of logits a slot's bn_decode keeps at once: an echo job's prompt
 * (every position's log-probabilities) is decoded in chunks of this many
 * tokens, so its logits never take more than ECHO_ROWS x n_vocab floats. */
#define ECHO_ROWS 16

enum slot_state { SLOT_FREE, SLOT_PREFILL, SLOT_GENERATE };

typedef struct slot {
    bn_context *ctx;                /* its sequence (slot 0's owns the scratch and pool) */
    float *logits;                  /* ignore_eos copy of the logits */
    enum slot_state state;
    bn_job *job;                    /* the running job (read by bn_sched_free under mu) */
    bn_sampler *smp;
    bn_detok dt;
    size_t longest;                 /* longest stop string */
    int n_fed;                      /* prompt tokens decoded */
    int32_t next;                   /* the token the next step decodes */
    int32_t *cached;                /* the tokens in its KV cache, n_ctx room */
    int n_cached;                   /* = bn_context_n_past(ctx) */
    int pub_cached;                 /* n_cached for GET /slots, under the sched's mu */
    int32_t *exact_ids;             /* a logprobs job's exact-head rows: n_eog + n_ctx + 2 */
    uint64_t last_used;             /* when its last job ended (the sched's clock) */
    int hit_stop;                   /* a stop string ended the text */
    double t0;                      /* when the prompt, then the generation, started */
} slot;

struct bn_sched {
    bn_model *model;
    const bn_tokenizer *tok;
    int n_slots, n_ctx, n_vocab;
    int max_piece;                  /* longest token text in bytes */
    int32_t *eog;                   /* the vocabulary's end-of-generation ids */
    int n_eog;
    slot *slots;
    bn_context **batch;             /* a step's rows: contexts, tokens, slots */
    int32_t *batch_tok;
    int *batch_slot;
    int step_rows;                  /* rows bn_decode_multi takes at once */
    int out_rows;                   /* rows of logits one bn_decode keeps (echo chunks) */
    pthread_t driver;
    int started;

    pthread_mutex_t mu;             /* queue, stop, stats, slot.job */
    pthread_cond_t cv;
    bn_job *head, *tail;
    int stop;
    bn_sched_stats st;
    uint64_t clock;                 /* jobs ended, for the slots' last_used */
    bn_slot_action *acts, *acts_tail;   /* slot actions waiting for the driver */
    pthread_cond_t act_cv;          /* signalled when an action is done */
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
    j->id_slot = j->slot = j->stop_word = -1;
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

int bn_job_logprobs(bn_sched *s, bn_job *j, int n_top, int echo) {
    /* every token the job can give: as bn_job_init, capped by n_predict */
    size_t most = (size_t)(s->n_ctx - j->n_prompt + 1);
    if (j->n_predict >= 0 && (size_t)j->n_predict < most) most = (size_t)j->n_predict;
    const size_t cap = most + (echo ? (size_t)j->n_prompt : 0);
    if (n_top < 0) n_top = 0;
    if (n_top > BN_SCHED_MAX_TOP) n_top = BN_SCHED_MAX_TOP;
    j->lp = malloc((cap + 1) * sizeof *j->lp);
    j->lp_top_id = malloc((cap * (size_t)n_top + 1) * sizeof *j->lp_top_id);
    j->lp_top = malloc((cap * (size_t)n_top + 1) * sizeof *j->lp_top);
    if (!j->lp || !j->lp_top_id || !j->lp_top) {
        free(j->lp);
        free(j->lp_top_id);
        free(j->lp_top);
        j->lp = NULL;
        j->lp_top_id = NULL;
        j->lp_top = NULL;
        return -1;
    }
    j->lp_cap = (int)cap;
    j->n_top = n_top;
    j->echo = echo;
    j->logprobs = 1;
    if (echo) j->no_cache = 1;      /* every prompt position's logits are needed */
    return 0;
}

void bn_job_destroy(bn_job *j) {
    if (!j->text) return;
    free(j->prompt);
    free(j->text);
    free(j->lp);
    free(j->lp_top_id);
    free(j->lp_top);
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

/* ---- a job's text ------------------------------------------------------------ */

static void finish(bn_job *j, const char *reason) {
    pthread_mutex_lock(&j->mu);
    j->visible = j->len;
    j->finish = reason;
    j->done = 1;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* Records a failure; the driver then ends the job. */
static const char *job_fail(bn_job *j, const char *what, const char *err) {
    pthread_mutex_lock(&j->mu);
    j->failed = 1;
    snprintf(j->error, sizeof j->error, "%s%s", what, err);
    pthread_mutex_unlock(&j->mu);
    return "stop";
}

static int job_cancelled(bn_job *j) {
    pthread_mutex_lock(&j->mu);
    int cancelled = j->cancelled;
    pthread_mutex_unlock(&j->mu);
    return cancelled;
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

/* The first m bytes of needle in hay[0 .. n), or NULL (memmem, which
 * neither C nor POSIX has). */
static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return hay + i;
    return NULL;
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
    int word = -1;
    for (int i = 0; i < j->n_stop; i++) {
        size_t sl = strlen(j->stop[i]);
        const char *hit = find_bytes(j->text + from, j->len - from, j->stop[i], sl);
        if (hit && (size_t)(hit - j->text) < cut) {
            cut = (size_t)(hit - j->text);
            word = i;
        }
    }
    if (cut < j->len) {
        j->len = cut;
        j->stop_word = word;
        return 1;
    }
    size_t vis = j->len - stop_prefix_suffix(j, j->text, j->len);
    if (vis > j->visible) j->visible = vis;
    return 0;
}

/* ---- log-probabilities --------------------------------------------------------- */

/* Record i of the job: the log-probability of token id under the logits
 * row l, and the n_top largest, as log-softmax over the whole vocabulary
 * (docs/ARCHITECTURE.md, Log-probabilities): l - max - log(sum exp(l -
 * max)), the sum in double. l NULL: the prompt's first token, which has
 * none (NaN, no alternatives). The caller publishes it (n_lp, under mu). */
static void record_lp(const bn_sched *s, bn_job *j, int i, const float *l, int32_t id) {
    const int V = s->n_vocab, n_top = j->n_top;
    int32_t *top_id = j->lp_top_id + (size_t)i * (size_t)n_top;
    float *top = j->lp_top + (size_t)i * (size_t)n_top;
    j->lp[i].id = id;
    j->lp[i].start = j->lp[i].end = 0;
    if (!l) {
        j->lp[i].logprob = NAN;
        return;
    }
    float max = l[0];
    for (int m = 1; m < V; m++)
        if (l[m] > max) max = l[m];
    double sum = 0.0;
    for (int m = 0; m < V; m++) sum += (double)expf(l[m] - max);
    const double norm = (double)max + log(sum);     /* NaN or inf logits give NaN: null */
    /* the n_top largest, kept in order (largest first, equal ones by id) */
    int n = 0;
    for (int m = 0; m < V && n_top > 0; m++) {
        if (n == n_top && !(l[m] > l[top_id[n - 1]])) continue;
        int k = n < n_top ? n++ : n - 1;
        while (k > 0 && l[m] > l[top_id[k - 1]]) {
            top_id[k] = top_id[k - 1];
            k--;
        }
        top_id[k] = m;
    }
    for (int k = 0; k < n; k++) top[k] = (float)((double)l[top_id[k]] - norm);
    j->lp[i].logprob = (float)((double)l[id] - norm);
}

/* Record i of an n_probs job (llama-server's): the draw's candidates
 * and their probabilities as the sampler saw them (bn_sampler_candidates);
 * logprob holds the chosen token's probability among them, 0 when it is
 * not listed. The caller publishes it. */
static void record_probs(slot *sl, bn_job *j, int i, int32_t id) {
    int32_t *top_id = j->lp_top_id + (size_t)i * (size_t)j->n_top;
    float *top = j->lp_top + (size_t)i * (size_t)j->n_top;
    const int n = bn_sampler_candidates(sl->smp, j->n_top, top_id, top);
    for (int k = n; k < j->n_top; k++) {    /* fewer than asked: never with top-k off */
        top_id[k] = -1;
        top[k] = 0.0f;
    }
    j->lp[i].id = id;
    j->lp[i].start = j->lp[i].end = 0;
    j->lp[i].logprob = 0.0f;
    for (int k = 0; k < n; k++)
        if (top_id[k] == id) j->lp[i].logprob = top[k];
}

/* The logits a logprobs job's next bn_decode must get exact (the exact
 * head, docs/NUMERICS.md, Exact head): those its sampler reads (its largest
 * k and its penalty window), the banned EOG ids with ignore_eos, and the
 * n_top largest; every logit while an echo job decodes its prompt. Other
 * jobs tie their sampler to the context instead (slot_start). */
static void slot_exact_request(bn_sched *s, slot *sl, int every) {
    bn_job *j = sl->job;
    if (!j->logprobs) return;
    if (every) {
        bn_context_set_exact_head(sl->ctx, 0, NULL, 0, NULL, 0);
        return;
    }
    const int32_t *win;
    int n_win;
    int k = bn_sampler_logits_needed(sl->smp, &win, &n_win);
    if (k > 0 && k < j->n_top) k = j->n_top;
    int n = 0;
    if (j->ignore_eos) {
        memcpy(sl->exact_ids, s->eog, (size_t)s->n_eog * sizeof *s->eog);
        n = s->n_eog;
    }
    if (n_win > s->n_ctx + 2) n_win = s->n_ctx + 2;     /* never: the history is the context */
    memcpy(sl->exact_ids + n, win, (size_t)n_win * sizeof *win);
    n += n_win;
    if (n >= s->n_vocab) k = n = 0;     /* as many rows as the vocabulary: compute them all */
    bn_context_set_exact_head(sl->ctx, k, sl->exact_ids, n, NULL, 0);
}

/* ---- a slot's life ----------------------------------------------------------- */

/* The prompt tokens a job can take from the slot's cache: their common
 * start, less the prompt's last token, which must be decoded for its
 * logits; none when the job opts out. */
static int reusable(const slot *sl, const bn_job *j) {
    if (j->no_cache) return 0;
    int n = 0;
    while (n < sl->n_cached && n < j->n_prompt - 1 && sl->cached[n] == j->prompt[n]) n++;
    return n;
}

/* A job enters a free slot: the cache keeps the start it shares with the
 * prompt (the rest forgotten), its own sampler with the prompt in its
 * penalty history. Returns NULL, or a finish reason when it ends before it
 * starts (cancelled, or out of memory). */
static const char *slot_start(bn_sched *s, slot *sl, bn_job *j) {
    sl->job = j;
    sl->state = SLOT_PREFILL;
    sl->n_fed = 0;
    sl->hit_stop = 0;
    sl->smp = NULL;
    if (job_cancelled(j)) return "stop";
    if (sl->n_cached != bn_context_n_past(sl->ctx)) sl->n_cached = 0;  /* never, but then trust nothing */
    const int keep = reusable(sl, j);
    if (bn_context_truncate(sl->ctx, keep, NULL, 0) != 0) bn_context_reset(sl->ctx);
    sl->n_cached = bn_context_n_past(sl->ctx);
    sl->n_fed = j->n_cached = sl->n_cached;
    pthread_mutex_lock(&s->mu);
    sl->pub_cached = sl->n_cached;
    pthread_mutex_unlock(&s->mu);
    bn_sampler_params sp = j->sp;
    if (sp.repeat_last_n < 0) sp.repeat_last_n = s->n_ctx;
    sl->smp = bn_sampler_new(&sp, s->n_vocab);
    if (!sl->smp) return job_fail(j, "out of memory (sampler)", "");
    j->seed = bn_sampler_seed(sl->smp);
    /* The exact head computes the logits this sampler reads (banned EOG ids
     * with ignore_eos leave top-k others exact); a logprobs job asks before
     * each decode (slot_exact_request). */
    bn_context_set_exact_head(sl->ctx, 0, s->eog, j->ignore_eos ? s->n_eog : 0, NULL, 0);
    if (!j->logprobs) bn_context_set_sampler(sl->ctx, sl->smp);
    sl->longest = 0;
    for (int i = 0; i < j->n_stop; i++)
        if (strlen(j->stop[i]) > sl->longest) sl->longest = strlen(j->stop[i]);
    for (int i = 0; i < j->n_prompt; i++) bn_sampler_accept(sl->smp, j->prompt[i]);
    bn_detok_init(&sl->dt, s->tok);
    sl->t0 = now_ms();
    return NULL;
}

/* The slot's logits are ready: sample its next token and record it, as
 * generate.c's loop does. Returns NULL when the slot goes on (sl->next is
 * to be decoded), else the finish reason. */
static const char *slot_sample(bn_sched *s, slot *sl) {
    bn_job *j = sl->job;
    if (j->n_predict >= 0 && j->n_gen >= j->n_predict) return "length";
    const float *logits = bn_get_logits(sl->ctx, -1);
    if (j->ignore_eos) {
        memcpy(sl->logits, logits, (size_t)s->n_vocab * sizeof *logits);
        for (int i = 0; i < s->n_eog; i++) sl->logits[s->eog[i]] = -INFINITY;
        logits = sl->logits;
    }
    int32_t id = bn_sampler_sample(sl->smp, logits);
    const int rec = j->logprobs ? (j->echo ? j->n_prompt : 0) + j->n_gen : -1;
    if (j->probs && rec >= 0 && rec < j->lp_cap)   /* the draw's candidates, before accept */
        record_probs(sl, j, rec, id);
    bn_sampler_accept(sl->smp, id);
    if (bn_token_is_eog(s->tok, id)) {
        pthread_mutex_lock(&j->mu);
        j->stopped_eos = 1;
        if (j->probs && rec >= 0 && rec < j->lp_cap) {  /* llama-server lists the EOG token too */
            j->lp[rec].start = j->lp[rec].end = j->len;
            j->n_lp = rec + 1;
        }
        pthread_mutex_unlock(&j->mu);
        return "stop";
    }
    /* its record: the model's own logits (the EOG ids not banned) */
    if (!j->probs && rec >= 0 && rec < j->lp_cap) record_lp(s, j, rec, bn_get_logits(sl->ctx, -1), id);
    char piece[512];
    int np = bn_detok_push(&sl->dt, id, piece, (int)sizeof piece);
    pthread_mutex_lock(&j->mu);
    j->n_gen++;
    if (rec >= 0 && rec < j->lp_cap) {
        j->lp[rec].start = j->len;
        j->lp[rec].end = j->len + (size_t)(np > 0 ? np : 0);
        j->n_lp = rec + 1;
    }
    int hit = append_piece(j, piece, np, sl->longest);
    int cancelled = j->cancelled;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (hit) {
        sl->hit_stop = 1;
        return "stop";
    }
    if (cancelled) return "length";
    if (bn_context_n_past(sl->ctx) >= s->n_ctx) {      /* context full */
        j->ctx_full = 1;            /* read after done, which finish() publishes under mu */
        return "length";
    }
    sl->next = id;
    return NULL;
}

/* The job is over: the bytes the decoder held back (an incomplete UTF-8
 * sequence, unless a stop string already ended the text), the counts, and
 * done last, since the connection may free the job after that. */
static void slot_end(bn_sched *s, slot *sl, const char *reason) {
    bn_job *j = sl->job;
    if (sl->state == SLOT_GENERATE) {
        char piece[64];
        int np = sl->hit_stop ? 0 : bn_detok_flush(&sl->dt, piece, (int)sizeof piece);
        pthread_mutex_lock(&j->mu);
        if (append_piece(j, piece, np, sl->longest)) reason = "stop";
        j->t_gen_ms = now_ms() - sl->t0;
        pthread_mutex_unlock(&j->mu);
    }
    bn_context_set_sampler(sl->ctx, NULL);
    bn_sampler_free(sl->smp);
    sl->smp = NULL;
    pthread_mutex_lock(&s->mu);
    sl->job = NULL;
    sl->state = SLOT_FREE;
    sl->pub_cached = sl->n_cached;
    j->n_past = sl->n_cached;
    sl->last_used = ++s->clock;
    s->st.busy--;
    s->st.jobs_done++;
    s->st.prompt_tokens += (uint64_t)(sl->n_fed - j->n_cached);
    s->st.cached_tokens += (uint64_t)j->n_cached;
    s->st.gen_tokens += (uint64_t)j->n_gen;
    pthread_mutex_unlock(&s->mu);
    finish(j, reason);
}

/* The prompt is all in the cache: generation starts with its logits. */
static void slot_prompt_done(bn_sched *s, slot *sl) {
    double t = now_ms();
    sl->job->t_prompt_ms = t - sl->t0;
    sl->t0 = t;
    pthread_mutex_lock(&s->mu);     /* GET /slots reads the state */
    sl->state = SLOT_GENERATE;
    pthread_mutex_unlock(&s->mu);
    const char *reason = slot_sample(s, sl);
    if (reason) slot_end(s, sl, reason);
}

/* ---- slot actions ---------------------------------------------------------------- */

/* The file's size in bytes (llama-server's n_written / n_read), -1 if unknown. */
static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* One action, on the driver: the slots' contexts are its own, and a slot
 * it finds free stays free until it admits jobs again. */
static void run_action(bn_sched *s, bn_slot_action *a) {
    if (a->slot < 0 || a->slot >= s->n_slots) {
        a->rc = BN_SLOT_NO_SLOT;
        snprintf(a->error, sizeof a->error, "Invalid slot ID: %d (the server has %d slot%s)", a->slot,
                 s->n_slots, s->n_slots == 1 ? "" : "s");
        return;
    }
    slot *sl = &s->slots[a->slot];
    if (sl->state != SLOT_FREE) {
        a->rc = BN_SLOT_BUSY;
        snprintf(a->error, sizeof a->error, "slot %d is processing a request; try again when it is idle",
                 a->slot);
        return;
    }
    char err[256];
    const double t0 = now_ms();
    int touched = 0;                /* restored: the most recently used slot */
    if (a->op == BN_SLOT_SAVE) {
        if (bn_session_save(sl->ctx, a->path, sl->cached, sl->n_cached, err, sizeof err) != 0) {
            a->rc = BN_SLOT_FAILED;
            snprintf(a->error, sizeof a->error, "cannot save slot %d: %s", a->slot, err);
            return;
        }
        a->n_tokens = sl->n_cached;
        a->n_bytes = file_size(a->path);
    } else if (a->op == BN_SLOT_RESTORE) {
        int n = 0;
        if (bn_session_load(sl->ctx, a->path, sl->cached, s->n_ctx, &n, err, sizeof err) != 0) {
            /* the loader left the cache empty: so are its tokens */
            a->rc = BN_SLOT_REFUSED;
            snprintf(a->error, sizeof a->error, "cannot restore slot %d: %s", a->slot, err);
            n = 0;
        }
        sl->n_cached = n;
        a->n_tokens = n;
        a->n_bytes = a->rc == BN_SLOT_OK ? file_size(a->path) : 0;
        touched = a->rc == BN_SLOT_OK;
    } else {
        a->n_tokens = sl->n_cached;
        bn_context_reset(sl->ctx);
        sl->n_cached = 0;
    }
    a->ms = now_ms() - t0;
    pthread_mutex_lock(&s->mu);
    sl->pub_cached = sl->n_cached;
    if (touched) sl->last_used = ++s->clock;
    pthread_mutex_unlock(&s->mu);
}

/* Runs a list of actions, waking each waiter as its own is done (it may
 * then free it: its next is read first). */
static void run_actions(bn_sched *s, bn_slot_action *a) {
    while (a) {
        bn_slot_action *next = a->next;
        run_action(s, a);
        pthread_mutex_lock(&s->mu);
        a->done = 1;
        pthread_cond_broadcast(&s->act_cv);
        pthread_mutex_unlock(&s->mu);
        a = next;
    }
}

void bn_sched_slot_action(bn_sched *s, bn_slot_action *a) {
    a->rc = BN_SLOT_OK;
    a->error[0] = '\0';
    a->n_tokens = 0;
    a->n_bytes = 0;
    a->ms = 0;
    a->done = 0;
    a->next = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->stop) {
        a->rc = BN_SLOT_STOPPING;
        snprintf(a->error, sizeof a->error, "the server is stopping");
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (s->acts_tail) s->acts_tail->next = a;
    else s->acts = a;
    s->acts_tail = a;
    pthread_cond_signal(&s->cv);
    while (!a->done) pthread_cond_wait(&s->act_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the driver ----------------------------------------------------------------- */

/* Queued jobs into free slots; 1 when the driver should stop. */
static int admit(bn_sched *s) {
    pthread_mutex_lock(&s->mu);
    int active = 0;
    for (int i = 0; i < s->n_slots; i++) active += s->slots[i].state != SLOT_FREE;
    while (!s->stop && !s->head && !s->acts && active == 0) pthread_cond_wait(&s->cv, &s->mu);
    if (s->stop) {
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    if (s->acts) {                  /* slot actions first, on slots free before this turn */
        bn_slot_action *a = s->acts;
        s->acts = s->acts_tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_actions(s, a);
        pthread_mutex_lock(&s->mu);
    }
    bn_job *taken[64];              /* started outside the lock, a few per turn */
    slot *where[64];
    int n = 0;
    while (s->head && n < 64) {
        /* the free slot whose cache serves the job best, else the least
         * recently used (its cache is the least likely to be wanted) */
        bn_job *j = s->head;
        slot *best = NULL;
        int best_keep = -1;
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (sl->state != SLOT_FREE || (j->id_slot >= 0 && j->id_slot != i)) continue;
            int keep = reusable(sl, j);
            if (keep > best_keep || (keep == best_keep && sl->last_used < best->last_used)) {
                best = sl;
                best_keep = keep;
            }
        }
        if (!best) break;
        s->head = j->queue_next;
        if (!s->head) s->tail = NULL;
        s->st.queued--;
        s->st.busy++;
        best->state = SLOT_PREFILL;
        best->job = j;
        j->slot = (int)(best - s->slots);
        taken[n] = j;
        where[n++] = best;
    }
    pthread_mutex_unlock(&s->mu);
    for (int k = 0; k < n; k++) {
        const char *reason = slot_start(s, where[k], taken[k]);
        if (reason) slot_end(s, where[k], reason);
    }
    return 0;
}

/* Decodes prompts: while others generate, PREFILL_CHUNK tokens in all
 * (short prompts that wait together join in one turn); when nobody
 * generates, every waiting prompt whole. */
static void prefill(bn_sched *s) {
    int budget = INT_MAX;
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state == SLOT_GENERATE) budget = PREFILL_CHUNK;
    for (int i = 0; i < s->n_slots && budget > 0; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_PREFILL) continue;
        bn_job *j = sl->job;
        if (job_cancelled(j)) {
            slot_end(s, sl, "stop");
            continue;
        }
        int n = j->n_prompt - sl->n_fed;
        if (n > budget) n = budget;
        const int echo = j->logprobs && j->echo;
        if (echo && n > s->out_rows) n = s->out_rows;  /* every row's logits kept */
        budget -= n;
        char err[256];
        double t0 = now_ms();
        slot_exact_request(s, sl, echo);
        int rc = bn_decode(sl->ctx, j->prompt + sl->n_fed, n, echo, err, sizeof err);
        pthread_mutex_lock(&s->mu);
        s->st.prompt_ms += now_ms() - t0;
        pthread_mutex_unlock(&s->mu);
        if (rc != 0) {
            slot_end(s, sl, job_fail(j, "decoding the prompt: ", err));
            continue;
        }
        if (echo) {                 /* row r predicts prompt token n_fed + r + 1 */
            if (sl->n_fed == 0) record_lp(s, j, 0, NULL, j->prompt[0]);
            for (int r = 0; r < n && sl->n_fed + r + 1 < j->n_prompt; r++) {
                const int t = sl->n_fed + r + 1;
                record_lp(s, j, t, bn_get_logits(sl->ctx, r), j->prompt[t]);
            }
            pthread_mutex_lock(&j->mu);
            j->n_lp = sl->n_fed + n + 1 < j->n_prompt ? sl->n_fed + n + 1 : j->n_prompt;
            pthread_mutex_unlock(&j->mu);
        }
        memcpy(sl->cached + sl->n_cached, j->prompt + sl->n_fed, (size_t)n * sizeof *sl->cached);
        sl->n_cached += n;
        sl->n_fed += n;
        if (sl->n_fed == j->n_prompt) slot_prompt_done(s, sl);
    }
}

/* One token of every generating slot in one forward pass, then each samples. */
static void step(bn_sched *s) {
    int n = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_GENERATE) continue;
        slot_exact_request(s, sl, 0);
        s->batch[n] = sl->ctx;
        s->batch_tok[n] = sl->next;
        s->batch_slot[n++] = i;
    }
    if (n == 0) return;
    char err[256];
    double t0 = now_ms();
    for (int r0 = 0; r0 < n; r0 += s->step_rows) {    /* one pass, unless slots > n_ctx */
        int rows = n - r0 < s->step_rows ? n - r0 : s->step_rows;
        int rc = bn_decode_multi(s->batch + r0, s->batch_tok + r0, rows, err, sizeof err);
        pthread_mutex_lock(&s->mu);
        s->st.passes++;
        pthread_mutex_unlock(&s->mu);
        for (int r = r0; r < r0 + rows; r++) {
            slot *sl = &s->slots[s->batch_slot[r]];
            if (rc == 0) sl->cached[sl->n_cached++] = s->batch_tok[r];
            const char *reason = rc == 0 ? slot_sample(s, sl) : job_fail(sl->job, "decoding: ", err);
            if (reason) slot_end(s, sl, reason);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->st.gen_ms += now_ms() - t0;
    pthread_mutex_unlock(&s->mu);
}

static void *driver(void *arg) {
    bn_sched *s = arg;
    while (!admit(s)) {
        prefill(s);
        step(s);
    }
    /* stopping: the running jobs end as they are, the queued ones cancelled */
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].state != SLOT_FREE) slot_end(s, &s->slots[i], "stop");
    pthread_mutex_lock(&s->mu);     /* actions queued before the stop: answered */
    for (bn_slot_action *a = s->acts; a; a = a->next) {
        a->rc = BN_SLOT_STOPPING;
        snprintf(a->error, sizeof a->error, "the server is stopping");
        a->done = 1;
    }
    s->acts = s->acts_tail = NULL;
    pthread_cond_broadcast(&s->act_cv);
    pthread_mutex_unlock(&s->mu);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bn_job *j = s->head;
        if (j) {
            s->head = j->queue_next;
            if (!s->head) s->tail = NULL;
            s->st.queued--;
        }
        pthread_mutex_unlock(&s->mu);
        if (!j) return NULL;
        pthread_mutex_lock(&j->mu);
        j->cancelled = 1;
        pthread_mutex_unlock(&j->mu);
        finish(j, "stop");
    }
}

int bn_sched_n_slots(const bn_sched *s) {
    return s->n_slots;
}

void bn_sched_slot_get(bn_sched *s, int i, bn_sched_slot_info *out) {
    memset(out, 0, sizeof *out);
    out->id = i;
    out->n_ctx = s->n_ctx;
    out->n_probs = -1;
    if (i < 0 || i >= s->n_slots) return;
    /* under mu a running job cannot end (slot_end clears sl->job first) */
    pthread_mutex_lock(&s->mu);
    const slot *sl = &s->slots[i];
    out->n_cached = sl->pub_cached;
    bn_job *j = sl->job;
    if (j) {
        out->state = sl->state == SLOT_GENERATE ? 2 : 1;
        out->task = j->id;
        out->n_prompt = j->n_prompt;
        out->n_predict = j->n_predict;
        out->ignore_eos = j->ignore_eos;
        out->n_probs = j->logprobs ? j->n_top : -1;
        out->sp = j->sp;
        pthread_mutex_lock(&j->mu);
        out->n_decoded = j->n_gen;
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&s->mu);
}

void bn_sched_stats_get(bn_sched *s, bn_sched_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

bn_sched *bn_sched_new(bn_model *m, int n_slots, int n_ctx, int n_threads, int type_k, int type_v,
                       char *err, size_t errlen) {
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
    pthread_cond_init(&s->act_cv, NULL);
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
    s->batch = calloc((size_t)n_slots, sizeof *s->batch);
    s->batch_tok = calloc((size_t)n_slots, sizeof *s->batch_tok);
    s->batch_slot = calloc((size_t)n_slots, sizeof *s->batch_slot);
    if (!s->eog || !s->slots || !s->batch || !s->batch_tok || !s->batch_slot) {
        snprintf(err, errlen, "out of memory");
        bn_sched_free(s);
        return NULL;
    }
    int k = 0;
    for (int32_t id = 0; id < s->n_vocab; id++)
        if (bn_token_is_eog(s->tok, id)) s->eog[k++] = id;

    /* Slot 0's context owns the scratch and the pool, sized for a step of
     * every slot (n_outputs_max rows of logits); the others are sequences
     * on it. */
    bn_context_params cp = bn_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    cp.n_outputs_max = n_slots > ECHO_ROWS ? n_slots : ECHO_ROWS;
    cp.type_k = type_k;             /* the sequences take slot 0's types */
    cp.type_v = type_v;
    if (cp.n_batch < n_slots) cp.n_batch = n_slots;
    char e[256];
    for (int i = 0; i < n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->ctx = i == 0 ? bn_context_new(m, &cp, e, sizeof e)
                         : bn_context_new_sequence(s->slots[0].ctx, e, sizeof e);
        sl->logits = malloc((size_t)s->n_vocab * sizeof *sl->logits);
        sl->cached = sl->ctx ? malloc((size_t)bn_context_n_ctx(sl->ctx) * sizeof *sl->cached) : NULL;
        sl->exact_ids = sl->ctx ? malloc(((size_t)s->n_eog + (size_t)bn_context_n_ctx(sl->ctx) + 2) *
                                         sizeof *sl->exact_ids)
                                : NULL;
        if (!sl->ctx || !sl->logits || !sl->cached || !sl->exact_ids) {
            snprintf(err, errlen, "slot %d: %s", i, sl->ctx ? "out of memory" : e);
            bn_sched_free(s);
            return NULL;
        }
    }
    s->n_ctx = bn_context_n_ctx(s->slots[0].ctx);
    /* a context keeps at most n_ctx rows of logits (context.c) */
    s->step_rows = n_slots < s->n_ctx ? n_slots : s->n_ctx;
    s->out_rows = ECHO_ROWS < s->n_ctx ? ECHO_ROWS : s->n_ctx;
    /* the driver decodes: give it the stack bn_decode asks for (bitnet.h) */
    pthread_attr_t attr;
    int started = pthread_attr_init(&attr) == 0;
    if (started) {
        pthread_attr_setstacksize(&attr, BN_DECODE_STACK);
        started = pthread_create(&s->driver, &attr, driver, s) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!started) {
        snprintf(err, errlen, "cannot start the scheduler thread");
        bn_sched_free(s);
        return NULL;
    }
    s->started = 1;
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
    if (s->started) pthread_join(s->driver, NULL);
    /* the sequences before the context whose scratch they share */
    for (int i = s->slots ? s->n_slots - 1 : -1; i >= 0; i--) {
        bn_context_free(s->slots[i].ctx);
        free(s->slots[i].logits);
        free(s->slots[i].cached);
        free(s->slots[i].exact_ids);
    }
    free(s->slots);
    free(s->batch);
    free(s->batch_tok);
    free(s->batch_slot);
    free(s->eog);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->act_cv);
    free(s);
}
