/* One-shot generation: print the prompt, then stream the continuation token
 * by token (UTF-8-safe) until an end-of-generation token (unless
 * --ignore-eos), a reverse prompt (-r) or -n tokens; a full context shifts
 * as llama-cli's does (--keep; docs/CHAT.md, Context shift) unless
 * --no-context-shift or -n -2 make it the end. Timings to stderr in
 * llama.cpp's habit. --prompt-cache keeps the prompt's KV cells in a
 * session file between runs, as llama-cli's does
 * (docs/FORMAT.md, Session file). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_timing(const char *what, double ms, int n, const char *unit) {
    fprintf(stderr, "bitnet: %16s = %10.2f ms / %5d %-6s (%8.2f ms per token, %8.2f tokens per second)\n",
            what, ms, n, unit, n > 0 ? ms / n : 0.0, 1e3 * n / (ms > 0 ? ms : 1e-9));
}

int bn_cmd_generate(const bn_cli_opts *o) {
    /* llama-cli refuses --prompt-cache-all in interactive mode: a chat's
     * session file holds its system turn only */
    if (o->cnv && o->prompt_cache_all)
        return bn_err("--prompt-cache-all is not supported in chat mode (-cnv): the chat's prompt "
                      "cache holds the system turn (--prompt-cache)");
    if (o->cnv) return bn_cmd_chat(o);
    if (o->system) return bn_err("-sys / --system-prompt needs -cnv (chat mode)");
    if (o->chat_template || o->chat_template_file)
        return bn_err("%s needs -cnv (chat mode)", o->chat_template ? "--chat-template" : "--chat-template-file");

    if (o->prompt_cache && !o->prompt_cache_ro && bn_cli_cache_check_path(o->prompt_cache) != 0) return 1;
    size_t len = 0;
    char *text = bn_cli_prompt_text(o, &len);
    if (!text) return 1;
    double t_start = bn_now_ms(), load_ms = 0;
    bn_model *m = bn_cli_load_model(o, 0, &load_ms);
    bn_context *c = m ? bn_cli_new_context(o, m, 1) : NULL;
    bn_sampler *s = NULL;
    int32_t *prompt = NULL, *kv_tokens = NULL;   /* kv_tokens: the ids of the cache's cells */
    int rc = 1, n_prompt = 0;
    bn_cli_stop stop_at = {0};
    bn_cli_noeog noeog = {0};
    if (!c || bn_cli_stop_init(&stop_at, o) != 0) goto done;
    const bn_tokenizer *tok = bn_model_tokenizer(m);
    const int n_ctx = bn_context_n_ctx(c);
    prompt = bn_cli_tokenize(tok, text, len, bn_add_bos(tok), 1, &n_prompt);
    if (!prompt) goto done;
    if (n_prompt == 0) {
        bn_err("empty prompt");
        goto done;
    }
    if (n_prompt > n_ctx) {
        bn_err("the prompt is %d tokens, longer than the context (%d); use a shorter prompt or a larger -c",
               n_prompt, n_ctx);
        goto done;
    }

    if (o->prompt_cache && !(kv_tokens = malloc((size_t)n_ctx * sizeof *kv_tokens))) {
        bn_err("out of memory");
        goto done;
    }
    if (o->ignore_eos && bn_cli_noeog_init(&noeog, tok) != 0) goto done;
    bn_cli_log_load(o, m, load_ms);
    if (!(s = bn_cli_new_sampler(o, tok, n_ctx)))
        goto done;
    bn_cli_exact_head(c, s, o->ignore_eos ? &noeog : NULL);
    bn_cli_shift shift = {.keep = bn_cli_keep(o, n_prompt, bn_add_bos(tok), 0),
                          .enabled = !o->no_shift && o->n_predict != -2};
    if (!o->log_disable)
        fprintf(stderr, "prompt: %d tokens, context %d, threads %d\n", n_prompt, n_ctx,
                bn_context_n_threads(c));
    if (o->verbose_prompt) bn_cli_print_tokens(tok, prompt, n_prompt);
    for (int i = 0; i < n_prompt; i++) bn_sampler_accept(s, prompt[i]);

    if (!o->no_display_prompt && bn_cli_emit(text, (int)len) != 0) {
        rc = bn_cli_emit_status();
        goto done;
    }
    char err[256];
    int n_reuse = 0, save_prompt = 0;
    if (o->prompt_cache) save_prompt = bn_cli_cache_load(o, c, prompt, n_prompt, 1, kv_tokens, &n_reuse);
    double t0 = bn_now_ms();
    if (bn_decode(c, prompt + n_reuse, n_prompt - n_reuse, 0, err, sizeof err) != 0) {
        bn_err("decoding the prompt: %s", err);
        goto done;
    }
    double t_prompt = bn_now_ms() - t0;
    if (o->prompt_cache) {
        memcpy(kv_tokens, prompt, (size_t)n_prompt * sizeof *kv_tokens);
        if (save_prompt && !o->prompt_cache_ro && bn_cli_cache_save(o, c, kv_tokens, n_prompt) != 0) goto done;
    }

    bn_detok dt;
    bn_detok_init(&dt, tok);
    char piece[BN_CLI_PIECE];
    int n_gen = 0;
    const char *stop = NULL;
    t0 = bn_now_ms();
    for (;;) {
        if (o->n_predict >= 0 && n_gen >= o->n_predict) break;
        const float *logits = bn_get_logits(c, -1);
        if (o->ignore_eos) logits = bn_cli_noeog_apply(&noeog, logits);
        int32_t id = bn_sampler_sample(s, logits);
        bn_sampler_accept(s, id);
        if (bn_token_is_eog(tok, id)) {
            stop = "end of generation token";
            break;
        }
        int np = bn_detok_push(&dt, id, piece, (int)sizeof piece);
        if (bn_cli_emit(piece, np) != 0) {
            rc = bn_cli_emit_status();
            goto done;
        }
        n_gen++;
        if (bn_cli_stop_push(&stop_at, piece, np)) {
            stop = "reverse prompt";
            break;
        }
        int full = bn_cli_make_room(c, &shift, 1);
        if (full < 0) goto done;
        if (full) {
            stop = "context full";
            break;
        }
        if (kv_tokens) kv_tokens[bn_context_n_past(c)] = id;    /* make_room left a free cell */
        if (bn_decode(c, &id, 1, 0, err, sizeof err) != 0) {
            bn_err("decoding: %s", err);
            goto done;
        }
    }
    double t_gen = bn_now_ms() - t0;
    if (bn_cli_emit(piece, bn_detok_flush(&dt, piece, (int)sizeof piece)) != 0 ||
        bn_cli_emit("\n", 1) != 0) {
        rc = bn_cli_emit_status();
        goto done;
    }
    if (stop && strcmp(stop, "context full") == 0 && shift.enabled)
        fprintf(stderr, "\nbitnet: context full (%d tokens) and --keep %d leaves nothing to "
                "discard: generation stopped\n", n_ctx, shift.keep);
    else if (stop && strcmp(stop, "context full") == 0)
        fprintf(stderr, "\nbitnet: context full (%d tokens): generation stopped; use a larger -c "
                "(at most the model's %d)\n", n_ctx, bn_model_hparams(m)->n_ctx_train);
    else if (stop && strcmp(stop, "reverse prompt") == 0 && !o->log_disable)
        fprintf(stderr, "\n[stopped at a reverse prompt]\n");
    else if (stop && !o->log_disable)
        fprintf(stderr, "\n[end of text]\n");
    /* --prompt-cache-all: the prompt and the generated tokens in the cache
     * (not the last sampled one, never decoded). After a context shift the
     * cells no longer follow the tokens from the start: llama-cli stops
     * saving then, and so does this. */
    if (o->prompt_cache_all && !o->prompt_cache_ro) {
        if (shift.n_shifts > 0)
            fprintf(stderr, "prompt cache: the context shifted; %s is left as it was\n", o->prompt_cache);
        else if (bn_cli_cache_save(o, c, kv_tokens, bn_context_n_past(c)) != 0)
            goto done;
    }
    if (o->no_perf) {
        rc = 0;
        goto done;
    }
    fprintf(stderr, "\n");
    if (shift.n_shifts > 0)
        fprintf(stderr, "bitnet: %16s = %10d (%d tokens discarded, the first %d kept)\n",
                "context shifts", shift.n_shifts, shift.n_discarded, shift.keep);
    fprintf(stderr, "bitnet: %16s = %10.2f ms\n", "load time", load_ms);
    print_timing("prompt eval time", t_prompt, n_prompt - n_reuse, "tokens");
    print_timing("generation time", t_gen, n_gen, "tokens");
    print_timing("total time", bn_now_ms() - t_start, n_prompt + n_gen, "tokens");
    bn_cli_print_head_stats(c);
    rc = 0;
done:
    bn_cli_noeog_free(&noeog);
    bn_cli_stop_free(&stop_at);
    if (c) bn_context_set_sampler(c, NULL);
    bn_sampler_free(s);
    free(prompt);
    free(kv_tokens);
    bn_context_free(c);
    bn_model_free(m);
    free(text);
    return rc;
}
