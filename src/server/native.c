/* llama-server's native POST /completion: its own request fields and its
 * response shape (docs/ARCHITECTURE.md, Native completion API). serve.c
 * parses the fields it shares with /v1/completions and runs the job; this
 * file says what the native API adds or refuses and writes its JSON. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "logprobs.h"
#include "native.h"

/* ---- the request ----------------------------------------------------------------- */

static int refuse(char *msg, size_t msglen, const char *key, const char *why) {
    snprintf(msg, msglen, "'%s' is not supported: %s", key, why);
    return -1;
}

/* A number member, *out untouched when absent or null: 0, or -1 when it
 * is there but not a number. */
static int num_field(const bn_json_doc *d, const bn_json *root, const char *key, double *out) {
    const bn_json *v = bn_json_get(d, root, key);
    if (!v || v->type == BN_JSON_NULL) return 0;
    if (v->type != BN_JSON_NUMBER) return -1;
    *out = v->num;
    return 0;
}

/* 1 when the member is there and neither null, false, "" nor an empty
 * array or object: a feature the client asks for. */
static int asks_for(const bn_json_doc *d, const bn_json *root, const char *key) {
    const bn_json *v = bn_json_get(d, root, key);
    if (!v) return 0;
    switch (v->type) {
    case BN_JSON_NULL:
    case BN_JSON_FALSE: return 0;
    case BN_JSON_STRING: return v->len > 0;
    case BN_JSON_ARRAY:
    case BN_JSON_OBJECT: return v->n > 0;
    default: return 1;
    }
}

/* "samplers" may only name our chain in its order (llama-server's default
 * without tail-free and typical, which are off here): another order or
 * a missing sampler would change the text. */
static int samplers_ok(const bn_json_doc *d, const bn_json *v) {
    static const char *const chain[] = {"top_k", "tfs_z", "typical_p", "top_p", "min_p", "temperature"};
    size_t at = 0;
    int n_ours = 0;
    for (const bn_json *e = bn_json_first(d, v); e; e = bn_json_next(d, e)) {
        if (e->type != BN_JSON_STRING) return 0;
        while (at < 6 && strcmp(e->str, chain[at]) != 0) {
            if (at != 1 && at != 2) return 0;   /* skipped one of ours */
            at++;
        }
        if (at == 6) return 0;
        n_ours += at != 1 && at != 2;
        at++;
    }
    return n_ours == 4;
}

int bn_native_parse(const bn_json_doc *d, const bn_json *root, int n_slots, bn_native_req *out,
                    char *msg, size_t msglen) {
    out->n_probs = 0;
    out->id_slot = -1;
    double v = 0;
    if (num_field(d, root, "n_probs", &v) != 0 || v != floor(v) || v < 0 || v > BN_SCHED_MAX_TOP) {
        snprintf(msg, msglen, "'n_probs' must be an integer from 0 to %d", BN_SCHED_MAX_TOP);
        return -1;
    }
    out->n_probs = (int)v;
    v = -1;
    if (num_field(d, root, "id_slot", &v) != 0 || v != floor(v) || v < -1 || v >= n_slots) {
        snprintf(msg, msglen, "'id_slot' must be -1 (any) or a slot from 0 to %d", n_slots - 1);
        return -1;
    }
    out->id_slot = (int)v;

    /* llama-server's features we do not have: refused where ignoring them
     * would change the text; n_keep, n_discard (we never shift a
     * completion's context), the mirostat and dynatemp parameters without
     * their switch, and what that server's /completion does not read
     * either (image_data, lora, input_prefix...) or does not know are
     * ignored, as there. */
    static const char *const features[] = {"grammar", "json_schema", "logit_bias"};
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
        if (asks_for(d, root, features[i])) return refuse(msg, msglen, features[i], "this server has no such sampler");
    /* the values at which that server leaves the text to our chain */
    static const struct { const char *key; double lo, hi; } knobs[] = {
        {"mirostat", 0, 0}, {"tfs_z", 1, HUGE_VAL}, {"typical_p", 1, HUGE_VAL},
        {"dynatemp_range", -HUGE_VAL, 0}, {"t_max_predict_ms", -HUGE_VAL, 0},
    };
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        double k = knobs[i].lo > -HUGE_VAL ? knobs[i].lo : knobs[i].hi;
        if (num_field(d, root, knobs[i].key, &k) != 0 || k < knobs[i].lo || k > knobs[i].hi)
            return refuse(msg, msglen, knobs[i].key, "only its 'off' value is taken here");
    }
    double min_keep = 0;
    if (num_field(d, root, "min_keep", &min_keep) != 0 || min_keep > 1)
        return refuse(msg, msglen, "min_keep", "top-p and min-p keep one token here");
    const bn_json *smp = bn_json_get(d, root, "samplers");
    if (smp && smp->type != BN_JSON_NULL && (smp->type != BN_JSON_ARRAY || !samplers_ok(d, smp)))
        return refuse(msg, msglen, "samplers", "the chain is top_k, top_p, min_p, temperature, in that order");
    /* our penalties count newlines like any token (penalize_nl true) */
    const bn_json *nl = bn_json_get(d, root, "penalize_nl");
    if (nl && nl->type == BN_JSON_FALSE) {
        double rp = 1, fp = 0, pp = 0;
        num_field(d, root, "repeat_penalty", &rp);
        num_field(d, root, "frequency_penalty", &fp);
        num_field(d, root, "presence_penalty", &pp);
        if (rp != 1 || fp != 0 || pp != 0)
            return refuse(msg, msglen, "penalize_nl", "false with a penalty on: newlines are penalized here");
    }
    return 0;
}

/* ---- the response ---------------------------------------------------------------- */

/* A token as llama-server writes it in n_probs: its text (control tokens
 * by name); a lone byte that is not ASCII as "byte: \xNN". */
static void token_str(bn_jbuf *b, const bn_tokenizer *t, int32_t id) {
    char p[1024];
    int n = id < 0 ? 0 : bn_token_to_bytes(t, id, 1, p, (int)sizeof p);
    n = n < 0 ? 0 : n > (int)sizeof p ? (int)sizeof p : n;
    if (n == 1 && ((unsigned char)p[0] & 0x80)) {
        char hex[16];
        snprintf(hex, sizeof hex, "byte: \\x%x", (unsigned)(unsigned char)p[0]);
        bn_jbuf_str(b, hex, strlen(hex));
        return;
    }
    bn_jbuf_str(b, p, (size_t)n);   /* bytes that are not UTF-8 become U+FFFD */
}

/* "completion_probabilities":[{"content":TOKEN,"probs":[{"tok_str","prob"}...]}...] */
static void probs_json(bn_jbuf *b, const bn_native_ctx *x, const bn_job *j, int from, int to) {
    bn_jbuf_puts(b, ",\"completion_probabilities\":[");
    for (int i = from; i < to; i++) {
        bn_jbuf_puts(b, i > from ? ",{\"content\":" : "{\"content\":");
        token_str(b, x->tok, j->lp[i].id);
        bn_jbuf_puts(b, ",\"probs\":[");
        for (int k = 0; k < j->n_top; k++) {
            const size_t at = (size_t)i * (size_t)j->n_top + (size_t)k;
            if (j->lp_top_id[at] < 0) break;
            bn_jbuf_puts(b, k ? ",{\"tok_str\":" : "{\"tok_str\":");
            token_str(b, x->tok, j->lp_top_id[at]);
            bn_jbuf_puts(b, ",\"prob\":");
            bn_jbuf_num(b, (double)j->lp_top[at]);
            bn_jbuf_puts(b, "}");
        }
        bn_jbuf_puts(b, "]}");
    }
    bn_jbuf_puts(b, "]");
}

void bn_native_partial_json(bn_jbuf *b, const bn_native_ctx *x, const bn_job *j, const char *text,
                            size_t n, int lp_from, int lp_to) {
    bn_jbuf_puts(b, "{\"content\":");
    bn_jbuf_str(b, text, n);
    bn_jbuf_printf(b, ",\"stop\":false,\"id_slot\":%d,\"multimodal\":false,\"index\":0", j->slot);
    if (j->probs) probs_json(b, x, j, lp_from, lp_to);
    bn_jbuf_puts(b, "}");
}

/* The sampling settings the job ran with, in llama-server's names; the
 * samplers we do not have at their "off" values. */
static void settings_json(bn_jbuf *b, const bn_native_ctx *x, const bn_job *j) {
    const bn_sampler_params *sp = &j->sp;
    bn_jbuf_printf(b, ",\"generation_settings\":{\"n_ctx\":%d,\"n_predict\":-1,\"model\":", x->n_ctx);
    bn_jbuf_str(b, x->model, strlen(x->model));
    bn_jbuf_printf(b, ",\"seed\":%u,\"seed_cur\":%u,\"temperature\":", sp->seed, j->seed);
    bn_jbuf_num(b, (double)sp->temp);
    bn_jbuf_printf(b, ",\"dynatemp_range\":0,\"dynatemp_exponent\":1,\"top_k\":%d,\"top_p\":", sp->top_k);
    bn_jbuf_num(b, (double)sp->top_p);
    bn_jbuf_puts(b, ",\"min_p\":");
    bn_jbuf_num(b, (double)sp->min_p);
    bn_jbuf_printf(b, ",\"tfs_z\":1,\"typical_p\":1,\"repeat_last_n\":%d,\"repeat_penalty\":", sp->repeat_last_n);
    bn_jbuf_num(b, (double)sp->repeat_penalty);
    bn_jbuf_puts(b, ",\"presence_penalty\":");
    bn_jbuf_num(b, (double)sp->presence_penalty);
    bn_jbuf_puts(b, ",\"frequency_penalty\":");
    bn_jbuf_num(b, (double)sp->freq_penalty);
    bn_jbuf_puts(b, ",\"mirostat\":0,\"mirostat_tau\":5,\"mirostat_eta\":0.1,\"penalize_nl\":true,\"stop\":[");
    for (int i = 0; i < j->n_stop; i++) {
        if (i) bn_jbuf_puts(b, ",");
        bn_jbuf_str(b, j->stop[i], strlen(j->stop[i]));
    }
    bn_jbuf_printf(b, "],\"max_tokens\":%d,\"n_keep\":0,\"n_discard\":0,\"ignore_eos\":%s,\"stream\":%s,"
                      "\"n_probs\":%d,\"min_keep\":0,\"grammar\":\"\",\"cache_prompt\":%s,"
                      "\"samplers\":[\"top_k\",\"top_p\",\"min_p\",\"temperature\"]}",
                   j->n_predict, j->ignore_eos ? "true" : "false", x->stream ? "true" : "false",
                   j->probs ? j->n_top : 0, j->no_cache ? "false" : "true");
}

static double per_second(int n, double ms) {
    return ms > 0.0 ? 1e3 * n / ms : 0.0;
}

void bn_timings_json(bn_jbuf *b, const bn_job *j) {
    const int n_decoded = j->n_prompt - j->n_cached;
    bn_jbuf_printf(b, "\"timings\":{\"cache_n\":%d,\"prompt_n\":%d,\"prompt_ms\":%.3f,\"prompt_per_second\":%.3f,"
                      "\"predicted_n\":%d,\"predicted_ms\":%.3f,\"predicted_per_second\":%.3f}",
                   j->n_cached, n_decoded, j->t_prompt_ms, per_second(n_decoded, j->t_prompt_ms), j->n_gen,
                   j->t_gen_ms, per_second(j->n_gen, j->t_gen_ms));
}

void bn_native_final_json(bn_jbuf *b, const bn_native_ctx *x, const bn_job *j) {
    const int stopped_word = j->stop_word >= 0;
    const int stopped_limit = !j->stopped_eos && !stopped_word && strcmp(j->finish, "length") == 0;
    bn_jbuf_puts(b, "{\"content\":");
    if (x->stream) bn_jbuf_puts(b, "\"\"");
    else bn_jbuf_str(b, j->text, j->len);
    bn_jbuf_printf(b, ",\"id_slot\":%d,\"stop\":true,\"model\":", j->slot);
    bn_jbuf_str(b, x->model, strlen(x->model));
    /* llama-server counts the EOG token among those predicted */
    bn_jbuf_printf(b, ",\"tokens_predicted\":%d,\"tokens_evaluated\":%d", j->n_gen + j->stopped_eos, j->n_prompt);
    settings_json(b, x, j);
    bn_jbuf_puts(b, ",\"prompt\":");
    if (x->prompt && x->prompt->type == BN_JSON_STRING) {
        bn_jbuf_str(b, x->prompt->str, x->prompt->len);
    } else {
        bn_jbuf_puts(b, "[");
        for (int i = 0; i < j->n_prompt; i++) bn_jbuf_printf(b, "%s%d", i ? "," : "", (int)j->prompt[i]);
        bn_jbuf_puts(b, "]");
    }
    bn_jbuf_printf(b, ",\"has_new_line\":%s,\"truncated\":%s,\"stopped_eos\":%s,\"stopped_word\":%s,"
                      "\"stopped_limit\":%s,\"stopping_word\":",
                   memchr(j->text, '\n', j->len) ? "true" : "false", j->ctx_full ? "true" : "false",
                   j->stopped_eos ? "true" : "false", stopped_word ? "true" : "false",
                   stopped_limit ? "true" : "false");
    const char *word = stopped_word ? j->stop[j->stop_word] : "";
    bn_jbuf_str(b, word, strlen(word));
    /* the same timings object as the OpenAI responses */
    bn_jbuf_printf(b, ",\"tokens_cached\":%d,", j->n_past);
    bn_timings_json(b, j);
    bn_jbuf_puts(b, ",\"index\":0");
    /* streamed, the last event repeats every record, as llama-server's */
    if (j->probs) probs_json(b, x, j, 0, x->stream ? j->n_lp : bn_lp_final_count(j));
    bn_jbuf_puts(b, "}");
}
