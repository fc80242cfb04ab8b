#!/usr/bin/env bash
# perplexity --kl-divergence-base / --kl-divergence: llama-perplexity's
# log-probability file, written and read back (the same run gives a KL
# divergence of ~0 and the same top token everywhere; a q8_0 KV cache a small
# positive one), --chunks, and every way a base can be wrong.
# usage: bash cli_perplexity_kld.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

M="$SRC/models/tiny-shakespeare.gguf"
TEXT="$SRC/tests/data/tiny-shakespeare-val.txt"
B="$TMP/base.kld"

ok() {
    cli_run "$@"
    [ "$rc" -eq 0 ] || fail "bitnet ${*:2}: exit status $rc: $(tail -n 3 "$TMP/$1.err")"
}
# value LABEL FILE: the first number after LABEL at the start of a line
value() { awk -v l="$1" 'index($0, l) == 1 { sub(l, ""); print $1; exit }' "$2"; }

# ---- write a base: 3 windows of 64 ------------------------------------------------
ok w perplexity -m "$M" -f "$TEXT" -c 64 --chunks 3 -t 1 --kl-divergence-base "$B"
NV=$($BN_EMULATOR "$BIN" info "$M" 2>/dev/null | awk '$1 == "n_vocab" { print $2; exit }')
# header 20 + 3 x 64 token ids + 3 x 31 records of (2 ceil(NV/2) + 4) u16
want=$((20 + 4 * 3 * 64 + 3 * 31 * (2 * ((NV + 1) / 2) + 4) * 2))
[ "$(wc -c <"$B")" -eq "$want" ] || fail "base: $(wc -c <"$B") bytes, expected $want"
[ "$(head -c 8 "$B")" = "_logits_" ] || fail "base: no _logits_ magic"
grep -q '\[3\]' "$TMP/w.out" && ! grep -q '\[4\]' "$TMP/w.out" || fail "--chunks 3: not 3 windows: $(cat "$TMP/w.out")"
ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\).*/\1/p' "$TMP/w.out")

# ---- the same run against it ----------------------------------------------------------
ok s perplexity -m "$M" --kl-divergence-base "$B" --kl-divergence -t 1
[ "$(grep -c '^ *[0-9]  PPL' "$TMP/s.out")" -eq 3 ] || fail "compare: not 3 window lines: $(cat "$TMP/s.out")"
[ "$(value 'same top token' "$TMP/s.out")" = "100.000" ] || fail "self: the top token differs somewhere"
kld=$(value 'KLD mean' "$TMP/s.out")
awk -v k="$kld" 'BEGIN { exit !(k > -1e-5 && k < 1e-5) }' || fail "self: mean KLD $kld, expected ~0 (u16 rounding only)"
# this run's PPL is the writing run's; the base's, rebuilt from u16 steps, within 1e-4
[ "$(printf '%.4f' "$(value 'PPL  ' "$TMP/s.out")")" = "$ppl" ] ||
    fail "self: PPL $(value 'PPL  ' "$TMP/s.out") is not the writing run's $ppl"
awk -v a="$(value 'PPL of the base' "$TMP/s.out")" -v b="$ppl" 'BEGIN { d = a / b - 1; exit !(d < 1e-4 && d > -1e-4) }' ||
    fail "self: the base's PPL $(value 'PPL of the base' "$TMP/s.out") is not the writing run's $ppl"
[ "$(grep -c '^93 tokens scored' "$TMP/s.out")" -eq 1 ] || fail "self: not 93 tokens scored"

# a q8_0 KV cache moves the logits a little: a small positive divergence
ok q perplexity -m "$M" --kl-divergence-base "$B" --kl-divergence -t 1 -ctk q8_0 -ctv q8_0
kq=$(value 'KLD mean' "$TMP/q.out")
awk -v k="$kq" 'BEGIN { exit !(k > 1e-6 && k < 0.01) }' || fail "q8_0 KV: mean KLD $kq, expected small and positive"

ok c perplexity -m "$M" --kl-divergence-base "$B" --kl-divergence --chunks 2 -t 1
[ "$(grep -c '^ *[0-9]  PPL' "$TMP/c.out")" -eq 2 ] || fail "--chunks 2: not 2 window lines"
grep -q "2 of its 3 windows" "$TMP/c.err" || fail "--chunks 2: no '2 of its 3 windows' on stderr"

# ---- bad bases and flags ---------------------------------------------------------------
cli_expect_error "needs --kl-divergence-base" perplexity -m "$M" --kl-divergence
cli_expect_error "-f is not used with --kl-divergence" perplexity -m "$M" -f "$TEXT" --kl-divergence-base "$B" --kl-divergence
cli_expect_error "missing.kld: cannot open" perplexity -m "$M" --kl-divergence-base "$TMP/missing.kld" --kl-divergence
printf 'hello, not a base at all' >"$TMP/text.kld"
cli_expect_error "text.kld: not a log-probability file" perplexity -m "$M" --kl-divergence-base "$TMP/text.kld" --kl-divergence
head -c $((want - 1)) "$B" >"$TMP/short.kld"
cli_expect_error "short.kld: $((want - 1)) bytes, but its header" perplexity -m "$M" --kl-divergence-base "$TMP/short.kld" --kl-divergence
cp "$B" "$TMP/long.kld" && printf 'x' >>"$TMP/long.kld"
cli_expect_error "long.kld: $((want + 1)) bytes" perplexity -m "$M" --kl-divergence-base "$TMP/long.kld" --kl-divergence
# patch LE u32 value V at byte offset OFF of FILE
patch() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($2 & 255)) $(($2 >> 8 & 255)) $(($2 >> 16 & 255)) $(($2 >> 24 & 255)))" |
          dd of="$1" bs=1 seek="$3" conv=notrunc status=none; }
cp "$B" "$TMP/vocab.kld" && patch "$TMP/vocab.kld" $((NV + 1)) 12
cli_expect_error "vocab.kld: written for a vocabulary of $((NV + 1)) tokens" perplexity -m "$M" --kl-divergence-base "$TMP/vocab.kld" --kl-divergence
cp "$B" "$TMP/chunks.kld" && patch "$TMP/chunks.kld" 2000000000 16
cli_expect_error "chunks.kld: .* bytes, but its header" perplexity -m "$M" --kl-divergence-base "$TMP/chunks.kld" --kl-divergence
cp "$B" "$TMP/ctx.kld" && patch "$TMP/ctx.kld" 4294967295 8
cli_expect_error "ctx.kld: bad header" perplexity -m "$M" --kl-divergence-base "$TMP/ctx.kld" --kl-divergence
cp "$B" "$TMP/tok.kld" && patch "$TMP/tok.kld" "$NV" $((20 + 4 * 70))
cli_expect_error "tok.kld: token $NV at 70 is outside the vocabulary" perplexity -m "$M" --kl-divergence-base "$TMP/tok.kld" --kl-divergence
# the second window's first record: its scale a NaN (0x7fc00000)
cp "$B" "$TMP/nan.kld" && patch "$TMP/nan.kld" 2143289344 $((20 + 4 * 3 * 64 + 31 * (2 * ((NV + 1) / 2) + 4) * 2))
cli_run n perplexity -m "$M" --kl-divergence-base "$TMP/nan.kld" --kl-divergence -t 1
[ "$rc" -ne 0 ] && grep -q "nan.kld: a record's scale or minimum log-probability is out of range" "$TMP/n.err" ||
    fail "NaN scale: rc $rc, $(tail -n 1 "$TMP/n.err")"
cli_expect_error "written with windows of 64; -c 32" perplexity -m "$M" --kl-divergence-base "$B" --kl-divergence -c 32
cli_expect_error "--chunks 0 scores nothing" perplexity -m "$M" --kl-divergence-base "$B" --kl-divergence --chunks 0
cli_expect_error "cannot write" perplexity -m "$M" -f "$TEXT" -c 64 --kl-divergence-base "$TMP/no-such-dir/b.kld"
cli_expect_error "-p is not an option" perplexity -m "$M" -p hi --kl-divergence

if [ "$failures" -ne 0 ]; then
    echo "cli_perplexity_kld: $failures failure(s)" >&2
    exit 1
fi
echo "cli_perplexity_kld: all checks passed"
