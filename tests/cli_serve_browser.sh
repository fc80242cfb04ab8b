#!/usr/bin/env bash
# The chat page of `bitnet serve` in headless Chromium: two turns typed on
# the page stream replies equal to the server's non-streamed ones, and a
# wrong API key shows the server's error (tests/serve/chat_page_browser.mjs,
# playwright-core driving the system browser). Skipped (77) without
# chromium, node or npm, or when npm cannot fetch playwright-core.
# usage: bash cli_serve_browser.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
browser=$(command -v chromium || command -v chromium-browser) || { echo "skipped: chromium not found"; exit 77; }
command -v node >/dev/null || { echo "skipped: node not found"; exit 77; }
if [ "$(node_major)" -ge 20 ]; then node_package playwright-core@1; else node_package playwright-core@1.61; fi

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
serve_start s -m "$TMP/m.gguf" -np 2 -t 1 --api-key key-456
BN_NODE_DIR="$NODE_DIR/node_modules" timeout 300 node "$SRC/tests/serve/chat_page_browser.mjs" \
    "http://127.0.0.1:$SERVE_PORT" key-456 "$browser" || fail "the chat page test failed"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_serve_browser: all passed"
