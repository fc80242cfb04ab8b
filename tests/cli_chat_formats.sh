#!/usr/bin/env bash
# Chat (-cnv) follows the model's tokenizer.chat_template: the 2B4T format
# for bitnet-synth's template, Falcon3 for a template naming <|user|> and
# <|assistant|>, and a one-line refusal without a template (while -p still
# generates). The variants are bitnet-synth's model with its template edited
# in place (same length, so every offset stays). With ../shared: the
# Falcon3 family model, and the 1bitLLM model (no template), when this
# build loads their architectures. --chat-template NAME / --chat-template-file
# force a format: the replies equal those of a model whose template has that
# format's markers; unknown names, unknown template texts, -p without -cnv
# and the server get one-line errors.
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

# ---- --chat-template / --chat-template-file: a format the user names ------------------------------
# <|start_header_id|> and <|end_header_id|> in the template: LLaMA-3 (before BITNET in the order)
LC_ALL=C sed 's/{% if loop.first %}{{ bos_token }}{% endif %}/<|start_header_id|><|end_header_id|>         /' \
    "$TMP/m.gguf" >"$TMP/llama3.gguf"
[ "$(wc -c <"$TMP/llama3.gguf")" -eq "$(wc -c <"$TMP/m.gguf")" ] && ! cmp -s "$TMP/llama3.gguf" "$TMP/m.gguf" ||
    fail "could not edit the template for 'llama3'"
# chat_with NAME MODEL FLAGS...: like chat, with extra flags
chat_with() {
    local name=$1 model=$2
    shift 2
    printf '%s' "$two" | $BN_EMULATOR "$BIN" -cnv -m "$model" --temp 0 -n 8 -t 1 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
}
chat cl3 "$TMP/llama3.gguf"
grep -q "^chat: LLaMA-3 format" "$TMP/cl3.err" || fail "llama3 template: format not reported: $(cat "$TMP/cl3.err")"
# the name forces the format: the same replies as the file whose template has its markers
chat_with named "$TMP/m.gguf" --chat-template llama3
[ "$rc" -eq 0 ] || fail "--chat-template llama3: exit status $rc: $(tail -n 2 "$TMP/named.err")"
grep -q "^chat: LLaMA-3 format" "$TMP/named.err" || fail "--chat-template llama3: format: $(cat "$TMP/named.err")"
[ -s "$TMP/named.out" ] && cmp -s "$TMP/named.out" "$TMP/cl3.out" ||
    fail "--chat-template llama3: replies differ from the llama3-template model's"
cmp -s "$TMP/named.out" "$TMP/c2b4t.out" && fail "--chat-template llama3: replies equal the 2B4T format's"
# a model without a template chats with a named format
chat_with none_named "$TMP/none.gguf" --chat-template bitnet
[ "$rc" -eq 0 ] && grep -q "^chat: 2B4T format" "$TMP/none_named.err" ||
    fail "no template + --chat-template bitnet: $(tail -n 2 "$TMP/none_named.err")"
cmp -s "$TMP/none_named.out" "$TMP/c2b4t.out" || fail "--chat-template bitnet: replies differ from the 2B4T model's"
# a template's text, from a file, is recognised by its markers
printf '{%% for m in messages %%}<|user|>\n{{ m.content }}<|assistant|>\n{%% endfor %%}\n' >"$TMP/f3.jinja"
chat_with from_file "$TMP/m.gguf" --chat-template-file "$TMP/f3.jinja"
[ "$rc" -eq 0 ] && grep -q "^chat: Falcon3 format" "$TMP/from_file.err" ||
    fail "--chat-template-file: $(tail -n 2 "$TMP/from_file.err")"
cmp -s "$TMP/from_file.out" "$TMP/cf3.out" || fail "--chat-template-file: replies differ from the Falcon3 model's"
# errors: one line each, exit 1
# expect_error NAME WANT CMD...: runs CMD (stdin: the two turns), wants exit 1 and one line with WANT
expect_error() {
    local name=$1 want=$2
    shift 2
    printf '%s' "$two" | "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1: $(tail -n 2 "$TMP/$name.err")"
    [ "$(wc -l <"$TMP/$name.err")" -eq 1 ] || fail "$name: not one line: $(cat "$TMP/$name.err")"
    grep -qF "$want" "$TMP/$name.err" || fail "$name: '$want' not in: $(cat "$TMP/$name.err")"
}
expect_error bad_name "bitnet: error: --chat-template: chat template 'vicuna' is none of the known formats" \
    $BN_EMULATOR "$BIN" -cnv -m "$TMP/m.gguf" -n 4 -t 1 --chat-template vicuna
printf '{{ "[INST]" }}\n' >"$TMP/inst.jinja"
expect_error bad_text "bitnet: error: $TMP/inst.jinja: chat template is none of the known formats" \
    $BN_EMULATOR "$BIN" -cnv -m "$TMP/m.gguf" -n 4 -t 1 --chat-template-file "$TMP/inst.jinja"
expect_error no_file "bitnet: error: $TMP/absent.jinja: cannot open" \
    $BN_EMULATOR "$BIN" -cnv -m "$TMP/m.gguf" -n 4 -t 1 --chat-template-file "$TMP/absent.jinja"
expect_error both "give --chat-template or --chat-template-file, not both" \
    $BN_EMULATOR "$BIN" -cnv -m "$TMP/m.gguf" -n 4 -t 1 --chat-template llama3 --chat-template-file "$TMP/f3.jinja"
expect_error no_cnv "bitnet: error: --chat-template needs -cnv (chat mode)" \
    $BN_EMULATOR "$BIN" -m "$TMP/m.gguf" -p hi -n 4 -t 1 --chat-template llama3
# ChatML on a vocabulary without <|im_end|>: its end-of-turn token closes turns
chat_with chatml "$TMP/m.gguf" --chat-template chatml
[ "$rc" -eq 0 ] && grep -q "^chat: ChatML format" "$TMP/chatml.err" ||
    fail "--chat-template chatml: $(tail -n 2 "$TMP/chatml.err")"
# the server refuses to start with an unknown format (after its load lines)
timeout 60 $BN_EMULATOR "$BIN" serve -m "$TMP/m.gguf" --port 0 -t 1 --chat-template vicuna \
    </dev/null >"$TMP/serve_bad.out" 2>"$TMP/serve_bad.err"
rc=$?
[ "$rc" -eq 1 ] || fail "serve --chat-template vicuna: exit status $rc, expected 1"
tail -n 1 "$TMP/serve_bad.err" | grep -qF "bitnet: error: --chat-template: chat template 'vicuna' is none" ||
    fail "serve --chat-template vicuna: $(cat "$TMP/serve_bad.err")"
grep -q "listening" "$TMP/serve_bad.err" && fail "serve --chat-template vicuna: it listened"

# the server's chats take the named format: /props says which, a chat answers
if command -v curl >/dev/null; then
    . "$SRC/tests/serve/lib_serve.sh"
    serve_start s_named -m "$TMP/none.gguf" -t 1 --chat-template llama3
    curl -s "http://127.0.0.1:$SERVE_PORT/props" >"$TMP/props.json"
    grep -q '"chat_format":"LLaMA-3"' "$TMP/props.json" || fail "serve --chat-template llama3: /props: $(cat "$TMP/props.json")"
    code=$(curl -s -o "$TMP/sc.json" -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/v1/chat/completions" \
        -d '{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":4,"temperature":0}')
    [ "$code" = 200 ] && grep -q '"role":"assistant"' "$TMP/sc.json" ||
        fail "serve --chat-template llama3: chat: $code $(cat "$TMP/sc.json")"
    kill "$SERVE_PID"
else
    echo "cli_chat_formats: curl not found: the server check skipped"
fi

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
