/* `bitnet serve`: an OpenAI-shaped HTTP server over a loaded model.
 * Endpoints: POST /v1/completions, POST /v1/chat/completions (both with
 * "stream": true as server-sent events), llama-server's native
 * POST /completion (native.h), GET /v1/models, GET /health,
 * POST /tokenize, POST /detokenize, GET /metrics (Prometheus text), and
 * GET / a chat page (src/server/chat_page.html). */
#ifndef BN_SERVE_H
#define BN_SERVE_H

#include <stddef.h>

#include "bitnet.h"

/* bn_serve_params and bn_serve are public: include/bitnet.h, "server". */

/* Constant-time comparison of a presented key with the expected one: the
 * time depends only on the presented key's length. 1 when equal. */
int bn_serve_key_equal(const char *given, size_t given_len, const char *key);

#endif
