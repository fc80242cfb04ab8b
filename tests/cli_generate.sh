#!/usr/bin/env bash
# One-shot generation: prompt echoed then the continuation on stdout, seed and
# timings on stderr; greedy and seeded sampling deterministic and identical
# for -t 1 and -t 2; -n caps; a full context stops cleanly with exit 0 under
# --no-context-shift or -n -2 (shifting: cli_longchat.sh); the
# bundled model is the default and reproduces bitnet.cpp's greedy text (prompts
# 3-5 in both --batch-numerics, prompts 1-2 with bitnet-cpp for 10 tokens).
# usage: bash cli_generate.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

# gen NAME ARGS...: stdout to $TMP/NAME.out, stderr to $TMP/NAME.err; rc in $rc
gen() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "bitnet $*: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

same() {    # same A B WHAT
    cmp -s "$TMP/$1.out" "$TMP/$2.out" || fail "$3: outputs differ ($1 vs $2)"
}

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"

# ---- greedy: deterministic, thread-count independent, prompt echoed ----------
gen g1 -m "$M" -p "Once upon a time" --temp 0 -n 24 -t 1
gen g1b -m "$M" -p "Once upon a time" --temp 0 -n 24 -t 1
gen g2 -m "$M" -p "Once upon a time" --temp 0 -n 24 -t 2
same g1 g1b "greedy twice"
same g1 g2 "greedy -t 1 vs -t 2"
head -c 16 "$TMP/g1.out" | grep -qx "Once upon a time" || fail "stdout does not start with the prompt"
[ "$(wc -c <"$TMP/g1.out")" -gt 17 ] || fail "greedy: nothing generated"
grep -q "Once upon a time" "$TMP/g1.err" && fail "the prompt leaked to stderr"

# ---- timings and seed on stderr, llama.cpp's habit ------------------------------
grep -qE "^seed: [0-9]+$" "$TMP/g1.err" || fail "no 'seed: N' line on stderr"
grep -qE "load time = +[0-9.]+ ms" "$TMP/g1.err" || fail "no load time on stderr"
grep -qE "prompt eval time = +[0-9.]+ ms / +[0-9]+ tokens .*tokens per second" "$TMP/g1.err" ||
    fail "no prompt eval timing on stderr"
grep -qE "generation time = +[0-9.]+ ms / +24 tokens .*tokens per second" "$TMP/g1.err" ||
    fail "no generation timing for 24 tokens on stderr: $(cat "$TMP/g1.err")"

# ---- sampling: same seed => same text on any thread count; seed replays ----------
gen s1 -m "$M" -p "The" -n 32 -s 1234 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 -t 1
gen s2 -m "$M" -p "The" -n 32 -s 1234 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 -t 2
same s1 s2 "seeded sampling -t 1 vs -t 2"
grep -qx "seed: 1234" "$TMP/s1.err" || fail "explicit seed not reported"
gen s3 -m "$M" -p "The" -n 32 -s 1235 --temp 1.5 --top-k 0 --top-p 1 --min-p 0 -t 1
cmp -s "$TMP/s1.out" "$TMP/s3.out" && fail "seeds 1234 and 1235 gave the same sampled text"
gen r1 -m "$M" -p "The" -n 32 --temp 1.5 --top-k 0 --top-p 1 --min-p 0
seed=$(sed -n 's/^seed: //p' "$TMP/r1.err")
gen r2 -m "$M" -p "The" -n 32 -s "$seed" --temp 1.5 --top-k 0 --top-p 1 --min-p 0
same r1 r2 "random seed replayed with -s $seed"
gen d1 -m "$M" -p "The" -n 16 -s 7 --repeat-penalty 1.3 --presence-penalty 0.5 --frequency-penalty 0.2 -t 1
gen d2 -m "$M" -p "The" -n 16 -s 7 --repeat-penalty 1.3 --presence-penalty 0.5 --frequency-penalty 0.2 -t 2
same d1 d2 "penalties -t 1 vs -t 2"

# ---- -n 0, -f, context full ---------------------------------------------------------
gen n0 -m "$M" -p "Hello" -n 0 --temp 0
[ "$(cat "$TMP/n0.out")" = "Hello" ] || fail "-n 0: expected just the prompt, got '$(cat "$TMP/n0.out")'"
printf 'Once upon a time' >"$TMP/prompt.txt"
gen f1 -m "$M" -f "$TMP/prompt.txt" --temp 0 -n 24 -t 1
same g1 f1 "-f FILE vs -p TEXT"
gen full -m "$M" -p "Once upon a time" --temp 0 -c 40 -t 1 --no-context-shift
grep -q "context full" "$TMP/full.err" || fail "-c 40 --no-context-shift: no 'context full' message"
gen full2 -m "$M" -p "Once upon a time" --temp 0 -c 40 -t 1 -n -2
same full full2 "-n -2 vs --no-context-shift"
# what was generated until the context filled is a prefix of a longer run
gen long -m "$M" -p "Once upon a time" --temp 0 -n 120 -t 1
head -c -1 "$TMP/full.out" >"$TMP/full.txt"
n=$(wc -c <"$TMP/full.txt")
[ "$n" -gt 16 ] && [ "$n" -lt "$(wc -c <"$TMP/long.out")" ] &&
    head -c "$n" "$TMP/long.out" | cmp -s - "$TMP/full.txt" ||
    fail "context full: the text is not a proper prefix of the -n 120 run"

# ---- the bundled model: default without -m; bitnet.cpp's greedy outputs ------------------
if [ -f "$SRC/models/tiny-shakespeare.gguf" ]; then
    gen b0 -p "ROMEO:" -n 8 --temp 0
    grep -q "tiny-shakespeare.gguf" "$TMP/b0.err" || fail "no -m: the bundled model was not loaded"
    prompts=($'ROMEO:\n' $'First Citizen:\nWe are' $'KING RICHARD III:\nNow is the'
             $'JULIET:\nO Romeo, Romeo,' 'To be, or not to be')
    # prompts 3-5 reproduce bitnet.cpp's 100 tokens with either numerics
    for nm in decode bitnet-cpp; do
        for i in 3 4 5; do
            gen "ts$i-$nm" -m "$SRC/models/tiny-shakespeare.gguf" -p "${prompts[$i - 1]}" -n 100 \
                --temp 0 -t 2 -c 256 --batch-numerics "$nm"
            cmp -s "$TMP/ts$i-$nm.out" "$SRC/tests/data/tiny-shakespeare-greedy$i.txt" ||
                fail "tiny-shakespeare prompt $i ($nm): greedy text differs from bitnet.cpp's"
        done
    done
    # prompts 1-2 meet near-ties (prompt 1: 0.011 at the first token) that only
    # bitnet.cpp's own prompt-batch roundings resolve its way: its first 10
    # tokens are a prefix of its text
    for i in 1 2; do
        gen "ts$i" -m "$SRC/models/tiny-shakespeare.gguf" -p "${prompts[$i - 1]}" -n 10 --temp 0 \
            -c 256 --batch-numerics bitnet-cpp
        head -c -1 "$TMP/ts$i.out" >"$TMP/ts$i.txt"     # without the final newline
        n=$(wc -c <"$TMP/ts$i.txt")
        [ "$n" -gt "$(printf '%s' "${prompts[$i - 1]}" | wc -c)" ] &&
            head -c "$n" "$SRC/tests/data/tiny-shakespeare-greedy$i.txt" | cmp -s - "$TMP/ts$i.txt" ||
            fail "tiny-shakespeare prompt $i (bitnet-cpp): '$(cat "$TMP/ts$i.out")' is not a prefix of bitnet.cpp's text"
    done
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_generate: $failures failure(s)" >&2
    exit 1
fi
echo "cli_generate: all checks passed"
