/* `bitnet serve`: the listening socket, one thread per connection (capped),
 * request reading with size limits and a deadline, routing, and the
 * OpenAI-shaped endpoints. Generation goes through the scheduler
 * (scheduler.h); everything else is answered on the connection's thread.
 * Every bad request gets {"error":{"message","type","code"}} with its 4xx
 * status and touches nothing but its own connection. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chat_page.h"
#include "http.h"
#include "json.h"
#include "logprobs.h"
#include "native.h"
#include "scheduler.h"
#include "serve.h"

/* Where send() cannot be told to keep SIGPIPE quiet (macOS), bn_serve
 * ignores the signal for the whole process instead. */
#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

#define MAX_STOP 16                 /* stop strings per request */
#define MAX_STOP_LEN 256

typedef struct server {
    bn_model *model;
    const bn_tokenizer *tok;
    bn_sched *sched;
    bn_serve_params p;
    bn_http_limits lim;
    int listen_fd;
    time_t created;

    pthread_mutex_t mu;             /* the fields below */
    pthread_cond_t cv;              /* signalled when a connection ends */
    int *conn_fds;                  /* open connections (-1: free), max_conns of them */
    int n_conns;
    uint64_t requests, errors, completions, id_seq;
} server;

typedef struct conn {
    server *srv;
    int fd, idx;
    char *buf;                      /* head + body of the current request */
    size_t len, cap;
    int keep_alive;
} conn;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int bn_serve_key_equal(const char *given, size_t given_len, const char *key) {
    size_t key_len = strlen(key);
    unsigned diff = given_len != key_len;
    for (size_t i = 0; i < given_len; i++)
        diff |= (unsigned char)given[i] ^ (unsigned char)(key_len ? key[i % key_len] : 0);
    return diff == 0;
}

/* ---- writing ------------------------------------------------------------------------ */
static int send_all(conn *c, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;      /* closed, or the send timeout passed */
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void count_response(conn *c, int status) {
    pthread_mutex_lock(&c->srv->mu);
    c->srv->requests++;
    if (status >= 400) c->srv->errors++;
    pthread_mutex_unlock(&c->srv->mu);
}

static int respond(conn *c, int status, const char *type, const char *body, size_t n,
                   const char *extra) {
    char head[512];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     status, bn_http_status_text(status), type, n, extra ? extra : "",
                     c->keep_alive ? "" : "Connection: close\r\n");
    count_response(c, status);
    if (send_all(c, head, (size_t)h) != 0 || send_all(c, body, n) != 0) {
        c->keep_alive = 0;
        return -1;
    }
    return 0;
}

static int respond_json(conn *c, int status, bn_jbuf *b) {
    if (b->oom) {
        static const char oom[] =
            "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"code\":500}}";
        return respond(c, 500, "application/json", oom, sizeof oom - 1, NULL);
    }
    return respond(c, status, "application/json", b->data, b->len, NULL);
}

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 500: return "server_error";
    case 501: return "not_supported_error";
    case 503: return "unavailable_error";
    default: return "invalid_request_error";
    }
}

static void error_json(bn_jbuf *b, int status, const char *msg) {
    bn_jbuf_puts(b, "{\"error\":{\"message\":");
    bn_jbuf_str(b, msg, strlen(msg));
    bn_jbuf_printf(b, ",\"type\":\"%s\",\"code\":%d}}", error_type(status), status);
}

static int respond_error(conn *c, int status, const char *msg, const char *extra) {
    bn_jbuf b = {0};
    error_json(&b, status, msg);
    int rc = b.oom ? respond_json(c, 500, &b)
                   : respond(c, status, "application/json", b.data, b.len, extra);
    bn_jbuf_free(&b);
    return rc;
}

/* ---- reading ------------------------------------------------------------------------ */
/* Waits for bytes until deadline_ms. 1: some arrived, 0: timeout, -1: closed. */
static int read_some(conn *c, double deadline_ms) {
    for (;;) {
        if (g_stop) return -1;
        double left = deadline_ms - now_ms();
        if (left <= 0) return 0;
        struct pollfd pf = {c->fd, POLLIN, 0};
        int pr = poll(&pf, 1, left > 250 ? 250 : (int)left + 1);
        if (pr < 0 && errno != EINTR) return -1;
        if (pr <= 0) continue;
        if (c->len == c->cap) return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) return -1;
        c->len += (size_t)r;
        return 1;
    }
}

/* Reads one whole request (head and body) into c->buf. Returns 1 with req
 * filled; 0 when the connection should close quietly (closed, or idle
 * past the deadline before any byte); -1 after an error was answered. */
static int read_request(conn *c, bn_http_request *req) {
    server *s = c->srv;
    double deadline = now_ms() + 1e3 * s->p.timeout_s;
    int sent_continue = 0;
    for (;;) {
        int pr = c->len ? bn_http_parse(c->buf, c->len, &s->lim, req) : 0;
        if (pr < 0) {
            c->keep_alive = 0;
            respond_error(c, req->status, req->error, NULL);
            return -1;
        }
        if (pr > 0) {
            size_t total = req->head_len + req->content_length;
            if (c->len >= total) return 1;
            if (req->expect_continue && !sent_continue) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                if (send_all(c, cont, sizeof cont - 1) != 0) return 0;
                sent_continue = 1;
            }
        }
        int r = read_some(c, deadline);
        if (r < 0) return 0;
        if (r == 0) {
            if (c->len == 0) return 0;  /* idle keep-alive connection */
            c->keep_alive = 0;
            respond_error(c, 408, "request not received in time", NULL);
            return -1;
        }
    }
}

/* ---- request fields ----------------------------------------------------------------- */
typedef struct req_ctx {
    conn *c;
    bn_json_doc doc;
    const bn_json *root;
    char msg[320];                  /* why the request is bad */
} req_ctx;

static int bad_field(req_ctx *r, const char *key, const char *what) {
    snprintf(r->msg, sizeof r->msg, "'%s' %s", key, what);
    return -1;
}

/* A number field in [lo, hi]: 0 (absent or null: *out untouched), -1 bad. */
static int get_num(req_ctx *r, const char *key, double lo, double hi, int integer, double *out) {
    const bn_json *v = bn_json_get(&r->doc, r->root, key);
    if (!v || v->type == BN_JSON_NULL) return 0;
    if (v->type != BN_JSON_NUMBER) return bad_field(r, key, "must be a number");
    if (integer && v->num != floor(v->num)) return bad_field(r, key, "must be an integer");
    if (v->num < lo || v->num > hi) {
        snprintf(r->msg, sizeof r->msg, "'%s' is out of range (%g to %g)", key, lo, hi);
        return -1;
    }
    *out = v->num;
    return 0;
}

static int get_bool(req_ctx *r, const char *key, int *out) {
    const bn_json *v = bn_json_get(&r->doc, r->root, key);
    if (!v || v->type == BN_JSON_NULL) return 0;
    if (v->type != BN_JSON_TRUE && v->type != BN_JSON_FALSE) return bad_field(r, key, "must be true or false");
    *out = v->type == BN_JSON_TRUE;
    return 0;
}

static int get_float(req_ctx *r, const char *key, double lo, double hi, float *out) {
    double d = (double)*out;
    if (get_num(r, key, lo, hi, 0, &d) != 0) return -1;
    *out = (float)d;
    return 0;
}

static int get_int(req_ctx *r, const char *key, double lo, double hi, int *out) {
    double d = *out;
    if (get_num(r, key, lo, hi, 1, &d) != 0) return -1;
    *out = (int)d;
    return 0;
}

/* The generation options shared by both completion endpoints. */
typedef struct gen_opts {
    bn_sampler_params sp;
    int n_predict, ignore_eos, stream;
    int truncate;                   /* chat: drop the oldest messages to fit (default 1) */
    int cache_prompt;               /* reuse the slot's cached prompt start (default 1) */
    const char *stop[MAX_STOP];
    int n_stop;
    int logprobs, n_top;            /* log-probabilities, and alternatives per token */
    int echo;                       /* completions: the prompt before the text */
} gen_opts;

static int parse_gen_opts(req_ctx *r, gen_opts *g) {
    g->sp = bn_sampler_default_params();
    g->n_predict = -1;
    g->ignore_eos = g->stream = 0;
    g->truncate = 1;
    g->cache_prompt = 1;
    g->n_stop = 0;
    double seed = -1;
    int n = 1;
    if (get_int(r, "max_tokens", -1, 1 << 30, &g->n_predict) != 0 ||
        get_int(r, "max_completion_tokens", -1, 1 << 30, &g->n_predict) != 0 ||
        get_int(r, "n_predict", -1, 1 << 30, &g->n_predict) != 0 ||
        get_float(r, "temperature", -1e6, 1e6, &g->sp.temp) != 0 ||
        get_float(r, "top_p", 0, 1, &g->sp.top_p) != 0 ||
        get_int(r, "top_k", -1, 1 << 30, &g->sp.top_k) != 0 ||
        get_float(r, "min_p", 0, 1, &g->sp.min_p) != 0 ||
        get_float(r, "presence_penalty", -1e6, 1e6, &g->sp.presence_penalty) != 0 ||
        get_float(r, "frequency_penalty", -1e6, 1e6, &g->sp.freq_penalty) != 0 ||
        get_float(r, "repeat_penalty", 1e-6, 1e6, &g->sp.repeat_penalty) != 0 ||
        get_int(r, "repeat_last_n", -1, 1 << 20, &g->sp.repeat_last_n) != 0 ||
        get_num(r, "seed", -1, (double)BN_SEED_RANDOM - 1, 1, &seed) != 0 ||
        get_int(r, "n", 1, 1, &n) != 0 ||
        get_bool(r, "ignore_eos", &g->ignore_eos) != 0 || get_bool(r, "stream", &g->stream) != 0 ||
        get_bool(r, "truncate", &g->truncate) != 0 || get_bool(r, "cache_prompt", &g->cache_prompt) != 0)
        return -1;
    g->sp.seed = seed < 0 ? BN_SEED_RANDOM : (uint32_t)seed;
    const bn_json *st = bn_json_get(&r->doc, r->root, "stop");
    if (st && st->type == BN_JSON_STRING) {
        if (st->len == 0 || st->len > MAX_STOP_LEN || memchr(st->str, 0, st->len))
            return bad_field(r, "stop", "strings must be 1 to 256 bytes without NUL");
        g->stop[g->n_stop++] = st->str;
    } else if (st && st->type == BN_JSON_ARRAY) {
        for (const bn_json *e = bn_json_first(&r->doc, st); e; e = bn_json_next(&r->doc, e)) {
            if (e->type != BN_JSON_STRING) return bad_field(r, "stop", "must hold strings");
            if (e->len == 0 || e->len > MAX_STOP_LEN || memchr(e->str, 0, e->len))
                return bad_field(r, "stop", "strings must be 1 to 256 bytes without NUL");
            if (g->n_stop == MAX_STOP) return bad_field(r, "stop", "holds more than 16 strings");
            g->stop[g->n_stop++] = e->str;
        }
    } else if (st && st->type != BN_JSON_NULL) {
        return bad_field(r, "stop", "must be a string or an array of strings");
    }
    return 0;
}

/* OpenAI's log-probability options. Chat: "logprobs" true/false and
 * "top_logprobs" 0..20, which needs logprobs. Completions: "logprobs" N,
 * the alternatives per token (0..20: OpenAI allows 5, llama-server more),
 * and "echo". */
static int parse_logprobs(req_ctx *r, int chat, gen_opts *g) {
    g->logprobs = g->n_top = g->echo = 0;
    if (chat) {
        const bn_json *tl = bn_json_get(&r->doc, r->root, "top_logprobs");
        if (get_bool(r, "logprobs", &g->logprobs) != 0 ||
            get_int(r, "top_logprobs", 0, BN_SCHED_MAX_TOP, &g->n_top) != 0)
            return -1;
        if (tl && tl->type != BN_JSON_NULL && !g->logprobs)
            return bad_field(r, "top_logprobs", "needs 'logprobs' set to true");
        return 0;
    }
    const bn_json *lp = bn_json_get(&r->doc, r->root, "logprobs");
    if (lp && (lp->type == BN_JSON_TRUE || lp->type == BN_JSON_FALSE)) {
        g->logprobs = lp->type == BN_JSON_TRUE;     /* as a boolean: the tokens' own only */
    } else {
        int n = -1;
        if (get_int(r, "logprobs", 0, BN_SCHED_MAX_TOP, &n) != 0) return -1;
        g->logprobs = n >= 0;
        g->n_top = n >= 0 ? n : 0;
    }
    if (get_bool(r, "echo", &g->echo) != 0) return -1;
    return 0;
}

/* Tokenizes into a malloc'd array (*n ids); NULL on failure. */
static int32_t *tokenize(const bn_tokenizer *t, const char *text, size_t len, int add_bos,
                         int parse_special, int *n) {
    if (len > (1u << 28)) return NULL;
    int cap = (int)len + 2;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return NULL;
    int k = bn_tokenize(t, text, len, add_bos, parse_special, ids, cap);
    if (k > cap) {
        int32_t *more = realloc(ids, (size_t)k * sizeof *ids);
        if (!more) { free(ids); return NULL; }
        ids = more;
        k = bn_tokenize(t, text, len, add_bos, parse_special, ids, k);
    }
    if (k < 0) { free(ids); return NULL; }
    *n = k;
    return ids;
}

/* An array of token ids from a JSON array; NULL with r->msg when bad. */
static int32_t *json_ids(req_ctx *r, const bn_json *arr, const char *key, int *n) {
    int32_t *ids = malloc(((size_t)arr->n + 1) * sizeof *ids);
    if (!ids) {
        snprintf(r->msg, sizeof r->msg, "out of memory");
        return NULL;
    }
    int k = 0, n_vocab = bn_vocab_size(r->c->srv->tok);
    for (const bn_json *e = bn_json_first(&r->doc, arr); e; e = bn_json_next(&r->doc, e)) {
        if (e->type != BN_JSON_NUMBER || e->num != floor(e->num) || e->num < 0 || e->num >= n_vocab) {
            free(ids);
            snprintf(r->msg, sizeof r->msg, "'%s' must hold token ids from 0 to %d", key, n_vocab - 1);
            return NULL;
        }
        ids[k++] = (int32_t)e->num;
    }
    *n = k;
    return ids;
}

/* The text of a chat message's content: a string, or an array of
 * {"type":"text","text":...} parts, joined. Written to *out (malloc'd). */
static int message_text(req_ctx *r, const bn_json *content, char **out) {
    if (content && content->type == BN_JSON_STRING) {
        if (memchr(content->str, 0, content->len)) return bad_field(r, "content", "must not hold NUL");
        *out = strdup(content->str);
        return *out ? 0 : bad_field(r, "content", "is too large (out of memory)");
    }
    if (!content || content->type != BN_JSON_ARRAY)
        return bad_field(r, "content", "must be a string or an array of text parts");
    bn_jbuf b = {0};
    for (const bn_json *e = bn_json_first(&r->doc, content); e; e = bn_json_next(&r->doc, e)) {
        const bn_json *ty = bn_json_get(&r->doc, e, "type");
        const bn_json *tx = bn_json_get(&r->doc, e, "text");
        if (!ty || ty->type != BN_JSON_STRING || strcmp(ty->str, "text") != 0 || !tx ||
            tx->type != BN_JSON_STRING || memchr(tx->str, 0, tx->len)) {
            bn_jbuf_free(&b);
            return bad_field(r, "content", "parts must be {\"type\":\"text\",\"text\":STRING}");
        }
        bn_jbuf_raw(&b, tx->str, tx->len);
    }
    bn_jbuf_raw(&b, "", 0);
    if (b.oom || !b.data) {
        bn_jbuf_free(&b);
        *out = strdup("");
        return *out ? 0 : -1;
    }
    *out = b.data;
    return 0;
}

/* A message's role, or -1 (with the error in r->msg). */
static int message_role(req_ctx *r, const bn_json *m) {
    const bn_json *role = bn_json_get(&r->doc, m, "role");
    if (m->type != BN_JSON_OBJECT || !role || role->type != BN_JSON_STRING) {
        bad_field(r, "messages", "must hold objects with a string 'role'");
        return -1;
    }
    if (strcmp(role->str, "system") == 0 || strcmp(role->str, "developer") == 0) return BN_ROLE_SYSTEM;
    if (strcmp(role->str, "user") == 0) return BN_ROLE_USER;
    if (strcmp(role->str, "assistant") == 0) return BN_ROLE_ASSISTANT;
    snprintf(r->msg, sizeof r->msg, "unknown role '%.64s' (expected system, user or assistant)", role->str);
    return -1;
}

/* The chat prompt: the messages in the model's chat format, the assistant's
 * reply opened after the last (user) message, leaving out the `skip`
 * oldest messages after a leading system message (never the last one).
 * *user_first (when not NULL): whether the first message kept after the
 * system one is the user's, as chat templates expect. */
static int32_t *chat_prompt(req_ctx *r, int skip, int *n, int *user_first) {
    const bn_json *msgs = bn_json_get(&r->doc, r->root, "messages");
    if (!msgs || msgs->type != BN_JSON_ARRAY || msgs->n == 0) {
        bad_field(r, "messages", "must be a non-empty array");
        return NULL;
    }
    char err[256], *text = NULL;
    bn_chat *chat = NULL;
    int32_t *ids = NULL;
    const bn_json *m = bn_json_first(&r->doc, msgs);
    int ro = message_role(r, m);
    if (ro < 0) return NULL;
    const int has_system = ro == BN_ROLE_SYSTEM;
    if (has_system) {
        if (m->next < 0) {
            snprintf(r->msg, sizeof r->msg, "the last message must be the user's");
            return NULL;
        }
        if (message_text(r, bn_json_get(&r->doc, m, "content"), &text) != 0) return NULL;
        m = bn_json_next(&r->doc, m);
    }
    chat = bn_chat_new_template(r->c->srv->tok, r->c->srv->p.chat_template, text, err, sizeof err);
    free(text);
    if (!chat) {
        snprintf(r->msg, sizeof r->msg, "this model cannot chat: %s", err);
        return NULL;
    }
    int first_kept = 1;
    for (int k = 0; m; m = bn_json_next(&r->doc, m), k++) {
        const int is_last = m->next < 0;
        if (k < skip && !is_last) continue;
        if ((ro = message_role(r, m)) < 0) goto out;
        if (first_kept && user_first) *user_first = ro == BN_ROLE_USER;
        first_kept = 0;
        if (is_last && ro != BN_ROLE_USER) {
            snprintf(r->msg, sizeof r->msg, "the last message must be the user's");
            goto out;
        }
        if (message_text(r, bn_json_get(&r->doc, m, "content"), &text) != 0) goto out;
        int rc = is_last ? bn_chat_add_user_turn(chat, text, err, sizeof err)
                         : bn_chat_add_message(chat, (bn_chat_role)ro, text, err, sizeof err);
        free(text);
        if (rc != 0) {
            snprintf(r->msg, sizeof r->msg, "chat: %s", err);
            goto out;
        }
    }
    *n = bn_chat_n_pending(chat);
    ids = malloc(((size_t)*n + 1) * sizeof *ids);
    if (!ids) snprintf(r->msg, sizeof r->msg, "out of memory");
    else memcpy(ids, bn_chat_pending(chat), (size_t)*n * sizeof *ids);
out:
    bn_chat_free(chat);
    return ids;
}

/* A conversation longer than the slot's context (less room for the reply)
 * keeps going: the oldest messages after the system one are dropped until
 * it fits, the kept part starting with a user message (the CLI's chat
 * shifts its context instead; docs/CHAT.md, Context shift). The fewest
 * dropped that fit is found by bisection, since dropping more never makes
 * the prompt longer. Returns the new prompt (ids freed) and sets *dropped,
 * or returns ids unchanged when nothing fits but the untruncated one. */
static int32_t *fit_chat(req_ctx *r, int32_t *ids, int *n, int limit, int *dropped) {
    const bn_json *msgs = bn_json_get(&r->doc, r->root, "messages");
    const bn_json *m0 = bn_json_first(&r->doc, msgs);
    int total = msgs->n - (message_role(r, m0) == BN_ROLE_SYSTEM);   /* validated already */
    int lo = 1, hi = total - 1;     /* hi: only the last message left */
    int32_t *best = NULL;
    int best_n = 0, best_skip = 0;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, mn = 0, user_first = 1;
        int32_t *t = chat_prompt(r, mid, &mn, &user_first);
        if (!t) break;
        /* a kept part that opens with the assistant's message: one more */
        while (!user_first && mid < hi) {
            free(t);
            t = chat_prompt(r, ++mid, &mn, &user_first);
            if (!t) break;
        }
        if (!t) break;
        if (mn <= limit && user_first) {
            free(best);
            best = t;
            best_n = mn;
            best_skip = mid;
            hi = mid - 1;
        } else {
            free(t);
            lo = mid + 1;
        }
    }
    if (!best) return ids;
    free(ids);
    *n = best_n;
    *dropped = best_skip;
    return best;
}

/* ---- completions ------------------------------------------------------------------- */
/* OpenAI's usage counts, then llama-server's "timings" (native.c). */
static void usage_json(bn_jbuf *b, const bn_job *j) {
    /* usage counts the whole prompt, with OpenAI's cached_tokens */
    bn_jbuf_printf(b, "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
                      "\"prompt_tokens_details\":{\"cached_tokens\":%d}},",
                   j->n_prompt, j->n_gen, j->n_prompt + j->n_gen, j->n_cached);
    bn_timings_json(b, j);
    if (j->n_dropped > 0)           /* llama-server's flag, and how many messages went */
        bn_jbuf_printf(b, ",\"truncated\":true,\"messages_dropped\":%d", j->n_dropped);
}

/* One SSE event with the text piece (or the final one with finish), and
 * the log-probabilities of records [lp_from, lp_to) when the job has them. */
static void chunk_json(bn_jbuf *b, server *s, int chat, uint64_t id, const char *text, size_t n,
                       const char *finish, const bn_job *j, int first, int lp_from, int lp_to, bn_text_pos *pos) {
    bn_jbuf_puts(b, "data: ");
    bn_jbuf_printf(b, "{\"id\":\"%s-%llu\",\"object\":\"%s\",\"created\":%lld,\"model\":",
                   chat ? "chatcmpl" : "cmpl", (unsigned long long)id,
                   chat ? "chat.completion.chunk" : "text_completion", (long long)s->created);
    bn_jbuf_str(b, s->p.model_name, strlen(s->p.model_name));
    bn_jbuf_puts(b, ",\"choices\":[{\"index\":0,");
    if (chat) {
        bn_jbuf_puts(b, "\"delta\":{");
        if (first) bn_jbuf_puts(b, "\"role\":\"assistant\",");
        if (!finish || n) {
            bn_jbuf_puts(b, "\"content\":");
            bn_jbuf_str(b, text, n);
        } else if (first) {
            b->len--;               /* drop the comma after role */
        }
        bn_jbuf_puts(b, "},");
        if (j->logprobs && !finish) bn_lp_chat_json(b, s->tok, j, lp_from, lp_to);
        else bn_jbuf_puts(b, "\"logprobs\":null");
        bn_jbuf_puts(b, ",");
    } else {
        bn_jbuf_puts(b, "\"text\":");
        bn_jbuf_str(b, text, n);
        bn_jbuf_puts(b, ",");
        if (j->logprobs && !finish) bn_lp_completion_json(b, s->tok, j, lp_from, lp_to, pos);
        else bn_jbuf_puts(b, "\"logprobs\":null");
        bn_jbuf_puts(b, ",");
    }
    if (finish) bn_jbuf_printf(b, "\"finish_reason\":\"%s\"}]", finish);
    else bn_jbuf_puts(b, "\"finish_reason\":null}]");
    if (finish) {
        bn_jbuf_puts(b, ",");
        usage_json(b, j);
    }
    bn_jbuf_puts(b, "}\n\n");
}

/* Waits until the job has news (more visible text or done); while waiting,
 * notices a client that hung up and cancels the job. */
/* Whether the client has closed its end while its request runs: POLLRDHUP
 * where the system has it (Linux), else a readable socket whose peek finds
 * the end of the stream (a pipelined next request is data, not an end). */
static int peer_gone(int fd) {
#ifdef POLLRDHUP
    struct pollfd pf = {fd, POLLRDHUP, 0};
    return poll(&pf, 1, 0) > 0 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
#else
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 0) <= 0) return 0;
    if (pf.revents & (POLLHUP | POLLERR)) return 1;
    char b;
    return (pf.revents & POLLIN) && recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
#endif
}

static void wait_news(conn *c, bn_job *j, size_t seen) {
    while (!j->done && j->visible == seen) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
        if (!j->done && j->visible == seen && !j->cancelled) {
            if (g_stop || peer_gone(c->fd)) j->cancelled = 1;   /* the worker stops at its next token */
        }
    }
}

/* Both OpenAI endpoints, and with native llama-server's POST /completion
 * (native.c shapes its request and response; the generation is the same). */
static void handle_completion(conn *c, req_ctx *r, int chat, int native) {
    server *s = c->srv;
    gen_opts g;
    bn_native_req nat = {0, -1};
    const bn_json *prompt_node = NULL;
    int32_t *ids = NULL;
    int n = 0;
    if (parse_gen_opts(r, &g) != 0) goto bad;
    if (native ? bn_native_parse(&r->doc, r->root, s->p.n_slots, &nat, r->msg, sizeof r->msg) != 0
               : parse_logprobs(r, chat, &g) != 0)
        goto bad;
    if (native) {                   /* n_probs: the records, shaped as llama-server's */
        g.logprobs = g.echo = 0;
        g.n_top = nat.n_probs;
    }
    const int n_ctx = bn_sched_n_ctx(s->sched);
    int dropped = 0;
    if (chat) {
        if (!(ids = chat_prompt(r, 0, &n, NULL))) goto bad;
        /* room for the reply: max_tokens (at most half the context), else a quarter */
        const int room = g.n_predict > 0 ? (g.n_predict < n_ctx / 2 ? g.n_predict : n_ctx / 2) : n_ctx / 4;
        if (g.truncate && n > n_ctx - room) ids = fit_chat(r, ids, &n, n_ctx - room, &dropped);
    } else {
        const bn_json *pr = bn_json_get(&r->doc, r->root, "prompt");
        if (pr && pr->type == BN_JSON_ARRAY && pr->n == 1 &&
            (bn_json_first(&r->doc, pr)->type == BN_JSON_STRING ||
             bn_json_first(&r->doc, pr)->type == BN_JSON_ARRAY))
            pr = bn_json_first(&r->doc, pr);    /* ["text"] or [[ids]]: one prompt */
        prompt_node = pr;
        if (pr && pr->type == BN_JSON_ARRAY && pr->n > 1 && (bn_json_first(&r->doc, pr)->type == BN_JSON_STRING ||
                                                            bn_json_first(&r->doc, pr)->type == BN_JSON_ARRAY)) {
            snprintf(r->msg, sizeof r->msg, "'prompt' holds %d prompts: send one per request", pr->n);
            goto bad;
        }
        if (pr && pr->type == BN_JSON_STRING) {
            ids = tokenize(s->tok, pr->str, pr->len, bn_add_bos(s->tok), 1, &n);
            if (!ids) {
                snprintf(r->msg, sizeof r->msg, "cannot tokenize the prompt");
                goto bad;
            }
        } else if (pr && pr->type == BN_JSON_ARRAY) {
            if (!(ids = json_ids(r, pr, "prompt", &n))) goto bad;
        } else {
            snprintf(r->msg, sizeof r->msg, "'prompt' must be a string, [string] or an array of token ids");
            goto bad;
        }
    }
    if (n == 0) {
        snprintf(r->msg, sizeof r->msg, "empty prompt");
        goto bad;
    }
    if (n > n_ctx) {
        snprintf(r->msg, sizeof r->msg,
                 "the prompt is %d tokens, longer than the context (%d tokens per slot)", n, n_ctx);
        goto bad;
    }
    bn_job job;
    if (bn_job_init(s->sched, &job, ids, n) != 0) {
        respond_error(c, 500, "out of memory", NULL);
        return;
    }
    ids = NULL;
    job.n_dropped = dropped;
    job.sp = g.sp;
    job.n_predict = g.n_predict;    /* the context caps it: the loop stops when full */
    job.ignore_eos = g.ignore_eos;
    job.stop = g.stop;
    job.n_stop = g.n_stop;
    job.no_cache = !g.cache_prompt;
    job.id_slot = nat.id_slot;
    if ((g.logprobs || nat.n_probs > 0) && bn_job_logprobs(s->sched, &job, g.n_top, g.echo) != 0) {
        bn_job_destroy(&job);
        respond_error(c, 500, "out of memory", NULL);
        return;
    }
    job.probs = nat.n_probs > 0;
    const bn_native_ctx nx = {s->tok, s->p.model_name, n_ctx, g.stream, &r->doc, prompt_node};
    pthread_mutex_lock(&s->mu);
    uint64_t id = ++s->id_seq;
    s->completions++;
    pthread_mutex_unlock(&s->mu);
    job.id = id;
    bn_sched_submit(s->sched, &job);
    bn_text_pos pos = {0, 0, 0};

    bn_jbuf b = {0};
    if (g.stream) {
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
        c->keep_alive = 0;          /* the stream ends when the connection closes */
        count_response(c, 200);
        int ok = send_all(c, head, sizeof head - 1) == 0, first = 1;
        size_t sent = 0;
        int lp_sent = 0;            /* records sent: those whose text is all sent */
        /* echo: the prompt's pieces go first, in an event of their own with
         * the prompt's records, once the prompt is decoded (any text, or the
         * end, says so); the generated text's offsets count after them */
        bn_jbuf echo = {0};
        pos.base_chars = bn_lp_echo_text(&echo, s->tok, job.prompt, g.echo ? job.n_prompt : 0);
        int echo_pending = g.echo;
        pthread_mutex_lock(&job.mu);
        for (;;) {
            wait_news(c, &job, sent);
            int done = job.done;
            size_t vis = job.visible;
            if (echo_pending && ok && (vis > sent || done) && !job.failed) {
                const int to = job.logprobs ? (job.n_lp < job.n_prompt ? job.n_lp : job.n_prompt) : 0;
                b.len = 0;
                chunk_json(&b, s, chat, id, echo.data ? echo.data : "", echo.len, NULL, &job, first, 0, to, &pos);
                first = echo_pending = 0;
                lp_sent = to;
                pthread_mutex_unlock(&job.mu);
                ok = !b.oom && !echo.oom && send_all(c, b.data, b.len) == 0;
                pthread_mutex_lock(&job.mu);
                if (!ok) job.cancelled = 1;
            }
            int lp_to = lp_sent;
            if (job.logprobs && done && !job.probs)
                lp_to = bn_lp_final_count(&job) > lp_sent ? bn_lp_final_count(&job) : lp_sent;
            else if (job.logprobs)
                while (lp_to < job.n_lp && job.lp[lp_to].end <= vis) lp_to++;
            if (ok && (vis > sent || lp_to > lp_sent)) {
                b.len = 0;
                if (native) {
                    bn_jbuf_puts(&b, "data: ");
                    bn_native_partial_json(&b, &nx, &job, job.text + sent, vis - sent, lp_sent, lp_to);
                    bn_jbuf_puts(&b, "\n\n");
                } else {
                    chunk_json(&b, s, chat, id, job.text + sent, vis - sent, NULL, &job, first, lp_sent, lp_to,
                               &pos);
                }
                first = 0;
                sent = vis;
                lp_sent = lp_to;
                pthread_mutex_unlock(&job.mu);
                ok = !b.oom && send_all(c, b.data, b.len) == 0;
                pthread_mutex_lock(&job.mu);
                if (!ok) job.cancelled = 1;
            }
            /* The client is gone: skip the text, or wait_news would return at
             * once forever, holding job.mu, which the scheduler's driver (one
             * thread for every slot) needs to end the job. */
            if (!ok) {
                sent = vis;
                lp_sent = lp_to;
            }
            if (done) break;
        }
        pthread_mutex_unlock(&job.mu);
        bn_jbuf_free(&echo);
        if (ok) {
            b.len = 0;
            if (job.failed) {
                bn_jbuf_puts(&b, native ? "error: " : "data: ");    /* llama-server's error event */
                error_json(&b, 500, job.error);
                bn_jbuf_puts(&b, "\n\n");
            } else if (native) {    /* the summary; the native stream has no [DONE] */
                bn_jbuf_puts(&b, "data: ");
                bn_native_final_json(&b, &nx, &job);
                bn_jbuf_puts(&b, "\n\n");
            } else {
                chunk_json(&b, s, chat, id, "", 0, job.finish, &job, first, 0, 0, &pos);
            }
            if (!native) bn_jbuf_puts(&b, "data: [DONE]\n\n");
            if (!b.oom) send_all(c, b.data, b.len);
        }
    } else {
        pthread_mutex_lock(&job.mu);
        while (!job.done) wait_news(c, &job, job.visible);
        pthread_mutex_unlock(&job.mu);
        if (job.failed) {
            respond_error(c, 500, job.error, NULL);
        } else if (native) {
            bn_native_final_json(&b, &nx, &job);
            respond_json(c, 200, &b);
        } else {
            bn_jbuf_printf(&b, "{\"id\":\"%s-%llu\",\"object\":\"%s\",\"created\":%lld,\"model\":",
                           chat ? "chatcmpl" : "cmpl", (unsigned long long)id,
                           chat ? "chat.completion" : "text_completion", (long long)s->created);
            bn_jbuf_str(&b, s->p.model_name, strlen(s->p.model_name));
            const int n_lp = job.logprobs ? bn_lp_final_count(&job) : 0;
            if (chat) {
                bn_jbuf_puts(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
                bn_jbuf_str(&b, job.text, job.len);
                bn_jbuf_puts(&b, "},");
                if (job.logprobs) bn_lp_chat_json(&b, s->tok, &job, 0, n_lp);
                else bn_jbuf_puts(&b, "\"logprobs\":null");
                bn_jbuf_printf(&b, ",\"finish_reason\":\"%s\"}],", job.finish);
            } else {
                bn_jbuf_puts(&b, ",\"choices\":[{\"index\":0,\"text\":");
                if (g.echo) {       /* the prompt's pieces, then the text */
                    bn_jbuf e = {0};
                    pos.base_chars = bn_lp_echo_text(&e, s->tok, job.prompt, job.n_prompt);
                    bn_jbuf_raw(&e, job.text, job.len);
                    bn_jbuf_str(&b, e.data ? e.data : "", e.len);
                    b.oom |= e.oom;
                    bn_jbuf_free(&e);
                } else {
                    bn_jbuf_str(&b, job.text, job.len);
                }
                bn_jbuf_puts(&b, ",");
                if (job.logprobs) bn_lp_completion_json(&b, s->tok, &job, 0, n_lp, &pos);
                else bn_jbuf_puts(&b, "\"logprobs\":null");
                bn_jbuf_printf(&b, ",\"finish_reason\":\"%s\"}],", job.finish);
            }
            usage_json(&b, &job);
            bn_jbuf_printf(&b, ",\"seed\":%u}", job.seed);
            respond_json(c, 200, &b);
        }
    }
    bn_jbuf_free(&b);
    bn_job_destroy(&job);
    return;
bad:
    free(ids);
    respond_error(c, 400, r->msg, NULL);
}

/* ---- the other endpoints --------------------------------------------------------- */
static void handle_tokenize(conn *c, req_ctx *r) {
    const bn_json *content = bn_json_get(&r->doc, r->root, "content");
    int add_special = 0, parse_special = 1, n = 0;
    if (!content || content->type != BN_JSON_STRING) {
        bad_field(r, "content", "must be a string");
        respond_error(c, 400, r->msg, NULL);
        return;
    }
    if (get_bool(r, "add_special", &add_special) != 0 || get_bool(r, "parse_special", &parse_special) != 0) {
        respond_error(c, 400, r->msg, NULL);
        return;
    }
    const bn_tokenizer *t = c->srv->tok;
    int32_t *ids = tokenize(t, content->str, content->len, add_special && bn_add_bos(t), parse_special, &n);
    if (!ids) {
        respond_error(c, 500, "cannot tokenize the text", NULL);
        return;
    }
    bn_jbuf b = {0};
    bn_jbuf_puts(&b, "{\"tokens\":[");
    for (int i = 0; i < n; i++) bn_jbuf_printf(&b, "%s%d", i ? "," : "", (int)ids[i]);
    bn_jbuf_puts(&b, "]}");
    respond_json(c, 200, &b);
    bn_jbuf_free(&b);
    free(ids);
}

/* Answers {"KEY": the text of ids} (bn_detokenize with flags), or a 500. */
static void respond_text_of(conn *c, const int32_t *ids, int n, int flags, const char *key) {
    int cap = 4096;
    char *out = NULL;
    int k = -1;
    for (int tries = 0; tries < 2; tries++) {
        free(out);
        out = malloc((size_t)cap + 1);
        if (!out) break;
        k = bn_detokenize(c->srv->tok, ids, n, flags, out, cap);
        if (k <= cap) break;
        cap = k;
    }
    if (!out || k < 0 || k > cap) respond_error(c, 500, "cannot detokenize the tokens", NULL);
    else {
        bn_jbuf b = {0};
        bn_jbuf_printf(&b, "{\"%s\":", key);
        bn_jbuf_str(&b, out, (size_t)k);
        bn_jbuf_puts(&b, "}");
        respond_json(c, 200, &b);
        bn_jbuf_free(&b);
    }
    free(out);
}

static void handle_detokenize(conn *c, req_ctx *r) {
    const bn_json *arr = bn_json_get(&r->doc, r->root, "tokens");
    int n = 0;
    int32_t *ids = NULL;
    if (!arr || arr->type != BN_JSON_ARRAY) {
        bad_field(r, "tokens", "must be an array of token ids");
    } else {
        ids = json_ids(r, arr, "tokens", &n);
    }
    if (!ids) {
        respond_error(c, 400, r->msg, NULL);
        return;
    }
    respond_text_of(c, ids, n, 0, "content");
    free(ids);
}

/* llama-server's POST /apply-template: the chat completion's prompt as
 * text (control tokens as their text, the assistant's turn opened), so
 * that tokenizing it with specials parsed gives the ids a chat request
 * with these messages decodes. */
static void handle_apply_template(conn *c, req_ctx *r) {
    int n = 0;
    int32_t *ids = chat_prompt(r, 0, &n, NULL);
    if (!ids) {
        respond_error(c, 400, r->msg, NULL);
        return;
    }
    respond_text_of(c, ids, n, BN_DETOK_UNPARSE_SPECIAL, "prompt");
    free(ids);
}

static void handle_models(conn *c) {
    server *s = c->srv;
    const bn_hparams *hp = bn_model_hparams(s->model);
    bn_jbuf b = {0};
    bn_jbuf_puts(&b, "{\"object\":\"list\",\"data\":[{\"id\":");
    bn_jbuf_str(&b, s->p.model_name, strlen(s->p.model_name));
    bn_jbuf_printf(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"bitnet\","
                       "\"meta\":{\"arch\":",
                   (long long)s->created);
    bn_jbuf_str(&b, hp->arch, strlen(hp->arch));
    bn_jbuf_printf(&b, ",\"n_vocab\":%d,\"n_ctx_train\":%d,\"n_ctx_slot\":%d,\"n_slots\":%d,"
                       "\"n_params\":%llu,\"size\":%llu}}]}",
                   hp->n_vocab, hp->n_ctx_train, bn_sched_n_ctx(s->sched), s->p.n_slots,
                   (unsigned long long)bn_model_n_params(s->model),
                   (unsigned long long)bn_model_file_size(s->model));
    respond_json(c, 200, &b);
    bn_jbuf_free(&b);
}

/* llama-server's /props, the part that means something here: the slot
 * context, the sampling defaults a request gets, the slots, the chat
 * format (null when the model has no chat template we know). */
static void handle_props(conn *c) {
    server *s = c->srv;
    const bn_sampler_params sp = bn_sampler_default_params();
    char err[160];
    bn_chat *chat = bn_chat_new_template(s->tok, s->p.chat_template, NULL, err, sizeof err);
    bn_jbuf b = {0};
    bn_jbuf_printf(&b, "{\"default_generation_settings\":{\"n_ctx\":%d,\"params\":{\"n_predict\":-1,"
                       "\"seed\":-1,\"temperature\":%g,\"top_k\":%d,\"top_p\":%g,\"min_p\":%g,"
                       "\"repeat_penalty\":%g,\"repeat_last_n\":%d,\"presence_penalty\":%g,"
                       "\"frequency_penalty\":%g}},\"total_slots\":%d,\"model_path\":",
                   bn_sched_n_ctx(s->sched), (double)sp.temp, sp.top_k, (double)sp.top_p, (double)sp.min_p,
                   (double)sp.repeat_penalty, sp.repeat_last_n, (double)sp.presence_penalty,
                   (double)sp.freq_penalty, s->p.n_slots);
    bn_jbuf_str(&b, s->p.model_name, strlen(s->p.model_name));
    bn_jbuf_puts(&b, ",\"chat_format\":");
    if (chat) bn_jbuf_str(&b, bn_chat_format_name(chat), strlen(bn_chat_format_name(chat)));
    else bn_jbuf_puts(&b, "null");
    bn_jbuf_puts(&b, ",\"build_info\":\"bitnet.c " BN_VERSION "\"}");
    bn_chat_free(chat);
    respond_json(c, 200, &b);
    bn_jbuf_free(&b);
}

/* llama-server's GET /slots, its fields that mean something here: per
 * slot its id, context, whether it runs a request (which one, how far,
 * with what sampling parameters) and the tokens its cache held when it
 * last took or ended one (docs/ARCHITECTURE.md, Slots endpoint). */
static void handle_slots(conn *c) {
    server *s = c->srv;
    if (s->p.no_slots) {
        respond_error(c, 501, "the slots endpoint is disabled (--no-slots)", NULL);
        return;
    }
    static const char *const state_name[] = {"idle", "prompt", "generating"};
    bn_jbuf b = {0};
    bn_jbuf_puts(&b, "[");
    for (int i = 0; i < bn_sched_n_slots(s->sched); i++) {
        bn_sched_slot_info in;
        bn_sched_slot_get(s->sched, i, &in);
        bn_jbuf_printf(&b, "%s{\"id\":%d,\"id_task\":%lld,\"n_ctx\":%d,\"is_processing\":%s,\"state\":\"%s\","
                           "\"n_cached\":%d",
                       i ? "," : "", in.id, in.state ? (long long)in.task : -1LL, in.n_ctx,
                       in.state ? "true" : "false", state_name[in.state], in.n_cached);
        if (in.state) {
            const bn_sampler_params *sp = &in.sp;
            bn_jbuf_printf(&b, ",\"n_prompt_tokens\":%d,\"n_decoded\":%d,\"params\":{\"n_predict\":%d,"
                               "\"seed\":%lld,\"temperature\":%g,\"top_k\":%d,\"top_p\":%g,\"min_p\":%g,"
                               "\"repeat_penalty\":%g,\"repeat_last_n\":%d,\"presence_penalty\":%g,"
                               "\"frequency_penalty\":%g,\"ignore_eos\":%s,\"n_probs\":%d}}",
                           in.n_prompt, in.n_decoded, in.n_predict,
                           sp->seed == BN_SEED_RANDOM ? -1LL : (long long)sp->seed, (double)sp->temp, sp->top_k,
                           (double)sp->top_p, (double)sp->min_p, (double)sp->repeat_penalty, sp->repeat_last_n,
                           (double)sp->presence_penalty, (double)sp->freq_penalty,
                           in.ignore_eos ? "true" : "false", in.n_probs < 0 ? 0 : in.n_probs);
        } else {
            bn_jbuf_puts(&b, ",\"params\":null}");
        }
    }
    bn_jbuf_puts(&b, "]");
    respond_json(c, 200, &b);
    bn_jbuf_free(&b);
}

/* ---- slot save and restore ------------------------------------------------------- */
/* llama-server's POST /slots/ID?action=save|restore|erase (docs/ARCHITECTURE.md,
 * Slot save and restore). The file name comes from the client, so only a
 * plain name is taken, joined to --slot-save-path: a strict subset of
 * llama.cpp's fs_validate_filename. */
#define MAX_SLOT_FILE_NAME 200      /* bytes: with the saver's ".tmp.PID" it stays
                                       under NAME_MAX (255) */

/* The next code point of UTF-8 text p[0..n) in *cp, its length returned;
 * 0 for a bad sequence (truncated, overlong, a surrogate, past U+10FFFF). */
static int utf8_next(const unsigned char *p, size_t n, uint32_t *cp) {
    static const uint32_t min_of[5] = {0, 0, 0x80, 0x800, 0x10000};
    int len = p[0] < 0x80 ? 1 : (p[0] & 0xE0) == 0xC0 ? 2 : (p[0] & 0xF0) == 0xE0 ? 3 : (p[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || (size_t)len > n) return 0;
    uint32_t c = len == 1 ? p[0] : p[0] & (0x7Fu >> len);
    for (int i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    if (c < min_of[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/* NULL when name[0..len) is a plain file name we accept, else why not. */
static const char *bad_file_name(const char *name, size_t len) {
    if (len == 0) return "it is empty";
    if (len > MAX_SLOT_FILE_NAME) return "it is longer than 200 bytes";
    if (name[0] == '.') return "it starts with '.'";
    if (name[0] == ' ' || name[len - 1] == ' ') return "it starts or ends with a space";
    if (name[len - 1] == '.') return "it ends with '.'";
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = utf8_next((const unsigned char *)name + i, len - i, &c);
        if (k == 0) return "it is not valid UTF-8";
        if (c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F)) return "it holds a control character";
        /* separators and the characters Windows forbids, and their look-alikes */
        if (c < 0x80 && strchr("/\\:*?\"<>|", (int)c)) return "it holds one of / \\ : * ? \" < > |";
        if (c == 0x2215 || c == 0x2216 || c == 0xFF0E || c == 0xFF0F || c == 0xFFFD || c == 0xFEFF)
            return "it holds a look-alike of '/', '\\' or '.', U+FFFD or U+FEFF";
        if (c == '.' && i + 1 < len && name[i + 1] == '.') return "it holds \"..\"";
        i += (size_t)k;
    }
    return NULL;
}

/* The value of query parameter key in the request target, or NULL (*n its length). */
static const char *query_param(const bn_http_request *req, const char *key, size_t *n) {
    const char *p = req->target + req->path_len, *end = req->target + req->target_len;
    const size_t kl = strlen(key);
    if (p < end) p++;               /* the '?' */
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            *n = (size_t)(e - p) - kl - 1;
            return p + kl + 1;
        }
        p = amp ? amp + 1 : end;
    }
    return NULL;
}

static int query_is(const char *v, size_t n, const char *want) {
    return v && n == strlen(want) && memcmp(v, want, n) == 0;
}

static void handle_slot_action(conn *c, const bn_http_request *req) {
    server *s = c->srv;
    if (!s->p.slot_save_path || s->p.no_slots) {
        respond_error(c, 501, s->p.no_slots ? "This server does not support slots action (--no-slots)"
                                            : "This server does not support slots action. Start it with --slot-save-path",
                      NULL);
        return;
    }
    /* the id: 1 to 6 digits after "/slots/" */
    const char *id_str = req->target + 7;
    const size_t id_len = req->path_len - 7;
    int id = 0;
    for (size_t i = 0; i < id_len && id_len <= 6; i++) {
        if (id_str[i] < '0' || id_str[i] > '9') {
            id = -1;
            break;
        }
        id = id * 10 + (id_str[i] - '0');
    }
    if (id_len == 0 || id_len > 6 || id < 0) {
        respond_error(c, 400, "Invalid slot ID", NULL);
        return;
    }
    size_t an = 0;
    const char *av = query_param(req, "action", &an);
    bn_slot_action a;
    memset(&a, 0, sizeof a);
    a.slot = id;
    if (query_is(av, an, "save")) a.op = BN_SLOT_SAVE;
    else if (query_is(av, an, "restore")) a.op = BN_SLOT_RESTORE;
    else if (query_is(av, an, "erase")) a.op = BN_SLOT_ERASE;
    else {
        respond_error(c, 400, "Invalid action: expected ?action=save, restore or erase", NULL);
        return;
    }
    char *path = NULL;
    char msg[320];
    bn_json_doc doc;
    memset(&doc, 0, sizeof doc);
    const bn_json *fn = NULL;
    if (a.op != BN_SLOT_ERASE) {    /* {"filename": NAME} */
        char err[160];
        if (bn_json_parse(&doc, c->buf + req->head_len, req->content_length, BN_JSON_MAX_DEPTH, err,
                          sizeof err) != 0) {
            respond_error(c, 400, err, NULL);
            return;
        }
        const bn_json *root = bn_json_root(&doc);
        fn = root->type == BN_JSON_OBJECT ? bn_json_get(&doc, root, "filename") : NULL;
        const char *why = !fn || fn->type != BN_JSON_STRING ? "'filename' must be a string"
                                                            : bad_file_name(fn->str, fn->len);
        if (why) {
            snprintf(msg, sizeof msg, "Invalid filename: %s", why);
            respond_error(c, 400, msg, NULL);
            bn_json_free(&doc);
            return;
        }
        const char *dir = s->p.slot_save_path;
        const size_t dl = strlen(dir);
        path = malloc(dl + fn->len + 2);
        if (!path) {
            respond_error(c, 500, "out of memory", NULL);
            bn_json_free(&doc);
            return;
        }
        snprintf(path, dl + fn->len + 2, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", fn->str);
        a.path = path;
    }
    bn_sched_slot_action(s->sched, &a);
    bn_jbuf b = {0};
    if (a.rc != BN_SLOT_OK) {
        /* llama-server: 400 for a bad slot id or a refused file; a busy
         * slot, which it waits for, is 409 here */
        static const int status_of[] = {200, 400, 409, 400, 500, 503};
        respond_error(c, status_of[a.rc], a.error, NULL);
    } else if (a.op == BN_SLOT_ERASE) {
        bn_jbuf_printf(&b, "{\"id_slot\":%d,\"n_erased\":%d}", id, a.n_tokens);
        respond_json(c, 200, &b);
    } else {
        const int save = a.op == BN_SLOT_SAVE;
        bn_jbuf_printf(&b, "{\"id_slot\":%d,\"filename\":", id);
        bn_jbuf_str(&b, fn->str, fn->len);
        bn_jbuf_printf(&b, ",\"%s\":%d,\"%s\":%lld,\"timings\":{\"%s\":%.3f}}", save ? "n_saved" : "n_restored",
                       a.n_tokens, save ? "n_written" : "n_read", a.n_bytes, save ? "save_ms" : "restore_ms",
                       a.ms);
        respond_json(c, 200, &b);
    }
    bn_jbuf_free(&b);
    bn_json_free(&doc);
    free(path);
}

static void handle_metrics(conn *c) {
    server *s = c->srv;
    bn_sched_stats st;
    bn_sched_stats_get(s->sched, &st);
    pthread_mutex_lock(&s->mu);
    uint64_t requests = s->requests, errors = s->errors, completions = s->completions;
    int conns = s->n_conns;
    pthread_mutex_unlock(&s->mu);
    bn_jbuf b = {0};
#define METRIC(name, type, help, fmt, v) \
    bn_jbuf_printf(&b, "# HELP bitnet_" name " " help "\n# TYPE bitnet_" name " " type "\nbitnet_" name " " fmt "\n", v)
    METRIC("requests_total", "counter", "HTTP requests answered (this one not counted).", "%llu",
           (unsigned long long)requests);
    METRIC("requests_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status.", "%llu",
           (unsigned long long)errors);
    METRIC("completions_total", "counter", "Completion and chat completion requests queued.", "%llu",
           (unsigned long long)completions);
    METRIC("prompt_tokens_total", "counter", "Prompt tokens decoded.", "%llu",
           (unsigned long long)st.prompt_tokens);
    METRIC("prompt_tokens_cached_total", "counter", "Prompt tokens taken from a slot's cache, not decoded.",
           "%llu", (unsigned long long)st.cached_tokens);
    METRIC("tokens_predicted_total", "counter", "Tokens generated.", "%llu",
           (unsigned long long)st.gen_tokens);
    METRIC("prompt_seconds_total", "counter", "Time spent decoding prompts.", "%.6f", st.prompt_ms / 1e3);
    METRIC("tokens_predicted_seconds_total", "counter", "Time spent generating.", "%.6f", st.gen_ms / 1e3);
    METRIC("prompt_tokens_per_second", "gauge", "Prompt tokens per second, over all requests so far.",
           "%.3f", st.prompt_ms > 0 ? 1e3 * (double)st.prompt_tokens / st.prompt_ms : 0.0);
    METRIC("predicted_tokens_per_second", "gauge", "Generated tokens per second, over all requests so far.",
           "%.3f", st.gen_ms > 0 ? 1e3 * (double)st.gen_tokens / st.gen_ms : 0.0);
    METRIC("decode_passes_total", "counter",
           "Forward passes of generation steps (one pass serves every generating slot).", "%llu",
           (unsigned long long)st.passes);
    METRIC("slots_total", "gauge", "Slots (requests generated at the same time).", "%d", st.n_slots);
    METRIC("slots_busy", "gauge", "Slots generating now.", "%d", st.busy);
    METRIC("requests_queued", "gauge", "Requests waiting for a slot.", "%d", st.queued);
    METRIC("connections_open", "gauge", "Open client connections.", "%d", conns);
#undef METRIC
    if (b.oom) respond_error(c, 500, "out of memory", NULL);
    else respond(c, 200, "text/plain; version=0.0.4", b.data, b.len, NULL);
    bn_jbuf_free(&b);
}

/* ---- routing ---------------------------------------------------------------------- */
enum { ROUTE_PAGE, ROUTE_HEALTH, ROUTE_MODELS, ROUTE_PROPS, ROUTE_METRICS, ROUTE_SLOTS, ROUTE_COMPLETIONS,
       ROUTE_CHAT, ROUTE_NATIVE, ROUTE_TOKENIZE, ROUTE_DETOKENIZE, ROUTE_APPLY_TEMPLATE, ROUTE_SLOT_ACTION };

static const struct route {
    const char *path, *method;
    int id;
} routes[] = {
    {"/", "GET", ROUTE_PAGE},
    {"/index.html", "GET", ROUTE_PAGE},
    {"/health", "GET", ROUTE_HEALTH},
    {"/v1/health", "GET", ROUTE_HEALTH},
    {"/v1/models", "GET", ROUTE_MODELS},
    {"/models", "GET", ROUTE_MODELS},
    {"/props", "GET", ROUTE_PROPS},
    {"/metrics", "GET", ROUTE_METRICS},
    {"/slots", "GET", ROUTE_SLOTS},
    {"/v1/completions", "POST", ROUTE_COMPLETIONS},
    {"/completions", "POST", ROUTE_COMPLETIONS},
    {"/v1/chat/completions", "POST", ROUTE_CHAT},
    {"/chat/completions", "POST", ROUTE_CHAT},
    {"/completion", "POST", ROUTE_NATIVE},    /* llama-server's native API (native.c) */
    {"/tokenize", "POST", ROUTE_TOKENIZE},
    {"/detokenize", "POST", ROUTE_DETOKENIZE},
    {"/apply-template", "POST", ROUTE_APPLY_TEMPLATE},
};
/* POST /slots/ID?action=...: every path under /slots/ */
static const struct route slot_action_route = {"/slots/", "POST", ROUTE_SLOT_ACTION};

static void handle(conn *c, const bn_http_request *req) {
    server *s = c->srv;
    const struct route *rt = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (bn_http_path_is(req, routes[i].path)) rt = &routes[i];
    if (!rt && req->path_len > 7 && memcmp(req->target, "/slots/", 7) == 0) rt = &slot_action_route;
    if (!rt) {
        respond_error(c, 404, "no such endpoint", NULL);
        return;
    }
    if (!bn_http_method_is(req, rt->method) &&
        !(bn_http_method_is(req, "HEAD") && strcmp(rt->method, "GET") == 0)) {
        char allow[64];
        snprintf(allow, sizeof allow, "Allow: %s\r\n", rt->method);
        respond_error(c, 405, "method not allowed on this endpoint", allow);
        return;
    }
    /* the page is public: it asks for the key and sends it with its API calls */
    if (s->p.api_key && rt->id != ROUTE_HEALTH && rt->id != ROUTE_PAGE) {
        size_t n;
        const char *auth = bn_http_header_get(req, "authorization", &n);
        int ok = auth && n > 7 && strncasecmp(auth, "Bearer ", 7) == 0 &&
                 bn_serve_key_equal(auth + 7, n - 7, s->p.api_key);
        if (!ok) {
            respond_error(c, 401, "invalid API key", "WWW-Authenticate: Bearer\r\n");
            return;
        }
    }
    switch (rt->id) {
    case ROUTE_PAGE:
        /* The policy holds the page to itself: inline script and style,
         * requests to this server only. */
        respond(c, 200, "text/html; charset=utf-8", (const char *)bn_chat_page, bn_chat_page_len,
                "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
                "Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'; connect-src 'self'\r\n");
        return;
    case ROUTE_HEALTH: {
        static const char ok[] = "{\"status\":\"ok\"}";
        respond(c, 200, "application/json", ok, sizeof ok - 1, NULL);
        return;
    }
    case ROUTE_MODELS: handle_models(c); return;
    case ROUTE_PROPS: handle_props(c); return;
    case ROUTE_METRICS: handle_metrics(c); return;
    case ROUTE_SLOTS: handle_slots(c); return;
    case ROUTE_SLOT_ACTION: handle_slot_action(c, req); return;
    default: break;
    }
    /* the POST endpoints take a JSON object */
    req_ctx r;
    memset(&r, 0, sizeof r);
    r.c = c;
    char err[160];
    if (bn_json_parse(&r.doc, c->buf + req->head_len, req->content_length, BN_JSON_MAX_DEPTH, err,
                      sizeof err) != 0) {
        respond_error(c, 400, err, NULL);
        return;
    }
    r.root = bn_json_root(&r.doc);
    if (r.root->type != BN_JSON_OBJECT) {
        respond_error(c, 400, "the request body must be a JSON object", NULL);
    } else if (rt->id == ROUTE_TOKENIZE) {
        handle_tokenize(c, &r);
    } else if (rt->id == ROUTE_DETOKENIZE) {
        handle_detokenize(c, &r);
    } else if (rt->id == ROUTE_APPLY_TEMPLATE) {
        handle_apply_template(c, &r);
    } else {
        handle_completion(c, &r, rt->id == ROUTE_CHAT, rt->id == ROUTE_NATIVE);
    }
    bn_json_free(&r.doc);
}

/* ---- connections ------------------------------------------------------------------ */
/* Closes after an answer without resetting it: stop sending, then drop
 * what the client still sends for a moment (a close with unread bytes
 * would send RST and the client could lose the answer). */
static void linger_close(int fd) {
    shutdown(fd, SHUT_WR);
    char sink[4096];
    double until = now_ms() + 1000;
    for (;;) {
        double left = until - now_ms();
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)left + 1) <= 0) break;
        if (recv(fd, sink, sizeof sink, 0) <= 0) break;
    }
    close(fd);
}

static void *conn_main(void *arg) {
    conn *c = arg;
    server *s = c->srv;
    c->keep_alive = 1;
    while (c->keep_alive && !g_stop) {
        bn_http_request req;
        int r = read_request(c, &req);
        if (r <= 0) break;
        c->keep_alive = req.keep_alive;
        if (bn_http_method_is(&req, "HEAD")) c->keep_alive = 0;
        handle(c, &req);
        size_t used = req.head_len + req.content_length;     /* keep a pipelined next request */
        memmove(c->buf, c->buf + used, c->len - used);
        c->len -= used;
    }
    linger_close(c->fd);
    pthread_mutex_lock(&s->mu);
    s->conn_fds[c->idx] = -1;
    s->n_conns--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(c->buf);
    free(c);
    return NULL;
}

static void refuse(int fd, const char *msg) {
    char body[256], out[512];
    int nb = snprintf(body, sizeof body,
                      "{\"error\":{\"message\":\"%s\",\"type\":\"unavailable_error\",\"code\":503}}", msg);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s",
                     nb, body);
    (void)!send(fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);          /* no lingering here: the accept loop must not wait */
    close(fd);
}

static void accept_one(server *s) {
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) return;
    struct timeval tv = {s->p.timeout_s, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&s->mu);
    int idx = -1;
    for (int i = 0; i < s->p.max_conns; i++)
        if (s->conn_fds[i] < 0) {
            idx = i;
            break;
        }
    if (idx < 0) {
        s->requests++;
        s->errors++;
        pthread_mutex_unlock(&s->mu);
        refuse(fd, "too many connections");
        return;
    }
    s->conn_fds[idx] = fd;
    s->n_conns++;
    pthread_mutex_unlock(&s->mu);
    conn *c = calloc(1, sizeof *c);
    size_t cap = s->lim.max_head + s->p.max_body + 1;
    if (c) c->buf = malloc(cap);
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int ok = c && c->buf;
    if (ok) {
        c->srv = s;
        c->fd = fd;
        c->idx = idx;
        c->cap = cap;
        ok = pthread_create(&th, &attr, conn_main, c) == 0;
    }
    pthread_attr_destroy(&attr);
    if (!ok) {
        if (c) free(c->buf);
        free(c);
        pthread_mutex_lock(&s->mu);
        s->conn_fds[idx] = -1;
        s->n_conns--;
        pthread_mutex_unlock(&s->mu);
        refuse(fd, "out of memory");
    }
}

static int listen_on(server *s) {
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->p.port);
    if (inet_pton(AF_INET, s->p.host, &a.sin_addr) != 1) {
        fprintf(stderr, "bitnet: error: --host: '%s' is not an IPv4 address\n", s->p.host);
        return -1;
    }
#ifdef SOCK_CLOEXEC
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "bitnet: error: cannot listen on %s:%d: %s\n", s->p.host, s->p.port,
                strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    s->p.port = ntohs(a.sin_port);
    s->listen_fd = fd;
    return 0;
}

int bn_serve(bn_model *m, const bn_serve_params *p) {
    server *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "bitnet: error: out of memory\n");
        return 1;
    }
    s->model = m;
    s->tok = bn_model_tokenizer(m);
    s->p = *p;
    s->lim = bn_http_default_limits();
    s->lim.max_body = p->max_body;
    s->created = time(NULL);
    s->listen_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = 1;
    char err[512];
    s->conn_fds = malloc((size_t)p->max_conns * sizeof *s->conn_fds);
    if (!s->conn_fds) {
        fprintf(stderr, "bitnet: error: out of memory\n");
        goto done;
    }
    for (int i = 0; i < p->max_conns; i++) s->conn_fds[i] = -1;
    if (p->slot_save_path) {        /* the files' directory: there before the start */
        struct stat st;
        if (stat(p->slot_save_path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "bitnet: error: %s: --slot-save-path is not an existing directory\n",
                    p->slot_save_path);
            goto done;
        }
        if (strlen(p->slot_save_path) > 3800) {     /* with a name, within PATH_MAX */
            fprintf(stderr, "bitnet: error: %.64s...: --slot-save-path is too long\n", p->slot_save_path);
            goto done;
        }
    }
    if (p->chat_template) {         /* a bad --chat-template stops the start, not each chat */
        bn_chat *chat = bn_chat_new_template(s->tok, p->chat_template, NULL, err, sizeof err);
        if (!chat) {
            fprintf(stderr, "bitnet: error: --chat-template: %s\n", err);
            goto done;
        }
        bn_chat_free(chat);
    }
    if (listen_on(s) != 0) goto done;
    s->sched = bn_sched_new(m, p->n_slots, p->n_ctx, p->n_threads, p->type_k, p->type_v, err,
                            sizeof err);
    if (!s->sched) {
        fprintf(stderr, "bitnet: error: cannot start the slots: %s\n", err);
        goto done;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "serve: %d slot%s of %d tokens, batched on %d thread%s, model '%s'%s\n", p->n_slots,
            p->n_slots == 1 ? "" : "s", bn_sched_n_ctx(s->sched), p->n_threads,
            p->n_threads == 1 ? "" : "s", p->model_name, p->api_key ? ", API key required" : "");
    fprintf(stderr, "serve: listening on http://%s:%d\n", p->host, s->p.port);
    fflush(stderr);

    while (!g_stop) {
        struct pollfd pf = {s->listen_fd, POLLIN, 0};
        if (poll(&pf, 1, 250) > 0) accept_one(s);
    }
    fprintf(stderr, "serve: stopping\n");
    close(s->listen_fd);
    s->listen_fd = -1;
    /* wake every connection (blocked reads and writes fail), then wait */
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < p->max_conns; i++)
        if (s->conn_fds[i] >= 0) shutdown(s->conn_fds[i], SHUT_RDWR);
    while (s->n_conns > 0) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    rc = 0;
done:
    if (s->listen_fd >= 0) close(s->listen_fd);
    bn_sched_free(s->sched);
    free(s->conn_fds);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    return rc;
}
