#!/usr/bin/env bash
# `bitnet tokenize -m VOCAB --no-bos -f FILE` on the BitNet family's
# tokenizers: SentencePiece (tests/data/spm-tiny-vocab.gguf with its
# hand-checked cases; with ../shared bitnet.cpp's 615 cases on
# llama2-spm-vocab.gguf) and the falcon3 / falcon_e pre-tokenizers (the
# committed cases on the LLaMA-3 fixture; with ../shared all 615 on
# llama3vocab-pre-falcon3.gguf, whose tokenizer.ggml.pre names falcon3).
# Vocabularies refused with one line: no scores, an unknown pre-tokenizer.
#
# The cases of a file run in one process: their texts joined by a special
# token (tokenizing starts afresh after one; SentencePiece puts its space
# prefix there as at the start), the expected ids joined by its id.
# test_tok_spm --export-cases writes the vocabularies to refuse and the
# ../shared cases as TSV (escaped text, then id columns).
# usage: bash cli_tokenize.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

DATA="$SRC/tests/data"

# field LINE N: the N-th tab-separated field (0 = the text)
field() {
    local rest=$1 i
    for ((i = 0; i < $2; i++)); do
        case $rest in *$'\t'*) rest=${rest#*$'\t'} ;; *) rest= ;; esac
    done
    printf '%s' "${rest%%$'\t'*}"
}

# run_cases NAME VOCAB TSV COLUMN SEP_TEXT SEP_ID [bitnet args...]
run_cases() {
    local name=$1 vocab=$2 tsv=$3 col=$4 sep=$5 sep_id=$6 line ids n=0
    shift 6
    local in="$TMP/$name.txt" want="$TMP/$name.want" got="$TMP/$name.got"
    : >"$in"
    : >"$want"
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in '#'*) continue ;; esac
        if [ "$n" -gt 0 ]; then
            printf '%s' "$sep" >>"$in"
            printf ' %s' "$sep_id" >>"$want"
        fi
        printf '%b' "$(field "$line" 0)" >>"$in"
        ids=$(field "$line" "$col")
        [ -z "$ids" ] || printf ' %s' "$ids" >>"$want"
        n=$((n + 1))
    done <"$tsv"
    $BN_EMULATOR "$BIN" tokenize -m "$vocab" --no-bos -f "$in" "$@" >"$got" 2>"$TMP/$name.err"
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$name: exit status $rc: $(tail -n 1 "$TMP/$name.err")"
        return
    fi
    local w g
    w=$(sed 's/^ //' "$want")
    g=$(cat "$got")
    if [ "$w" != "$g" ]; then
        # the first differing position, and the case it falls in
        local -a wa ga
        read -r -a wa <<<"$w"
        read -r -a ga <<<"$g"
        local i=0 case_no=0
        while [ "$i" -lt "${#wa[@]}" ] && [ "${wa[$i]}" = "${ga[$i]:-}" ]; do
            [ "${wa[$i]}" = "$sep_id" ] && case_no=$((case_no + 1))
            i=$((i + 1))
        done
        fail "$name: ids differ from position $i (case $case_no of $n): want ${wa[*]:$i:8} ..., got ${ga[*]:$i:8} ..."
        return
    fi
    echo "$name: $n/$n cases"
}

# ---- committed fixtures -------------------------------------------------------------------
SPM="$DATA/spm-tiny-vocab.gguf"
run_cases spm-tiny "$SPM" "$DATA/spm-tiny-cases.tsv" 1 "</s>" 2
run_cases spm-tiny-nospecial "$SPM" "$DATA/spm-tiny-cases.tsv" 2 "</line>" 278 --no-special
L3="$DATA/llama3-vocab.gguf"
F3="$DATA/falcon3-tokenize-cases.tsv"
run_cases falcon3 "$L3" "$F3" 1 "<|eot_id|>" 128009 --pre-tokenizer falcon3
run_cases falcon_e "$L3" "$F3" 1 "<|eot_id|>" 128009 --pre-tokenizer falcon_e
run_cases falcon3-vs-llama3 "$L3" "$F3" 2 "<|eot_id|>" 128009 --pre-tokenizer llama3

# BOS: SentencePiece adds it by default
$BN_EMULATOR "$BIN" tokenize -m "$SPM" -p "a<s>b" >"$TMP/bos.out" 2>/dev/null
[ "$(cat "$TMP/bos.out")" = "1 270 1 271" ] || fail "spm: BOS + 'a<s>b': $(cat "$TMP/bos.out")"

# ---- vocabularies refused in one line ------------------------------------------------------
$BN_EMULATOR "$BUILD/test_tok_spm" --export-cases "$TMP" || fail "test_tok_spm --export-cases failed"
# refuse NAME FILE EXPECTED-TEXT [args]
refuse() {
    local name=$1 file=$2 text=$3
    shift 3
    $BN_EMULATOR "$BIN" tokenize -m "$file" -p "hi" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
    local rc=$?
    [ "$rc" -eq 1 ] || fail "$name: exit status $rc, expected 1"
    [ "$(wc -l <"$TMP/$name.err")" -eq 1 ] || fail "$name: not one line: $(cat "$TMP/$name.err")"
    grep -qF -- "bitnet: error: $file: " "$TMP/$name.err" || fail "$name: no 'bitnet: error: FILE:'"
    grep -qF -- "$text" "$TMP/$name.err" || fail "$name: '$text' not in: $(cat "$TMP/$name.err")"
}
refuse no-scores "$TMP/spm-no-scores.gguf" "without tokenizer.ggml.scores"
refuse unknown-pre "$TMP/bpe-unknown-pre.gguf" "unknown tokenizer.ggml.pre 'qwen2'"
grep -qF -- "--pre-tokenizer" "$TMP/unknown-pre.err" || fail "unknown-pre: no hint at --pre-tokenizer"
# ... and --pre-tokenizer gets past it
$BN_EMULATOR "$BIN" tokenize -m "$TMP/bpe-unknown-pre.gguf" -p "ab" --pre-tokenizer falcon3 \
    >"$TMP/override.out" 2>"$TMP/override.err" || fail "--pre-tokenizer falcon3 over 'qwen2': $(cat "$TMP/override.err")"
[ "$(cat "$TMP/override.out")" = "0 1" ] || fail "--pre-tokenizer falcon3: $(cat "$TMP/override.out")"

# ---- bitnet.cpp's cases (../shared) ---------------------------------------------------------
SH="$SRC/../shared/tokenizer"
if [ -f "$TMP/shared-spm.tsv" ] && [ -f "$SH/llama2-spm-vocab.gguf" ] && [ -f "$SH/llama3vocab-pre-falcon3.gguf" ]; then
    run_cases shared-spm "$SH/llama2-spm-vocab.gguf" "$TMP/shared-spm.tsv" 1 "</s>" 2
    run_cases shared-falcon3 "$SH/llama3vocab-pre-falcon3.gguf" "$TMP/shared-falcon3.tsv" 1 "<|eot_id|>" 128009
    run_cases shared-falcon_e "$SH/llama3vocab-pre-falcon3.gguf" "$TMP/shared-falcon3.tsv" 2 "<|eot_id|>" 128009 \
        --pre-tokenizer falcon_e
else
    echo "cli_tokenize: ../shared/tokenizer not found: bitnet.cpp's cases skipped"
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_tokenize: $failures failure(s)" >&2
    exit 1
fi
echo "cli_tokenize: all checks passed"
