/* llama-server's native completion API, POST /completion, as bitnet.cpp's
 * llama-server speaks it: the request fields the OpenAI endpoints do not
 * share (n_probs, id_slot, and the ones we refuse), and the response's
 * shape, plain and streamed (docs/ARCHITECTURE.md, Native completion API).
 * The generation itself is the OpenAI endpoints' (serve.c, scheduler.c),
 * so a request gives the text /v1/completions gives with the same
 * parameters. */
#ifndef BN_NATIVE_H
#define BN_NATIVE_H

#include <stddef.h>

#include "bitnet.h"
#include "json.h"
#include "scheduler.h"

/* The native fields beside the shared ones (serve.c parses those). */
typedef struct bn_native_req {
    int n_probs;                    /* alternatives per token, 0 .. BN_SCHED_MAX_TOP */
    int id_slot;                    /* the slot to run on, -1 any */
} bn_native_req;

/* Reads n_probs and id_slot (below n_slots), and refuses, with the reason
 * in msg, a field we cannot honour whose silent omission would change the
 * text (grammar, mirostat, logit_bias...). Returns 0, or -1 (a 400). */
int bn_native_parse(const bn_json_doc *doc, const bn_json *root, int n_slots, bn_native_req *out,
                    char *msg, size_t msglen);

/* What a response holds besides the job. */
typedef struct bn_native_ctx {
    const bn_tokenizer *tok;
    const char *model;              /* the model's name (-a) */
    int n_ctx;                      /* a slot's context */
    int stream;
    const bn_json_doc *doc;         /* the request, for its prompt, echoed back */
    const bn_json *prompt;          /* a string or an array of token ids */
} bn_native_ctx;

/* A streamed event's JSON object (no "data: "): the text piece
 * text[0..n) with "stop":false, and the records [lp_from, lp_to) when the
 * job has n_probs. */
void bn_native_partial_json(bn_jbuf *b, const bn_native_ctx *x, const bn_job *j, const char *text,
                            size_t n, int lp_from, int lp_to);

/* llama-server's "timings" of a finished job, which the OpenAI responses
 * carry too (clients show its rates): the tokens the slot's cache held
 * (cache_n) and those decoded (prompt_n), the prompt's time from the slot
 * taking the request to its logits (the time to the first token, less one
 * sampling step), and the generation's from there to the end. */
void bn_timings_json(bn_jbuf *b, const bn_job *j);

/* The response of a finished job (non-streamed), or the last event of a
 * stream (its "content" empty: the text went in the events before). */
void bn_native_final_json(bn_jbuf *b, const bn_native_ctx *x, const bn_job *j);

#endif
