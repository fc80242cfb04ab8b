/* `bitnet serve`: an OpenAI-shaped HTTP server over a loaded model.
 * Endpoints: POST /v1/completions, POST /v1/chat/completions (both with
 * "stream": true as server-sent events), GET /v1/models, GET /health,
 * POST /tokenize, POST /detokenize, GET /metrics (Prometheus text), and
 * GET / a chat page (src/server/chat_page.html). */
#ifndef BN_SERVE_H
#define BN_SERVE_H

#include <stddef.h>

#include "bitnet.h"

typedef struct bn_serve_params {
    const char *host;               /* numeric IPv4 address; default 127.0.0.1 */
    int port;                       /* 0: any free port (the bound one is logged) */
    int n_slots;                    /* requests generated at the same time */
    int n_ctx;                      /* context per slot */
    int n_threads;                  /* threads per slot */
    const char *api_key;            /* NULL: no key; else "Authorization: Bearer KEY" */
    const char *model_name;         /* the id /v1/models reports */
    int timeout_s;                  /* to receive a whole request, and idle keep-alive */
    int max_conns;                  /* open connections at once (503 beyond) */
    size_t max_body;                /* request body bytes (413 beyond) */
} bn_serve_params;

/* Runs until SIGINT or SIGTERM. Logs to stderr, among them one line
 * "serve: listening on http://HOST:PORT" once it accepts connections.
 * Returns 0 after a clean stop, 1 on a start-up failure (one line
 * "bitnet: error: ..." printed). */
int bn_serve(bn_model *m, const bn_serve_params *p);

/* Constant-time comparison of a presented key with the expected one: the
 * time depends only on the presented key's length. 1 when equal. */
int bn_serve_key_equal(const char *given, size_t given_len, const char *key);

#endif
