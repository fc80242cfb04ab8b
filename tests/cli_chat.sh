#!/usr/bin/env bash
# Chat mode (-cnv) with piped stdin: replies only on stdout, exit 0 at end of
# input or /exit, deterministic with --temp 0 on any thread count, a full
# context ends the conversation cleanly with --no-context-shift (shifting:
# cli_longchat.sh), Ctrl-C at the prompt quits.
# usage: bash cli_chat.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

# chat NAME INPUT ARGS...: pipes INPUT into bitnet -cnv ARGS; rc in $rc
chat() {
    local name=$1 input=$2
    shift 2
    printf '%s' "$input" | $BN_EMULATOR "$BIN" -cnv "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "chat $name: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

expect_turns() {    # expect_turns NAME N
    grep -q "^chat: $2 turns" "$TMP/$1.err" || fail "chat $1: expected $2 turns: $(tail -n 2 "$TMP/$1.err")"
}

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"
three=$'Hello there\nWhat is your name?\nGoodbye\n'

# ---- a scripted 3-turn chat, greedy ------------------------------------------------
chat c1 "$three" -m "$M" --temp 0 -n 12 -t 1
expect_turns c1 3
[ -s "$TMP/c1.out" ] || fail "chat: no replies on stdout"
[ "$(tail -c 1 "$TMP/c1.out" | od -An -c | tr -d ' ')" = '\n' ] || fail "chat: the last reply does not end with a newline"
grep -qE "^(> |seed:|chat:|load:)" "$TMP/c1.out" && fail "chat: prompt or log text on stdout with piped stdin"
grep -q "^seed: " "$TMP/c1.err" || fail "chat: no seed on stderr"
chat c2 "$three" -m "$M" --temp 0 -n 12 -t 2
cmp -s "$TMP/c1.out" "$TMP/c2.out" || fail "chat: --temp 0 replies differ between -t 1 and -t 2"
chat c3 "$three" -m "$M" --temp 0 -n 12 -t 1
cmp -s "$TMP/c1.out" "$TMP/c3.out" || fail "chat: --temp 0 replies differ between two runs"
# sampled replies replay with the printed seed
chat r1 "$three" -m "$M" -n 12
seed=$(sed -n 's/^seed: //p' "$TMP/r1.err")
chat r2 "$three" -m "$M" -n 12 -s "$seed"
cmp -s "$TMP/r1.out" "$TMP/r2.out" || fail "chat: replies not replayed by -s $seed"

# ---- system prompts: -sys, --system-prompt, -p (as run_inference.py) -------------------
chat sys1 "$three" -m "$M" --temp 0 -n 12 -sys "You are a pirate."
expect_turns sys1 3
chat sys2 "$three" -m "$M" --temp 0 -n 12 --system-prompt "You are a pirate."
chat sys3 "$three" -m "$M" --temp 0 -n 12 -p "You are a pirate."
cmp -s "$TMP/sys1.out" "$TMP/sys2.out" && cmp -s "$TMP/sys1.out" "$TMP/sys3.out" ||
    fail "chat: -sys, --system-prompt and -p give different replies"

# ---- ending: /exit, end of input without a newline, blank lines ----------------------------
chat e1 $'Hi\n/exit\nnot read\n' -m "$M" --temp 0 -n 8
expect_turns e1 1
chat e2 $'Hi\n\n\nlast line without newline' -m "$M" --temp 0 -n 8
expect_turns e2 2
chat e3 "" -m "$M" --temp 0
expect_turns e3 0
[ -s "$TMP/e3.out" ] && fail "chat: output without any input"

# ---- context full without shifting (tests/cli_longchat.sh: with): message, reply ended,
# exit 0 at end of input
chat full "$three" -m "$M" --temp 0 -c 48 --no-context-shift
grep -q "context full" "$TMP/full.err" || fail "chat -c 48: no 'context full' message"
expect_turns full 3

# ---- Ctrl-C at the prompt quits with status 0 ---------------------------------------------
mkfifo "$TMP/in"
$BN_EMULATOR "$BIN" -cnv -m "$M" --temp 0 <"$TMP/in" >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
exec 3>"$TMP/in"                    # keep stdin open: bitnet waits at the prompt
for _ in $(seq 1 600); do grep -q "^seed:" "$TMP/int.err" && break; sleep 0.05; done
for _ in $(seq 1 100); do            # repeat: the first may land before the read
    kill -INT "$pid" 2>/dev/null || break
    sleep 0.1
done
wait "$pid"
rc=$?
exec 3>&-
[ "$rc" -eq 0 ] || fail "Ctrl-C at the prompt: exit status $rc, expected 0"

# ---- the bundled model -----------------------------------------------------------------------
if [ -f "$SRC/models/tiny-shakespeare.gguf" ]; then
    chat b1 $'ROMEO:\nWhat say you?\nFarewell.\n' -m "$SRC/models/tiny-shakespeare.gguf" --temp 0 -n 40
    expect_turns b1 3
    [ "$(tr -d '\n' <"$TMP/b1.out" | wc -c)" -gt 0 ] || fail "bundled model: empty replies"
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_chat: $failures failure(s)" >&2
    exit 1
fi
echo "cli_chat: all checks passed"
