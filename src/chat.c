/* Chat conversation bookkeeping and the 2B4T template (see chat.h). */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *bn_chat_role_name(bn_chat_role role) {
    switch (role) {
    case BN_ROLE_SYSTEM: return "System";
    case BN_ROLE_USER: return "User";
    default: return "Assistant";
    }
}

static int reserve(bn_chat *c, int extra, char *err, size_t errlen) {
    if (extra < 0 || c->n_tokens > (1 << 30) - extra) {
        snprintf(err, errlen, "conversation too long");
        return -1;
    }
    int need = c->n_tokens + extra;
    if (need <= c->cap) return 0;
    int cap = c->cap ? c->cap : 256;
    while (cap < need) cap *= 2;
    int32_t *t = realloc(c->tokens, (size_t)cap * sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->tokens = t;
    c->cap = cap;
    return 0;
}

static int push(bn_chat *c, int32_t id, char *err, size_t errlen) {
    if (reserve(c, 1, err, errlen) != 0) return -1;
    c->tokens[c->n_tokens++] = id;
    return 0;
}

/* Appends the tokens of `text` (no BOS, specials parsed). */
static int push_text(bn_chat *c, const char *text, char *err, size_t errlen) {
    size_t len = strlen(text);
    int room = c->cap - c->n_tokens;
    int n = bn_tokenize(c->tok, text, len, 0, 1, c->tokens + c->n_tokens, room);
    if (n > room) {                 /* the buffer was short: grow and redo */
        if (reserve(c, n, err, errlen) != 0) return -1;
        n = bn_tokenize(c->tok, text, len, 0, 1, c->tokens + c->n_tokens, n);
    }
    if (n < 0) {
        snprintf(err, errlen, "cannot tokenize chat message");
        return -1;
    }
    c->n_tokens += n;
    return 0;
}

/* "Role: content" as tokens. */
static int push_role_text(bn_chat *c, bn_chat_role role, const char *content,
                          char *err, size_t errlen) {
    const char *name = bn_chat_role_name(role);
    size_t len = strlen(name) + 2 + strlen(content) + 1;
    char *text = malloc(len);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(text, len, "%s: %s", name, content);
    int rc = push_text(c, text, err, errlen);
    free(text);
    return rc;
}

int bn_chat_init(bn_chat *c, const bn_tokenizer *t, const char *system,
                 char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    c->tok = t;
    c->end_turn = bn_token_eot(t) >= 0 ? bn_token_eot(t) : bn_token_eos(t);
    if (c->end_turn < 0 || bn_token_bos(t) < 0) {
        snprintf(err, errlen, "the vocabulary has no begin-of-text or end-of-turn token");
        return -1;
    }
    if (push(c, bn_token_bos(t), err, errlen) != 0) return -1;
    if (system && bn_chat_add_message(c, BN_ROLE_SYSTEM, system, err, errlen) != 0) {
        bn_chat_free(c);
        return -1;
    }
    return 0;
}

void bn_chat_free(bn_chat *c) {
    free(c->tokens);
    memset(c, 0, sizeof *c);
}

int bn_chat_add_message(bn_chat *c, bn_chat_role role, const char *content,
                        char *err, size_t errlen) {
    if (bn_chat_end_reply(c, err, errlen) != 0) return -1;
    if (push_role_text(c, role, content, err, errlen) != 0) return -1;
    return push(c, c->end_turn, err, errlen);
}

int bn_chat_add_user_turn(bn_chat *c, const char *content, char *err, size_t errlen) {
    if (bn_chat_add_message(c, BN_ROLE_USER, content, err, errlen) != 0) return -1;
    if (push_text(c, "Assistant: ", err, errlen) != 0) return -1;
    c->in_reply = 1;
    return 0;
}

int bn_chat_add_reply_token(bn_chat *c, int32_t id, char *err, size_t errlen) {
    if (!c->in_reply) {
        snprintf(err, errlen, "no reply is open");
        return -1;
    }
    if (push(c, id, err, errlen) != 0) return -1;
    if (bn_token_is_eog(c->tok, id)) c->in_reply = 0;
    return 0;
}

int bn_chat_end_reply(bn_chat *c, char *err, size_t errlen) {
    if (!c->in_reply) return 0;
    c->in_reply = 0;
    return push(c, c->end_turn, err, errlen);
}

int bn_chat_n_pending(const bn_chat *c) { return c->n_tokens - c->n_fed; }
const int32_t *bn_chat_pending(const bn_chat *c) { return c->tokens + c->n_fed; }
void bn_chat_mark_fed(bn_chat *c) { c->n_fed = c->n_tokens; }
