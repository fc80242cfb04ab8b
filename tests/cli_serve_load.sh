#!/usr/bin/env bash
# Load on `bitnet serve` with the bundled model (tests/serve/load.mjs): 16
# concurrent clients for 20 s mixing plain and streamed completions and chat
# (every other valid request with logprobs, some completions with echo)
# with malformed requests; no valid request may fail, every malformed one
# gets its 4xx, the server's RSS after warm-up and at the end differ by at
# most 4 MB (BN_LOAD_RSS_MB; not checked under ASan), and the server stops
# cleanly (under ASan: with no leak). Skipped (77) without node.
# The long run, by hand (10 minutes):
#   BN_LOAD_SECONDS=600 bash tests/cli_serve_load.sh build .
# usage: bash cli_serve_load.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
command -v node >/dev/null || { echo "skipped: node not found"; exit 77; }
seconds=${BN_LOAD_SECONDS:-20}
clients=${BN_LOAD_CLIENTS:-16}
model="$SRC/models/tiny-shakespeare.gguf"
[ -f "$model" ] || { echo "skipped: no $model"; exit 77; }

# Under AddressSanitizer freed memory sits in quarantine (up to 256 MB):
# RSS then says nothing about leaks, which ASan itself checks at exit.
rss_mb=${BN_LOAD_RSS_MB:-4}
grep -qa __asan_init "$BIN" && rss_mb=${BN_LOAD_RSS_MB:-1024}

serve_start s -m "$model" -np 4 -t 1 --api-key load-key --max-conns 64
timeout $((seconds + 300)) node "$SRC/tests/serve/load.mjs" "http://127.0.0.1:$SERVE_PORT" load-key \
    "$SERVE_PID" "$seconds" "$clients" "$rss_mb" || fail "load test failed"
kill "$SERVE_PID"
wait "$SERVE_PID" || fail "server exit status $? after the load: $(tail -n 3 "$TMP/s.err")"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_serve_load: all passed"
