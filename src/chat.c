/* Chat conversation bookkeeping and the table of chat formats (see chat.h). */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

/* How a format renders a conversation. A message of role r is
 *   open[r] content close[r]  [end token + after_end, when end_closes[r]]
 * and the assistant's turn is opened by open[BN_ROLE_ASSISTANT]. */
typedef struct chat_format {
    const char *name;
    const char *open[3];            /* by bn_chat_role */
    const char *close[3];
    unsigned char end_closes[3];
    const char *after_end;          /* text that follows the end-of-turn token */
    const char *end_text;           /* the end-of-turn token by its text, else: */
    int end_is_eos;                 /* 1: EOS (else EOT, falling back to EOS) */
    int trim;                       /* content stripped of surrounding whitespace */
} chat_format;

#define L3_HEAD(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"

static const chat_format formats[] = {
    [BN_CHAT_2B4T] = {
        "2B4T", { "System: ", "User: ", "Assistant: " }, { "", "", "" }, { 1, 1, 1 },
        "", NULL, 0, 0 },
    [BN_CHAT_LLAMA3] = {
        "LLaMA-3", { L3_HEAD("system"), L3_HEAD("user"), L3_HEAD("assistant") },
        { "", "", "" }, { 1, 1, 1 }, "", "<|eot_id|>", 0, 1 },
    [BN_CHAT_FALCON3] = {
        "Falcon3", { "<|system|>\n", "<|user|>\n", "<|assistant|>\n" }, { "\n", "\n", "" },
        { 0, 0, 1 }, "\n", NULL, 1, 0 },
    [BN_CHAT_CHATML] = {
        "ChatML", { "<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n" },
        { "", "", "" }, { 1, 1, 1 }, "\n", "<|im_end|>", 0, 0 },
};
#define N_FORMATS ((int)(sizeof formats / sizeof formats[0]))

int bn_chat_detect(const char *tmpl) {
#define HAS(s) (strstr(tmpl, s) != NULL)
    if (!tmpl) return -1;
    if (HAS("<|im_start|>")) return HAS("<|im_sep|>") ? -1 : BN_CHAT_CHATML;  /* Phi-4: not ChatML */
    if (HAS("[INST]")) return -1;                                           /* Mistral, LLaMA-2 */
    if (HAS("<|assistant|>") && HAS("<|end|>")) return -1;                  /* Phi-3 */
    if (HAS("[gMASK]<sop>")) return -1;                                     /* GLM-4 */
    if (HAS("<|assistant|>") && HAS("<|user|>")) return BN_CHAT_FALCON3;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>")) return BN_CHAT_LLAMA3;
    if (HAS("BITNET")) return BN_CHAT_2B4T;
    return -1;
#undef HAS
}

const char *bn_chat_role_name(bn_chat_role role) {
    switch (role) {
    case BN_ROLE_SYSTEM: return "System";
    case BN_ROLE_USER: return "User";
    default: return "Assistant";
    }
}

const char *bn_chat_format_name(const bn_chat *c) { return formats[c->format].name; }

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

/* Appends to the text of the current call (tokenized by flush). */
static int add_text(bn_chat *c, const char *s, size_t n, char *err, size_t errlen) {
    if (c->text_len + n + 1 > c->text_cap) {
        size_t cap = (c->text_len + n + 1) * 2;
        char *p = realloc(c->text, cap);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        c->text = p;
        c->text_cap = cap;
    }
    memcpy(c->text + c->text_len, s, n);
    c->text_len += n;
    return 0;
}

static int add_str(bn_chat *c, const char *s, char *err, size_t errlen) {
    return add_text(c, s, strlen(s), err, errlen);
}

/* Tokenizes the held text (no BOS, specials parsed) into the conversation. */
static int flush(bn_chat *c, char *err, size_t errlen) {
    if (c->text_len == 0) return 0;
    int room = c->cap - c->n_tokens;
    /* no buffer yet: count first (NULL + 0 would be undefined) */
    int32_t *dst = c->tokens ? c->tokens + c->n_tokens : NULL;
    int n = bn_tokenize(c->tok, c->text, c->text_len, 0, 1, dst, room);
    if (n > room) {                 /* the buffer was short: grow and redo */
        if (reserve(c, n, err, errlen) != 0) return -1;
        n = bn_tokenize(c->tok, c->text, c->text_len, 0, 1, c->tokens + c->n_tokens, n);
    }
    if (n < 0) {
        snprintf(err, errlen, "cannot tokenize chat message");
        return -1;
    }
    c->n_tokens += n;
    c->text_len = 0;
    return 0;
}

static int push(bn_chat *c, int32_t id, char *err, size_t errlen) {
    if (flush(c, err, errlen) != 0 || reserve(c, 1, err, errlen) != 0) return -1;
    c->tokens[c->n_tokens++] = id;
    return 0;
}

/* The text owed after the last end-of-turn token, before anything else. */
static int pay_after_end(bn_chat *c, char *err, size_t errlen) {
    if (!c->after_end) return 0;
    c->after_end = 0;
    return add_str(c, formats[c->format].after_end, err, errlen);
}

/* open[role] content close[role] [end token], without flushing. */
static int render(bn_chat *c, bn_chat_role role, const char *content, char *err, size_t errlen) {
    const chat_format *f = &formats[c->format];
    size_t a = 0, b = strlen(content);
    if (f->trim) {                  /* llama.cpp's trim(): the C locale's isspace */
        while (a < b && strchr(" \t\n\v\f\r", content[a])) a++;
        while (b > a && strchr(" \t\n\v\f\r", content[b - 1])) b--;
    }
    if (pay_after_end(c, err, errlen) != 0 || add_str(c, f->open[role], err, errlen) != 0 ||
        add_text(c, content + a, b - a, err, errlen) != 0 ||
        add_str(c, f->close[role], err, errlen) != 0)
        return -1;
    if (!f->end_closes[role]) return 0;
    if (push(c, c->end_turn, err, errlen) != 0) return -1;
    c->after_end = 1;
    return 0;
}

/* Closes the open reply, if any, with the end-of-turn token. */
static int close_reply(bn_chat *c, char *err, size_t errlen) {
    if (!c->in_reply) return 0;
    c->in_reply = 0;
    if (push(c, c->end_turn, err, errlen) != 0) return -1;
    c->after_end = 1;
    return 0;
}

static int32_t end_token(const bn_tokenizer *t, const chat_format *f) {
    int32_t eot = bn_token_eot(t), eos = bn_token_eos(t);
    if (f->end_text) {
        int32_t id = bn_token_lookup(t, f->end_text, strlen(f->end_text));
        if (id >= 0) return id;
    }
    if (f->end_is_eos) return eos >= 0 ? eos : eot;
    return eot >= 0 ? eot : eos;
}

bn_chat *bn_chat_new_format(const bn_tokenizer *t, int format, const char *system,
                            char *err, size_t errlen) {
    if (format < 0 || format >= N_FORMATS) {
        snprintf(err, errlen, "unknown chat format %d", format);
        return NULL;
    }
    bn_chat *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->tok = t;
    c->format = format;
    c->end_turn = end_token(t, &formats[format]);
    if (c->end_turn < 0) {
        snprintf(err, errlen, "the vocabulary has no end-of-turn token for the %s chat format",
                 formats[format].name);
        bn_chat_free(c);
        return NULL;
    }
    if ((bn_add_bos(t) && bn_token_bos(t) >= 0 && push(c, bn_token_bos(t), err, errlen) != 0) ||
        (system && bn_chat_add_message(c, BN_ROLE_SYSTEM, system, err, errlen) != 0)) {
        bn_chat_free(c);
        return NULL;
    }
    return c;
}

bn_chat *bn_chat_new(const bn_tokenizer *t, const char *system, char *err, size_t errlen) {
    const char *tmpl = t ? bn_tokenizer_chat_template(t) : NULL;
    if (!tmpl) {
        snprintf(err, errlen, "the model has no chat template (tokenizer.chat_template); "
                 "name a format with --chat-template, or use -p for plain completion");
        return NULL;
    }
    /* llama.cpp reads the file's template into a 2048-byte buffer: only
     * its first 2047 bytes are searched for markers (docs/CHAT.md,
     * Template recognition); a template given by name or text is whole. */
    char head[2048];
    size_t n = strlen(tmpl) < sizeof head - 1 ? strlen(tmpl) : sizeof head - 1;
    memcpy(head, tmpl, n);
    head[n] = '\0';
    int format = bn_chat_detect(head);
    if (format < 0) {
        snprintf(err, errlen, "the model's chat template is none of the known formats "
                 "(2B4T, LLaMA-3, Falcon3, ChatML); name one with --chat-template, or use -p "
                 "for plain completion");
        return NULL;
    }
    return bn_chat_new_format(t, format, system, err, errlen);
}

/* llama.cpp's names of the built-in formats (llama-cli --chat-template). */
static const struct {
    const char *name;
    int format;
} format_names[] = {
    {"bitnet", BN_CHAT_2B4T}, {"llama3", BN_CHAT_LLAMA3}, {"falcon3", BN_CHAT_FALCON3}, {"chatml", BN_CHAT_CHATML},
};

bn_chat *bn_chat_new_template(const bn_tokenizer *t, const char *tmpl, const char *system,
                              char *err, size_t errlen) {
    if (!tmpl) return bn_chat_new(t, system, err, errlen);
    int format = -1;
    for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++)
        if (strcmp(tmpl, format_names[i].name) == 0) format = format_names[i].format;
    if (format < 0) format = bn_chat_detect(tmpl);
    if (format < 0) {
        /* a short name is worth repeating; a template's text is not (it
         * spans lines) */
        int name_like = strlen(tmpl) <= 40;
        for (const char *q = tmpl; *q && name_like; q++) name_like = *q >= ' ' && *q <= '~' && *q != '{';
        snprintf(err, errlen, "chat template %s%s%sis none of the known formats (a name: bitnet, "
                 "llama3, falcon3, chatml; or a template with their markers)",
                 name_like ? "'" : "", name_like ? tmpl : "", name_like ? "' " : "");
        return NULL;
    }
    return bn_chat_new_format(t, format, system, err, errlen);
}

void bn_chat_free(bn_chat *c) {
    if (!c) return;
    free(c->tokens);
    free(c->text);
    free(c);
}

int bn_chat_add_message(bn_chat *c, bn_chat_role role, const char *content,
                        char *err, size_t errlen) {
    if (close_reply(c, err, errlen) != 0 || render(c, role, content, err, errlen) != 0)
        return -1;
    return flush(c, err, errlen);
}

int bn_chat_add_user_turn(bn_chat *c, const char *content, char *err, size_t errlen) {
    int n_tokens = c->n_tokens, in_reply = c->in_reply, after_end = c->after_end;
    if (close_reply(c, err, errlen) != 0 || render(c, BN_ROLE_USER, content, err, errlen) != 0 ||
        pay_after_end(c, err, errlen) != 0 ||
        add_str(c, formats[c->format].open[BN_ROLE_ASSISTANT], err, errlen) != 0 ||
        flush(c, err, errlen) != 0)
        return -1;
    c->in_reply = 1;
    c->undo_ok = 1;
    c->undo_n_tokens = n_tokens;
    c->undo_in_reply = in_reply;
    c->undo_after_end = after_end;
    return 0;
}

int bn_chat_undo_user_turn(bn_chat *c) {
    if (!c->undo_ok || c->n_fed > c->undo_n_tokens) return -1;
    c->n_tokens = c->undo_n_tokens;
    c->in_reply = c->undo_in_reply;
    c->after_end = c->undo_after_end;
    c->undo_ok = 0;
    return 0;
}

int bn_chat_add_reply_token(bn_chat *c, int32_t id, char *err, size_t errlen) {
    if (!c->in_reply) {
        snprintf(err, errlen, "no reply is open");
        return -1;
    }
    if (push(c, id, err, errlen) != 0) return -1;
    if (bn_token_is_eog(c->tok, id)) {
        c->in_reply = 0;
        c->after_end = 1;
    }
    return 0;
}

int bn_chat_end_reply(bn_chat *c, char *err, size_t errlen) {
    return close_reply(c, err, errlen);
}

int bn_chat_n_pending(const bn_chat *c) { return c->n_tokens - c->n_fed; }
const int32_t *bn_chat_pending(const bn_chat *c) { return c->tokens + c->n_fed; }
void bn_chat_mark_fed(bn_chat *c) { c->n_fed = c->n_tokens; }
