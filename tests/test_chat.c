/* Chat template: the exact token sequence fed to the model over a scripted
 * 3-turn conversation, block by block as the CLI decodes it, against the
 * 2B4T template text
 *   <|begin_of_text|>System: S<|eot_id|>User: Q<|eot_id|>Assistant: R<|eot_id|>...
 * Vocabularies: the LLaMA-3 fixture (ids as in the real model) and the
 * bundled tiny-shakespeare model's 2048-token vocabulary. */
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

/* The scripted conversation: reply 1 ends with <|eot_id|>, reply 2 is cut
 * (token budget / Ctrl-C) and closed by bn_chat_end_reply, reply 3 ends
 * with the end-of-text EOG token, which is kept as sampled. */
static void scripted_chat(const bn_tokenizer *t) {
    const int32_t bos = bn_token_bos(t), eot = bn_token_eot(t), eos = bn_token_eos(t);
    assert_true(bos >= 0 && eot >= 0 && eos >= 0);
    assert_true(bn_token_is_eog(t, eot) && bn_token_is_eog(t, eos));
    bn_chat c;
    char err[128];
    assert_int_equal(bn_chat_init(&c, t, "You are a helpful assistant.", err, sizeof err), 0);
    assert_int_equal(c.end_turn, eot);
    assert_int_equal(bn_chat_pending(&c)[0], bos);
    expect_block(&c, bos, "System: You are a helpful assistant.<|eot_id|>");

    assert_int_equal(bn_chat_add_user_turn(&c, "Hello, who are you?", err, sizeof err), 0);
    expect_block(&c, -1, "User: Hello, who are you?<|eot_id|>Assistant: ");
    reply(&c, "I am a king, my lord.", eot);
    assert_false(c.in_reply);

    /* the EOG that ended reply 1 is fed together with the next user turn */
    assert_int_equal(bn_chat_add_user_turn(&c, "Tell me more.", err, sizeof err), 0);
    expect_block(&c, eot, "User: Tell me more.<|eot_id|>Assistant: ");
    reply(&c, "Now is the", -1);
    assert_true(c.in_reply);
    assert_int_equal(bn_chat_end_reply(&c, err, sizeof err), 0);
    assert_int_equal(bn_chat_end_reply(&c, err, sizeof err), 0);   /* idempotent */

    assert_int_equal(bn_chat_add_user_turn(&c, "Bye <|eot_id|>", err, sizeof err), 0);
    expect_block(&c, eot, "User: Bye <|eot_id|><|eot_id|>Assistant: ");
    reply(&c, "Farewell.", eos);
    assert_int_equal(bn_chat_n_pending(&c), 1);
    assert_int_equal(bn_chat_pending(&c)[0], eos);

    char text[4096];
    detok_all(&c, text, sizeof text);
    assert_string_equal(text,
        "<|begin_of_text|>System: You are a helpful assistant.<|eot_id|>"
        "User: Hello, who are you?<|eot_id|>Assistant: I am a king, my lord.<|eot_id|>"
        "User: Tell me more.<|eot_id|>Assistant: Now is the<|eot_id|>"
        "User: Bye <|eot_id|><|eot_id|>Assistant: Farewell.<|end_of_text|>");

    /* exactly one BOS, at the start; one end-of-turn per message */
    int n_bos = 0, n_eot = 0;
    for (int i = 0; i < c.n_tokens; i++) {
        n_bos += c.tokens[i] == bos;
        n_eot += c.tokens[i] == eot;
    }
    assert_int_equal(n_bos, 1);
    assert_int_equal(n_eot, 7);
    bn_chat_free(&c);
}

static void test_llama3_vocab(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    assert_int_equal(bn_token_bos(v.tok), 128000);
    assert_int_equal(bn_token_eot(v.tok), 128009);
    scripted_chat(v.tok);
    close_vocab(&v);
}

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
    scripted_chat(v.tok);
    close_vocab(&v);
}

/* No system prompt: the conversation starts with BOS alone; messages added
 * whole (an assistant message from a script) close with <|eot_id|>. */
static void test_no_system_and_whole_messages(void **state) {
    (void)state;
    vocab v;
    if (open_vocab(&v, BN_SOURCE_DIR "/tests/data/llama3-vocab.gguf") != 0)
        fail_msg("tests/data/llama3-vocab.gguf is missing");
    bn_chat c;
    char err[128];
    assert_int_equal(bn_chat_init(&c, v.tok, NULL, err, sizeof err), 0);
    assert_int_equal(bn_chat_n_pending(&c), 1);
    assert_int_equal(bn_chat_pending(&c)[0], 128000);
    bn_chat_mark_fed(&c);
    assert_int_equal(bn_chat_add_message(&c, BN_ROLE_USER, "Hi", err, sizeof err), 0);
    assert_int_equal(bn_chat_add_message(&c, BN_ROLE_ASSISTANT, "Hello", err, sizeof err), 0);
    expect_block(&c, -1, "User: Hi<|eot_id|>Assistant: Hello<|eot_id|>");
    /* a reply token without an open reply is refused */
    assert_int_equal(bn_chat_add_reply_token(&c, 42, err, sizeof err), -1);
    assert_string_equal(bn_chat_role_name(BN_ROLE_SYSTEM), "System");
    bn_chat_free(&c);
    close_vocab(&v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama3_vocab),
        cmocka_unit_test(test_bundled_vocab),
        cmocka_unit_test(test_no_system_and_whole_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
