#!/usr/bin/env bash
# Chat (-cnv) follows the model's tokenizer.chat_template: the 2B4T format
# for bitnet-synth's template, Falcon3 for a template naming <|user|> and
# <|assistant|>, and a one-line refusal without a template (while -p still
# generates). The variants are bitnet-synth's model with its template edited
# in place (same length, so every offset stays). With ../shared: the
# Falcon3 family model, and the 1bitLLM model (no template), when this
# build loads their architectures.
# usage: bash cli_chat_formats.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
# the key renamed: no template at all
LC_ALL=C sed 's/tokenizer\.chat_template/tokenizer.chat_templatX/' "$TMP/m.gguf" >"$TMP/none.gguf"
# <|user|> and <|assistant|> in the template: Falcon3
LC_ALL=C sed 's/{% if loop.first %}{{ bos_token }}{% endif %}/<|user|><|assistant|>                        /' \
    "$TMP/m.gguf" >"$TMP/falcon3.gguf"
for f in none falcon3; do
    [ "$(wc -c <"$TMP/$f.gguf")" -eq "$(wc -c <"$TMP/m.gguf")" ] && ! cmp -s "$TMP/$f.gguf" "$TMP/m.gguf" ||
        fail "could not edit the template for '$f'"
done
two=$'Hello there\nGoodbye\n'

# chat NAME MODEL: pipes two turns into bitnet -cnv; rc in $rc
chat() {
    printf '%s' "$two" | $BN_EMULATOR "$BIN" -cnv -m "$2" --temp 0 -n 8 -t 1 >"$TMP/$1.out" 2>"$TMP/$1.err"
    rc=$?
}

chat c2b4t "$TMP/m.gguf"
[ "$rc" -eq 0 ] || fail "2b4t: exit status $rc: $(tail -n 2 "$TMP/c2b4t.err")"
grep -q "^chat: 2B4T format" "$TMP/c2b4t.err" || fail "2b4t: format not reported: $(cat "$TMP/c2b4t.err")"
grep -q "^chat: 2 turns" "$TMP/c2b4t.err" || fail "2b4t: not 2 turns"

chat cf3 "$TMP/falcon3.gguf"
[ "$rc" -eq 0 ] || fail "falcon3: exit status $rc: $(tail -n 2 "$TMP/cf3.err")"
grep -q "^chat: Falcon3 format" "$TMP/cf3.err" || fail "falcon3: format not reported: $(cat "$TMP/cf3.err")"
grep -q "^chat: 2 turns" "$TMP/cf3.err" || fail "falcon3: not 2 turns"

# no template: one line, exit 1, nothing on stdout; -p still works
chat none "$TMP/none.gguf"
[ "$rc" -eq 1 ] || fail "no template: exit status $rc, expected 1"
[ "$(wc -l <"$TMP/none.err")" -eq 1 ] || fail "no template: not one line: $(cat "$TMP/none.err")"
grep -qF "bitnet: error: $TMP/none.gguf: the model has no chat template (tokenizer.chat_template)" \
    "$TMP/none.err" || fail "no template: message: $(cat "$TMP/none.err")"
[ -s "$TMP/none.out" ] && fail "no template: output on stdout"
$BN_EMULATOR "$BIN" -m "$TMP/none.gguf" -p "Hello" --temp 0 -n 4 -t 1 >"$TMP/p.out" 2>"$TMP/p.err" ||
    fail "no template: -p failed: $(tail -n 1 "$TMP/p.err")"

# ---- the family's models (../shared), when this build loads them ------------------------------
# try NAME MODEL EXPECTED-STDERR-LINE
try_model() {
    local name=$1 model=$2 want=$3
    if [ ! -f "$model" ]; then
        echo "cli_chat_formats: $model not found: skipped"
        return
    fi
    chat "$name" "$model"
    if grep -q "unsupported architecture" "$TMP/$name.err"; then
        echo "cli_chat_formats: $(basename "$model"): architecture not loaded by this build: skipped"
        return
    fi
    grep -qF "$want" "$TMP/$name.err" || fail "$name: '$want' not in: $(tail -n 3 "$TMP/$name.err")"
}
try_model fam-falcon3 "$SRC/../shared/models/fam-falcon3.gguf" "chat: Falcon3 format"
try_model fam-spm "$SRC/../shared/models/fam-bitnet-spm.gguf" "the model has no chat template"

if [ "$failures" -ne 0 ]; then
    echo "cli_chat_formats: $failures failure(s)" >&2
    exit 1
fi
echo "cli_chat_formats: all checks passed"
