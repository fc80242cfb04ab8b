/* OpenAI's log-probability objects of the completion endpoints
 * (logprobs.c; docs/ARCHITECTURE.md, Log-probabilities). */
#ifndef BN_SERVER_LOGPROBS_H
#define BN_SERVER_LOGPROBS_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"
#include "json.h"
#include "scheduler.h"

/* Where text_offset stands: code points before the generated text (the
 * echoed prompt's), and a cursor over the generated text (records come in
 * text order). */
typedef struct bn_text_pos {
    size_t base_chars;
    size_t byte, chars;
} bn_text_pos;

/* Chat: "logprobs":{"content":[...]} of records [from, to). */
void bn_lp_chat_json(bn_jbuf *b, const bn_tokenizer *t, const bn_job *j, int from, int to);
/* Completions: "logprobs":{"tokens","token_logprobs","top_logprobs",
 * "text_offset"} of records [from, to). top_logprobs holds the n_top most
 * likely and, as OpenAI's, the chosen token when it is not among them;
 * the prompt's first token has null for both (nothing comes before it). */
void bn_lp_completion_json(bn_jbuf *b, const bn_tokenizer *t, const bn_job *j, int from, int to,
                           bn_text_pos *pos);
/* Records of generated tokens that belong to the final text: those that
 * gave it a byte, or none but end inside it (a stop string cut the rest). */
int bn_lp_final_count(const bn_job *j);
/* Appends the prompt's pieces as "echo" shows them (control tokens as
 * nothing) to e; returns the code points of all e holds. */
size_t bn_lp_echo_text(bn_jbuf *e, const bn_tokenizer *t, const int32_t *prompt, int n);

#endif
