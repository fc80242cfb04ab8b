/* HTTP/1.1 request-head parser (RFC 9112): the request line, header fields
 * as tokens and visible text, Content-Length as the only body framing.
 * Lines end in CRLF; a bare LF is accepted too, as the RFC allows. */
#include <string.h>
#include <strings.h>

#include "http.h"

bn_http_limits bn_http_default_limits(void) {
    bn_http_limits l = {8192, 16384, 1 << 20};
    return l;
}

static int bad(bn_http_request *r, int status, const char *why) {
    r->status = status;
    r->error = why;
    return -1;
}

/* tchar of RFC 9110: the characters of methods and field names. */
static int is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The end of the line starting at pos: the index of its LF, or -1. */
static long find_lf(const char *buf, size_t len, size_t pos) {
    const char *lf = memchr(buf + pos, '\n', len - pos);
    return lf ? (long)(lf - buf) : -1;
}

static int ieq(const char *a, size_t n, const char *b) {
    return strlen(b) == n && strncasecmp(a, b, n) == 0;
}

/* Does the comma-separated list value[0..n) hold token (any case)? */
static int list_has(const char *v, size_t n, const char *token) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t s = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e > s && ieq(v + s, e - s, token)) return 1;
    }
    return 0;
}

static int parse_request_line(const char *line, size_t n, bn_http_request *r) {
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)line[i])) i++;
    if (i == 0 || i >= n || line[i] != ' ') return bad(r, 400, "malformed request line");
    r->method = line;
    r->method_len = i;
    size_t t = ++i;
    while (i < n && line[i] != ' ') {
        unsigned char c = (unsigned char)line[i];
        if (c <= 0x20 || c >= 0x7F) return bad(r, 400, "bad character in the request target");
        i++;
    }
    if (i == t || i >= n) return bad(r, 400, "malformed request line");
    r->target = line + t;
    r->target_len = i - t;
    if (r->target[0] != '/') return bad(r, 400, "the request target must start with '/'");
    const char *q = memchr(r->target, '?', r->target_len);
    r->path_len = q ? (size_t)(q - r->target) : r->target_len;
    i++;
    if (n - i != 8 || memcmp(line + i, "HTTP/", 5) != 0 || line[i + 6] != '.' ||
        line[i + 5] < '0' || line[i + 5] > '9' || line[i + 7] < '0' || line[i + 7] > '9')
        return bad(r, 400, "malformed HTTP version");
    if (line[i + 5] != '1') return bad(r, 505, "only HTTP/1.x is supported");
    r->minor = line[i + 7] - '0';
    return 0;
}

/* Checks the framing headers once the head is complete. */
static int check_headers(bn_http_request *r) {
    int have_cl = 0, close = 0, keep = 0;
    size_t cl = 0;
    for (int h = 0; h < r->n_headers; h++) {
        const bn_http_header *f = &r->headers[h];
        if (ieq(f->name, f->name_len, "content-length")) {
            size_t v = 0;
            if (f->value_len == 0) return bad(r, 400, "empty Content-Length");
            for (size_t i = 0; i < f->value_len; i++) {
                char c = f->value[i];
                if (c < '0' || c > '9') return bad(r, 400, "bad Content-Length");
                if (v > ((size_t)1 << 40)) return bad(r, 413, "request body too large");
                v = v * 10 + (size_t)(c - '0');
            }
            if (have_cl && v != cl) return bad(r, 400, "conflicting Content-Length headers");
            have_cl = 1;
            cl = v;
        } else if (ieq(f->name, f->name_len, "transfer-encoding")) {
            r->status = 411;        /* decided after the loop: with a length it is 400 */
        } else if (ieq(f->name, f->name_len, "connection")) {
            if (list_has(f->value, f->value_len, "close")) close = 1;
            if (list_has(f->value, f->value_len, "keep-alive")) keep = 1;
        } else if (ieq(f->name, f->name_len, "expect")) {
            if (!ieq(f->value, f->value_len, "100-continue"))
                return bad(r, 417, "unsupported Expect header");
            r->expect_continue = 1;
        }
    }
    if (r->status == 411) {
        if (have_cl) return bad(r, 400, "both Transfer-Encoding and Content-Length");
        return bad(r, 411, "Transfer-Encoding (chunked uploads) is not supported: send a Content-Length");
    }
    r->content_length = cl;
    r->keep_alive = r->minor >= 1 ? !close : keep && !close;
    return 0;
}

int bn_http_parse(const char *buf, size_t len, const bn_http_limits *lim, bn_http_request *r) {
    memset(r, 0, sizeof *r);
    long lf = find_lf(buf, len, 0);
    if (lf < 0) {
        if (len > lim->max_line) return bad(r, 414, "request line too long");
        return 0;
    }
    size_t n = (size_t)lf;
    if (n > lim->max_line) return bad(r, 414, "request line too long");
    if (n > 0 && buf[n - 1] == '\r') n--;
    if (parse_request_line(buf, n, r) != 0) return -1;
    size_t pos = (size_t)lf + 1;
    for (;;) {
        lf = find_lf(buf, len, pos);
        if (lf < 0) {
            if (len > lim->max_head) return bad(r, 431, "request headers too large");
            return 0;
        }
        if ((size_t)lf + 1 > lim->max_head) return bad(r, 431, "request headers too large");
        const char *line = buf + pos;
        n = (size_t)lf - pos;
        if (n > 0 && line[n - 1] == '\r') n--;
        pos = (size_t)lf + 1;
        if (n == 0) break;          /* the blank line: end of the head */
        if (line[0] == ' ' || line[0] == '\t') return bad(r, 400, "obsolete header line folding");
        size_t i = 0;
        while (i < n && is_tchar((unsigned char)line[i])) i++;
        if (i == 0 || i >= n || line[i] != ':') return bad(r, 400, "malformed header field");
        if (r->n_headers == BN_HTTP_MAX_HEADERS) return bad(r, 431, "too many header fields");
        bn_http_header *h = &r->headers[r->n_headers++];
        h->name = line;
        h->name_len = i;
        i++;
        while (i < n && (line[i] == ' ' || line[i] == '\t')) i++;
        size_t e = n;
        while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t')) e--;
        for (size_t k = i; k < e; k++) {
            unsigned char c = (unsigned char)line[k];
            if ((c < 0x20 && c != '\t') || c == 0x7F) return bad(r, 400, "control character in a header value");
        }
        h->value = line + i;
        h->value_len = e - i;
    }
    r->head_len = pos;
    if (check_headers(r) != 0) return -1;
    if (r->content_length > lim->max_body) return bad(r, 413, "request body too large");
    return 1;
}

const char *bn_http_header_get(const bn_http_request *r, const char *name, size_t *len) {
    for (int h = 0; h < r->n_headers; h++) {
        if (ieq(r->headers[h].name, r->headers[h].name_len, name)) {
            *len = r->headers[h].value_len;
            return r->headers[h].value;
        }
    }
    *len = 0;
    return NULL;
}

int bn_http_path_is(const bn_http_request *r, const char *path) {
    return strlen(path) == r->path_len && memcmp(r->target, path, r->path_len) == 0;
}

int bn_http_method_is(const bn_http_request *r, const char *method) {
    return strlen(method) == r->method_len && memcmp(r->method, method, r->method_len) == 0;
}

const char *bn_http_status_text(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
