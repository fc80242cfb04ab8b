/* Chat mode (-cnv): the format the model's chat template names (bn_chat in
 * bitnet.h), one user line per turn, the whole conversation kept in the KV
 * cache (only new tokens are decoded). /exit or end of input quits with
 * status 0. Ctrl-C during a reply ends the reply (closed with the format's
 * end-of-turn token in the context); Ctrl-C at the prompt quits. With piped
 * stdin nothing but the replies reaches stdout. A model without a chat
 * template is refused in one line. A reverse prompt (-r) in a reply ends it
 * too, handing the turn back. A full context shifts (keeping BOS and the
 * system turn, or --keep; docs/CHAT.md, Context shift); a message that cannot
 * fit even then is skipped with a note; --no-context-shift ends the
 * conversation there. --prompt-cache keeps the system turn's cells in a
 * session file between runs. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define DEFAULT_SYSTEM_PROMPT "You are a helpful assistant."

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

/* No SA_RESTART: a Ctrl-C at the prompt makes the blocked read return. */
static void install_sigint(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
}

/* Decodes the conversation's pending tokens, shifting the context first
 * when they would fill it. Returns 0, 1 when they do not fit in the context
 * (nothing decoded), -1 on error (printed). */
static int feed(bn_context *c, bn_chat *chat, bn_cli_shift *sh) {
    int n = bn_chat_n_pending(chat);
    if (n == 0) return 0;
    int full = bn_cli_make_room(c, sh, n);
    if (full != 0) return full;
    char err[256];
    if (bn_decode(c, bn_chat_pending(chat), n, 0, err, sizeof err) != 0) {
        bn_err("decoding: %s", err);
        return -1;
    }
    bn_chat_mark_fed(chat);
    return 0;
}

/* --prompt-cache: the system turn's cells from the session file as far as
 * its tokens match, the rest decoded, then the file rewritten unless it
 * already held them all (or --prompt-cache-ro). The first user turn needs
 * no logits from the system turn, so a whole match decodes nothing.
 * Returns 0, or -1 on error (printed). */
static int feed_cached(const bn_cli_opts *o, bn_context *c, bn_chat *chat) {
    if (!o->prompt_cache_ro && bn_cli_cache_check_path(o->prompt_cache) != 0) return -1;
    int n = bn_chat_n_pending(chat), n_reuse = 0;
    int32_t *ids = malloc((size_t)bn_context_n_ctx(c) * sizeof *ids);
    if (!ids) {
        bn_err("out of memory");
        return -1;
    }
    int save = bn_cli_cache_load(o, c, bn_chat_pending(chat), n, 0, ids, &n_reuse);
    char err[256];
    int rc = 0;
    if (n > n_reuse && bn_decode(c, bn_chat_pending(chat) + n_reuse, n - n_reuse, 0, err, sizeof err) != 0) {
        bn_err("decoding: %s", err);
        rc = -1;
    }
    if (rc == 0) {
        memcpy(ids, bn_chat_pending(chat), (size_t)n * sizeof *ids);
        bn_chat_mark_fed(chat);
        if (save && !o->prompt_cache_ro && bn_cli_cache_save(o, c, ids, n) != 0) rc = -1;
    }
    free(ids);
    return rc;
}

/* The system prompt: -sys, else -p / -f (as run_inference.py), else ours. */
static char *system_prompt(const bn_cli_opts *o) {
    int given = (o->system != NULL) + (o->prompt != NULL) + (o->file != NULL);
    if (given > 1) {
        bn_err("give the chat system prompt once: -sys, -p or -f");
        return NULL;
    }
    if (o->file) {
        size_t len;
        return bn_cli_read_file(o->file, &len);
    }
    const char *s = o->system ? o->system : o->prompt ? o->prompt : DEFAULT_SYSTEM_PROMPT;
    char *dup = strdup(s);
    if (!dup) bn_err("out of memory");
    return dup;
}

/* A message that cannot fit even after a shift: one line, and the chat goes on. */
static void skipped_note(int n_turn, int n_ctx, int keep) {
    fprintf(stderr, "bitnet: message skipped: with the chat format it is %d tokens, more than "
                    "the context (%d) holds after the %d kept tokens; use a larger -c or a "
                    "shorter message\n", n_turn, n_ctx, keep);
}

static void context_full_note(int n_ctx) {
    fprintf(stderr, "\nbitnet: context full (%d tokens): the conversation cannot go on; "
                    "use a larger -c (end of input or /exit quits)\n", n_ctx);
}

int bn_cmd_chat(const bn_cli_opts *o) {
    const char *tmpl;
    char *tmpl_owned;
    if (bn_cli_chat_template(o, &tmpl, &tmpl_owned) != 0) return 1;
    char *sys = system_prompt(o);
    if (!sys) {
        free(tmpl_owned);
        return 1;
    }
    double load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    bn_context *c = m ? bn_cli_new_context(o, m, 1) : NULL;
    bn_sampler *s = NULL;
    bn_chat *chat = NULL;
    int rc = 1;
    char *line = NULL;
    size_t line_cap = 0;
    char err[256];
    bn_cli_stop stop_at = {0};
    bn_cli_noeog noeog = {0};
    if (!c || bn_cli_stop_init(&stop_at, o) != 0) goto done;
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    const int n_ctx = bn_context_n_ctx(c);
    if (!(chat = bn_chat_new_template(tok, tmpl, sys, err, sizeof err))) {
        bn_err("%s: %s", tmpl_owned ? o->chat_template_file : tmpl ? "--chat-template" : bn_cli_model_path(o),
               err);
        goto done;
    }
    if (bn_chat_n_pending(chat) > n_ctx) {
        bn_err("the system prompt is %d tokens, longer than the context (%d)",
               bn_chat_n_pending(chat), n_ctx);
        goto done;
    }
    if (o->ignore_eos && bn_cli_noeog_init(&noeog, tok) != 0) goto done;
    bn_cli_log_load(o, m, load_ms);
    if (!o->log_disable) fprintf(stderr, "chat: %s format\n", bn_chat_format_name(chat));
    install_sigint();               /* before the seed line: scripts wait for it */
    if (!(s = bn_cli_new_sampler(o, tok, n_ctx)))
        goto done;
    bn_cli_exact_head(c, s, o->ignore_eos ? &noeog : NULL);
    bn_cli_shift shift = {0};       /* the system turn always fits (checked above) */
    if (o->prompt_cache ? feed_cached(o, c, chat) != 0 : feed(c, chat, &shift) != 0) goto done;
    /* From now on a full context shifts, keeping BOS and the system turn
     * (or --keep), unless --no-context-shift. */
    shift.keep = bn_cli_keep(o, bn_context_n_past(c), bn_add_bos(tok), 1);
    shift.enabled = !o->no_shift;

    const int tty = isatty(STDIN_FILENO);
    if (tty) fprintf(stderr, "chat: type a message; /exit or Ctrl-D quits, Ctrl-C stops a reply\n");
    int full = 0, turns = 0, skipped = 0, empty = 0;
    for (;;) {
        if (tty) {
            fputs("> ", stderr);
            fflush(stderr);
        }
        g_interrupted = 0;
        ssize_t n = getline(&line, &line_cap, stdin);
        if (n < 0 || g_interrupted) break;      /* end of input, or Ctrl-C at the prompt */
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (strcmp(line, "/exit") == 0) break;
        if (n == 0) continue;
        if (full) {
            turns++;
            context_full_note(n_ctx);
            if (bn_cli_emit("\n", 1) != 0) goto out_gone;
            continue;
        }
        if (bn_chat_add_user_turn(chat, line, err, sizeof err) != 0) {
            bn_err("chat: %s", err);
            goto done;
        }
        int n_turn = bn_chat_n_pending(chat);
        if (shift.enabled && shift.keep + n_turn >= n_ctx) {
            skipped_note(n_turn, n_ctx, shift.keep);
            bn_chat_undo_user_turn(chat);
            skipped++;
            continue;
        }
        turns++;
        /* the penalty history and the RNG start afresh each user turn */
        bn_sampler_reset(s);
        for (int i = 0; i < bn_chat_n_pending(chat); i++)
            bn_sampler_accept(s, bn_chat_pending(chat)[i]);
        int fr = feed(c, chat, &shift);
        if (fr < 0) goto done;
        if (fr > 0) {
            full = 1;
            context_full_note(n_ctx);
            if (bn_cli_emit("\n", 1) != 0) goto out_gone;
            continue;
        }

        bn_detok dt;
        bn_detok_init(&dt, tok);
        char piece[BN_CLI_PIECE];
        int n_gen = 0, ended = 0, n_bytes = 0;
        bn_cli_stop_reset(&stop_at);
        while (!g_interrupted && (o->n_predict < 0 || n_gen < o->n_predict)) {
            const float *logits = bn_get_logits(c, -1);
            if (o->ignore_eos) logits = bn_cli_noeog_apply(&noeog, logits);
            int32_t id = bn_sampler_sample(s, logits);
            bn_sampler_accept(s, id);
            if (bn_chat_add_reply_token(chat, id, err, sizeof err) != 0) {
                bn_err("chat: %s", err);
                goto done;
            }
            if (bn_token_is_eog(tok, id)) {     /* stays pending: fed with the next turn */
                ended = 1;
                break;
            }
            int np = bn_detok_push(&dt, id, piece, (int)sizeof piece);
            if (bn_cli_emit(piece, np) != 0) goto out_gone;
            n_gen++;
            n_bytes += np;
            if (bn_cli_stop_push(&stop_at, piece, np)) break;  /* -r: the turn goes back */
            if (feed(c, chat, &shift) != 0) {   /* no room for the token just sampled */
                full = 1;
                break;
            }
        }
        int np = bn_detok_flush(&dt, piece, (int)sizeof piece);
        if (bn_cli_emit(piece, np) != 0 || bn_cli_emit("\n", 1) != 0) goto out_gone;
        empty += n_bytes + np == 0;
        if (!ended && bn_chat_end_reply(chat, err, sizeof err) != 0) {
            bn_err("chat: %s", err);
            goto done;
        }
        if (g_interrupted) fprintf(stderr, "[reply interrupted]\n");
        if (full) context_full_note(n_ctx);
    }
    if (tty) fputc('\n', stderr);
    if (!o->log_disable) {
        fprintf(stderr, "chat: %d turns, %d tokens in the context", turns, bn_context_n_past(c));
        if (shift.n_shifts > 0)
            fprintf(stderr, ", %d context shifts (%d tokens discarded, the first %d kept)",
                    shift.n_shifts, shift.n_discarded, shift.keep);
        if (skipped > 0) fprintf(stderr, ", %d messages skipped", skipped);
        if (empty > 0) fprintf(stderr, ", %d empty replies", empty);
        fputc('\n', stderr);
    }
    if (!o->no_perf) bn_cli_print_head_stats(c);
    rc = 0;
    goto done;
out_gone:                           /* stdout failed (reported) or its reader left */
    rc = bn_cli_emit_status();
done:
    bn_cli_noeog_free(&noeog);
    bn_cli_stop_free(&stop_at);
    free(line);
    bn_chat_free(chat);
    if (c) bn_context_set_sampler(c, NULL);
    bn_sampler_free(s);
    bn_context_free(c);
    bn_model_free(m);
    free(sys);
    free(tmpl_owned);
    return rc;
}
