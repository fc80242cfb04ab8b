#!/usr/bin/env bash
# bitnet-synth end to end: the 2b4t preset reproduces the published file's
# layout (24 keys in order and type, 332 tensors, 1,187,801,280 bytes), small
# presets with overrides, determinism, and one-line usage errors (exit 2).
# Usage: cli_synth.sh BUILD_DIR SOURCE_DIR
set -u
B=$1
S=$2
SYNTH=$B/bitnet-synth
BITNET=$B/bitnet
BN_EMULATOR=${BN_EMULATOR:-}
TMP=$B/cli_synth.tmp
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# Little-endian unsigned integers straight from the file.
u64_at() { od -An -t u8 -j "$2" -N 8 "$1" | tr -d ' '; }
u32_at() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
size_of() { stat -c %s "$1"; }

# Checks magic, version, tensor and key counts of a GGUF.
check_counts() {  # FILE N_TENSORS N_KV WHAT
    local magic
    magic=$(head -c 4 "$1")
    [ "$magic" = "GGUF" ] || { fail "$4: bad magic '$magic'"; return; }
    [ "$(u32_at "$1" 4)" = 3 ] || fail "$4: version $(u32_at "$1" 4)"
    [ "$(u64_at "$1" 8)" = "$2" ] && ok "$4: $2 tensors" || fail "$4: $(u64_at "$1" 8) tensors, expected $2"
    [ "$(u64_at "$1" 16)" = "$3" ] && ok "$4: $3 keys" || fail "$4: $(u64_at "$1" 16) keys, expected $3"
}

# Keys in order with their value types (docs/FORMAT.md, 2B4T keys): each key's first
# occurrence must be a whole record (length prefix = key length) with the
# expected type id, at increasing offsets.
check_keys() {  # FILE HEADER_BYTES "key:type key:type ..."
    local file=$1 hdr=$2 prev=-1 spec key type pos len before=$fails
    for spec in $3; do
        key=${spec%:*}
        type=${spec##*:}
        pos=$(head -c "$hdr" "$file" | grep -aboF -- "$key" | head -1 | cut -d: -f1)
        if [ -z "$pos" ]; then fail "key $key missing"; continue; fi
        len=$(u64_at "$file" $((pos - 8)))
        [ "$len" = "${#key}" ] || { fail "key $key: length prefix $len"; continue; }
        [ "$(u32_at "$file" $((pos + ${#key})))" = "$type" ] ||
            fail "key $key: type $(u32_at "$file" $((pos + ${#key}))), expected $type"
        [ "$pos" -gt "$prev" ] || fail "key $key out of order"
        prev=$pos
    done
    [ "$fails" = "$before" ] && ok "keys in order with their types"
}

[ -x "$SYNTH" ] || { echo "FAIL: $SYNTH not built"; exit 1; }

# ---- the 2B4T preset -------------------------------------------------------
VOCAB_ARGS=()
if [ ! -f "$S/tests/data/llama3-vocab.gguf" ]; then
    # The committed fixture is the default; any GGUF with the LLaMA-3 vocab works.
    if [ -f "$S/../shared/models/mini-llama3.gguf" ]; then
        VOCAB_ARGS=(--vocab-file "$S/../shared/models/mini-llama3.gguf")
    else
        VOCAB_ARGS=(none)
    fi
fi
if [ "${VOCAB_ARGS[0]:-}" = none ]; then
    echo "skip: no LLaMA-3 vocabulary GGUF for the 2b4t preset"
else
    F=$TMP/2b4t.gguf
    start=$(date +%s.%N)
    if $BN_EMULATOR "$SYNTH" --preset 2b4t -o "$F" "${VOCAB_ARGS[@]}"; then
        secs=$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo "?")
        sz=$(size_of "$F")
        [ "$sz" = 1187801280 ] && ok "2b4t: 1187801280 bytes (written in ${secs}s)" ||
            fail "2b4t: size $sz, expected 1187801280"
        check_counts "$F" 332 24 2b4t
        A=bitnet-b1.58
        check_keys "$F" 8351360 "general.architecture:8 general.name:8 $A.vocab_size:4
            $A.context_length:4 $A.embedding_length:4 $A.block_count:4
            $A.feed_forward_length:4 $A.rope.dimension_count:4 $A.attention.head_count:4
            $A.attention.head_count_kv:4 tokenizer.ggml.add_bos_token:7
            $A.attention.layer_norm_rms_epsilon:6 $A.rope.freq_base:6 general.file_type:4
            tokenizer.ggml.model:8 tokenizer.ggml.tokens:9 tokenizer.ggml.scores:9
            tokenizer.ggml.token_type:9 tokenizer.ggml.merges:9 tokenizer.ggml.bos_token_id:4
            tokenizer.ggml.eos_token_id:4 tokenizer.ggml.padding_token_id:4
            tokenizer.chat_template:8 general.quantization_version:4"
        head -c 8351360 "$F" | grep -aqF "tokenizer.ggml.pre" && fail "2b4t has tokenizer.ggml.pre"
        head -c 8351360 "$F" | grep -aqF "bitnet2b" || fail "2b4t: general.name is not bitnet2b"
        # Tensor order: embedding, blocks 0, 1, 10, 11, ..., output_norm last.
        order=$(head -c 8351360 "$F" | grep -aoE "(token_embd|output_norm|blk\.[0-9]+\.[a-z_]+)\.weight" |
                tail -n 332 | awk 'NR==1||NR==2||NR==13||NR==24||NR==332' | tr '\n' ' ')
        [ "$order" = "token_embd.weight blk.0.attn_norm.weight blk.1.attn_norm.weight blk.10.attn_norm.weight output_norm.weight " ] &&
            ok "2b4t: tensor order" || fail "2b4t: tensor order: $order"
        if [ -x "$BITNET" ]; then
            out=$($BN_EMULATOR "$BITNET" info "$F" 2>&1)
            echo "$out" | grep -q "tensors (332)" && ok "bitnet info: 332 tensors" || fail "bitnet info: tensor count"
            echo "$out" | grep -qE "token_embd.weight +F16 +\[2560, 128256\] +656670720" ||
                fail "bitnet info: token_embd row"
            echo "$out" | grep -qE "blk.29.ffn_down.weight +I2_S +\[6912, 2560\] +4423712" ||
                fail "bitnet info: ffn_down row"
            echo "$out" | grep -q "1 F16 (656670720 bytes), 121 F32 (1761280 bytes), 210 I2_S (521017920 bytes)" &&
                ok "bitnet info: totals match docs/FORMAT.md, 2B4T tensors" || fail "bitnet info: totals"
        fi
    else
        fail "2b4t: bitnet-synth failed"
    fi
    rm -f "$F"
fi

# ---- small presets and overrides -----------------------------------------------
$BN_EMULATOR "$SYNTH" --preset small -o "$TMP/a.gguf" --seed 5 || fail "small"
$BN_EMULATOR "$SYNTH" --preset small -o "$TMP/b.gguf" --seed 5 || fail "small again"
$BN_EMULATOR "$SYNTH" --preset small -o "$TMP/c.gguf" --seed 6 || fail "small seed 6"
cmp -s "$TMP/a.gguf" "$TMP/b.gguf" && ok "same seed, same bytes" || fail "not deterministic"
cmp -s "$TMP/a.gguf" "$TMP/c.gguf" && fail "seed has no effect" || ok "other seed, other bytes"
[ "$(size_of "$TMP/a.gguf")" = "$(size_of "$TMP/c.gguf")" ] || fail "seed changed the size"
check_counts "$TMP/a.gguf" 24 25 small
head -c 4096 "$TMP/a.gguf" | grep -aqF "llama-bpe" || fail "small: no tokenizer.ggml.pre"

$BN_EMULATOR "$SYNTH" --preset small -o "$TMP/o.gguf" --layers 3 --embd 384 --heads 6 --kv-heads 3 \
    --ff 1024 --ctx 512 --rope-theta 500000 --seed 9 || fail "overrides"
check_counts "$TMP/o.gguf" $((2 + 3 * 11)) 25 overrides
# embd 384 x 275 F16 embedding comes first: its bytes are in the size.
[ "$(size_of "$TMP/o.gguf")" -gt $((384 * 275 * 2 + 3 * 384 * 1024 * 3 / 4)) ] || fail "overrides: size"
if [ -x "$BITNET" ]; then
    out=$($BN_EMULATOR "$BITNET" info "$TMP/o.gguf" 2>&1)
    for want in "n_embd       384" "n_layer      3" "n_head       6" "n_head_kv    3" \
                "n_ff         1024" "n_ctx_train  512" "rope_theta   500000"; do
        echo "$out" | grep -qF "$want" || fail "overrides: bitnet info lacks '$want'"
    done
fi

if [ -f "$S/../shared/models/mini-llama3.gguf" ]; then
    $BN_EMULATOR "$SYNTH" --preset small --vocab llama3 --vocab-file "$S/../shared/models/mini-llama3.gguf" \
        -o "$TMP/l.gguf" || fail "small with llama3 vocab"
    check_counts "$TMP/l.gguf" 24 24 "small+llama3"
fi

# ---- usage errors: one line, exit 2 ------------------------------------------------
expect_usage_error() {  # WHAT ARGS...
    local what=$1
    shift
    local err rc
    err=$($BN_EMULATOR "$SYNTH" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -ne 2 ]; then fail "$what: exit $rc, expected 2"; return; fi
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "$what: more than one line: $err"
    case $err in
        "bitnet-synth: error: "*) ok "$what: $err" ;;
        *) fail "$what: message '$err'" ;;
    esac
}
expect_usage_error "no preset" -o "$TMP/x.gguf"
expect_usage_error "no output" --preset small
expect_usage_error "unknown preset" --preset huge -o "$TMP/x.gguf"
expect_usage_error "unknown flag" --preset small -o "$TMP/x.gguf" --frobnicate 1
expect_usage_error "missing value" --preset small -o
expect_usage_error "bad number" --preset small -o "$TMP/x.gguf" --layers two
expect_usage_error "embd not x128" --preset small -o "$TMP/x.gguf" --embd 200
expect_usage_error "heads" --preset small -o "$TMP/x.gguf" --heads 3 --kv-heads 1
expect_usage_error "kv heads" --preset small -o "$TMP/x.gguf" --kv-heads 3
expect_usage_error "vocab" --preset small -o "$TMP/x.gguf" --vocab klingon
expect_usage_error "rope theta" --preset small -o "$TMP/x.gguf" --rope-theta -1
[ -e "$TMP/x.gguf" ] && fail "a failed run left $TMP/x.gguf"

if [ $fails -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "all ok"
