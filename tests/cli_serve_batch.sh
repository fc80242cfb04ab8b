#!/usr/bin/env bash
# Continuous batching in `bitnet serve`: the same requests sent one at a time
# and all at once (more than the slots, so some wait in the queue) give the
# same texts, byte for byte: greedy and seeded sampling, penalties, a stop
# string, streamed and plain, prompts longer than a prefill chunk (decoded
# in chunks between steps while others generate), a generation past 256
# cells (the long attention path) beside short ones, and a client that
# leaves mid-stream. The greedy one also equals `bitnet -p`. /metrics must
# show that steps were shared (fewer passes than generated tokens).
# Skipped (77) without curl. Whole run: about 10-20 s.
# usage: bash cli_serve_batch.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
command -v curl >/dev/null || { echo "skipped: curl not found"; exit 77; }

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small --ctx 512 -o "$TMP/m.gguf" >/dev/null 2>&1 ||
    fail "bitnet-synth failed"
M="$TMP/m.gguf"
serve_start s -m "$M" -np 3 -c 1536 -t 2
URL="http://127.0.0.1:$SERVE_PORT"

LONG="It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity"
# name|json body (the requests, more than the 3 slots)
cat >"$TMP/requests" <<EOF
greedy|{"prompt":"$LONG $LONG","max_tokens":40,"temperature":0,"seed":1,"ignore_eos":true}
long|{"prompt":"$LONG","max_tokens":40,"seed":7,"temperature":1.2,"top_k":0,"top_p":0.9,"ignore_eos":true}
pen|{"prompt":"The","max_tokens":40,"seed":1234,"temperature":1.5,"presence_penalty":0.5,"frequency_penalty":0.3,"ignore_eos":true}
stop|{"prompt":"ab","max_tokens":80,"seed":5,"temperature":1.0,"stop":["zzz","o h"]}
ids|{"prompt":[1,72,101,108,108,111],"max_tokens":30,"seed":3,"temperature":0.7,"min_p":0.05,"ignore_eos":true}
stream|{"prompt":"$LONG","max_tokens":40,"seed":11,"temperature":0.9,"stream":true,"ignore_eos":true}
eos|{"prompt":"Hello","max_tokens":100,"seed":42,"temperature":1.0}
EOF

# send NAME BODY OUT: the response, normalised: the id, the timings and the cached count dropped; a stream as
# the concatenation of its texts and its last finish_reason
send() {
    local out=$3
    curl -s -N -H 'Content-Type: application/json' -d "$2" "$URL/v1/completions" >"$out.raw" ||
        { echo "curl failed" >"$out"; return; }
    if grep -q '^data: ' "$out.raw"; then
        : >"$out"
        while IFS= read -r line; do
            case $line in "data: {"*)
                printf '%s' "${line#data: }" | sed -n 's/.*"text":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | tr -d '\n' >>"$out" ;;
            esac
        done <"$out.raw"
        printf '\n%s\n' "$(grep -o '"finish_reason":"[a-z]*"' "$out.raw" | tail -n 1)" >>"$out"
        grep -q '^data: \[DONE\]' "$out.raw" || echo "no [DONE]" >>"$out"
    else
        sed 's/"id":"[^"]*"//; s/,"timings":{[^}]*}//; s/,"prompt_tokens_details":{[^}]*}//' "$out.raw" >"$out"
    fi
}

# ---- one at a time -----------------------------------------------------------
while IFS='|' read -r name body; do
    send "$name" "$body" "$TMP/alone.$name"
done <"$TMP/requests"
grep -q '"prompt_tokens":2[6-9][0-9],"completion_tokens":40,' "$TMP/alone.greedy" ||
    fail "greedy: not 40 tokens after a prompt of over 256: $(head -c 300 "$TMP/alone.greedy")"

# the greedy text is `bitnet -p`'s
sed -n 's/.*"text":"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$TMP/alone.greedy" >"$TMP/greedy.esc"
printf '%b' "$(sed 's/\\"/"/g' "$TMP/greedy.esc")" >"$TMP/greedy.txt"
P="$LONG $LONG"
$BN_EMULATOR "$BIN" -m "$M" -c 512 -p "$P" -n 40 --temp 0 --ignore-eos -t 1 2>/dev/null >"$TMP/cli.out"
tail -c +$((${#P} + 1)) "$TMP/cli.out" | head -c -1 >"$TMP/cli.txt"
cmp -s "$TMP/greedy.txt" "$TMP/cli.txt" || fail "greedy completion differs from bitnet -p"

before=$(curl -s "$URL/metrics" | sed -n 's/^bitnet_decode_passes_total //p')
tokens_before=$(curl -s "$URL/metrics" | sed -n 's/^bitnet_tokens_predicted_total //p')

# ---- all at once, twice (a different interleaving each time) -----------------------
for round in 1 2; do
    pids=
    # a client that leaves mid-stream, beside the others
    curl -s -N --max-time 0.5 -H 'Content-Type: application/json' \
        -d '{"prompt":"x","max_tokens":400,"stream":true,"ignore_eos":true}' "$URL/v1/completions" \
        >/dev/null 2>&1 &
    pids="$pids $!"
    while IFS='|' read -r name body; do
        send "$name" "$body" "$TMP/together$round.$name" &
        pids="$pids $!"
    done <"$TMP/requests"
    wait $pids
    while IFS='|' read -r name body; do
        cmp -s "$TMP/alone.$name" "$TMP/together$round.$name" ||
            fail "round $round: $name differs when run beside the others: $(head -c 200 "$TMP/together$round.$name") vs $(head -c 200 "$TMP/alone.$name")"
    done <"$TMP/requests"
done

# the steps were shared: fewer passes than tokens generated
curl -s "$URL/metrics" >"$TMP/metrics"
after=$(sed -n 's/^bitnet_decode_passes_total //p' "$TMP/metrics")
tokens_after=$(sed -n 's/^bitnet_tokens_predicted_total //p' "$TMP/metrics")
passes=$((after - before))
tokens=$((tokens_after - tokens_before))
echo "concurrent rounds: $tokens tokens in $passes passes"
[ "$passes" -gt 0 ] && [ $((passes * 4)) -lt $((tokens * 3)) ] ||
    fail "steps were not batched: $tokens tokens in $passes passes"
grep -q '^bitnet_slots_busy 0$' "$TMP/metrics" || fail "slots still busy: $(grep slots_busy "$TMP/metrics")"
grep -q '^bitnet_requests_queued 0$' "$TMP/metrics" || fail "requests still queued"

kill "$SERVE_PID"
wait "$SERVE_PID" || fail "server exit status $? after the test: $(tail -n 3 "$TMP/s.err")"
[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "ok"
