/* HTTP/1.1 request heads for the server: a strict parser with size limits,
 * and the status texts of the responses. Bodies are Content-Length only: a
 * Transfer-Encoding (chunked uploads) is refused with 411, both headers
 * together (a request-smuggling shape) with 400. */
#ifndef BN_HTTP_H
#define BN_HTTP_H

#include <stddef.h>

#define BN_HTTP_MAX_HEADERS 64

typedef struct bn_http_limits {
    size_t max_line;                /* request line bytes (414 beyond) */
    size_t max_head;                /* request line + headers bytes (431 beyond) */
    size_t max_body;                /* Content-Length (413 beyond) */
} bn_http_limits;

typedef struct bn_http_header {
    const char *name, *value;       /* into the caller's buffer, not NUL-terminated */
    size_t name_len, value_len;
} bn_http_header;

typedef struct bn_http_request {
    const char *method, *target;    /* not NUL-terminated */
    size_t method_len, target_len;
    size_t path_len;                /* the target up to '?' */
    int minor;                      /* HTTP/1.minor */
    bn_http_header headers[BN_HTTP_MAX_HEADERS];
    int n_headers;
    size_t head_len;                /* bytes of the head, the final blank line included */
    size_t content_length;          /* 0 when absent */
    int keep_alive;                 /* 1.1 without "Connection: close", or 1.0 with keep-alive */
    int expect_continue;            /* "Expect: 100-continue" */
    int status;                     /* on error: the HTTP status to answer */
    const char *error;              /* on error: why (static text) */
} bn_http_request;

bn_http_limits bn_http_default_limits(void);    /* 8 KiB line, 16 KiB head, 1 MiB body */

/* Parses the head at the start of buf[0..len). Returns 1 when complete
 * (req filled, head_len set), 0 when more bytes are needed (and none of the
 * limits is passed yet), -1 on a bad request (req->status, req->error). */
int bn_http_parse(const char *buf, size_t len, const bn_http_limits *lim, bn_http_request *req);

/* A header's value (case-insensitive name), or NULL; *len its length. */
const char *bn_http_header_get(const bn_http_request *req, const char *name, size_t *len);
/* 1 when the path (target before '?') equals path. */
int bn_http_path_is(const bn_http_request *req, const char *path);
int bn_http_method_is(const bn_http_request *req, const char *method);

const char *bn_http_status_text(int status);

#endif
