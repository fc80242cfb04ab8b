#!/usr/bin/env bash
# Long generations and conversations: the context shifts as llama-cli's does
# (docs/CHAT.md, Context shift) instead of stopping.
#   one-shot: runs far past -c, the text before the first shift is the text
#   of an unshifted run, -t 1 = -t 2, --keep N / -1 as llama-cli, a --keep
#   that leaves nothing to discard stops with a note;
#   chat: a 200-turn piped conversation on the bundled model completes, exit
#   0, every reply non-empty; a message longer than the context minus the
#   kept tokens gets one line on stderr, is skipped and not counted, and the
#   chat goes on exactly as if it had never been typed.
# usage: bash cli_longchat.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

# run NAME ARGS...: stdin from $TMP/NAME.in when it exists; rc must be 0
run() {
    local name=$1 in=/dev/null
    shift
    [ -f "$TMP/$name.in" ] && in="$TMP/$name.in"
    $BN_EMULATOR "$BIN" "$@" <"$in" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "bitnet $*: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

has() {     # has NAME REGEX WHAT: stderr of NAME matches
    grep -qE "$2" "$TMP/$1.err" || fail "$3: no /$2/ on stderr: $(tail -n 2 "$TMP/$1.err")"
}

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"

# ---- one-shot ------------------------------------------------------------------------------
P="Once upon a time"
run s1 -m "$M" -p "$P" --temp 0 -c 40 -n 300 -t 1 --ignore-eos
has s1 "context shifts = +[0-9]+ \\(" "-c 40 -n 300"
has s1 "/ +300 tokens .*" "-c 40 -n 300: not 300 tokens generated"
grep -q "context full" "$TMP/s1.err" && fail "-c 40 -n 300: stopped at a full context"
run s2 -m "$M" -p "$P" --temp 0 -c 40 -n 300 -t 2 --ignore-eos
cmp -s "$TMP/s1.out" "$TMP/s2.out" || fail "shifting: -t 1 and -t 2 differ"
# before the first shift the text is an unshifted run's (20 tokens fit in -c 40)
run s20 -m "$M" -p "$P" --temp 0 -c 40 -n 20 -t 1 --ignore-eos
n=$(($(wc -c <"$TMP/s20.out") - 1))
head -c "$n" "$TMP/s1.out" | cmp -s - <(head -c "$n" "$TMP/s20.out") ||
    fail "shifting: the text before the first shift differs from an unshifted run"
# the kept tokens: BOS by default, N plus BOS, -1 = the whole prompt
n_prompt=$($BN_EMULATOR "$BIN" tokenize -m "$M" -p "$P" 2>/dev/null | wc -w)
has s1 "the first 1 kept" "default --keep"
run k3 -m "$M" -p "$P" --temp 0 -c 40 -n 80 --keep 3
has k3 "the first 4 kept" "--keep 3"
run kall -m "$M" -p "$P" --temp 0 -c 40 -n 80 --keep -1
has kall "the first $n_prompt kept" "--keep -1"
run kbig -m "$M" -p "$P" --temp 0 -c 40 -n 80 --keep 1000
has kbig "the first $n_prompt kept" "--keep past the prompt"
# a prompt that keeps all but one cell: nothing to discard, a clean stop
run knone -m "$M" -p "$P" --temp 0 -c $((n_prompt + 1)) --keep -1
has knone "leaves nothing to discard" "--keep -1 with a prompt filling the context"

# ---- chat ------------------------------------------------------------------------------------
if [ -f "$SRC/models/tiny-shakespeare.gguf" ]; then
    B="$SRC/models/tiny-shakespeare.gguf"
    for i in $(seq 200); do echo "turn $i: tell me more"; done >"$TMP/c200.in"
    run c200 -cnv -m "$B" -c 256 -n 24 -s 1 --temp 0
    has c200 "^chat: 200 turns, [0-9]+ tokens in the context, [0-9]+ context shifts" "200 turns"
    grep -qE "empty replies|context full|skipped" "$TMP/c200.err" &&
        fail "200 turns: $(tail -n 1 "$TMP/c200.err")"
    [ "$(grep -c . "$TMP/c200.out")" -ge 200 ] || fail "200 turns: fewer than 200 lines of replies"

    # an over-long message: one line, skipped, not a turn; the chat goes on as without it
    { head -c 3000 "$SRC/tests/data/tiny-shakespeare-val.txt" | tr '\n' ' '; echo; echo hello; } >"$TMP/over.in"
    run over -cnv -m "$B" -n 8 -s 1
    [ "$(grep -c "message skipped" "$TMP/over.err")" -eq 1 ] || fail "over-long message: not one note"
    has over "^bitnet: message skipped: .* [0-9]+ tokens, more than the context \\(256\\)" "over-long message"
    has over "^chat: 1 turns, .* 1 messages skipped" "over-long message: turns"
    echo hello >"$TMP/hello.in"
    run hello -cnv -m "$B" -n 8 -s 1
    [ -s "$TMP/over.out" ] && cmp -s "$TMP/over.out" "$TMP/hello.out" ||
        fail "over-long message: the reply to 'hello' differs from a chat without it"
    # without shifting, as before: the conversation ends at the full context
    cp "$TMP/over.in" "$TMP/noshift.in"
    run noshift -cnv -m "$B" -n 8 -s 1 --no-context-shift
    has noshift "context full" "--no-context-shift"
    # --keep in chat: N plus BOS instead of BOS and the system turn
    head -n 30 "$TMP/c200.in" >"$TMP/ck.in"
    run ck -cnv -m "$B" -c 128 -n 24 -s 1 --temp 0 --keep 0
    has ck "context shifts .* the first 1 kept" "chat --keep 0"
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_longchat: $failures failure(s)" >&2
    exit 1
fi
echo "cli_longchat: all checks passed"
