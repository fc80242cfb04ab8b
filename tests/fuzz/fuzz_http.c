/* libFuzzer harness for the server's HTTP request-head parser
 * (src/server/http.c; build with -DBITNET_FUZZ=ON, clang).
 *
 * Bytes 0-1 pick a body limit; the rest is what a client sent. Checks: no
 * crash or sanitizer report; a rejected head has a 4xx/5xx status and a
 * reason; an accepted one points inside the input (method, target, every
 * header name and value), its head length ends in a blank line, and every
 * prefix of it is "need more" or the same error, never a different head
 * (the server parses again as bytes arrive). */
#include <stdlib.h>
#include <string.h>

#include "http.h"

static void inside(const char *p, size_t n, const char *buf, size_t len) {
    if (n > 0 && (p < buf || p + n > buf + len)) abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (size < 2) return 0;
    bn_http_limits lim = bn_http_default_limits();
    lim.max_body = (size_t)data[0] << 8 | data[1];
    lim.max_line = 64 + data[0];
    lim.max_head = lim.max_line + 4 * (size_t)data[1];
    const char *buf = (const char *)data + 2;
    size_t len = size - 2;
    bn_http_request r;
    int rc = bn_http_parse(buf, len, &lim, &r);
    if (rc < 0) {
        if (r.status < 400 || r.status > 505 || !r.error) abort();
        return 0;
    }
    if (rc == 0) return 0;
    if (rc != 1) abort();
    if (r.head_len < 2 || r.head_len > len || buf[r.head_len - 1] != '\n') abort();
    if (r.head_len > lim.max_head || r.content_length > lim.max_body) abort();
    inside(r.method, r.method_len, buf, r.head_len);
    inside(r.target, r.target_len, buf, r.head_len);
    if (r.method_len == 0 || r.target_len == 0 || r.target[0] != '/' || r.path_len > r.target_len) abort();
    for (int h = 0; h < r.n_headers; h++) {
        inside(r.headers[h].name, r.headers[h].name_len, buf, r.head_len);
        inside(r.headers[h].value, r.headers[h].value_len, buf, r.head_len);
    }
    /* prefixes: never complete before the blank line */
    bn_http_request p;
    for (size_t n = 0; n < r.head_len; n += 1 + n / 8) {
        int pr = bn_http_parse(buf, n, &lim, &p);
        if (pr == 1) abort();
    }
    /* the head alone parses to the same request */
    if (bn_http_parse(buf, r.head_len, &lim, &p) != 1 || p.head_len != r.head_len ||
        p.content_length != r.content_length || p.n_headers != r.n_headers || p.keep_alive != r.keep_alive)
        abort();
    return 0;
}
