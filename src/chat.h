/* Chat conversations in the format BitNet-b1.58-2B-4T was trained with
 * (its Hugging Face chat template):
 *
 *   <|begin_of_text|>System: SYS<|eot_id|>User: Q1<|eot_id|>Assistant: R1<|eot_id|>
 *   User: Q2<|eot_id|>Assistant: ...
 *
 * A bn_chat holds every token of the conversation in the order it is fed to
 * the model, plus a cursor saying how many of them are already in the KV
 * cache; the CLI decodes exactly the pending tail, so the whole history is
 * evaluated once. Message text is tokenized with parse_special (as llama-cli
 * does); the end-of-turn marker is appended as the control token id itself
 * (<|eot_id|>, or the EOS of a vocabulary without one). */
#ifndef BN_CHAT_H
#define BN_CHAT_H

#include "bitnet.h"

typedef enum { BN_ROLE_SYSTEM, BN_ROLE_USER, BN_ROLE_ASSISTANT } bn_chat_role;

typedef struct bn_chat {
    const bn_tokenizer *tok;
    int32_t end_turn;               /* token closing every message */
    int32_t *tokens;                /* the conversation so far */
    int n_tokens, cap;
    int n_fed;                      /* tokens[0 .. n_fed) are in the KV cache */
    int in_reply;                   /* an assistant reply is open */
} bn_chat;

/* "System", "User", "Assistant". */
const char *bn_chat_role_name(bn_chat_role role);

/* Starts a conversation: <|begin_of_text|> then, when system is non-NULL,
 * the system message. Returns 0, or -1 with a message in err. */
int bn_chat_init(bn_chat *c, const bn_tokenizer *t, const char *system,
                 char *err, size_t errlen);
void bn_chat_free(bn_chat *c);

/* Appends a whole message "Role: content" + end-of-turn. */
int bn_chat_add_message(bn_chat *c, bn_chat_role role, const char *content,
                        char *err, size_t errlen);
/* Appends the user message followed by "Assistant: ", opening a reply whose
 * tokens then come from bn_chat_add_reply_token. */
int bn_chat_add_user_turn(bn_chat *c, const char *content, char *err, size_t errlen);
/* Records one sampled token of the open reply (an EOG token closes it). */
int bn_chat_add_reply_token(bn_chat *c, int32_t id, char *err, size_t errlen);
/* Closes the open reply if no EOG token did (interrupt, token budget,
 * context full): appends the end-of-turn token. No-op otherwise. */
int bn_chat_end_reply(bn_chat *c, char *err, size_t errlen);

/* The tokens not yet in the KV cache, and marking them as fed. */
int bn_chat_n_pending(const bn_chat *c);
const int32_t *bn_chat_pending(const bn_chat *c);
void bn_chat_mark_fed(bn_chat *c);

#endif
