#!/usr/bin/env bash
# tokenize / logits / perplexity / info / bench: output formats and the
# bundled model's perplexity against bitnet.cpp (85.9977 over 75 windows).
# usage: bash cli_tools.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

# run NAME ARGS...: stdout/stderr to $TMP/NAME.{out,err}; rc in $rc
run() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "bitnet $*: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}

$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/m.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
M="$TMP/m.gguf"
NV=$($BN_EMULATOR "$BIN" info "$M" 2>/dev/null | awk '$1 == "n_vocab" { print $2; exit }')
[ -n "$NV" ] && [ "$NV" -gt 0 ] || fail "info: no n_vocab line"

# ---- tokenize ------------------------------------------------------------------------
run t1 tokenize -m "$M" -p "Hello world"
grep -qxE "[0-9]+( [0-9]+)*" "$TMP/t1.out" || fail "tokenize: not one line of ids: $(cat "$TMP/t1.out")"
[ "$(wc -l <"$TMP/t1.out")" -eq 1 ] || fail "tokenize: more than one line"
run t2 tokenize -m "$M" -p "Hello world" --no-bos
[ "$(cut -d' ' -f2- "$TMP/t1.out")" = "$(cat "$TMP/t2.out")" ] || fail "tokenize --no-bos: not the same ids minus BOS"
bos=$(tr ' ' '\n' <"$TMP/t1.out" | head -1)   # BOS id, to compare against the special's
run t3 tokenize -m "$M" -p "<|begin_of_text|>" --no-bos
[ "$(cat "$TMP/t3.out")" = "$bos" ] || fail "tokenize: <|begin_of_text|> is not the BOS id"
run t4 tokenize -m "$M" -p "<|begin_of_text|>" --no-bos --no-special
[ "$(wc -w <"$TMP/t4.out")" -gt 1 ] || fail "tokenize --no-special: the control text became one token"
printf 'Hello world' >"$TMP/hw.txt"
run t5 tokenize -m "$M" -f "$TMP/hw.txt"
cmp -s "$TMP/t1.out" "$TMP/t5.out" || fail "tokenize -f FILE differs from -p TEXT"
printf 'a\0b\xff' >"$TMP/raw.bin"
run t6 tokenize -m "$M" -f "$TMP/raw.bin" --no-bos
[ "$(wc -w <"$TMP/t6.out")" -ge 3 ] || fail "tokenize -f: raw bytes (NUL, invalid UTF-8) not all tokenized"

# ---- logits ------------------------------------------------------------------------------
run l1 logits -m "$M" --tokens 1,2,3,4 -o "$TMP/last.f32"
grep -qx "1 $NV" "$TMP/l1.err" || fail "logits: stderr lacks '1 $NV'"
[ "$(wc -c <"$TMP/last.f32")" -eq $((NV * 4)) ] || fail "logits: file is not one row of $NV floats"
run l2 logits -m "$M" --tokens 1,2,3,4 -o "$TMP/all.f32" --all
grep -qx "4 $NV" "$TMP/l2.err" || fail "logits --all: stderr lacks '4 $NV'"
[ "$(wc -c <"$TMP/all.f32")" -eq $((NV * 16)) ] || fail "logits --all: file is not 4 rows"
tail -c $((NV * 4)) "$TMP/all.f32" | cmp -s - "$TMP/last.f32" || fail "logits: last row of --all differs from the default"
run l3 logits -m "$M" --tokens 1,2,3,4 -o "$TMP/seq.f32" --all --seq
[ "$(wc -c <"$TMP/seq.f32")" -eq $((NV * 16)) ] || fail "logits --seq --all: file is not 4 rows"
run l4 logits -m "$M" --tokens 1,2,3,4 -o "$TMP/t2.f32" -t 2
cmp -s "$TMP/last.f32" "$TMP/t2.f32" || fail "logits: -t 1 and -t 2 differ"
run l5 logits -m "$M" -p "Hello world" -o "$TMP/p.f32" --all --head f16
rows=$(wc -w <"$TMP/t1.out")
grep -qx "$rows $NV" "$TMP/l5.err" || fail "logits -p: expected $rows rows (the prompt's tokens)"

# ---- perplexity ---------------------------------------------------------------------------
for i in $(seq 1 40); do echo "Line $i of a small text that the perplexity test reads back."; done >"$TMP/text.txt"
run p1 perplexity -m "$M" -f "$TMP/text.txt" -c 64
grep -qE "^\[1\][0-9.]+,\[2\][0-9.]+," "$TMP/p1.out" || fail "perplexity: no running values [1]x,[2]y,"
grep -qE "^Final estimate: PPL = [0-9]+\.[0-9]{4} \+/- [0-9]+\.[0-9]{5}$" "$TMP/p1.out" ||
    fail "perplexity: no 'Final estimate: PPL = X +/- Y' line"
run p2 perplexity -m "$M" -f "$TMP/text.txt" -c 64 -b 16 -t 2
cmp -s "$TMP/p1.out" "$TMP/p2.out" || fail "perplexity: -b 16 -t 2 differs from the default"

VAL="$SRC/tests/data/tiny-shakespeare-val.txt"
[ -f "$VAL" ] || VAL="$SRC/../shared/models/tiny-shakespeare/val.txt"
if [ -f "$SRC/models/tiny-shakespeare.gguf" ] && [ -f "$VAL" ]; then
    run ppl perplexity -m "$SRC/models/tiny-shakespeare.gguf" -f "$VAL" -c 256 --head f16
    ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p' "$TMP/ppl.out")
    windows=$(grep -o '\[[0-9]*\]' "$TMP/ppl.out" | wc -l)
    [ "$windows" -eq 75 ] || fail "tiny-shakespeare perplexity: $windows windows, expected 75"
    awk -v p="$ppl" 'BEGIN { d = p / 85.9977 - 1; exit !(p != "" && d < 0.001 && d > -0.001) }' ||
        fail "tiny-shakespeare perplexity: $ppl, expected 85.998 within 0.1%"
    # The quantized (int8, blocks of 32) LM head must stay within 0.5% of F16.
    run pplq perplexity -m "$SRC/models/tiny-shakespeare.gguf" -f "$VAL" -c 256 --head q8
    pplq=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) .*/\1/p' "$TMP/pplq.out")
    awk -v p="$pplq" -v r="$ppl" 'BEGIN { d = p / r - 1; exit !(p != "" && d < 0.005 && d > -0.005) }' ||
        fail "tiny-shakespeare perplexity with the q8 head: $pplq, expected within 0.5% of $ppl"
fi

# ---- info ------------------------------------------------------------------------------------
run i1 info "$M"
grep -q "bitnet-b1.58" "$TMP/i1.out" || fail "info: no architecture"
grep -qE "(ref|avx2|avx512|neon)" "$TMP/i1.out" || fail "info: no kernel variant"
run i2 info -m "$M"
cmp -s "$TMP/i1.out" "$TMP/i2.out" || fail "info -m M differs from info M"

# ---- bench ------------------------------------------------------------------------------------
run b1 bench -m "$M" -p 16 -n 8 -t 1,2 -r 2
grep -qx "| model | size | params | kernel | threads | depth | test | t/s |" "$TMP/b1.out" || fail "bench: no table header"
for t in "1 | 0 | pp16" "2 | 0 | pp16" "1 | 0 | tg8" "2 | 0 | tg8"; do
    grep -qE "\| $t \| [0-9.]+ ± [0-9.]+ \|$" "$TMP/b1.out" || fail "bench: no row '$t'"
done
grep -qE "^tg8, 1 threads: [0-9.]+ MB touched per token .* GB/s" "$TMP/b1.out" || fail "bench: no bytes/GB/s line for tg"
run b2 bench -m "$M" -p 16 -n 8 -t 1 -r 2 -o json
grep -q '"test": "pp16"' "$TMP/b2.out" && grep -q '"test": "tg8"' "$TMP/b2.out" &&
    grep -q '"bytes_per_token": ' "$TMP/b2.out" && head -c 1 "$TMP/b2.out" | grep -q '\[' ||
    fail "bench -o json: unexpected output: $(head -c 300 "$TMP/b2.out")"
# jsonl: the same objects, one per line; csv: a header and a row each, the same numbers
run b3 bench -m "$M" -p 16 -n 8 -t 1 -r 2 -o jsonl
[ "$(wc -l <"$TMP/b3.out")" -eq 2 ] && head -1 "$TMP/b3.out" | grep -q '^{"model": .*"test": "pp16".*}$' &&
    tail -1 "$TMP/b3.out" | grep -q '"test": "tg8".*"bytes_per_token": ' ||
    fail "bench -o jsonl: unexpected output: $(head -c 300 "$TMP/b3.out")"
run b4 bench -m "$M" -p 16 -n 8 -t 1 -r 2 -o csv
if command -v python3 >/dev/null; then
    python3 - "$TMP/b4.out" <<'PY' || fail "bench -o csv: unexpected output: $(head -c 400 "$TMP/b4.out")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["test"] for r in rows] == ["pp16", "tg8"], rows
for r in rows:
    s = [float(x) for x in r["samples_ts"].split()]
    assert len(s) == 2 and abs(sum(s) / 2 - float(r["avg_ts"])) < 1e-3 * float(r["avg_ts"]), r
    assert r["threads"] == "1" and r["type_k"] == "f16" and int(r["size"]) > 0, r
assert rows[0]["bytes_per_token"] == "" and float(rows[1]["bytes_per_token"]) > 0, rows
PY
fi

if [ "$failures" -ne 0 ]; then
    echo "cli_tools: $failures failure(s)" >&2
    exit 1
fi
echo "cli_tools: all checks passed"
