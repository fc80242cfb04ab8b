/* The server's JSON reader and writer (src/server/json.c): valid documents
 * and their values, every class of invalid input (grammar, numbers,
 * escapes, surrogates, UTF-8, control characters, depth), and the writer's
 * escaping round-tripping through the reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static int parses(const char *s) {
    bn_json_doc d;
    char err[160];
    int rc = bn_json_parse(&d, s, strlen(s), BN_JSON_MAX_DEPTH, err, sizeof err);
    if (rc != 0) assert_non_null(strstr(err, "bad JSON at byte"));
    bn_json_free(&d);
    return rc == 0;
}

static void test_valid_values(void **state) {
    (void)state;
    bn_json_doc d;
    char err[160];
    const char *s = " {\"a\": [1, -2.5e3, 0, true, false, null], \"b\": {\"c\": \"x\\ny\"}, \"a2\": {}} ";
    assert_int_equal(bn_json_parse(&d, s, strlen(s), 8, err, sizeof err), 0);
    const bn_json *root = bn_json_root(&d);
    assert_int_equal(root->type, BN_JSON_OBJECT);
    assert_int_equal(root->n, 3);
    const bn_json *a = bn_json_get(&d, root, "a");
    assert_non_null(a);
    assert_int_equal(a->type, BN_JSON_ARRAY);
    assert_int_equal(a->n, 6);
    const bn_json *e = bn_json_first(&d, a);
    assert_true(e->type == BN_JSON_NUMBER && e->num == 1.0);
    e = bn_json_next(&d, e);
    assert_true(e->num == -2500.0);
    e = bn_json_next(&d, e);
    assert_true(e->num == 0.0);
    assert_int_equal(bn_json_next(&d, e)->type, BN_JSON_TRUE);
    const bn_json *c = bn_json_get(&d, bn_json_get(&d, root, "b"), "c");
    assert_non_null(c);
    assert_int_equal(c->len, 3);
    assert_memory_equal(c->str, "x\ny", 4);     /* NUL-terminated too */
    assert_null(bn_json_get(&d, root, "zz"));
    assert_int_equal(bn_json_get(&d, root, "a2")->n, 0);
    bn_json_free(&d);
    /* scalars at the top level, and the last of repeated keys */
    assert_true(parses("0") && parses("\"\"") && parses("null") && parses("[]") && parses("-0.0e+1"));
    assert_int_equal(bn_json_parse(&d, "{\"k\":1,\"k\":2}", 13, 8, err, sizeof err), 0);
    assert_true(bn_json_get(&d, bn_json_root(&d), "k")->num == 2.0);
    bn_json_free(&d);
}

static void test_escapes_and_utf8(void **state) {
    (void)state;
    bn_json_doc d;
    char err[160];
    /* \u escapes: ASCII, 2 and 3 bytes, a surrogate pair (U+1F600), NUL */
    const char *s = "\"A\\u0041\\u00e9\\u20ac\\ud83d\\ude00\\u0000\\/\\\\\\\"\"";
    assert_int_equal(bn_json_parse(&d, s, strlen(s), 8, err, sizeof err), 0);
    const bn_json *v = bn_json_root(&d);
    const char want[] = "AA\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\0/\\\"";
    assert_int_equal(v->len, sizeof want - 1);
    assert_memory_equal(v->str, want, sizeof want - 1);
    bn_json_free(&d);
    assert_true(parses("\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""));     /* raw UTF-8 */
    /* lone or reversed surrogates */
    assert_false(parses("\"\\ud83d\""));
    assert_false(parses("\"\\ude00\""));
    assert_false(parses("\"\\ud83d\\u0041\""));
    assert_false(parses("\"\\ude00\\ud83d\""));
    /* bad escapes */
    assert_false(parses("\"\\x41\""));
    assert_false(parses("\"\\u00g1\""));
    assert_false(parses("\"\\u00\""));
    assert_false(parses("\"\\"));
    /* invalid UTF-8: stray continuation, overlong, surrogate, > U+10FFFF, cut */
    assert_false(parses("\"\x80\""));
    assert_false(parses("\"\xC0\xAF\""));
    assert_false(parses("\"\xE0\x80\xAF\""));
    assert_false(parses("\"\xED\xA0\x80\""));
    assert_false(parses("\"\xF4\x90\x80\x80\""));
    assert_false(parses("\"\xE2\x82\""));
    assert_false(parses("\"\xFF\""));
    /* raw control characters must be escaped */
    assert_false(parses("\"a\nb\""));
    assert_false(parses("\"a\tb\""));
}

static void test_invalid_grammar(void **state) {
    (void)state;
    const char *bad[] = {
        "", " ", "{", "[", "}", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}",
        "[1 2]", "tru", "truex", "nul", "01", "-", "+1", "1.", ".5", "1e", "1e+", "NaN",
        "Infinity", "-Infinity", "0x10", "1 2", "{} x", "\"abc", "[\"a\"", "1e400", "-1e400",
        "[1]]", "{\"a\":1}}", "/* c */ 1", "\xEF\xBB\xBF{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i])) fail_msg("accepted bad JSON: '%s'", bad[i]);
    }
    /* a NUL byte inside the text is no terminator */
    bn_json_doc d;
    char err[160];
    assert_int_not_equal(bn_json_parse(&d, "[1]\0", 4, 8, err, sizeof err), 0);
    bn_json_free(&d);
    /* numbers: the grammar's edges are fine, a 200-digit number is refused */
    assert_true(parses("[0, -0, 1e5, 1E-5, 12.5e+3, 123456789012345678901234567890]"));
    char longnum[220];
    memset(longnum, '1', 200);
    longnum[200] = '\0';
    assert_false(parses(longnum));
}

static void test_depth_limit(void **state) {
    (void)state;
    char buf[300];
    bn_json_doc d;
    char err[160];
    for (int depth = 1; depth <= 100; depth += 33) {
        int n = 0;
        for (int i = 0; i < depth; i++) buf[n++] = '[';
        for (int i = 0; i < depth; i++) buf[n++] = ']';
        int rc = bn_json_parse(&d, buf, (size_t)n, 64, err, sizeof err);
        assert_int_equal(rc == 0, depth <= 64);
        if (rc) assert_non_null(strstr(err, "nesting too deep"));
        bn_json_free(&d);
    }
    /* exactly at the limit, objects too */
    assert_int_equal(bn_json_parse(&d, "{\"a\":{\"b\":[1]}}", 15, 3, err, sizeof err), 0);
    bn_json_free(&d);
    assert_int_not_equal(bn_json_parse(&d, "{\"a\":{\"b\":[[1]]}}", 17, 3, err, sizeof err), 0);
    bn_json_free(&d);
    /* deep nesting of a huge text: no stack overflow (refused at the limit) */
    size_t big = 1 << 20;
    char *deep = malloc(big);
    assert_non_null(deep);
    memset(deep, '[', big);
    assert_int_not_equal(bn_json_parse(&d, deep, big, BN_JSON_MAX_DEPTH, err, sizeof err), 0);
    bn_json_free(&d);
    free(deep);
}

static void test_writer_round_trip(void **state) {
    (void)state;
    bn_jbuf b = {0};
    /* control bytes, quotes, backslash, DEL, valid UTF-8, then invalid bytes */
    const char text[] = "a\"b\\c\n\r\t\x01\x1f\x7f \xC3\xA9\xF0\x9F\x98\x80 \xFF\xC3 \xED\xA0\x80";
    bn_jbuf_puts(&b, "[");
    bn_jbuf_str(&b, text, sizeof text - 1);
    bn_jbuf_puts(&b, ",");
    bn_jbuf_num(&b, 42);
    bn_jbuf_puts(&b, ",");
    bn_jbuf_num(&b, 0.1);
    bn_jbuf_puts(&b, ",");
    bn_jbuf_num(&b, (double)NAN);
    bn_jbuf_puts(&b, "]");
    assert_false(b.oom);
    bn_json_doc d;
    char err[160];
    assert_int_equal(bn_json_parse(&d, b.data, b.len, 8, err, sizeof err), 0);
    const bn_json *s = bn_json_first(&d, bn_json_root(&d));
    const char want[] = "a\"b\\c\n\r\t\x01\x1f\x7f \xC3\xA9\xF0\x9F\x98\x80 "
                        "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD";
    assert_int_equal(s->len, sizeof want - 1);
    assert_memory_equal(s->str, want, sizeof want - 1);
    s = bn_json_next(&d, s);
    assert_true(s->num == 42.0);
    s = bn_json_next(&d, s);
    assert_true(s->num == 0.1);
    assert_int_equal(bn_json_next(&d, s)->type, BN_JSON_NULL);
    assert_non_null(strstr(b.data, ",42,"));
    bn_json_free(&d);
    bn_jbuf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_values),
        cmocka_unit_test(test_escapes_and_utf8),
        cmocka_unit_test(test_invalid_grammar),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_writer_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
