/* The falcon3 / falcon_e pre-tokenizers (Falcon3 and Falcon-E BitNet
 * models) on the LLaMA-3 vocabulary: the committed subset of bitnet.cpp's
 * cases (tests/data/falcon3-tokenize-cases.tsv, with the llama3 ids as a
 * contrast) and, with ../shared, all 615 cases on
 * llama3vocab-pre-falcon3.gguf, whose tokenizer.ggml.pre = falcon3 picks the
 * splitter by itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "tok_test_util.h"

#define CASES BN_SOURCE_DIR "/tests/data/falcon3-tokenize-cases.tsv"
#define SHARED_VOCAB BN_SHARED_DIR "/tokenizer/llama3vocab-pre-falcon3.gguf"
#define SHARED_CASES BN_SHARED_DIR "/tokenizer/falcon3-pretok-llama3vocab-cases.jsonl"

static void test_committed_cases(void **state)
{
    (void)state;
    bn_tokenizer *f3 = tt_load(LLAMA3_VOCAB, "falcon3");
    bn_tokenizer *fe = tt_load(LLAMA3_VOCAB, "falcon_e");
    bn_tokenizer *l3 = tt_load(LLAMA3_VOCAB, "llama3");
    assert_true(f3 && fe && l3);
    assert_int_equal(bn_tokenizer_pre(f3), BN_PRE_FALCON3);
    assert_int_equal(bn_tokenizer_pre(fe), BN_PRE_FALCON_E);
    char *data = tt_read_file(CASES, NULL), *cur = data, *line;
    assert_non_null(data);
    char text[1024], what[96];
    int32_t want[512], got[512];
    int n_cases = 0, n_differ = 0;
    while ((line = tt_next_line(&cur))) {
        if (line[0] == '#') continue;
        char *f[3];
        size_t len[3];
        assert_int_equal(tt_split_tabs(line, f, len, 3), 3);
        size_t tn = tt_unescape(f[0], len[0], text);
        snprintf(what, sizeof what, "'%.*s'", (int)(len[0] > 60 ? 60 : len[0]), f[0]);
        int nw = tt_parse_ids(f[1], len[1], want, 512);
        int ng = bn_tokenize(f3, text, tn, 0, 1, got, 512);
        tt_expect_ids(what, got, ng, want, nw);
        ng = bn_tokenize(fe, text, tn, 0, 1, got, 512);
        tt_expect_ids(what, got, ng, want, nw);
        int32_t want3[512];
        int n3 = tt_parse_ids(f[2], len[2], want3, 512);
        n_differ += n3 != nw || memcmp(want3, want, (size_t)nw * sizeof *want) != 0;
        ng = bn_tokenize(l3, text, tn, 0, 1, got, 512);
        tt_expect_ids(what, got, ng, want3, n3);
        n_cases++;
    }
    assert_int_equal(n_cases, 62);
    assert_int_equal(n_differ, 44);
    free(data);
    bn_tokenizer_free(f3);
    bn_tokenizer_free(fe);
    bn_tokenizer_free(l3);
}

static void test_shared_cases(void **state)
{
    (void)state;
    struct stat st;
    if (stat(SHARED_VOCAB, &st) != 0 || stat(SHARED_CASES, &st) != 0) {
        print_message("skipped: %s not found\n", SHARED_CASES);
        skip();
        return;
    }
    static const struct { const char *pre, *key; } runs[] = {
        { NULL, "ids" }, { "falcon_e", "ids_falcon_e" }, { "llama3", "ids_llama3_pre" },
    };
    size_t size = 0;
    char *data = tt_read_file(SHARED_CASES, &size);
    assert_non_null(data);
    char *copy = malloc(size + 1), *text = malloc(size);
    static int32_t want[16384], got[16384];
    for (int r = 0; r < 3; r++) {
        bn_tokenizer *t = tt_load(SHARED_VOCAB, runs[r].pre);
        assert_non_null(t);
        if (!runs[r].pre) assert_int_equal(bn_tokenizer_pre(t), BN_PRE_FALCON3);   /* the file's */
        memcpy(copy, data, size + 1);
        char *cur = copy, *line, what[64];
        int n_cases = 0;
        while ((line = tt_next_line(&cur))) {
            long tn = tt_json_str(line, "text", text);
            int nw = tt_json_ids(line, runs[r].key, want, 16384);
            assert_true(tn >= 0 && nw >= 0);
            int ng = bn_tokenize(t, text, (size_t)tn, 0, 1, got, 16384);
            snprintf(what, sizeof what, "case %d (%s)", n_cases, runs[r].key);
            tt_expect_ids(what, got, ng, want, nw);
            n_cases++;
        }
        assert_int_equal(n_cases, 615);
        print_message("%s: %d/%d cases\n", runs[r].key, n_cases, n_cases);
        bn_tokenizer_free(t);
    }
    free(text);
    free(copy);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_cases),
        cmocka_unit_test(test_shared_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
