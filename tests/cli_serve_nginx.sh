#!/usr/bin/env bash
# Two `bitnet serve` processes behind nginx (tests/serve/nginx.conf.in, the
# README's set-up): nginx runs in the foreground from a config in a scratch
# directory on a free loopback port; health, completions, a streamed chat
# and the chat page pass through it, and both servers' /metrics show that
# requests reached each of them. Skipped (77) without nginx or curl.
# usage: bash cli_serve_nginx.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
nginx=$(command -v nginx || ls /usr/sbin/nginx 2>/dev/null) || { echo "skipped: nginx not found"; exit 77; }
command -v curl >/dev/null || { echo "skipped: curl not found"; exit 77; }

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
serve_start a -m "$TMP/m.gguf" -np 1 -t 1
port_a=$SERVE_PORT
serve_start b -m "$TMP/m.gguf" -np 1 -t 1
port_b=$SERVE_PORT

# nginx needs a port number up front: try random free-looking ones.
started=
for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue     # in use
    sed -e "s|@TMP@|$TMP|g" -e "s|@USER@|$(id -un) $(id -gn)|" -e "s|@PORT@|$port|" \
        -e "s|^@UPSTREAMS@$|        server 127.0.0.1:$port_a;\n        server 127.0.0.1:$port_b;|" \
        "$SRC/tests/serve/nginx.conf.in" >"$TMP/nginx.conf"
    "$nginx" -p "$TMP" -c "$TMP/nginx.conf" -e "$TMP/nginx-error.log" 2>"$TMP/nginx.out" &
    nginx_pid=$!
    SERVE_PIDS="$SERVE_PIDS $nginx_pid"
    for _ in $(seq 1 50); do
        curl -s -o /dev/null "http://127.0.0.1:$port/health" && { started=1; break; }
        kill -0 $nginx_pid 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$started" ] && break
    kill $nginx_pid 2>/dev/null
    wait $nginx_pid 2>/dev/null
done
[ -n "$started" ] || { echo "FAIL: nginx did not start: $(cat "$TMP/nginx.out" "$TMP/nginx-error.log" 2>/dev/null | tail -n 5)" >&2; exit 1; }
URL="http://127.0.0.1:$port"

requests_total() {  # requests_total PORT
    curl -s "http://127.0.0.1:$1/metrics" | sed -n 's/^bitnet_requests_total //p'
}
a0=$(requests_total $port_a)
b0=$(requests_total $port_b)

for i in 1 2 3 4 5 6; do
    code=$(curl -s -o "$TMP/h$i.out" -w '%{http_code}' "$URL/health")
    [ "$code" = 200 ] || fail "health $i through nginx: status $code"
done
# concurrent completions: least_conn spreads them over both servers
curls=
for i in 1 2 3 4; do
    curl -s -o "$TMP/c$i.out" -H 'Content-Type: application/json' \
        -d '{"prompt":"Once upon a time","max_tokens":16,"temperature":0}' "$URL/v1/completions" &
    curls="$curls $!"
done
wait $curls
for i in 1 2 3 4; do
    grep -q '"completion_tokens":16' "$TMP/c$i.out" || fail "completion $i through nginx: $(head -c 300 "$TMP/c$i.out")"
done
for i in 2 3 4; do
    cmp -s <(sed 's/.*"text":"//; s/".*//' "$TMP/c1.out") <(sed 's/.*"text":"//; s/".*//' "$TMP/c$i.out") ||
        fail "greedy completions 1 and $i differ"
done
curl -s -N -o "$TMP/st.out" -H 'Content-Type: application/json' \
    -d '{"messages":[{"role":"user","content":"Hello"}],"max_tokens":8,"stream":true}' "$URL/v1/chat/completions"
grep -q '"object":"chat.completion.chunk"' "$TMP/st.out" || fail "streamed chat through nginx: $(head -c 300 "$TMP/st.out")"
tail -n 2 "$TMP/st.out" | grep -q '^data: \[DONE\]$' || fail "streamed chat through nginx: no [DONE]"
code=$(curl -s -o "$TMP/page.out" -w '%{http_code}' "$URL/")
[ "$code" = 200 ] && grep -q '<title>bitnet chat</title>' "$TMP/page.out" || fail "chat page through nginx: status $code"

a1=$(requests_total $port_a)
b1=$(requests_total $port_b)
echo "requests: server A $a0 -> $a1, server B $b0 -> $b1 (12 sent through nginx)"
# each /metrics read counts on the next one: subtract it
[ $((a1 - a0 - 1)) -ge 2 ] || fail "server A got $((a1 - a0 - 1)) requests through nginx"
[ $((b1 - b0 - 1)) -ge 2 ] || fail "server B got $((b1 - b0 - 1)) requests through nginx"
[ $((a1 - a0 + b1 - b0 - 2)) -eq 12 ] || fail "the servers got $((a1 - a0 + b1 - b0 - 2)) requests, 12 sent"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_serve_nginx: all passed"
