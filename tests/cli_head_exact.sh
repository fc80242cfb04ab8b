#!/usr/bin/env bash
# The exact head (docs/NUMERICS.md, Exact head): `--head exact` (the default
# for F16 heads over 32 MB) gives the token stream of `--head f16` for greedy
# decoding, seeded top-k sampling with a repetition penalty, and greedy with
# --ignore-eos (banned ids), at 1 and 2 threads; it reports its rescored rows
# on stderr; logits say which head computed them. Models: the bundled one, a
# bitnet-synth model with a 128256-token vocabulary (where exact is the
# default), and the ../shared models when present.
# Under an emulator (BN_EMULATOR) only the bundled model at 2 threads: the
# kernels' bits are the same at any thread count, and test_head_exact checks
# the bound on every table; loading a 128k-vocabulary model takes minutes
# there.
# usage: bash cli_head_exact.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"
THREADS="1 2"
[ -n "$BN_EMULATOR" ] && THREADS=2

run() {     # run NAME ARGS...: stdout to $TMP/NAME.out, stderr to $TMP/NAME.err
    local name=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err" ||
        fail "bitnet $*: exit status $?: $(tail -n 3 "$TMP/$name.err")"
}

# compare MODEL HEAD: every stream with HEAD against --head f16
compare() {
    local model=$1 head=$2 tag
    tag=$(basename "$model" .gguf)
    local modes=("--temp 0" "--temp 0.8 --top-k 40 --seed 7 --repeat-penalty 1.3"
                 "--temp 0 --ignore-eos")
    for t in $THREADS; do
        for i in 0 1 2; do
            # shellcheck disable=SC2086
            run "$tag.f16.$t.$i" -m "$model" -p "Once upon a time" -n 32 -t "$t" --head f16 ${modes[$i]}
            # shellcheck disable=SC2086
            run "$tag.x.$t.$i" -m "$model" -p "Once upon a time" -n 32 -t "$t" $head ${modes[$i]}
            cmp -s "$TMP/$tag.f16.$t.$i.out" "$TMP/$tag.x.$t.$i.out" ||
                fail "$tag, -t $t, ${modes[$i]}: '$head' differs from --head f16"
            grep -qE "exact head = +[0-9.]+ F16 rows rescored per token" "$TMP/$tag.x.$t.$i.err" ||
                fail "$tag: no rescored-rows line with '$head'"
        done
    done
    grep -h "exact head" "$TMP/$tag.x."*.err | sed "s|^|$tag: |"
}

compare "$SRC/models/tiny-shakespeare.gguf" "--head exact"

if [ -n "$BN_EMULATOR" ]; then
    [ "$failures" -eq 0 ] || exit 1
    echo "cli_head_exact: bundled model passed (the rest skipped under the emulator)"
    exit 0
fi

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small-llama --vocab llama3 -o "$TMP/big-vocab.gguf" \
    >/dev/null 2>&1 || fail "bitnet-synth failed"
$BN_EMULATOR "$BIN" info "$TMP/big-vocab.gguf" 2>&1 | grep -q "^lm head: *exact" ||
    fail "a 65 MB F16 head is not exact by default"
compare "$TMP/big-vocab.gguf" ""

for name in mid-2b4t fam-falcon3 fam-llama-untied mini-llama3; do
    f="$SRC/../shared/models/$name.gguf"
    if [ -r "$f" ]; then compare "$f" "--head exact"; else echo "skipped: $f"; fi
done

# logits: full rows from the F16 table, and said so
run l.x logits -m "$TMP/big-vocab.gguf" -p "Once upon a time" -o "$TMP/x.f32"
run l.f logits -m "$TMP/big-vocab.gguf" -p "Once upon a time" -o "$TMP/f.f32" --head f16
cmp -s "$TMP/x.f32" "$TMP/f.f32" || fail "logits: the exact head's rows differ from --head f16"
grep -q "^head: f16 (every row from the F16 table" "$TMP/l.x.err" || fail "logits: head not stated"
grep -qx "head: f16" "$TMP/l.f.err" || fail "logits --head f16: head not stated"
$BN_EMULATOR "$BIN" -m "$TMP/big-vocab.gguf" -p x --head bogus >/dev/null 2>"$TMP/bad.err" &&
    fail "--head bogus accepted"
grep -q "^bitnet: error: .*unknown head type 'bogus'" "$TMP/bad.err" || fail "--head bogus: no error line"

if [ "$failures" -ne 0 ]; then
    echo "cli_head_exact: $failures failure(s)" >&2
    exit 1
fi
echo "cli_head_exact: all checks passed"
