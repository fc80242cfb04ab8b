#!/usr/bin/env bash
# Aggregate decode throughput of `bitnet serve` with 1, 2, 4, 8 ... concurrent
# streams (continuous batching: one forward pass serves every stream).
# Each round starts N streaming clients at once, each asking for TOKENS
# tokens (ignore_eos, seeded default sampling) after a short prompt, and
# reports, per N:
#   - server t/s: tokens generated / wall time of the generation steps (from
#     /metrics: tokens_predicted_total, tokens_predicted_seconds_total), the
#     decode throughput without prompt time;
#   - client t/s: tokens received / wall time from the first request to the
#     last response (prompts and HTTP included).
# Stream counts are interleaved over ROUNDS rounds so that a loaded machine
# hurts them alike; compare within one run.
# usage: tools/bench-serve.sh BITNET MODEL [THREADS=2] [TOKENS=64] [ROUNDS=3] [COUNTS="1 2 4 8"]
set -eu
BIN=${1:?bitnet binary}
MODEL=${2:?model}
THREADS=${3:-2}
TOKENS=${4:-64}
ROUNDS=${5:-3}
COUNTS=${6:-1 2 4 8}
max=0
for n in $COUNTS; do [ "$n" -gt "$max" ] && max=$n; done
TMP=$(mktemp -d)
"$BIN" serve -m "$MODEL" -np "$max" -c $((max * 512)) -t "$THREADS" --port 0 2>"$TMP/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT
port=
for _ in $(seq 1 600); do
    port=$(sed -n 's|^serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$TMP/serve.err")
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || { cat "$TMP/serve.err" >&2; exit 1; }
    sleep 0.1
done
URL="http://127.0.0.1:$port"
metric() { curl -s "$URL/metrics" | sed -n "s/^bitnet_$1 //p"; }
now() { date +%s.%N; }

# warm-up: page the weights in
curl -s -d '{"prompt":"Hi","max_tokens":8}' "$URL/v1/completions" >/dev/null

printf '%-8s %-6s %12s %12s %8s\n' streams round "server t/s" "client t/s" passes
for r in $(seq 1 "$ROUNDS"); do
    for n in $COUNTS; do
        tok0=$(metric tokens_predicted_total)
        sec0=$(metric tokens_predicted_seconds_total)
        pass0=$(metric decode_passes_total)
        t0=$(now)
        pids=
        for i in $(seq 1 "$n"); do
            curl -s -N -d "{\"prompt\":\"Once upon a time, number $i\",\"max_tokens\":$TOKENS,\"ignore_eos\":true,\"seed\":$i,\"stream\":true}" \
                "$URL/v1/completions" >"$TMP/out.$i" &
            pids="$pids $!"
        done
        wait $pids
        t1=$(now)
        tok1=$(metric tokens_predicted_total)
        sec1=$(metric tokens_predicted_seconds_total)
        pass1=$(metric decode_passes_total)
        awk -v n="$n" -v r="$r" -v dt="$(echo "$tok1 - $tok0" | bc)" -v ds="$(echo "$sec1 - $sec0" | bc)" \
            -v w="$(echo "$t1 - $t0" | bc)" -v p="$((pass1 - pass0))" \
            'BEGIN { printf "%-8d %-6d %12.2f %12.2f %8d\n", n, r, dt / ds, dt / w, p }'
    done
done
