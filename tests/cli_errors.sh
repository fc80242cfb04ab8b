#!/usr/bin/env bash
# CLI errors (issue 5 item 8): every failure is exactly one stderr line
# "bitnet: error: ...", nothing on stdout, and a non-zero exit status; each
# error is listed in `bitnet --help`.
# usage: bash cli_errors.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

# run ARGS...: runs bitnet with stdin from /dev/null; sets rc, out, err
run() {
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/out" 2>"$TMP/err"
    rc=$?
    out=$(cat "$TMP/out")
    err=$(cat "$TMP/err")
}

# expect_error PATTERN ARGS...: one error line matching PATTERN (grep -E)
expect_error() {
    local pattern=$1
    shift
    run "$@"
    local desc="bitnet $*"
    [ "$rc" -ne 0 ] || fail "$desc: exit status 0, expected an error"
    [ -z "$out" ] || fail "$desc: stdout not empty: $(head -c 200 "$TMP/out")"
    [ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "$desc: stderr is not exactly one line: $err"
    grep -qE "^bitnet: error: .*($pattern)" "$TMP/err" || fail "$desc: expected /$pattern/, got: $err"
}

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"
printf 'hello' >"$TMP/not-a-model.gguf"
: >"$TMP/empty.txt"
: >"$TMP/empty.gguf"

# ---- model files ------------------------------------------------------------
expect_error "$TMP/missing.gguf: cannot open" -m "$TMP/missing.gguf" -p hi
expect_error "not-a-model.gguf: .*(magic|GGUF)" -m "$TMP/not-a-model.gguf" -p hi
expect_error "empty.gguf: " -m "$TMP/empty.gguf" -p hi
expect_error "missing.gguf: cannot open" info "$TMP/missing.gguf"
expect_error "missing.gguf: cannot open" tokenize -m "$TMP/missing.gguf" -p hi
if [ "$(id -u)" -ne 0 ]; then       # root reads anything: only meaningful otherwise
    cp "$M" "$TMP/unreadable.gguf" && chmod 000 "$TMP/unreadable.gguf"
    expect_error "unreadable.gguf: cannot open" -m "$TMP/unreadable.gguf" -p hi
fi

# ---- flags --------------------------------------------------------------------
expect_error "unknown argument: --bogus" -m "$M" -p hi --bogus
expect_error "unexpected argument" -m "$M" -p hi stray
expect_error "--temp needs a value" -m "$M" -p hi --temp
expect_error "--temp is not an option of 'bitnet tokenize'" tokenize -m "$M" -p hi --temp 0
expect_error "--all is not an option" -m "$M" -p hi --all
expect_error "unknown kernel 'bogus'" -m "$M" -p hi --kernel bogus
grep -q "^bitnet: error: --kernel: " "$TMP/err" || fail "--kernel bogus: the error does not name --kernel: $err"
# the environment's mistake is named as such, not blamed on the model file
BITNET_KERNEL=foo expect_error "BITNET_KERNEL: unknown kernel 'foo'" -m "$M" -p hi
grep -q "^bitnet: error: BITNET_KERNEL: " "$TMP/err" && ! grep -q "m.gguf" "$TMP/err" ||
    fail "BITNET_KERNEL=foo: the error is not the variable's: $err"
BITNET_KERNEL=foo expect_error "BITNET_KERNEL: unknown kernel 'foo'" bench -m "$M" -p 4 -n 0
expect_error "-r: empty reverse prompt" -m "$M" -p hi -r ""
expect_error "-r: empty reverse prompt after escapes" -m "$M" -p hi -r '\x00'
expect_error "-r is not an option of 'bitnet tokenize'" tokenize -m "$M" -p hi -r x
expect_error "-ngl: bad number 'all'" -m "$M" -p hi -ngl all
expect_error "--ignore-eos is not an option of 'bitnet bench'" bench -m "$M" --ignore-eos
expect_error "-d 1048576 with 1 tokens needs a context of more than 1048576 tokens" bench -m "$M" -d 1048576 -p 1 -n 0
expect_error "-c: 1048577 is out of range" -m "$M" -p hi -c 1048577
expect_error "-d: bad number" bench -m "$M" -d 1,x
expect_error "unknown head type" -m "$M" -p hi --head bf16
expect_error "unknown numerics 'fast' .expected decode or bitnet-cpp." -m "$M" -p hi --batch-numerics fast
expect_error "is not an option of 'bitnet tokenize'" tokenize -m "$M" -p hi --batch-numerics decode
expect_error "unknown pre-tokenizer" tokenize -m "$M" -p hi --pre-tokenizer gpt9
expect_error "unknown output format" bench -m "$M" -o xml

# ---- numbers: the whole value must be a number ---------------------------------
expect_error "-n: bad number 'abc'" -m "$M" -p hi -n abc
expect_error "-n: bad number '12x'" -m "$M" -p hi -n 12x
expect_error "-n: bad number ''" -m "$M" -p hi -n ""
expect_error "-n: bad number ' 5'" -m "$M" -p hi -n " 5"
expect_error "-t: bad number '1.5'" -m "$M" -p hi -t 1.5
expect_error "-c: bad number '0x10'" -m "$M" -p hi -c 0x10
expect_error "--temp: bad number '0.8f'" -m "$M" -p hi --temp 0.8f
expect_error "--top-p: bad number 'nan'" -m "$M" -p hi --top-p nan
expect_error "--min-p: bad number 'inf'" -m "$M" -p hi --min-p inf
expect_error "-s: bad number" -m "$M" -p hi -s 12seed
expect_error "-n: bad number '99999999999999999999'" -m "$M" -p hi -n 99999999999999999999
expect_error "-t: bad list" bench -m "$M" -t 1,,2
expect_error "-p: bad number 'x'" bench -m "$M" -p 1,x

# ---- ranges -----------------------------------------------------------------------
expect_error "-n: -3 is out of range" -m "$M" -p hi -n -3
expect_error "--keep: -2 is out of range" -m "$M" -p hi --keep -2
expect_error "--keep is not an option of 'bitnet bench'" bench -m "$M" --keep 1
expect_error "-t: 0 is out of range" -m "$M" -p hi -t 0
expect_error "-t: 257 is out of range" -m "$M" -p hi -t 257
expect_error "-t: 0 is out of range" bench -m "$M" -t 1,0
expect_error "-c: -1 is out of range" -m "$M" -p hi -c -1
expect_error "--top-p: 1.5 is out of range" -m "$M" -p hi --top-p 1.5
expect_error "--min-p: -0.1 is out of range" -m "$M" -p hi --min-p -0.1
expect_error "--repeat-penalty: must be greater than 0" -m "$M" -p hi --repeat-penalty 0
expect_error "-s: -2 is out of range" -m "$M" -p hi -s -2
expect_error "-r: 0 is out of range" bench -m "$M" -r 0
expect_error "-p: 1048577 is out of range" bench -m "$M" -p 1048577
expect_error "-d 1 with 1048576 tokens needs a context" bench -m "$M" -p 1048576 -d 1 -n 0

# ---- prompts ------------------------------------------------------------------------
expect_error "empty prompt" -m "$M" -p ""
expect_error "empty prompt" -m "$M" -f "$TMP/empty.txt"
expect_error "no prompt" -m "$M"
expect_error "missing.txt: cannot open" -m "$M" -f "$TMP/missing.txt"
expect_error "either -p or -f" -m "$M" -p hi -f "$TMP/empty.txt"
long=$(for i in $(seq 1 100); do printf 'to be or not to be '; done)
expect_error "prompt is [0-9]+ tokens, longer than the context \\(32\\)" -m "$M" -p "$long" -c 32
expect_error "prompt is [0-9]+ tokens, longer than the context" logits -m "$M" -p "$long" -c 32 -o "$TMP/l.bin"
expect_error "empty prompt" tokenize -m "$M" -p ""
expect_error "-sys / --system-prompt needs -cnv" -m "$M" -p hi -sys "be nice"
expect_error "system prompt once" -m "$M" -cnv -p a -sys b

# ---- other modes ----------------------------------------------------------------------
expect_error "-o OUT is required" logits -m "$M" -p hi
expect_error "either --tokens LIST or -p TEXT" logits -m "$M" -o "$TMP/l.bin"
expect_error "--tokens: token id 99999 is out of range" logits -m "$M" --tokens 1,99999 -o "$TMP/l.bin"
expect_error "--tokens: bad list" logits -m "$M" --tokens 1,,2 -o "$TMP/l.bin"
expect_error "cannot open for writing" logits -m "$M" --tokens 1,2 -o "$TMP/no/such/dir/l.bin"
expect_error "-f FILE is required" perplexity -m "$M"
printf 'A short text of far fewer than 512 tokens.\n' >"$TMP/short.txt"
expect_error "needs at least 512" perplexity -m "$M" -f "$TMP/short.txt" -c 256

# ---- --help lists the errors; --version ------------------------------------------------
run --help
[ "$rc" -eq 0 ] || fail "--help: exit status $rc"
for word in "bad number" "out of range" "unknown flag" "empty prompt" "longer than the" "bundled model" \
    "empty -r" "BITNET_KERNEL" "write to stdout"; do
    grep -q "$word" "$TMP/out" || fail "--help does not mention '$word'"
done
run --version
[ "$rc" -eq 0 ] || fail "--version: exit status $rc"
grep -qE "^bitnet [0-9]+\.[0-9]+\.[0-9]+" "$TMP/out" || fail "--version: no version line: $out"
grep -qE "^kernel: (ref|avx2|avx512|neon)" "$TMP/out" || fail "--version: no kernel line: $out"

if [ "$failures" -ne 0 ]; then
    echo "cli_errors: $failures failure(s)" >&2
    exit 1
fi
echo "cli_errors: all checks passed"
