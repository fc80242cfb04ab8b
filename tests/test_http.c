/* The server's HTTP request-head parser (src/server/http.c): complete and
 * partial heads, framing (Content-Length, chunked refused, smuggling
 * shapes), keep-alive, every size limit with its status, malformed lines;
 * and the constant-time API key comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "serve.h"

static int parse(const char *s, bn_http_request *r) {
    bn_http_limits lim = bn_http_default_limits();
    return bn_http_parse(s, strlen(s), &lim, r);
}

/* The status a bad head gets (0 when it parses). */
static int status_of(const char *s) {
    bn_http_request r;
    int rc = parse(s, &r);
    if (rc < 0) {
        assert_non_null(r.error);
        return r.status;
    }
    return rc == 1 ? 0 : -1;
}

static void test_complete_head(void **state) {
    (void)state;
    bn_http_request r;
    const char *s = "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
                    "Authorization:   Bearer k  \r\n\r\n{\"prompt\":1}";
    assert_int_equal(parse(s, &r), 1);
    assert_true(bn_http_method_is(&r, "POST"));
    assert_true(bn_http_path_is(&r, "/v1/completions"));
    assert_false(bn_http_path_is(&r, "/v1/completion"));
    assert_int_equal(r.minor, 1);
    assert_int_equal(r.content_length, 12);
    assert_int_equal(r.head_len, strlen(s) - 12);
    assert_true(r.keep_alive);
    size_t n;
    const char *v = bn_http_header_get(&r, "AUTHORIZATION", &n);
    assert_non_null(v);
    assert_int_equal(n, 8);                 /* whitespace around the value dropped */
    assert_memory_equal(v, "Bearer k", 8);
    assert_null(bn_http_header_get(&r, "x-none", &n));
    /* bare LF line ends, HTTP/1.0 closes unless keep-alive is asked */
    assert_int_equal(parse("GET /health HTTP/1.0\n\n", &r), 1);
    assert_false(r.keep_alive);
    assert_int_equal(parse("GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r), 1);
    assert_true(r.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n", &r), 1);
    assert_false(r.keep_alive);
    assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", &r), 1);
    assert_true(r.expect_continue);
    /* the same Content-Length twice is fine */
    assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", &r), 1);
}

static void test_partial_heads(void **state) {
    (void)state;
    const char *s = "POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}";
    bn_http_limits lim = bn_http_default_limits();
    bn_http_request r;
    size_t head = strlen(s) - 2;
    for (size_t n = 0; n < head; n++) assert_int_equal(bn_http_parse(s, n, &lim, &r), 0);
    for (size_t n = head; n <= strlen(s); n++) {
        assert_int_equal(bn_http_parse(s, n, &lim, &r), 1);
        assert_int_equal(r.head_len, head);
    }
}

static void test_framing(void **state) {
    (void)state;
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"), 400);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"), 400);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n"), 400);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n"), 400);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n"), 413);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nExpect: 200-ok\r\n\r\n"), 417);
    /* the body limit: exactly 1 MiB passes, one byte more is 413 */
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: 1048576\r\n\r\n"), 0);
    assert_int_equal(status_of("POST /x HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n"), 413);
}

static void test_malformed(void **state) {
    (void)state;
    const char *bad400[] = {
        "GET\r\n\r\n", "GET /\r\n\r\n", " GET / HTTP/1.1\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n", "GET x HTTP/1.1\r\n\r\n", "GET / HTTP/11\r\n\r\n",
        "GET / http/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET /a\x01 HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n", "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\nName : x\r\n\r\n", "GET / HTTP/1.1\r\n: x\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nA: b\x01c\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad400 / sizeof bad400[0]; i++) {
        int st = status_of(bad400[i]);
        if (st != 400) fail_msg("case %zu: status %d, expected 400", i, st);
    }
    assert_int_equal(status_of("GET / HTTP/2.0\r\n\r\n"), 505);
}

static void test_limits(void **state) {
    (void)state;
    bn_http_limits lim = bn_http_default_limits();
    bn_http_request r;
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    assert_non_null(buf);
    /* a request line past 8 KiB: 414, whether or not its end arrived */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'a', 9000);
    assert_int_equal(bn_http_parse(buf, 9005, &lim, &r), -1);
    assert_int_equal(r.status, 414);
    memcpy(buf + 9005, " HTTP/1.1\r\n\r\n", 13);
    assert_int_equal(bn_http_parse(buf, 9018, &lim, &r), -1);
    assert_int_equal(r.status, 414);
    /* headers past 16 KiB: 431, complete or not */
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    while (n < 17000) n += (size_t)sprintf(buf + n, "X-Pad: %0100d\r\n", 0);
    assert_int_equal(bn_http_parse(buf, n, &lim, &r), -1);
    assert_int_equal(r.status, 431);
    n += (size_t)sprintf(buf + n, "\r\n");
    assert_int_equal(bn_http_parse(buf, n, &lim, &r), -1);
    assert_int_equal(r.status, 431);
    /* more than 64 header fields: 431 */
    n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < BN_HTTP_MAX_HEADERS + 1; i++) n += (size_t)sprintf(buf + n, "H%d: v\r\n", i);
    n += (size_t)sprintf(buf + n, "\r\n");
    assert_int_equal(bn_http_parse(buf, n, &lim, &r), -1);
    assert_int_equal(r.status, 431);
    /* a smaller body limit is honoured */
    lim.max_body = 10;
    const char *s = "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
    assert_int_equal(bn_http_parse(s, strlen(s), &lim, &r), -1);
    assert_int_equal(r.status, 413);
    free(buf);
}

static void test_key_equal(void **state) {
    (void)state;
    assert_true(bn_serve_key_equal("secret", 6, "secret"));
    assert_false(bn_serve_key_equal("secreT", 6, "secret"));
    assert_false(bn_serve_key_equal("secre", 5, "secret"));
    assert_false(bn_serve_key_equal("secretsecret", 12, "secret"));   /* a repeat is no match */
    assert_false(bn_serve_key_equal("", 0, "secret"));
    assert_false(bn_serve_key_equal("secret\0", 7, "secret"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_head),
        cmocka_unit_test(test_partial_heads),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_key_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
