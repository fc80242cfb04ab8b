#!/usr/bin/env bash
# `bitnet serve --slot-save-path DIR` and llama-server's slot actions,
# POST /slots/ID?action=save|restore|erase, on the bundled model: a chat
# fills slot 0, is saved, erased (n_erased, /slots n_cached 0) and
# restored (n_restored); the next turn then takes the restored tokens from
# the cache and gives the text a server that never saved gives (greedy);
# the same after a restart. Refused: bad file names (nothing written
# outside DIR), a missing, damaged or too long file (the slot left empty),
# a bad slot id or action, a busy slot (409), no --slot-save-path or
# --no-slots (501), no API key (401); a DIR that is not a directory stops
# the start. Skipped (77) without curl. Whole run: a few seconds.
# usage: bash cli_serve_slots.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
command -v curl >/dev/null || { echo "skipped: curl not found"; exit 77; }

TINY="$SRC/models/tiny-shakespeare.gguf"
[ -f "$TINY" ] || { echo "FAIL: $TINY is missing" >&2; exit 1; }
KEY=slot-key-789
DIR="$TMP/slots"
mkdir -p "$DIR"

# post NAME URL PATH [BODY]: body to $TMP/NAME.out, status in $code (the key sent)
post() {
    local name=$1 url=$2 path=$3
    shift 3
    code=$(curl -s -o "$TMP/$name.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $KEY" \
        -H 'Content-Type: application/json' ${1:+-d "$1"} "$url$path")
}
get() {     # get NAME URL PATH
    code=$(curl -s -o "$TMP/$1.out" -w '%{http_code}' -H "Authorization: Bearer $KEY" "$2$3")
}
expect() {  # expect NAME STATUS [GREP]
    [ "$code" = "$2" ] || fail "$1: status $code, expected $2: $(head -c 300 "$TMP/$1.out")"
    [ -z "${3:-}" ] || grep -q -- "$3" "$TMP/$1.out" || fail "$1: no '$3' in: $(head -c 300 "$TMP/$1.out")"
}
# num NAME FIELD: the integer value of "FIELD" in $TMP/NAME.out
num() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$TMP/$1.out"; }
# text NAME: the reply's "content" (escapes kept: compared, not shown)
text() { sed -n 's/.*"content":"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$TMP/$1.out"; }
# slot_cached NAME URL ID: n_cached of slot ID in GET /slots
slot_cached() {
    get "$1" "$2" /slots
    sed -n "s/.*{\"id\":$3,[^}]*\"n_cached\":\([0-9]*\).*/\1/p" "$TMP/$1.out"
}

TURN1='{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":10,"temperature":0}'
turn2() {   # the second turn: the first, the reply, one more question
    printf '{"messages":[{"role":"user","content":"Hello there"},{"role":"assistant","content":"%s"},' "$1"
    printf '{"role":"user","content":"And then?"}],"max_tokens":12,"temperature":0}'
}

# ---- the reference: a server that never saves (fresh slots, nothing cached) ----------
serve_start plain -m "$TINY" -np 2 -t 1 --api-key "$KEY"
PLAIN="http://127.0.0.1:$SERVE_PORT"
post ref1 "$PLAIN" /v1/chat/completions "$TURN1"
expect ref1 200 '"finish_reason"'
REPLY=$(text ref1)
[ -n "$REPLY" ] || fail "ref1: no reply: $(cat "$TMP/ref1.out")"
TURN2=$(turn2 "$REPLY")
post ref2 "$PLAIN" /v1/chat/completions "$(turn2 "$REPLY" | sed 's/"temperature":0}/"temperature":0,"cache_prompt":false}/')"
expect ref2 200 '"cache_n":0,'
REF2=$(text ref2)
# without --slot-save-path the actions are llama-server's 501
post nopath "$PLAIN" '/slots/0?action=save' '{"filename":"x.bin"}'
expect nopath 501 'does not support slots action'
grep -q '"type":"not_supported_error","code":501' "$TMP/nopath.out" || fail "nopath: $(cat "$TMP/nopath.out")"

# ---- save, erase, restore, and the next turn from the cache --------------------------
serve_start main -m "$TINY" -np 2 -t 1 --api-key "$KEY" --slot-save-path "$DIR"
MAIN="http://127.0.0.1:$SERVE_PORT"
post t1 "$MAIN" /v1/chat/completions "$TURN1"
expect t1 200
[ "$(text t1)" = "$REPLY" ] || fail "t1: reply differs from the reference"
N=$(slot_cached s1 "$MAIN" 0)
[ -n "$N" ] && [ "$N" -gt 0 ] || fail "slot 0 holds no tokens after a chat: $(cat "$TMP/s1.out")"

post save "$MAIN" '/slots/0?action=save' '{"filename":"conv.bin"}'
expect save 200 "{\"id_slot\":0,\"filename\":\"conv.bin\",\"n_saved\":$N,\"n_written\":"
grep -Eq '"timings":\{"save_ms":[0-9.]+\}\}$' "$TMP/save.out" || fail "save: timings: $(cat "$TMP/save.out")"
[ -f "$DIR/conv.bin" ] || fail "save: no $DIR/conv.bin"
SIZE=$(wc -c <"$DIR/conv.bin")
[ "$(num save n_written)" = "$SIZE" ] || fail "save: n_written $(num save n_written), the file has $SIZE bytes"

post erase "$MAIN" '/slots/0?action=erase'
expect erase 200 "{\"id_slot\":0,\"n_erased\":$N}"
[ "$(slot_cached s2 "$MAIN" 0)" = 0 ] || fail "erase: slot 0 still holds tokens: $(cat "$TMP/s2.out")"
post erase2 "$MAIN" '/slots/0?action=erase' '{}'
expect erase2 200 '{"id_slot":0,"n_erased":0}'

post restore "$MAIN" '/slots/0?action=restore' '{"filename":"conv.bin"}'
expect restore 200 "{\"id_slot\":0,\"filename\":\"conv.bin\",\"n_restored\":$N,\"n_read\":$SIZE,\"timings\":{\"restore_ms\":"
[ "$(slot_cached s3 "$MAIN" 0)" = "$N" ] || fail "restore: /slots: $(cat "$TMP/s3.out")"

# the next turn shares the restored tokens: taken from the cache, same text
post t2 "$MAIN" /v1/chat/completions "$TURN2"
expect t2 200
CN=$(num t2 cache_n)
[ -n "$CN" ] && [ "$CN" -ge "$N" ] || fail "t2: cache_n '$CN', the slot restored $N: $(cat "$TMP/t2.out")"
grep -q "\"cached_tokens\":$CN}" "$TMP/t2.out" || fail "t2: cached_tokens differs from cache_n"
[ "$(text t2)" = "$REF2" ] || fail "t2: after a restore the reply differs: '$(text t2)' vs '$REF2'"

# ---- a restart: restore from the file, the same turn, the same text -------------------
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
serve_start again -m "$TINY" -np 2 -t 1 --api-key "$KEY" --slot-save-path "$DIR/"
AGAIN="http://127.0.0.1:$SERVE_PORT"
post r2 "$AGAIN" '/slots/0?action=restore' '{"filename":"conv.bin"}'
expect r2 200 "\"n_restored\":$N,\"n_read\":$SIZE,"
post t3 "$AGAIN" /v1/chat/completions "$TURN2"
expect t3 200
[ "$(num t3 cache_n)" = "$CN" ] || fail "t3: after a restart cache_n $(num t3 cache_n), expected $CN"
[ "$(text t3)" = "$REF2" ] || fail "t3: after a restart the reply differs: '$(text t3)' vs '$REF2'"
# a restore into slot 1 works too (the file is not bound to a slot)
post r3 "$AGAIN" '/slots/1?action=restore' '{"filename":"conv.bin"}'
expect r3 200 "{\"id_slot\":1,\"filename\":\"conv.bin\",\"n_restored\":$N,"

# ---- untrusted file names: 400, nothing written anywhere -------------------------------
before=$(cd "$TMP" && find . | sort)
long=$(printf 'a%.0s' $(seq 1 201))
for fname in '../x' 'a/b' '.hidden' '' '..' 'a..b' 'x.' ' x' 'a\\b' 'a:b' 'a\u0001b' 'a\u007fb' \
    'a\u0085b' 'a\u2215b' 'a\ufffdb' "$long" '/etc/passwd'; do
    for action in save restore; do
        post badname "$AGAIN" "/slots/0?action=$action" "{\"filename\":\"$fname\"}"
        expect badname 400 'Invalid filename'
    done
done
post badname "$AGAIN" '/slots/0?action=save' "{\"filename\":\"${long%a}\"}"   # 200 bytes: taken
expect badname 200 '"n_saved":'
rm -f "$DIR/${long%a}"
post nofield "$AGAIN" '/slots/0?action=save' '{"file":"x.bin"}'
expect nofield 400 "'filename' must be a string"
post notstr "$AGAIN" '/slots/0?action=save' '{"filename":5}'
expect notstr 400 "'filename' must be a string"
post badjson "$AGAIN" '/slots/0?action=save' '{"filename":'
expect badjson 400
code=$(curl -s -o "$TMP/badutf8.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $KEY" \
    --data-binary $'{"filename":"a\xff\xfeb"}' "$AGAIN/slots/0?action=save")
expect badutf8 400
after=$(cd "$TMP" && find . | sort)
[ "$(ls -A "$DIR")" = "conv.bin" ] || fail "bad names: files in DIR: $(ls -A "$DIR")"
[ "$before" = "$(printf '%s\n' "$after" | grep -v -e badname.out -e nofield.out -e notstr.out -e badjson.out -e badutf8.out)" ] ||
    fail "bad names: files appeared: $(diff <(echo "$before") <(echo "$after"))"

# ---- refused files: missing, damaged, too long; the slot left empty ---------------------
post missing "$AGAIN" '/slots/0?action=restore' '{"filename":"missing.bin"}'
expect missing 400 'No such file'
[ "$(slot_cached s4 "$AGAIN" 0)" = 0 ] || fail "missing: slot 0 not empty: $(cat "$TMP/s4.out")"
head -c $((SIZE / 2)) "$DIR/conv.bin" >"$DIR/cut.bin"
post r4 "$AGAIN" '/slots/0?action=restore' '{"filename":"conv.bin"}'
expect r4 200
post cut "$AGAIN" '/slots/0?action=restore' '{"filename":"cut.bin"}'
expect cut 400 'truncated'
[ "$(slot_cached s5 "$AGAIN" 0)" = 0 ] || fail "cut: slot 0 not empty: $(cat "$TMP/s5.out")"
cp "$DIR/conv.bin" "$DIR/flip.bin"
printf '\x55' | dd of="$DIR/flip.bin" bs=1 seek=$((SIZE - 100)) conv=notrunc 2>/dev/null
cmp -s "$DIR/conv.bin" "$DIR/flip.bin" && printf '\xaa' | dd of="$DIR/flip.bin" bs=1 seek=$((SIZE - 100)) conv=notrunc 2>/dev/null
post r5 "$AGAIN" '/slots/0?action=restore' '{"filename":"conv.bin"}'
expect r5 200
post flip "$AGAIN" '/slots/0?action=restore' '{"filename":"flip.bin"}'
expect flip 400 'cannot restore slot 0: '
[ "$(slot_cached s6 "$AGAIN" 0)" = 0 ] || fail "flip: slot 0 not empty: $(cat "$TMP/s6.out")"
printf 'not a session' >"$DIR/junk.bin"
post junk "$AGAIN" '/slots/0?action=restore' '{"filename":"junk.bin"}'
expect junk 400 'not a bitnet session file'
mkdir "$DIR/adir"
post adir "$AGAIN" '/slots/0?action=restore' '{"filename":"adir"}'
expect adir 400 'cannot restore slot 0: '
# and the slot still serves: the turn decoded afresh, the same text
post t4 "$AGAIN" /v1/chat/completions "$TURN2"
expect t4 200
[ "$(text t4)" = "$REF2" ] || fail "t4: after a refused restore the reply differs"

# ---- bad slot ids and actions; the method; the key -------------------------------------
post id9 "$AGAIN" '/slots/9?action=erase'
expect id9 400 'Invalid slot ID'
post idx "$AGAIN" '/slots/x1?action=erase'
expect idx 400 'Invalid slot ID'
post idneg "$AGAIN" '/slots/-1?action=erase'
expect idneg 400 'Invalid slot ID'
post noact "$AGAIN" '/slots/0'
expect noact 400 'Invalid action'
post badact "$AGAIN" '/slots/0?action=load' '{"filename":"conv.bin"}'
expect badact 400 'Invalid action'
post actamp "$AGAIN" '/slots/0?x=1&action=erase'
expect actamp 200 '"n_erased":'
get getact "$AGAIN" '/slots/0?action=erase'
expect getact 405
code=$(curl -s -o "$TMP/nokey.out" -w '%{http_code}' -X POST -d '{"filename":"conv.bin"}' "$AGAIN/slots/0?action=restore")
expect nokey 401 'invalid API key'

# ---- a context too small for the file: refused, the slot empty --------------------------
serve_start small -m "$TINY" -np 1 -c 16 -t 1 --api-key "$KEY" --slot-save-path "$DIR"
SMALL="http://127.0.0.1:$SERVE_PORT"
post toolong "$SMALL" '/slots/0?action=restore' '{"filename":"conv.bin"}'
expect toolong 400 'more than the context'
[ "$(slot_cached s7 "$SMALL" 0)" = 0 ] || fail "toolong: slot 0 not empty: $(cat "$TMP/s7.out")"

# ---- --no-slots turns the actions off too --------------------------------------------------
serve_start noslots -m "$TINY" -np 1 -t 1 --api-key "$KEY" --slot-save-path "$DIR" --no-slots
post noslots "http://127.0.0.1:$SERVE_PORT" '/slots/0?action=erase'
expect noslots 501 'does not support slots action'

# ---- a busy slot: 409 while it generates, then the action goes through ---------------------
$BN_EMULATOR "$BUILD/bitnet-synth" --preset small --ctx 16384 -o "$TMP/long.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
serve_start busy -m "$TMP/long.gguf" -np 1 -t 1 --api-key "$KEY" --slot-save-path "$DIR"
BUSY="http://127.0.0.1:$SERVE_PORT"
curl -s -o /dev/null -H "Authorization: Bearer $KEY" \
    -d '{"prompt":"hi","max_tokens":16000,"ignore_eos":true,"temperature":0}' "$BUSY/v1/completions" &
client=$!
for _ in $(seq 1 100); do
    get busyslots "$BUSY" /slots
    grep -q '"is_processing":true' "$TMP/busyslots.out" && break
    sleep 0.05
done
grep -q '"is_processing":true' "$TMP/busyslots.out" || fail "busy: the slot never ran the request"
post busysave "$BUSY" '/slots/0?action=save' '{"filename":"busy.bin"}'
expect busysave 409 'is processing a request'
post busyerase "$BUSY" '/slots/0?action=erase'
expect busyerase 409 'is processing a request'
[ -f "$DIR/busy.bin" ] && fail "busy: a file was written"
kill "$client" 2>/dev/null       # the client leaves: the server cancels the job
wait "$client" 2>/dev/null
for _ in $(seq 1 100); do
    get busyslots "$BUSY" /slots
    grep -q '"is_processing":false' "$TMP/busyslots.out" && break
    sleep 0.1
done
post idlesave "$BUSY" '/slots/0?action=save' '{"filename":"busy.bin"}'
expect idlesave 200 '"n_saved":'

# ---- the start: DIR must be an existing directory ---------------------------------------------
for bad in "$TMP/no-such-dir" "$DIR/conv.bin"; do
    $BN_EMULATOR "$BIN" serve -m "$TINY" --port 0 -t 1 --slot-save-path "$bad" >"$TMP/start.out" 2>"$TMP/start.err" &
    p=$!
    ok=0
    for _ in $(seq 1 100); do kill -0 $p 2>/dev/null || { ok=1; break; }; sleep 0.1; done
    [ $ok = 1 ] || { kill $p; fail "start with --slot-save-path $bad: still running"; }
    wait $p
    rc=$?
    [ $rc != 0 ] || fail "start with --slot-save-path $bad: exit status 0"
    [ "$(grep -c 'bitnet: error' "$TMP/start.err")" = 1 ] &&
        [ "$(tail -n 1 "$TMP/start.err")" = "bitnet: error: $bad: --slot-save-path is not an existing directory" ] ||
        fail "start with --slot-save-path $bad: stderr: $(cat "$TMP/start.err")"
done
$BN_EMULATOR "$BIN" serve --slot-save-path 2>"$TMP/noarg.err" && fail "--slot-save-path without a value: exit 0"

# every server stops cleanly, and a sanitizer build (-DBITNET_SANITIZE=ON)
# reported nothing in their logs (leaks are reported at the exit)
for p in $SERVE_PIDS; do kill "$p" 2>/dev/null; done
for p in $SERVE_PIDS; do wait "$p" 2>/dev/null; done
for log in "$TMP"/*.err; do
    grep -q -e 'Sanitizer' -e 'runtime error' "$log" && fail "$(basename "$log"): $(grep -m 3 -e 'Sanitizer' -e 'runtime error' "$log")"
done

[ "$failures" = 0 ] || exit 1
echo "ok"
