#!/usr/bin/env bash
# llama-cli's habits: escapes in -p, -sys and -r (--no-escape turns them off,
# files are taken as is), -ngl accepted and ignored with a note, -no-cnv,
# reverse prompts (-r) in one-shot and chat, --ignore-eos, stdout failures
# (/dev/full: one error line and a non-zero status; a reader that closes the
# pipe: quiet, status 0 or 141), bench -d (depth), and llama-cli's other
# flags (ignored with a note, or an error naming what is not supported;
# --no-display-prompt, --verbose-prompt, --no-perf, --log-disable, -ub).
# usage: bash cli_habits.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

# run NAME ARGS...: stdout/stderr to $TMP/NAME.{out,err}, stdin empty; rc in $rc
run() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "bitnet $*: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

# chat NAME INPUT ARGS...: INPUT piped into bitnet -cnv ARGS
chat() {
    local name=$1 input=$2
    shift 2
    printf '%s' "$input" | $BN_EMULATOR "$BIN" -cnv "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "chat $name: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

same() {    # same A B WHAT
    cmp -s "$TMP/$1.out" "$TMP/$2.out" || fail "$3: outputs differ ($1 vs $2)"
}

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"
TINY="$SRC/models/tiny-shakespeare.gguf"
three=$'Hello there\nWhat is your name?\nGoodbye\n'

# ---- escapes -------------------------------------------------------------------------------
# -n 0: the prompt is echoed as it was evaluated
run e1 -m "$M" -p 'a\nb\tc\\d\x41\x4g \q \"e\' -n 0
printf 'a\nb\tc\\dA\\x4g \\q "e\\\n' >"$TMP/e1.want"
cmp -s "$TMP/e1.out" "$TMP/e1.want" || fail "escapes in -p: got $(od -c "$TMP/e1.out" | head -n 3)"
run e2 -m "$M" -p 'a\nb\x41' -n 0 --no-escape
[ "$(cat "$TMP/e2.out")" = 'a\nb\x41' ] || fail "--no-escape: -p changed: $(cat "$TMP/e2.out")"
run e3 -m "$M" -p 'a\nb\x41' -n 0 --no-escape -e
[ "$(cat "$TMP/e3.out")" = $'a\nbA' ] || fail "-e after --no-escape: escapes not processed"
# the same tokens as the text with the real bytes; a file is taken as is
printf 'one\ntwo\tthree' >"$TMP/real.txt"
printf 'one\\ntwo' >"$TMP/literal.txt"
run t1 tokenize -m "$M" -p 'one\ntwo\tthree'
run t2 tokenize -m "$M" -f "$TMP/real.txt"
same t1 t2 "tokenize -p with escapes vs the bytes"
run t3 tokenize -m "$M" -p 'one\ntwo' --no-escape
run t4 tokenize -m "$M" -f "$TMP/literal.txt"
same t3 t4 "tokenize --no-escape vs the literal text"
# chat: -sys and -p (the system prompt) are processed too
chat s1 "$three" -m "$M" --temp 0 -n 8 -sys 'You are\ta pirate.'
chat s2 "$three" -m "$M" --temp 0 -n 8 -sys $'You are\ta pirate.'
chat s3 "$three" -m "$M" --temp 0 -n 8 -p 'You are\ta pirate.'
chat s4 "$three" -m "$M" --temp 0 -n 8 -sys 'You are\ta pirate.' --no-escape
same s1 s2 "chat -sys with escapes vs the bytes"
same s1 s3 "chat -p with escapes vs the bytes"
cmp -s "$TMP/s1.out" "$TMP/s4.out" && fail "chat -sys --no-escape: same replies as with the escape processed"

# ---- -ngl: accepted, ignored, one note ------------------------------------------------------
run g0 -m "$M" -p hi -n 6 --temp 0
for flag in -ngl --n-gpu-layers --gpu-layers; do
    run g1 -m "$M" -p hi -n 6 --temp 0 "$flag" 0
    same g0 g1 "$flag 0 changed the output"
    [ "$(grep -c "^note: $flag 0 ignored" "$TMP/g1.err")" -eq 1 ] ||
        fail "$flag: no one-line note: $(head -n 2 "$TMP/g1.err")"
done
run g2 bench -m "$M" -p 4 -n 0 -r 1 -t 1 -ngl 0,99
grep -q "^note: -ngl 0,99 ignored" "$TMP/g2.err" || fail "bench -ngl 0,99: no note"

# ---- -no-cnv: one-shot, even after -cnv -------------------------------------------------------
run c1 -m "$M" -p hi -n 6 --temp 0 -cnv -no-cnv
same g0 c1 "-cnv -no-cnv is not one-shot"
run c2 -m "$M" -p hi -n 6 --temp 0 --no-conversation
same g0 c2 "--no-conversation"

# ---- -r: one-shot stops once the generated text holds it ---------------------------------------
if [ -f "$TINY" ]; then
    run r0 -m "$TINY" -p "ROMEO:" -n 40 --temp 0
    grep -q "mouth" "$TMP/r0.out" || fail "the bundled model's greedy text changed: $(head -c 80 "$TMP/r0.out")"
    run r1 -m "$TINY" -p "ROMEO:" -n 40 --temp 0 -r mouth
    text=$(cat "$TMP/r1.out")
    [ "${text%mouth}" != "$text" ] || fail "-r mouth: the output does not end with it: $text"
    cmp -s -n "$(($(wc -c <"$TMP/r1.out") - 1))" "$TMP/r0.out" "$TMP/r1.out" ||
        fail "-r mouth: not a prefix of the full greedy text"
    grep -q "reverse prompt" "$TMP/r1.err" || fail "-r: no note on stderr"
    run r2 -m "$TINY" -p "ROMEO:" -n 40 --temp 0 -r zzz -r mouth
    same r1 r2 "-r zzz -r mouth (repeatable)"
    run r3 -m "$TINY" -p "ROMEO:" -n 40 --temp 0 --reverse-prompt 'and\nshe'
    grep -q "^she" "$TMP/r3.out" && [ "$(tail -n 1 "$TMP/r3.out" | head -c 3)" = she ] ||
        fail "-r with an escaped newline did not stop on the next line: $(cat "$TMP/r3.out")"
    [ "$(wc -c <"$TMP/r3.out")" -lt "$(wc -c <"$TMP/r0.out")" ] || fail "-r 'and\\nshe' did not stop early"
else
    echo "skipped: -r on the bundled model (models/tiny-shakespeare.gguf absent)"
fi

# ---- -r in chat: the reply ends there and the turn comes back ---------------------------------
chat k0 "$three" -m "$M" --temp 0 -n 12 -t 1
reply1=$(head -n 1 "$TMP/k0.out")
ch=$(printf '%s' "$reply1" | LC_ALL=C grep -o '[A-Za-z0-9]' | head -n 1)
if [ -n "$ch" ]; then
    chat k1 "$three" -m "$M" --temp 0 -n 12 -t 1 -r "$ch"
    want=$(LC_ALL=C; printf '%s%s' "${reply1%%"$ch"*}" "$ch")
    [ "$(head -n 1 "$TMP/k1.out")" = "$want" ] || fail "chat -r '$ch': reply 1 does not end at it"
    grep -q "^chat: 3 turns" "$TMP/k1.err" || fail "chat -r: the conversation did not go on: $(tail -n 1 "$TMP/k1.err")"
    [ "$(wc -l <"$TMP/k1.out")" -ge 3 ] || fail "chat -r: fewer than 3 replies"
else
    echo "skipped: chat -r (no ASCII letter in the synthetic model's first reply)"
fi

# ---- --ignore-eos: runs past the end-of-generation token ---------------------------------------
run i0 -m "$M" -p "Hi" -n 200 --temp 0
if grep -q "end of text" "$TMP/i0.err"; then
    run i1 -m "$M" -p "Hi" -n 200 --temp 0 --ignore-eos
    grep -q "end of text" "$TMP/i1.err" && fail "--ignore-eos: still stopped at end of text"
    grep -qE "generation time = .* / +200 tokens" "$TMP/i1.err" || fail "--ignore-eos: not 200 tokens"
    n0=$(($(wc -c <"$TMP/i0.out") - 1))
    cmp -s -n "$n0" "$TMP/i0.out" "$TMP/i1.out" || fail "--ignore-eos: the text before the EOG changed"
else
    fail "the synthetic model's greedy text no longer ends with an EOG token (pick another prompt)"
fi

# ---- stdout that fails: one error line, non-zero status ---------------------------------------
if [ -w /dev/full ]; then
    full() {    # full WHAT ARGS...: bitnet ARGS >/dev/full
        local what=$1
        shift
        "$@" >/dev/full 2>"$TMP/full.err"
        local st=$?
        [ "$st" -ne 0 ] || fail "$what >/dev/full: exit status 0"
        [ "$(grep -c "^bitnet: error: stdout: write error" "$TMP/full.err")" -eq 1 ] &&
            [ "$(grep -c "error" "$TMP/full.err")" -eq 1 ] ||
            fail "$what >/dev/full: not one error line: $(cat "$TMP/full.err")"
    }
    full generation $BN_EMULATOR "$BIN" -m "$M" -p hi -n 8 --temp 0
    full tokenize $BN_EMULATOR "$BIN" tokenize -m "$M" -p hi
    full info $BN_EMULATOR "$BIN" info "$M"
    printf '%s' "$three" >"$TMP/three.txt"
    full chat $BN_EMULATOR "$BIN" -cnv -m "$M" --temp 0 -n 8 <"$TMP/three.txt"
else
    echo "skipped: /dev/full checks (no /dev/full)"
fi

# ---- a reader that stops early: quiet, status 0 or 141 (SIGPIPE) ------------------------------
pipe_check() {  # pipe_check WHAT: $TMP/pipe.st holds bitnet's status, $TMP/pipe.err its stderr
    local st
    st=$(cat "$TMP/pipe.st")
    [ "$st" -eq 0 ] || [ "$st" -eq 141 ] || fail "$1 | head: exit status $st"
    grep -qiE "error|sanitizer|fault" "$TMP/pipe.err" && fail "$1 | head: $(tail -n 2 "$TMP/pipe.err")"
    return 0
}
long=$(printf 'Hello there, tell me more %.0s\n' $(seq 1 40))
{ $BN_EMULATOR "$BIN" -m "$M" -p hi -n 200 --temp 0 --ignore-eos 2>"$TMP/pipe.err"; echo $? >"$TMP/pipe.st"; } | head -c 10 >/dev/null
pipe_check generation
{ printf '%s' "$long" | $BN_EMULATOR "$BIN" -cnv -m "$M" --temp 0 -n 20 2>"$TMP/pipe.err"; echo $? >"$TMP/pipe.st"; } | head -c 10 >/dev/null
pipe_check chat
# with SIGPIPE ignored (as some parents leave it) the write fails with EPIPE: still quiet, status 0
( trap '' PIPE
  { $BN_EMULATOR "$BIN" -m "$M" -p hi -n 200 --temp 0 --ignore-eos 2>"$TMP/pipe.err"; echo $? >"$TMP/pipe.st"; } | head -c 10 >/dev/null )
pipe_check "generation (SIGPIPE ignored)"
[ "$(cat "$TMP/pipe.st")" -eq 0 ] || fail "SIGPIPE ignored: exit status $(cat "$TMP/pipe.st"), expected 0"

# ---- bench -d: every threads x depth x size combination is a row -------------------------------
if [ -f "$TINY" ]; then
    run b1 bench -m "$TINY" -p 8,16 -n 4 -d 0,32 -t 1 -r 1
    grep -qx "| model | size | params | kernel | threads | depth | test | t/s |" "$TMP/b1.out" ||
        fail "bench -d: no depth column"
    for row in "1 | 0 | pp8" "1 | 0 | pp16" "1 | 0 | tg4" "1 | 32 | pp8" "1 | 32 | pp16" "1 | 32 | tg4"; do
        grep -qE "\| $row \| [0-9.]+ ± [0-9.]+ \|$" "$TMP/b1.out" || fail "bench -d: no row '$row'"
    done
    [ "$(grep -c "^| tiny" "$TMP/b1.out")" -eq 6 ] || fail "bench -d: not 6 rows"
    grep -qE "^tg4 @ d32, 1 threads: " "$TMP/b1.out" || fail "bench -d: no tg4 @ d32 bytes line"
    run b2 bench -m "$TINY" -p 8 -n 0 -d 32 -t 1 -r 1 -o json
    grep -q '"n_depth": 32' "$TMP/b2.out" || fail "bench -d -o json: no n_depth"
    # -np: tg rows of several sequences decoded together (llama-batched-bench's -npl)
    run b3 bench -m "$TINY" -p 0 -n 4 -np 1,3 -d 0,8 -t 1 -r 1
    for row in "1 | 0 | tg4" "1 | 0 | tg4 x3" "1 | 8 | tg4" "1 | 8 | tg4 x3"; do
        grep -qE "\| $row \| [0-9.]+ ± [0-9.]+ \|$" "$TMP/b3.out" || fail "bench -np: no row '$row'"
    done
    run b4 bench -m "$TINY" -p 0 -n 4 -npl 2 -t 1 -r 1 -o json
    grep -q '"n_seq": 2' "$TMP/b4.out" || fail "bench -npl -o json: no n_seq 2"
fi

# ---- llama-cli's other flags ---------------------------------------------------------------------
# bitnet.cpp's run_inference.py line plus flags that change nothing here: the same text, a note each
run l0 -m "$M" -n 12 -t 2 -p "Once upon" --temp 0
run l1 -m "$M" -n 12 -t 2 -p "Once upon" -ngl 0 -c 256 --temp 0 -b 1 --no-mmap -fa --color \
    --no-warmup -tb 2 --numa distribute -v --mirostat 0 --typical 1.0 -ub 4
same l0 l1 "run_inference.py's flags and ignored llama-cli flags"
for f in "-ngl 0" "--no-mmap" "-fa" "--color" "--no-warmup" "-tb 2" "--numa distribute" "-v"; do
    grep -qF "note: $f ignored: " "$TMP/l1.err" || fail "no note for $f: $(grep note "$TMP/l1.err")"
done
grep -q "mirostat\|typical" "$TMP/l1.err" && fail "their off values got a note: $(grep note "$TMP/l1.err")"
run l2 -m "$M" -n 12 -t 2 -p "Once upon" --temp 0 -fa on --flash-attn=off
same l0 l2 "-fa with a value"
# ones that would change the output: an error naming the reason, not 'unknown argument'
err_case() {    # err_case WHAT FLAGS...: exit 1, one line naming WHAT
    local what=$1
    shift
    $BN_EMULATOR "$BIN" -m "$M" -p hi -n 2 "$@" </dev/null >"$TMP/x.out" 2>"$TMP/x.err"
    local st=$?
    [ "$st" -eq 1 ] || fail "$*: exit status $st, expected 1"
    [ "$(wc -l <"$TMP/x.err")" -eq 1 ] || fail "$*: not one line: $(cat "$TMP/x.err")"
    grep -q "^bitnet: error: .*$what" "$TMP/x.err" || fail "$*: error does not say '$what': $(cat "$TMP/x.err")"
}
err_case "use -cnv" -i
err_case "use -cnv" --interactive-first
err_case "grammar-constrained sampling is not supported" --grammar 'root ::= "a"'
err_case "mirostat sampling is not supported" --mirostat 2
err_case "typical sampling is not supported" --typical 0.5
err_case "speculative decoding" -md other.gguf
err_case "takes no value" --mlock=1
err_case "needs a value" --numa
# the real ones: --no-display-prompt, --verbose-prompt, --no-perf, --log-disable
run d1 -m "$M" -n 12 -t 2 -p "Once upon" --temp 0 --no-display-prompt
[ "Once upon$(cat "$TMP/d1.out")" = "$(cat "$TMP/l0.out")" ] || fail "--no-display-prompt: $(cat "$TMP/d1.out")"
run d2 -m "$M" -n 2 -p "Once upon" --temp 0 --verbose-prompt
n_tok=$(sed -n 's/^prompt tokens: \([0-9]*\)$/\1/p' "$TMP/d2.err")
[ -n "$n_tok" ] && [ "$n_tok" -ge 2 ] || fail "--verbose-prompt: no token count: $(cat "$TMP/d2.err")"
[ "$(grep -cE "^ +[0-9]+ -> '.*'$" "$TMP/d2.err")" = "$n_tok" ] || fail "--verbose-prompt: not $n_tok token lines"
run d3 -m "$M" -n 2 -p "Once upon" --temp 0 --no-perf
grep -q "time =" "$TMP/d3.err" && fail "--no-perf: timings printed"
grep -q "^load: " "$TMP/d3.err" || fail "--no-perf: the load line went too"
run d4 -m "$M" -n 2 -p "Once upon" --temp 0 --log-disable
[ -s "$TMP/d4.err" ] && fail "--log-disable: stderr not empty: $(cat "$TMP/d4.err")"
# --mlock locks what the load made (the same text); refused by the memory-lock limit, a warning
run k1 -m "$M" -n 12 -t 2 -p "Once upon" --temp 0 --mlock
same l0 k1 "--mlock"
grep -q "mlock" "$TMP/k1.err" && [ "$(id -u)" = 0 ] && fail "--mlock as root: $(grep mlock "$TMP/k1.err")"
if [ -n "${ASAN_OPTIONS:-}" ]; then
    :   # the sanitizers turn mlock into a no-op that succeeds: nothing to refuse
elif [ "$(id -u)" != 0 ]; then
    ( ulimit -l 0; $BN_EMULATOR "$BIN" -m "$M" -n 2 -p hi --mlock </dev/null >/dev/null 2>"$TMP/k2.err" )
elif command -v setpriv >/dev/null &&             # root ignores the limit: run as nobody, if it can
     setpriv --reuid 65534 --regid 65534 --clear-groups test -x "$BIN" 2>/dev/null; then
    mkdir -p "$TMP/pub" && chmod 755 "$TMP" "$TMP/pub" && cp "$M" "$TMP/pub/m.gguf" && chmod 644 "$TMP/pub/m.gguf"
    setpriv --reuid 65534 --regid 65534 --clear-groups bash -c \
        'ulimit -l 0; exec $0 "$@"' $BN_EMULATOR "$BIN" -m "$TMP/pub/m.gguf" -n 2 -p hi --mlock \
        </dev/null >/dev/null 2>"$TMP/k2.err"
fi
[ ! -f "$TMP/k2.err" ] || grep -q "^warning: --mlock: mlock of [0-9]* bytes: .*; going on unlocked$" "$TMP/k2.err" ||
    fail "--mlock over the limit: no warning: $(cat "$TMP/k2.err")"
chat d5 "$three" -m "$M" --temp 0 -n 4 --log-disable
[ -s "$TMP/d5.err" ] && fail "chat --log-disable: stderr not empty: $(cat "$TMP/d5.err")"
[ -s "$TMP/d5.out" ] || fail "chat --log-disable: no replies"

if [ "$failures" -ne 0 ]; then
    echo "cli_habits: $failures failure(s)" >&2
    exit 1
fi
echo "cli_habits: all checks passed"
