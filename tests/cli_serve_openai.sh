#!/usr/bin/env bash
# The official `openai` npm package talks to `bitnet serve`: chat and text
# completions, plain and streamed, equal to the server's own answers; chat
# logprobs; model list; its error classes for 401 and 400 (tests/serve/openai_client.mjs).
# Skipped (77) without node or npm, or when npm cannot fetch the package.
# usage: bash cli_serve_openai.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
command -v node >/dev/null || { echo "skipped: node not found"; exit 77; }
if [ "$(node_major)" -ge 20 ]; then node_package openai@6; else node_package openai@4; fi

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
serve_start s -m "$TMP/m.gguf" -np 2 -t 1 --api-key key-789
BN_NODE_DIR="$NODE_DIR/node_modules" timeout 300 node "$SRC/tests/serve/openai_client.mjs" \
    "http://127.0.0.1:$SERVE_PORT" key-789 || fail "the openai client test failed"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_serve_openai: all passed"
