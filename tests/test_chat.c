/* Chat formats: the exact token sequence fed to the model over scripted
 * conversations, block by block as the CLI decodes it, against the text of
 * each format:
 *   2B4T     <|begin_of_text|>System: S<|eot_id|>User: Q<|eot_id|>Assistant: R<|eot_id|>...
 *   LLaMA-3  <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nQ<|eot_id|>...
 *   Falcon3  <|system|>\nS\n<|user|>\nQ\n<|assistant|>\nR<EOS>\n<|user|>...
 *   ChatML   <|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nR<|im_end|>\n...
 * Recognising the format from tokenizer.chat_template, the refusal of a
 * model without one, and the end-of-generation set. Vocabularies: the
 * LLaMA-3 fixture (ids as in the real model), the bundled tiny-shakespeare
 * model's 2048-token vocabulary, small ones written here, and
 * ../shared/models/fam-falcon3.gguf when present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "gguf.h"
#include "gguf_writer.h"
#include "tok_test_util.h"
#include "tokenizer.h"

typedef struct vocab {
    gguf_file f;
    bn_tokenizer *tok;
} vocab;

static int open_vocab(vocab *v, const char *path) {
    char err[256];
    if (access(path, R_OK) != 0) return -1;
    if (gguf_open(&v->f, path, err, sizeof err) != 0) fail_msg("%s: %s", path, err);
    v->tok = bn_tokenizer_from_gguf(&v->f, NULL, err, sizeof err);
    if (!v->tok) fail_msg("%s: %s", path, err);
    return 0;
}

static void close_vocab(vocab *v) {
    bn_tokenizer_free(v->tok);
    gguf_close(&v->f);
}

/* ids of text (no BOS, specials parsed) into out; returns the count. */
static int tok(const bn_tokenizer *t, const char *text, int32_t *out, int max) {
    int n = bn_tokenize(t, text, strlen(text), 0, 1, out, max);
    assert_true(n >= 0 && n <= max);
    return n;
}

/* Asserts that the chat's pending block equals the tokens of `text`
 * (optionally preceded by one given id), then marks it fed. */
static void expect_block(bn_chat *c, int32_t lead, const char *text) {
    int32_t want[512];
    int n = 0;
    if (lead >= 0) want[n++] = lead;
    n += tok(c->tok, text, want + n, 512 - n);
    assert_int_equal(bn_chat_n_pending(c), n);
    const int32_t *got = bn_chat_pending(c);
    for (int i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
    bn_chat_mark_fed(c);
    assert_int_equal(bn_chat_n_pending(c), 0);
}

/* A reply "sampled" token by token: each token is fed on its own. */
static void reply(bn_chat *c, const char *text, int32_t eog) {
    int32_t ids[256];
    int n = tok(c->tok, text, ids, 256);
    char err[128];
    for (int i = 0; i < n; i++) {
        assert_int_equal(bn_chat_add_reply_token(c, ids[i], err, sizeof err), 0);
        assert_int_equal(bn_chat_n_pending(c), 1);
        bn_chat_mark_fed(c);
    }
    if (eog >= 0) assert_int_equal(bn_chat_add_reply_token(c, eog, err, sizeof err), 0);
}

/* The whole conversation as text, control tokens spelled out. */
static void detok_all(const bn_chat *c, char *out, size_t cap) {
    size_t len = 0;
    for (int i = 0; i < c->n_tokens; i++) {
        int n = bn_token_to_bytes(c->tok, c->tokens[i], 1, out + len, (int)(cap - len - 1));
        assert_true(n >= 0 && len + (size_t)n < cap);
        len += (size_t)n;
    }
    out[len] = '\0';
}

static int count(const bn_chat *c, int32_t id) {
    int k = 0;
    for (int i = 0; i < c->n_tokens; i++) k += c->tokens[i] == id;
    return k;
}

/* ---- 2B4T ---------------------------------------------------------------------- */

/* The scripted conversation: reply 1 ends with <|eot_id|>, reply 2 is cut
 * (token budget / Ctrl-C) and closed by bn_chat_end_reply, reply 3 ends
 * with the end-of-text EOG token, which is kept as sampled. */
static void scripted_chat(bn_chat *c) {
    const bn_tokenizer *t = c->tok;
    const int32_t bos = bn_token_bos(t), eot = bn_token_eot(t), eos = bn_token_eos(t);
    assert_true(bos >= 0 && eot >= 0 && eos >= 0);
    assert_true(bn_token_is_eog(t, eot) && bn_token_is_eog(t, eos));
    char err[128];
    assert_string_equal(bn_chat_format_name(c), "2B4T");
    assert_int_equal(c->end_turn, eot);
    assert_int_equal(bn_chat_pending(c)[0], bos);
    expect_block(c, bos, "System: You are a helpful assistant.<|eot_id|>");

    assert_int_equal(bn_chat_add_user_turn(c, "Hello, who are you?", err, sizeof err), 0);
    expect_block(c, -1, "User: Hello, who are you?<|eot_id|>Assistant: ");
    reply(c, "I am a king, my lord.", eot);
    assert_false(c->in_reply);

    /* the EOG that ended reply 1 is fed together with the next user turn */
    assert_int_equal(bn_chat_add_user_turn(c, "Tell me more.", err, sizeof err), 0);
    expect_block(c, eot, "User: Tell me more.<|eot_id|>Assistant: ");
    reply(c, "Now is the", -1);
    assert_true(c->in_reply);
    assert_int_equal(bn_chat_end_reply(c, err, sizeof err), 0);
    assert_int_equal(bn_chat_end_reply(c, err, sizeof err), 0);   /* idempotent */

    assert_int_equal(bn_chat_add_user_turn(c, "Bye <|eot_id|>", err, sizeof err), 0);
    expect_block(c, eot, "User: Bye <|eot_id|><|eot_id|>Assistant: ");
    reply(c, "Farewell.", eos);
    assert_int_equal(bn_chat_n_pending(c), 1);
    assert_int_equal(bn_chat_pending(c)[0], eos);

    char text[4096];
    detok_all(c, text, sizeof text);
    assert_string_equal(text,
        "<|begin_of_text|>System: You are a helpful assistant.<|eot_id|>"
        "User: Hello, who are you?<|eot_id|>Assistant: I am a king, my lord.<|eot_id|>"
        "User: Tell me more.<|eot_id|>Assistant: Now is the<|eot_id|>"
        "User: Bye <|eot_id|><|eot_id|>Assistant: Farewell.<|end_of_text|>");

    /* exactly one BOS, at the start; one end-of-turn per message */
    assert_int_equal(count(c, bos), 1);
    assert_int_equal(count(c, eot), 7);
}

static void test_llama3_vocab(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    assert_int_equal(bn_token_bos(v.tok), 128000);
    assert_int_equal(bn_token_eot(v.tok), 128009);
    char err[128];
    bn_chat *c = bn_chat_new_format(v.tok, BN_CHAT_2B4T, "You are a helpful assistant.",
                                    err, sizeof err);
    assert_non_null(c);
    scripted_chat(c);
    bn_chat_free(c);
    close_vocab(&v);
}

/* The bundled model's template names 2B4T: bn_chat_new finds it there. */
static void test_bundled_vocab(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/models/tiny-shakespeare.gguf") != 0 &&
        open_vocab(&v, BN_SHARED_DIR "/models/tiny-shakespeare.gguf") != 0) {
        skip();
        return;
    }
    assert_int_equal(bn_token_bos(v.tok), 2045);
    assert_int_equal(bn_token_eot(v.tok), 2047);
    char err[128];
    bn_chat *c = bn_chat_new(v.tok, "You are a helpful assistant.", err, sizeof err);
    assert_non_null(c);
    scripted_chat(c);
    bn_chat_free(c);
    close_vocab(&v);
}

/* No system prompt: the conversation starts with BOS alone; messages added
 * whole (an assistant message from a script) close with <|eot_id|>. */
static void test_no_system_and_whole_messages(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    char err[128];
    bn_chat *c = bn_chat_new_format(v.tok, BN_CHAT_2B4T, NULL, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(bn_chat_n_pending(c), 1);
    assert_int_equal(bn_chat_pending(c)[0], 128000);
    bn_chat_mark_fed(c);
    assert_int_equal(bn_chat_add_message(c, BN_ROLE_USER, "Hi", err, sizeof err), 0);
    assert_int_equal(bn_chat_add_message(c, BN_ROLE_ASSISTANT, "Hello", err, sizeof err), 0);
    expect_block(c, -1, "User: Hi<|eot_id|>Assistant: Hello<|eot_id|>");
    /* a reply token without an open reply is refused */
    assert_int_equal(bn_chat_add_reply_token(c, 42, err, sizeof err), -1);
    assert_string_equal(bn_chat_role_name(BN_ROLE_SYSTEM), "System");
    bn_chat_free(c);
    close_vocab(&v);
}

/* ---- LLaMA-3 -------------------------------------------------------------------- */

#define L3H(role) "<|start_header_id|>" role "<|end_header_id|>\n\n"

/* Headers around every message, contents trimmed, <|eot_id|> closes each. */
static void test_llama3_format(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    char err[128];
    bn_chat *c = bn_chat_new_format(v.tok, BN_CHAT_LLAMA3, " Be brief.\n", err, sizeof err);
    assert_non_null(c);
    assert_string_equal(bn_chat_format_name(c), "LLaMA-3");
    assert_int_equal(c->end_turn, 128009);
    expect_block(c, 128000, L3H("system") "Be brief.<|eot_id|>");
    assert_int_equal(bn_chat_add_user_turn(c, "\tWho are you? ", err, sizeof err), 0);
    expect_block(c, -1, L3H("user") "Who are you?<|eot_id|>" L3H("assistant"));
    reply(c, "A model.", 128009);
    assert_false(c->in_reply);
    assert_int_equal(bn_chat_add_user_turn(c, "More.", err, sizeof err), 0);
    expect_block(c, 128009, L3H("user") "More.<|eot_id|>" L3H("assistant"));
    reply(c, "Well", -1);
    assert_int_equal(bn_chat_end_reply(c, err, sizeof err), 0);   /* cut: <|eot_id|> added */
    assert_int_equal(bn_chat_add_message(c, BN_ROLE_USER, "Ok", err, sizeof err), 0);
    expect_block(c, 128009, L3H("user") "Ok<|eot_id|>");
    char text[2048];
    detok_all(c, text, sizeof text);
    assert_string_equal(text, "<|begin_of_text|>" L3H("system") "Be brief.<|eot_id|>"
                        L3H("user") "Who are you?<|eot_id|>" L3H("assistant") "A model.<|eot_id|>"
                        L3H("user") "More.<|eot_id|>" L3H("assistant") "Well<|eot_id|>"
                        L3H("user") "Ok<|eot_id|>");
    bn_chat_free(c);
    close_vocab(&v);
}

/* ---- Falcon3 -------------------------------------------------------------------- */

/* <|role|>\n content \n per message; the reply ends with EOS, then "\n"
 * joins the next message's text. The LLaMA-3 fixture has no <|user|> token,
 * so the markers are plain text here: the blocks must still be tokenized
 * as one string each. */
static void falcon3_script(bn_chat *c, int32_t bos, int32_t eos) {
    char err[128];
    assert_string_equal(bn_chat_format_name(c), "Falcon3");
    assert_int_equal(c->end_turn, eos);
    expect_block(c, bos, "<|system|>\nBe brief.\n");
    assert_int_equal(bn_chat_add_user_turn(c, "Who are you?", err, sizeof err), 0);
    expect_block(c, -1, "<|user|>\nWho are you?\n<|assistant|>\n");
    reply(c, "A model.", eos);
    assert_int_equal(bn_chat_add_user_turn(c, "More.", err, sizeof err), 0);
    expect_block(c, eos, "\n<|user|>\nMore.\n<|assistant|>\n");
    reply(c, "Well", -1);
    assert_int_equal(bn_chat_end_reply(c, err, sizeof err), 0);   /* cut: EOS added */
    assert_int_equal(bn_chat_add_message(c, BN_ROLE_USER, "Ok", err, sizeof err), 0);
    expect_block(c, eos, "\n<|user|>\nOk\n");
}

static void test_falcon3_format(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    char err[128];
    bn_chat *c = bn_chat_new_format(v.tok, BN_CHAT_FALCON3, "Be brief.", err, sizeof err);
    assert_non_null(c);
    falcon3_script(c, 128000, 128001);
    char text[2048];
    detok_all(c, text, sizeof text);
    assert_string_equal(text, "<|begin_of_text|><|system|>\nBe brief.\n<|user|>\nWho are you?\n"
                        "<|assistant|>\nA model.<|end_of_text|>\n<|user|>\nMore.\n<|assistant|>\n"
                        "Well<|end_of_text|>\n<|user|>\nOk\n");
    bn_chat_free(c);
    close_vocab(&v);
}

/* The Falcon3 family model: its real template (from the Falcon3 release)
 * names the format, EOS (2046 here) ends a turn. */
static void test_falcon3_model(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SHARED_DIR "/models/fam-falcon3.gguf") != 0) {
        skip();
        return;
    }
    char err[128];
    assert_int_equal(bn_chat_detect(bn_tokenizer_chat_template(v.tok)), BN_CHAT_FALCON3);
    bn_chat *c = bn_chat_new(v.tok, "Be brief.", err, sizeof err);
    assert_non_null(c);
    falcon3_script(c, 2045, 2046);
    bn_chat_free(c);
    close_vocab(&v);
}

/* ---- ChatML and a vocabulary written here ---------------------------------------- */

/* Byte-level vocabulary: the 256 bytes, then extra tokens (CONTROL unless
 * named in `normal`), an optional chat template; no BOS key. */
static bn_tokenizer *small_vocab(const char *const *extra, int n_extra, const char *normal,
                                 const char *tmpl, char *err, size_t errlen) {
    static char texts[300][32];
    gguf_str toks[300];
    int32_t types[300];
    int n = 0;
    for (int b = 0; b < 256; b++, n++) {
        /* GPT-2 byte-to-unicode by hand: printable bytes as themselves */
        unsigned cp = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE ? (unsigned)b
                      : b <= 0x20 ? 0x100u + (unsigned)b
                      : b <= 0xA0 ? 0x100u + 33 + (unsigned)(b - 0x7F) : 0x143u;
        int k = 0;
        if (cp < 0x80) texts[n][k++] = (char)cp;
        else { texts[n][k++] = (char)(0xC0 | (cp >> 6)); texts[n][k++] = (char)(0x80 | (cp & 0x3F)); }
        toks[n].ptr = texts[n];
        toks[n].len = (uint64_t)k;
        types[n] = 1;
    }
    for (int i = 0; i < n_extra; i++, n++) {
        strcpy(texts[n], extra[i]);
        toks[n].ptr = texts[n];
        toks[n].len = strlen(extra[i]);
        types[n] = normal && strcmp(normal, extra[i]) == 0 ? 1 : 3;
    }
    gguf_writer *w = gguf_writer_new(0);
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_w_str(w, "tokenizer.ggml.pre", "llama-bpe");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n);
    gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, types, (uint64_t)n);
    if (tmpl) gguf_w_str(w, "tokenizer.chat_template", tmpl);
    return tt_from_writer(w, NULL, err, errlen);
}

static const char chatml_template[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

static void test_chatml_format(void **state) {
    (void)state;
    static const char *const extra[] = { "<|im_start|>", "<|im_end|>", "<|endoftext|>" };
    char err[256];
    bn_tokenizer *t = small_vocab(extra, 3, NULL, chatml_template, err, sizeof err);
    assert_non_null(t);
    const int32_t im_start = 256, im_end = 257, eot = 258;
    assert_int_equal(bn_token_bos(t), -1);
    assert_true(bn_token_is_eog(t, im_end) && bn_token_is_eog(t, eot));
    bn_chat *c = bn_chat_new(t, "Be brief.", err, sizeof err);
    assert_non_null(c);
    assert_string_equal(bn_chat_format_name(c), "ChatML");
    assert_int_equal(c->end_turn, im_end);
    expect_block(c, -1, "<|im_start|>system\nBe brief.<|im_end|>");   /* no BOS in this vocab */
    assert_int_equal(bn_chat_add_user_turn(c, "Hi", err, sizeof err), 0);
    expect_block(c, -1, "\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    reply(c, "Hello", im_end);
    assert_int_equal(bn_chat_add_user_turn(c, "Bye", err, sizeof err), 0);
    expect_block(c, im_end, "\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
    reply(c, "Farewell", eot);                  /* another EOG token ends it too */
    assert_false(c->in_reply);
    assert_int_equal(bn_chat_add_message(c, BN_ROLE_USER, "x", err, sizeof err), 0);
    expect_block(c, eot, "\n<|im_start|>user\nx<|im_end|>");
    assert_int_equal(count(c, im_start), 6);
    bn_chat_free(c);
    bn_tokenizer_free(t);
}

/* ---- recognising the template, refusing without one, EOG ---------------------------- */

static void test_detect(void **state) {
    (void)state;
    static const struct { const char *tmpl; int format; } cases[] = {
        /* BitNet-b1.58-2B-4T's Hugging Face template */
        { "{% for message in messages %}{% if loop.first %}{{ bos_token }}{% endif %}"
          "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + "
          "'\\n\\nBITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}"
          "{{ message['content'] + eos_token }}{% endif %}{% endfor %}", BN_CHAT_2B4T },
        { "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
          "message['content'] | trim + '<|eot_id|>' }}", BN_CHAT_LLAMA3 },
        /* Falcon3's (abridged): <|system|> <|user|> <|assistant|> and eos_token */
        { "{{- '<|system|>\\n' + message['content'] + '\\n' }}{{- '<|user|>\\n' + "
          "message['content'] + '\\n' }}{{- '<|assistant|>\\n' + message['content'] + eos_token }}",
          BN_CHAT_FALCON3 },
        { chatml_template, BN_CHAT_CHATML },
        /* not ours: Phi-3, Phi-4, Mistral/LLaMA-2, GLM-4, unknown, empty */
        { "{{'<|user|>\\n' + message['content'] + '<|end|>\\n<|assistant|>\\n'}}", -1 },
        { "{{'<|im_start|>' + message['role'] + '<|im_sep|>'}}", -1 },
        { "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}", -1 },
        { "[gMASK]<sop>{{'<|user|>'}}{{'<|assistant|>'}}", -1 },
        { "{{ message['content'] }}", -1 },
        { "", -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(bn_chat_detect(cases[i].tmpl), cases[i].format);
    assert_int_equal(bn_chat_detect(NULL), -1);
}

static void test_no_template(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    char err[256];
    assert_null(bn_tokenizer_chat_template(v.tok));
    assert_null(bn_chat_new(v.tok, NULL, err, sizeof err));
    assert_non_null(strstr(err, "no chat template (tokenizer.chat_template)"));
    assert_null(strchr(err, '\n'));
    close_vocab(&v);

    static const char *const extra[] = { "<|eot_id|>" };
    bn_tokenizer *t = small_vocab(extra, 1, NULL, "{{ message['content'] }}", err, sizeof err);
    assert_non_null(t);
    assert_null(bn_chat_new(t, NULL, err, sizeof err));
    assert_non_null(strstr(err, "none of the known formats"));
    bn_tokenizer_free(t);
}

/* --chat-template: a built-in name, or a template's text, over the file's
 * template (or its absence); anything else refused in one line. */
static void test_named_template(void **state) {
    (void)state;
    static const char *const extra[] = { "<|im_start|>", "<|im_end|>", "<|eot_id|>" };
    char err[256];
    bn_tokenizer *t = small_vocab(extra, 3, NULL, NULL, err, sizeof err);   /* no template */
    assert_non_null(t);
    assert_null(bn_chat_new_template(t, NULL, NULL, err, sizeof err));     /* NULL: the file's */
    assert_non_null(strstr(err, "no chat template"));
    static const struct { const char *tmpl, *name; } cases[] = {
        { "chatml", "ChatML" }, { "llama3", "LLaMA-3" }, { "falcon3", "Falcon3" }, { "bitnet", "2B4T" },
        { "{{ '<|im_start|>' + m }}", "ChatML" }, { "<|user|>\n{{ m }}<|assistant|>", "Falcon3" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bn_chat *c = bn_chat_new_template(t, cases[i].tmpl, "S", err, sizeof err);
        assert_non_null(c);
        assert_string_equal(bn_chat_format_name(c), cases[i].name);
        bn_chat_free(c);
    }
    /* a name is matched whole and case by case, as llama.cpp's */
    static const char *const bad[] = { "vicuna", "ChatML", "llama", "", "{{ '[INST]' }}\n{{ m }}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(bn_chat_new_template(t, bad[i], NULL, err, sizeof err));
        assert_non_null(strstr(err, "none of the known formats"));
        assert_null(strchr(err, '\n'));        /* a template's text is not repeated */
    }
    assert_non_null(strstr(err, "chat template is none"));
    bn_tokenizer_free(t);

    /* a file's template counts by its first 2047 bytes only, as llama.cpp
     * reads it; the same text given as --chat-template counts whole */
    static char long_tmpl[2100];
    memset(long_tmpl, ' ', sizeof long_tmpl - 1);
    memcpy(long_tmpl + 2047, "<|im_start|>", 12);
    t = small_vocab(extra, 3, NULL, long_tmpl, err, sizeof err);
    assert_non_null(t);
    assert_null(bn_chat_new(t, NULL, err, sizeof err));
    assert_non_null(strstr(err, "none of the known formats"));
    bn_chat *c = bn_chat_new_template(t, long_tmpl, NULL, err, sizeof err);
    assert_non_null(c);
    assert_string_equal(bn_chat_format_name(c), "ChatML");
    bn_chat_free(c);
    bn_tokenizer_free(t);
    /* the marker's last byte at 2047: out; at 2046: in */
    for (int end = 2047; end >= 2046; end--) {
        memset(long_tmpl, ' ', sizeof long_tmpl - 1);
        memcpy(long_tmpl + end - 11, "<|im_start|>", 12);
        t = small_vocab(extra, 3, NULL, long_tmpl, err, sizeof err);
        assert_non_null(t);
        c = bn_chat_new(t, NULL, err, sizeof err);
        if (end == 2047) {
            assert_null(c);
        } else {
            assert_non_null(c);
            assert_string_equal(bn_chat_format_name(c), "ChatML");
        }
        bn_chat_free(c);
        bn_tokenizer_free(t);
    }
}

/* llama.cpp's EOG set: eos, eot, eom and every token named like an end of
 * turn, which becomes a control token even when the file says otherwise. */
static void test_eog_set(void **state) {
    (void)state;
    static const char *const extra[] = {
        "<|endoftext|>", "<|eom_id|>", "<end_of_turn>", "<|end|>", "<EOT>", "<|notend|>",
    };
    char err[256], buf[32];
    bn_tokenizer *t = small_vocab(extra, 6, "<|endoftext|>", NULL, err, sizeof err);
    assert_non_null(t);
    for (int32_t id = 256; id <= 260; id++) assert_true(bn_token_is_eog(t, id));
    assert_false(bn_token_is_eog(t, 261));
    assert_false(bn_token_is_eog(t, 'a'));
    assert_int_equal(bn_token_eot(t), 259);      /* the first name of our list found: <|end|> */
    /* <|endoftext|> came as NORMAL: now a control token, parsed and hidden */
    int32_t ids[8];
    assert_int_equal(bn_tokenize(t, "<|endoftext|>", 13, 0, 1, ids, 8), 1);
    assert_int_equal(ids[0], 256);
    assert_int_equal(bn_token_to_bytes(t, 256, 0, buf, sizeof buf), 0);
    assert_int_equal(bn_token_to_bytes(t, 256, 1, buf, sizeof buf), 13);
    bn_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_vocab),
        cmocka_unit_test(test_bundled_vocab),
        cmocka_unit_test(test_no_system_and_whole_messages),
        cmocka_unit_test(test_llama3_format),
        cmocka_unit_test(test_falcon3_format),
        cmocka_unit_test(test_falcon3_model),
        cmocka_unit_test(test_chatml_format),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_no_template),
        cmocka_unit_test(test_named_template),
        cmocka_unit_test(test_eog_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
