/* OpenAI's log-probability objects of the completion endpoints
 * (docs/ARCHITECTURE.md, Log-probabilities): chat's "content" records, text
 * completions' tokens / token_logprobs / top_logprobs / text_offset, and the
 * echoed prompt's text. A token is shown with its bytes, control tokens by
 * their text. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "logprobs.h"

/* A generated or alternative token's bytes (control tokens by their text). */
static int token_piece(const bn_tokenizer *t, int32_t id, char *buf, int cap) {
    const int n = bn_token_to_bytes(t, id, 1, buf, cap);
    return n < 0 ? 0 : n > cap ? cap : n;
}

/* A prompt token's bytes as the echoed text holds them (control tokens ""). */
static int echo_piece(const bn_tokenizer *t, int32_t id, char *buf, int cap) {
    const int n = bn_token_to_bytes(t, id, 0, buf, cap);
    return n < 0 ? 0 : n > cap ? cap : n;
}

static int utf8_valid(const char *p, int n) {
    for (int i = 0; i < n;) {
        const int k = bn_utf8_seq_len((const unsigned char *)p + i, (size_t)(n - i));
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

/* Code points in p[0..n) (the text is UTF-8: its non-continuation bytes). */
static size_t count_chars(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)p[i] & 0xC0) != 0x80;
    return k;
}

/* Chat: {"token","logprob","bytes"}; the token's text with U+FFFD for bytes
 * that are not UTF-8 on their own (the bytes are all there). */
static void chat_token_json(bn_jbuf *b, const bn_tokenizer *t, int32_t id, float logprob) {
    char p[1024];
    const int n = token_piece(t, id, p, (int)sizeof p);
    bn_jbuf_puts(b, "{\"token\":");
    bn_jbuf_str(b, p, (size_t)n);
    bn_jbuf_puts(b, ",\"logprob\":");
    bn_jbuf_num(b, (double)logprob);
    bn_jbuf_puts(b, ",\"bytes\":[");
    for (int i = 0; i < n; i++) bn_jbuf_printf(b, "%s%u", i ? "," : "", (unsigned)(unsigned char)p[i]);
    bn_jbuf_puts(b, "]");
}

void bn_lp_chat_json(bn_jbuf *b, const bn_tokenizer *t, const bn_job *j, int from, int to) {
    bn_jbuf_puts(b, "\"logprobs\":{\"content\":[");
    for (int i = from; i < to; i++) {
        if (i > from) bn_jbuf_puts(b, ",");
        chat_token_json(b, t, j->lp[i].id, j->lp[i].logprob);
        bn_jbuf_puts(b, ",\"top_logprobs\":[");
        for (int k = 0; k < j->n_top; k++) {
            const size_t at = (size_t)i * (size_t)j->n_top + (size_t)k;
            if (k) bn_jbuf_puts(b, ",");
            chat_token_json(b, t, j->lp_top_id[at], j->lp_top[at]);
            bn_jbuf_puts(b, "}");
        }
        bn_jbuf_puts(b, "]}");
    }
    bn_jbuf_puts(b, "]}");
}

/* Completions: a token as a JSON string, its text, or when that is not
 * UTF-8 on its own OpenAI's "bytes:\xNN..." (distinct keys in top_logprobs). */
static void completion_token_str(bn_jbuf *b, const bn_tokenizer *t, int32_t id) {
    char p[1024];
    const int n = token_piece(t, id, p, (int)sizeof p);
    if (utf8_valid(p, n)) {
        bn_jbuf_str(b, p, (size_t)n);
        return;
    }
    bn_jbuf_puts(b, "\"bytes:");
    for (int i = 0; i < n; i++) bn_jbuf_printf(b, "\\\\x%02x", (unsigned)(unsigned char)p[i]);
    bn_jbuf_puts(b, "\"");
}

void bn_lp_completion_json(bn_jbuf *b, const bn_tokenizer *t, const bn_job *j, int from, int to,
                           bn_text_pos *pos) {
    const int n_prompt_lp = j->echo ? j->n_prompt : 0;
    bn_jbuf_puts(b, "\"logprobs\":{\"tokens\":[");
    for (int i = from; i < to; i++) {
        if (i > from) bn_jbuf_puts(b, ",");
        completion_token_str(b, t, j->lp[i].id);
    }
    bn_jbuf_puts(b, "],\"token_logprobs\":[");
    for (int i = from; i < to; i++) {
        if (i > from) bn_jbuf_puts(b, ",");
        bn_jbuf_num(b, (double)j->lp[i].logprob);
    }
    bn_jbuf_puts(b, "],\"top_logprobs\":[");
    for (int i = from; i < to; i++) {
        if (i > from) bn_jbuf_puts(b, ",");
        if (isnan(j->lp[i].logprob)) {
            bn_jbuf_puts(b, "null");
            continue;
        }
        bn_jbuf_puts(b, "{");
        int has_own = 0;
        for (int k = 0; k < j->n_top; k++) {
            const size_t at = (size_t)i * (size_t)j->n_top + (size_t)k;
            if (k) bn_jbuf_puts(b, ",");
            completion_token_str(b, t, j->lp_top_id[at]);
            bn_jbuf_puts(b, ":");
            bn_jbuf_num(b, (double)j->lp_top[at]);
            has_own |= j->lp_top_id[at] == j->lp[i].id;
        }
        if (!has_own) {
            if (j->n_top) bn_jbuf_puts(b, ",");
            completion_token_str(b, t, j->lp[i].id);
            bn_jbuf_puts(b, ":");
            bn_jbuf_num(b, (double)j->lp[i].logprob);
        }
        bn_jbuf_puts(b, "}");
    }
    bn_jbuf_puts(b, "],\"text_offset\":[");
    size_t prompt_chars = 0;        /* the echoed prompt: the pieces as the echo writes them */
    for (int i = 0; i < from && i < n_prompt_lp; i++) {
        char p[1024];
        prompt_chars += count_chars(p, (size_t)echo_piece(t, j->lp[i].id, p, (int)sizeof p));
    }
    for (int i = from; i < to; i++) {
        if (i > from) bn_jbuf_puts(b, ",");
        if (i < n_prompt_lp) {      /* a piece that starts inside a character: that character's */
            char p[1024];
            const int n = echo_piece(t, j->lp[i].id, p, (int)sizeof p);
            const int inside = n > 0 && ((unsigned char)p[0] & 0xC0) == 0x80 && prompt_chars > 0;
            bn_jbuf_printf(b, "%zu", prompt_chars - (size_t)inside);
            prompt_chars += count_chars(p, (size_t)n);
            continue;
        }
        const size_t start = j->lp[i].start < j->len ? j->lp[i].start : j->len;
        if (start > pos->byte) {
            pos->chars += count_chars(j->text + pos->byte, start - pos->byte);
            pos->byte = start;
        }
        bn_jbuf_printf(b, "%zu", pos->base_chars + pos->chars);
    }
    bn_jbuf_puts(b, "]}");
}

int bn_lp_final_count(const bn_job *j) {
    const int first_gen = j->echo ? j->n_prompt : 0;
    int n = j->n_lp;
    while (n > first_gen && !(j->lp[n - 1].start < j->len || j->lp[n - 1].end <= j->len)) n--;
    return n;
}

size_t bn_lp_echo_text(bn_jbuf *e, const bn_tokenizer *t, const int32_t *prompt, int n) {
    for (int i = 0; i < n; i++) {
        char p[1024];
        bn_jbuf_raw(e, p, (size_t)echo_piece(t, prompt[i], p, (int)sizeof p));
    }
    return e->len ? count_chars(e->data, e->len) : 0;
}
