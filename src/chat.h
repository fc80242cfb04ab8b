/* Chat conversations, format-driven (the public API is in bitnet.h, "chat";
 * docs/CHAT.md describes the formats).
 *
 * A format says how a message of each role is rendered (text before and
 * after the content, whether the end-of-turn token closes it and what text
 * follows that token), what opens the assistant's turn, and which token
 * ends a turn. Four formats, as the model's tokenizer.chat_template names
 * them:
 *
 *   2B4T     <BOS>System: S<|eot_id|>User: Q<|eot_id|>Assistant: R<|eot_id|>...
 *   LLaMA-3  <BOS><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>...
 *   Falcon3  <|system|>\nS\n<|user|>\nQ\n<|assistant|>\nR<EOS>\n<|user|>...
 *   ChatML   <|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nR<|im_end|>\n...
 *
 * Message text is tokenized with parse_special (as llama-cli does), all the
 * text of one call as one string; the end-of-turn token is appended as the
 * id itself. The text after an end-of-turn token (Falcon3's and ChatML's
 * "\n") is held back until the next message, so that the token the model
 * samples to end its reply is followed by it, as the template has it. */
#ifndef BN_CHAT_H
#define BN_CHAT_H

#include "bitnet.h"

enum bn_chat_format_id {
    BN_CHAT_2B4T = 0, BN_CHAT_LLAMA3 = 1, BN_CHAT_FALCON3 = 2, BN_CHAT_CHATML = 3
};

struct bn_chat {
    const bn_tokenizer *tok;
    int format;                     /* enum bn_chat_format_id */
    int32_t end_turn;               /* token closing a turn */
    int32_t *tokens;                /* the conversation so far */
    int n_tokens, cap;
    int n_fed;                      /* tokens[0 .. n_fed) are in the KV cache */
    int in_reply;                   /* an assistant reply is open */
    int after_end;                  /* the format's after-end text is still owed */
    char *text;                     /* text of the current call, not yet tokenized */
    size_t text_len, text_cap;
    /* the state before the last user turn, while it can be taken back */
    int undo_ok, undo_n_tokens, undo_in_reply, undo_after_end;
};

/* The format a chat template names, by its markers in llama.cpp's order
 * (llm_chat_detect_template) restricted to the formats above; -1 for none.
 * Phi-3, GLM, Mistral/LLaMA-2 templates are recognised as not ours. */
int bn_chat_detect(const char *tmpl);

/* A conversation in a given format whatever the template says (tests). */
bn_chat *bn_chat_new_format(const bn_tokenizer *t, int format, const char *system,
                            char *err, size_t errlen);

/* The 2B4T role names: "System", "User", "Assistant". */
const char *bn_chat_role_name(bn_chat_role role);

#endif
