#!/usr/bin/env bash
# The BitNet family from the command line: bitnet-synth's small models of
# each architecture (bitnet with a Q8_0 head and ffn_down K = 1056; llama
# with head_dim 256; untied llama with head_dim 100 and n_ff 800; tables in
# F32, Q8_0, Q6_K) load, `bitnet info` describes them, `bitnet logits` gives
# the same bytes as a batch and token by token, at 1 and 2 threads, with the
# reference kernel and the default one, and greedy generation runs. Then
# the family's reference models in ../shared, when present and when this
# build reads their tokenizer. Also bitnet-synth's preset list and errors.
# usage: bash cli_family.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"
SYNTH="$BUILD/bitnet-synth"

# run NAME ARGS...: stdout/stderr to $TMP/NAME.{out,err}; rc in $rc
run() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "bitnet $*: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

# check_model TAG FILE ARCH HEAD_LINE: info, logits in every mode, generation
check_model() {
    local tag=$1 m=$2 arch=$3 head=$4
    run "$tag.info" info "$m"
    grep -qx "architecture:  $arch" "$TMP/$tag.info.out" || fail "$tag: info lacks 'architecture:  $arch'"
    grep -qF "lm head:       $head" "$TMP/$tag.info.out" ||
        fail "$tag: info lacks 'lm head:       $head': $(grep 'lm head' "$TMP/$tag.info.out")"
    grep -q "^memory plan:" "$TMP/$tag.info.out" || fail "$tag: info lacks the memory plan"
    local toks=1,17,42,99,100,7,250,3,64,128,5,200
    run "$tag.b1" logits -m "$m" --tokens $toks -o "$TMP/$tag.b1.f32" --all --batch -t 1
    run "$tag.b2" logits -m "$m" --tokens $toks -o "$TMP/$tag.b2.f32" --all --batch -t 2
    run "$tag.s1" logits -m "$m" --tokens $toks -o "$TMP/$tag.s1.f32" --all --seq -t 1
    run "$tag.r2" logits -m "$m" --tokens $toks -o "$TMP/$tag.r2.f32" --all --batch -t 2 --kernel ref
    [ -s "$TMP/$tag.b1.f32" ] || fail "$tag: no logits written"
    for other in b2 s1 r2; do
        cmp -s "$TMP/$tag.b1.f32" "$TMP/$tag.$other.f32" || fail "$tag: logits $other differ from batch -t 1"
    done
    run "$tag.gen" -m "$m" -p "Hello" -n 6 --temp 0 -no-cnv
    [ -s "$TMP/$tag.gen.out" ] || fail "$tag: generation printed nothing"
}

# ---- bitnet-synth's presets ---------------------------------------------------------------
$BN_EMULATOR "$SYNTH" --help >"$TMP/help.out" 2>&1 || fail "bitnet-synth --help failed"
for p in large 3b llama3-8b falcon3-1b falcon3-3b falcon3-7b falcon3-10b falcon-e-1b falcon-e-3b \
         small-bitnet small-llama small-llama-untied; do
    grep -q -- "$p" "$TMP/help.out" || fail "bitnet-synth --help does not list preset $p"
done
$BN_EMULATOR "$SYNTH" --preset nope -o "$TMP/x.gguf" 2>"$TMP/bad.err"
[ $? -eq 2 ] || fail "bitnet-synth: an unknown preset must exit 2"
grep -q "falcon3-10b" "$TMP/bad.err" || fail "bitnet-synth: the unknown-preset error does not list the presets"
$BN_EMULATOR "$SYNTH" --preset small-llama --head-type Q4_0 -o "$TMP/x.gguf" 2>"$TMP/bad2.err"
[ $? -eq 2 ] || fail "bitnet-synth: an unknown --head-type must exit 2"
[ "$(wc -l <"$TMP/bad2.err")" -eq 1 ] || fail "bitnet-synth: the --head-type error is not one line"

# ---- the small models of each architecture ----------------------------------------------
synth() {  # FILE ARGS...
    local f=$1
    shift
    $BN_EMULATOR "$SYNTH" -o "$f" "$@" >/dev/null 2>"$TMP/synth.err" ||
        fail "bitnet-synth $*: $(cat "$TMP/synth.err")"
}
synth "$TMP/bitnet.gguf" --preset small-bitnet
check_model bitnet "$TMP/bitnet.gguf" bitnet "q8_0 (token_embd.weight, mapped)"
synth "$TMP/llama.gguf" --preset small-llama
check_model llama "$TMP/llama.gguf" llama "f16 (token_embd.weight, mapped)"
synth "$TMP/untied.gguf" --preset small-llama-untied
check_model untied "$TMP/untied.gguf" llama "f16 (output.weight, mapped)"
synth "$TMP/q6.gguf" --preset small-llama-untied --head-type Q6_K --embd-type F32
check_model q6 "$TMP/q6.gguf" llama "q6_k (output.weight, mapped)"
synth "$TMP/f32.gguf" --preset small-llama --head-type F32
check_model f32 "$TMP/f32.gguf" llama "f32 (token_embd.weight, mapped)"
# the q8 head made from an untied F16 output: other logits, the same in both modes
run untied.q8b logits -m "$TMP/untied.gguf" --tokens 1,2,3,4 -o "$TMP/q8b.f32" --all --batch --head q8
run untied.q8s logits -m "$TMP/untied.gguf" --tokens 1,2,3,4 -o "$TMP/q8s.f32" --all --seq --head q8
run untied.f16 logits -m "$TMP/untied.gguf" --tokens 1,2,3,4 -o "$TMP/f16.f32" --all --head f16
cmp -s "$TMP/q8b.f32" "$TMP/q8s.f32" || fail "untied --head q8: batch and seq differ"
cmp -s "$TMP/q8b.f32" "$TMP/f16.f32" && fail "untied --head q8: the same logits as the f16 head"

# ---- the family's reference models (../shared) ---------------------------------------------
for f in fam-bitnet-spm fam-llama-untied fam-falcon3; do
    m="$SRC/../shared/models/$f.gguf"
    if [ ! -f "$m" ]; then
        echo "skipped: $m not present"
        continue
    fi
    $BN_EMULATOR "$BIN" info "$m" >"$TMP/$f.out" 2>"$TMP/$f.err"
    if grep -q "tokenizer" "$TMP/$f.err"; then
        echo "skipped: $f: $(cat "$TMP/$f.err") (tokenizer support lands separately)"
        continue
    fi
    case $f in
    fam-bitnet-spm) check_model "$f" "$m" bitnet "q8_0 (token_embd.weight, mapped)" ;;
    fam-llama-untied) check_model "$f" "$m" llama "f16 (output.weight, mapped)" ;;
    fam-falcon3) check_model "$f" "$m" llama "f16 (token_embd.weight, mapped)" ;;
    esac
done

if [ "$failures" -ne 0 ]; then
    echo "cli_family: $failures failure(s)" >&2
    exit 1
fi
echo "cli_family: all checks passed"
