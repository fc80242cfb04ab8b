#!/usr/bin/env bash
# `bitnet serve` over loopback with curl: health, models, completions
# (plain, streamed, greedy and seeded results equal to `bitnet -p`), chat,
# tokenize/detokenize round trip, metrics, and the hardened front: bad JSON
# 400, wrong or missing API key 401, oversized body 413, chunked upload 411,
# unknown path 404, wrong method 405, a slow client cut off with 408 while
# others are served, concurrent requests over 2 slots (one queued).
# Also the chat page at / (public, HTML, self-contained). Skipped (77) without curl. Whole run: a few seconds.
# usage: bash cli_serve.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
command -v curl >/dev/null || { echo "skipped: curl not found"; exit 77; }

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"
KEY=test-key-123

$BN_EMULATOR "$BIN" serve -m "$M" --port 0 -np 2 -t 1 --timeout 2 --api-key "$KEY" \
    2>"$TMP/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT
port=
for _ in $(seq 1 300); do
    port=$(sed -n 's|^serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$TMP/serve.err")
    [ -n "$port" ] && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the server did not start: $(cat "$TMP/serve.err")" >&2; exit 1; }
URL="http://127.0.0.1:$port"
AUTH="Authorization: Bearer $KEY"

# req NAME METHOD PATH [BODY]: body to $TMP/NAME.out, status in $code
req() {
    local name=$1 method=$2 path=$3
    shift 3
    code=$(curl -s -o "$TMP/$name.out" -w '%{http_code}' -X "$method" -H "$AUTH" \
        -H 'Content-Type: application/json' "$@" "$URL$path")
}
expect() {  # expect NAME STATUS [GREP]
    [ "$code" = "$2" ] || fail "$1: status $code, expected $2: $(head -c 300 "$TMP/$1.out")"
    [ -z "${3:-}" ] || grep -q -- "$3" "$TMP/$1.out" || fail "$1: no '$3' in: $(head -c 300 "$TMP/$1.out")"
}
# json_text NAME FIELD: the decoded string value of "FIELD" in $TMP/NAME.out (bash printf
# %b undoes the writer's escapes: \\ \" \n \r \t \u00XX)
json_text() {
    local v
    v=$(sed -n "s/.*\"$2\":\"\(\([^\"\\\\]\|\\\\.\)*\)\".*/\1/p" "$TMP/$1.out")
    v=${v//\\\"/\"}
    printf '%b' "$v"
}

# ---- health (no key needed), models, metrics ------------------------------------
code=$(curl -s -o "$TMP/health.out" -w '%{http_code}' "$URL/health")
expect health 200 '"status":"ok"'
# the chat page: public (no key), HTML, self-contained (no external asset)
code=$(curl -s -D "$TMP/page.head" -o "$TMP/page.out" -w '%{http_code}' "$URL/")
expect page 200 '<title>bitnet chat</title>'
grep -qi '^Content-Type: text/html; charset=utf-8' "$TMP/page.head" || fail "page: content type: $(cat "$TMP/page.head")"
grep -qi "^Content-Security-Policy: default-src 'none'" "$TMP/page.head" || fail "page: no content security policy"
grep -Eq '(src|href)="(https?:)?//' "$TMP/page.out" && fail "page: loads an external asset"
grep -q 'v1/chat/completions' "$TMP/page.out" || fail "page: does not call /v1/chat/completions"
[ "$(wc -c <"$TMP/page.out")" -eq "$(wc -c <"$SRC/src/server/chat_page.html")" ] || fail "page: not the whole of chat_page.html"
req models GET /v1/models
expect models 200 '"object":"list"'
req props GET /props
expect props 200 '"default_generation_settings":{"n_ctx":256,"params":{"n_predict":-1,"seed":-1,"temperature":0.8,"top_k":40,'
grep -q '"total_slots":2,"model_path":"m.gguf","chat_format":"2B4T","build_info":"bitnet.c ' "$TMP/props.out" ||
    fail "props: $(cat "$TMP/props.out")"
grep -q '"id":"m.gguf"' "$TMP/models.out" || fail "models: no id m.gguf"

# ---- completion: greedy equals `bitnet -p ... --temp 0` minus the prompt -------------
P="Once upon a time"
req c1 POST /v1/completions -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}"
expect c1 200 '"object":"text_completion"'
grep -q '"usage":{"prompt_tokens":[0-9]*,"completion_tokens":24,' "$TMP/c1.out" || fail "c1: usage: $(cat "$TMP/c1.out")"
grep -q '"finish_reason":"length"' "$TMP/c1.out" || fail "c1: finish_reason not length"
# llama-server's timings beside usage: the counts agree, the times are positive
grep -Eq '"timings":\{"cache_n":0,"prompt_n":[1-9][0-9]*,"prompt_ms":[0-9.]*[1-9][0-9.]*,"prompt_per_second":[0-9.]+,"predicted_n":24,"predicted_ms":[0-9.]*[1-9][0-9.]*,"predicted_per_second":[0-9.]+\}' "$TMP/c1.out" ||
    fail "c1: timings: $(cat "$TMP/c1.out")"
json_text c1 text >"$TMP/c1.txt"
$BN_EMULATOR "$BIN" -m "$M" -p "$P" -n 24 --temp 0 -t 1 2>/dev/null >"$TMP/cli1.out"
tail -c +$((${#P} + 1)) "$TMP/cli1.out" | head -c -1 >"$TMP/cli1.txt"
cmp -s "$TMP/c1.txt" "$TMP/cli1.txt" || fail "greedy completion differs from bitnet -p: $(od -c "$TMP/c1.txt" | head -3) vs $(od -c "$TMP/cli1.txt" | head -3)"
[ -s "$TMP/c1.txt" ] || fail "greedy completion is empty"

# seeded sampling: the same seed and parameters give the CLI's text
req s1 POST /v1/completions -d "{\"prompt\":\"The\",\"max_tokens\":20,\"seed\":1234,\"temperature\":1.5,\"top_k\":0,\"top_p\":1,\"min_p\":0,\"ignore_eos\":true}"
expect s1 200 '"seed":1234'
json_text s1 text >"$TMP/s1.txt"
$BN_EMULATOR "$BIN" -m "$M" -p "The" -n 20 -s 1234 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 --ignore-eos -t 1 \
    2>/dev/null >"$TMP/cli2.out"
tail -c +4 "$TMP/cli2.out" | head -c -1 >"$TMP/cli2.txt"
cmp -s "$TMP/s1.txt" "$TMP/cli2.txt" || fail "seeded completion differs from bitnet -p -s 1234"

# streamed: SSE chunks whose texts join to the plain completion, then [DONE]
req st POST /v1/completions -N -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0,\"stream\":true}"
expect st 200 '^data: \[DONE\]$'
n_chunks=$(grep -c '^data: {' "$TMP/st.out")
[ "$n_chunks" -ge 2 ] || fail "stream: only $n_chunks chunks"
: >"$TMP/st.txt"
while IFS= read -r line; do
    case $line in "data: {"*) printf '%s\n' "${line#data: }" >"$TMP/one.out"; json_text one text >>"$TMP/st.txt" ;; esac
done <"$TMP/st.out"
cmp -s "$TMP/st.txt" "$TMP/c1.txt" || fail "streamed text differs from the plain completion"
tail -n 4 "$TMP/st.out" | grep -q '"finish_reason":"length"' || fail "stream: no finish_reason in the last chunk"

# the prompt cache: the same prompt again takes all but its last token from
# a slot's cache (the text unchanged); "cache_prompt":false decodes it all; a
# longer prompt that starts with it decodes only the rest, with the text of
# decoding it all
n_p=$(grep -o '"prompt_tokens":[0-9]*' "$TMP/c1.out" | grep -o '[0-9]*$')
req pc1 POST /v1/completions -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}"
grep -q "\"prompt_tokens_details\":{\"cached_tokens\":$((n_p - 1))}" "$TMP/pc1.out" &&
    grep -q "\"timings\":{\"cache_n\":$((n_p - 1)),\"prompt_n\":1," "$TMP/pc1.out" ||
    fail "prompt cache: the same prompt again: $(cat "$TMP/pc1.out")"
json_text pc1 text >"$TMP/pc1.txt"
cmp -s "$TMP/pc1.txt" "$TMP/c1.txt" || fail "prompt cache: the text changed"
req pc2 POST /v1/completions -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0,\"cache_prompt\":false}"
grep -q '"timings":{"cache_n":0,' "$TMP/pc2.out" || fail "cache_prompt false: $(cat "$TMP/pc2.out")"
json_text pc2 text >"$TMP/pc2.txt"
cmp -s "$TMP/pc2.txt" "$TMP/c1.txt" || fail "cache_prompt false: the text changed"
for c in true false; do
    req pc3$c POST /v1/completions -d "{\"prompt\":\"$P there lived a king\",\"max_tokens\":16,\"temperature\":0,\"cache_prompt\":$c}"
    json_text pc3$c text >"$TMP/pc3$c.txt"
done
grep -q "\"cache_n\":$((n_p - 1))," "$TMP/pc3true.out" || grep -q "\"cache_n\":$n_p," "$TMP/pc3true.out" ||
    fail "prompt cache: a longer prompt: $(cat "$TMP/pc3true.out")"
[ -s "$TMP/pc3true.txt" ] && cmp -s "$TMP/pc3true.txt" "$TMP/pc3false.txt" ||
    fail "prompt cache: a longer prompt's text differs from decoding it all"
req pcm GET /metrics
grep -Eq '^bitnet_prompt_tokens_cached_total [1-9][0-9]*$' "$TMP/pcm.out" || fail "metrics: no cached prompt tokens"

# stop strings cut the text before them
stop=$(grep -ao '[a-z][a-z]' "$TMP/c1.txt" | head -n 1)   # two letters the text holds
if [ -n "$stop" ]; then
    req sp POST /v1/completions -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0,\"stop\":[\"$stop\"]}"
    expect sp 200 '"finish_reason":"stop"'
    json_text sp text >"$TMP/sp.txt"
    grep -qF -- "$stop" "$TMP/sp.txt" && fail "stop string '$stop' still in the text"
    cmp -s "$TMP/sp.txt" <(head -c "$(wc -c <"$TMP/sp.txt")" "$TMP/c1.txt") || fail "stop: text is not a prefix of the full text"
fi

# ---- chat ------------------------------------------------------------------------------
req ch POST /v1/chat/completions -d '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello"}],"max_tokens":8,"temperature":0}'
expect ch 200 '"object":"chat.completion"'
grep -q '"message":{"role":"assistant","content":' "$TMP/ch.out" || fail "chat: no assistant message"
req chs POST /v1/chat/completions -N -d '{"messages":[{"role":"user","content":[{"type":"text","text":"Hello"}]}],"max_tokens":4,"stream":true}'
expect chs 200 '"object":"chat.completion.chunk"'
grep -q '"delta":{"role":"assistant"' "$TMP/chs.out" || fail "chat stream: no role in the first delta"
grep -q '^data: \[DONE\]$' "$TMP/chs.out" || fail "chat stream: no [DONE]"
req chb POST /v1/chat/completions -d '{"messages":[{"role":"assistant","content":"x"}]}'
expect chb 400 '"the last message must be the user'"'"'s"'

# a conversation longer than the slot's context (256 here) goes on: the oldest messages after the
# system one are dropped until it fits with room for the reply, and the reply is the one the kept
# messages alone give
long_msgs() {   # long_msgs FIRST N: N user/assistant messages, each ~25 tokens, then a user one
    local i out='{"role":"system","content":"Be brief."}'
    for i in $(seq "$1" "$2"); do
        out="$out,{\"role\":\"user\",\"content\":\"Question $i: what do the old stones of the harbour town say about the sea and the ships?\"}"
        out="$out,{\"role\":\"assistant\",\"content\":\"Answer $i: they speak of storms, of nets mended at dawn, and of sailors who came home late.\"}"
    done
    printf '%s,{"role":"user","content":"And now?"}' "$out"
}
req tr1 POST /v1/chat/completions -d "{\"messages\":[$(long_msgs 1 12)],\"max_tokens\":6,\"temperature\":0}"
expect tr1 200 '"truncated":true'
dropped=$(sed -n 's/.*"messages_dropped":\([0-9]*\).*/\1/p' "$TMP/tr1.out")
if [ -n "$dropped" ] && [ "$dropped" -ge 2 ] && [ $((dropped % 2)) -eq 0 ]; then
    # the same request without the dropped messages (pairs from the start) fits as it is
    req tr2 POST /v1/chat/completions -d "{\"messages\":[$(long_msgs $((dropped / 2 + 1)) 12)],\"max_tokens\":6,\"temperature\":0}"
    expect tr2 200 '"finish_reason"'
    grep -q '"truncated"' "$TMP/tr2.out" && fail "truncation: the kept messages alone were truncated again"
    [ "$(json_text tr1 content)" = "$(json_text tr2 content)" ] || fail "truncation: reply differs from the kept messages' own"
    echo "truncation: $dropped messages dropped, reply '$(json_text tr1 content)'"
else
    fail "truncation: messages_dropped '$dropped' (expected an even count >= 2): $(head -c 300 "$TMP/tr1.out")"
fi
req tr4 POST /v1/chat/completions -N -d "{\"messages\":[$(long_msgs 1 12)],\"max_tokens\":4,\"stream\":true}"
grep -q '"finish_reason":"[a-z]*".*"truncated":true,"messages_dropped":[0-9]' "$TMP/tr4.out" || fail "truncation: not in the last chunk"
req tr5 POST /v1/chat/completions -d "{\"messages\":[$(long_msgs 1 12)],\"max_tokens\":6,\"truncate\":false}"
expect tr5 400 'longer than the context'

# ---- tokenize / detokenize round trip ----------------------------------------------------
req tk POST /tokenize -d '{"content":"Hello world, \u00e9t\u00e9!"}'
expect tk 200 '"tokens":\['
toks=$(sed -n 's/.*"tokens":\(\[[0-9,]*\]\).*/\1/p' "$TMP/tk.out")
req dt POST /detokenize -d "{\"tokens\":$toks}"
expect dt 200
[ "$(json_text dt content)" = "Hello world, été!" ] || fail "detokenize: '$(json_text dt content)'"
req dtb POST /detokenize -d '{"tokens":[1,-5]}'
expect dtb 400 'token ids'

# ---- apply-template: the chat prompt as text; tokenized back (specials parsed) it is
# the prompt a chat request with these messages decodes (usage.prompt_tokens)
MSGS='"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi \"there\""}]'
req at POST /apply-template -d "{$MSGS}"
expect at 200 '"prompt":"'
grep -q 'Be brief.' "$TMP/at.out" && grep -q 'Hi \\"there\\"' "$TMP/at.out" || fail "apply-template: $(cat "$TMP/at.out")"
req atk POST /tokenize -d "{\"content\":$(sed -n 's/^{"prompt":\(.*\)}$/\1/p' "$TMP/at.out"),\"add_special\":false}"
n_at=$(grep -o '[0-9]\+' "$TMP/atk.out" | wc -l)
req atc POST /v1/chat/completions -d "{$MSGS,\"max_tokens\":1}"
grep -q "\"prompt_tokens\":$n_at," "$TMP/atc.out" ||
    fail "apply-template: $n_at tokens, the chat's usage says $(grep -o '"prompt_tokens":[0-9]*' "$TMP/atc.out")"
req atb POST /apply-template -d '{"messages":[]}'
expect atb 400 'messages'

# ---- errors: JSON objects with the right status ---------------------------------------------
req bj POST /v1/completions -d '{"prompt": "x",'
expect bj 400 '"type":"invalid_request_error","code":400'
req bt POST /v1/completions -d '{"prompt":"x","temperature":"hot"}'
expect bt 400 "'temperature' must be a number"
req bn POST /v1/completions -d '{"prompt":"x","n":2}'
expect bn 400 "'n' is out of range"
req deep POST /v1/completions -d "$(printf '[%.0s' $(seq 1 100))"
expect deep 400 'nesting too deep'
code=$(curl -s -o "$TMP/k1.out" -w '%{http_code}' -H "Authorization: Bearer wrong" "$URL/v1/models")
expect k1 401 '"type":"authentication_error"'
code=$(curl -s -o "$TMP/k2.out" -w '%{http_code}' "$URL/v1/models")
expect k2 401 '"code":401'
head -c $((1024 * 1024 + 100)) /dev/zero | tr '\0' 'a' >"$TMP/big.txt"
req big POST /v1/completions --data-binary @"$TMP/big.txt"
expect big 413 '"code":413'
req chunked POST /v1/completions -H 'Transfer-Encoding: chunked' -d '{"prompt":"x"}'
expect chunked 411 '"code":411'
req nf GET /v1/nothing
expect nf 404 '"type":"not_found_error"'
req meth GET /v1/completions
expect meth 405 '"code":405'
req long POST /v1/completions -d "{\"prompt\":\"$(head -c 3000 /dev/zero | tr '\0' 'a')\"}"
expect long 400 'longer than the context'

# ---- a slow client is cut off (408) and does not hold up the others -------------------------
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /v1/completions HTTP/1.1\r\nHost: x\r\n' >&3
t0=$(date +%s)
code=$(curl -s -o "$TMP/h2.out" -w '%{http_code}' "$URL/health")
expect h2 200
timeout 10 cat <&3 >"$TMP/slow.out"
t1=$(date +%s)
exec 3<&-
grep -q '^HTTP/1.1 408 ' "$TMP/slow.out" || fail "slow client: no 408: $(head -c 200 "$TMP/slow.out")"
[ $((t1 - t0)) -le 6 ] || fail "slow client held for $((t1 - t0)) s (timeout 2 s)"

# ---- concurrency: 3 greedy requests on 2 slots give the same text --------------------------
for i in 1 2 3; do
    req "par$i" POST /v1/completions -d "{\"prompt\":\"$P\",\"max_tokens\":24,\"temperature\":0}" &
done
wait %2 %3 %4 2>/dev/null || wait
for i in 1 2 3; do
    json_text "par$i" text >"$TMP/par$i.txt"
    cmp -s "$TMP/par$i.txt" "$TMP/c1.txt" || fail "concurrent request $i differs"
done

# ---- metrics ------------------------------------------------------------------------------------
req met GET /metrics
expect met 200 '^bitnet_tokens_predicted_total [0-9]'
for m in requests_total prompt_tokens_total predicted_tokens_per_second slots_busy requests_queued; do
    grep -q "^bitnet_$m " "$TMP/met.out" || fail "metrics: no bitnet_$m"
done
ntok=$(sed -n 's/^bitnet_tokens_predicted_total //p' "$TMP/met.out")
[ "${ntok:-0}" -ge 100 ] || fail "metrics: only ${ntok:-0} tokens predicted"

# ---- clean stop on SIGTERM ------------------------------------------------------------------------
kill $pid
wait $pid
rc=$?
[ $rc -eq 0 ] || fail "server exit status $rc after SIGTERM: $(tail -n 3 "$TMP/serve.err")"
grep -q "^serve: stopping" "$TMP/serve.err" || fail "no 'serve: stopping' line"

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_serve: all passed"
