#!/usr/bin/env bash
# perplexity --hellaswag: llama-perplexity's HellaSwag score on tasks made
# from the bundled model's text (a line, then the right next line among
# three others), the output's shape, --hellaswag-tasks, the bad files; and,
# with python3, every task's choice recomputed from `bitnet logits --all`
# of each whole "context ending" (the mean log-probability of the ending's
# tokens), which must give the same count of right answers.
# usage: bash cli_hellaswag.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

M="$SRC/models/tiny-shakespeare.gguf"

# 10 tasks: line i of the long lines, the right ending (i % 4) its next line,
# the others lines further on
awk 'length($0) > 25' "$SRC/tests/data/tiny-shakespeare-val.txt" | head -200 >"$TMP/pool.txt"
awk '{ l[NR] = $0 } END {
    for (t = 0; t < 10; t++) {
        i = 1 + t * 17; g = t % 4; o = 0
        print l[i]; print g
        for (e = 0; e < 4; e++) print (e == g ? l[i + 1] : l[i + 50 + 7 * e + t])
    }
}' "$TMP/pool.txt" >"$TMP/tasks.txt"
[ "$(wc -l <"$TMP/tasks.txt")" -eq 60 ] || fail "the task file has $(wc -l <"$TMP/tasks.txt") lines"

cli_run h perplexity -m "$M" --hellaswag -f "$TMP/tasks.txt" -t 1
[ "$rc" -eq 0 ] || fail "hellaswag: exit status $rc: $(tail -n 2 "$TMP/h.err")"
[ "$(head -1 "$TMP/h.out")" = "$(printf 'task\tacc_norm')" ] || fail "hellaswag: no task/acc_norm header"
[ "$(grep -cE '^[0-9]+	[0-9]+\.[0-9]{8}$' "$TMP/h.out")" -eq 10 ] || fail "hellaswag: not 10 task lines: $(cat "$TMP/h.out")"
final=$(sed -n 's/^HellaSwag acc_norm: \([0-9.]*\) % .* over 10 tasks$/\1/p' "$TMP/h.out")
[ -n "$final" ] || fail "hellaswag: no final line"
last=$(awk -F'\t' '$1 == 10 { print $2 }' "$TMP/h.out")
awk -v a="$final" -v b="$last" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4) }' || fail "hellaswag: final $final vs task 10's $last"
cli_run h3 perplexity -m "$M" --hellaswag -f "$TMP/tasks.txt" --hellaswag-tasks 3 -t 1
[ "$(grep -cE '^[0-9]+	' "$TMP/h3.out")" -eq 3 ] && grep -q "over 3 tasks" "$TMP/h3.out" ||
    fail "--hellaswag-tasks 3: $(cat "$TMP/h3.out")"
[ "$(sed -n 2,4p "$TMP/h.out")" = "$(sed -n 2,4p "$TMP/h3.out")" ] || fail "--hellaswag-tasks 3: not the first 3 tasks' lines"

# every choice again from the whole sequences' logits
if command -v python3 >/dev/null; then
    n=0
    while IFS= read -r ctx && IFS= read -r gold && IFS= read -r e0 && IFS= read -r e1 && IFS= read -r e2 && IFS= read -r e3; do
        for e in 0 1 2 3; do
            eval "ending=\$e$e"
            $BN_EMULATOR "$BIN" tokenize -m "$M" --no-escape -p "$ctx $ending" 2>/dev/null >"$TMP/t$n.$e" ||
                fail "tokenize task $n"
            $BN_EMULATOR "$BIN" logits -m "$M" --tokens "$(tr ' ' ',' <"$TMP/t$n.$e")" --all -o "$TMP/l$n.$e" \
                >/dev/null 2>&1 || fail "logits task $n ending $e"
        done
        echo "$gold" >"$TMP/g$n"
        n=$((n + 1))
    done <"$TMP/tasks.txt"
    python3 - "$TMP" "$n" "$final" <<'PY' || fail "hellaswag: recomputed from bitnet logits: $(cat "$TMP/py.err" 2>/dev/null)"
import math, struct, sys
tmp, n, final = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
right = 0
for t in range(n):
    seqs = [[int(x) for x in open("%s/t%d.%d" % (tmp, t, e)).read().split()] for e in range(4)]
    rows = []
    for e in range(4):
        raw = open("%s/l%d.%d" % (tmp, t, e), "rb").read()
        nv = len(raw) // 4 // len(seqs[e])
        vals = struct.unpack("<%df" % (len(raw) // 4), raw)
        rows.append([vals[i * nv:(i + 1) * nv] for i in range(len(seqs[e]))])
    shortest = min(len(s) for s in seqs)
    cp = 0
    while cp < shortest - 1 and all(s[cp] == seqs[0][cp] for s in seqs):
        cp += 1
    def lp(row, tok):
        m = max(row)
        return row[tok] - m - math.log(sum(math.exp(x - m) for x in row))
    scores = []
    for e in range(4):
        s, r = seqs[e], rows[e]
        terms = [lp(r[i], s[i + 1]) for i in range(cp - 1, len(s) - 1)]
        scores.append(sum(terms) / len(terms))
    best = max(range(4), key=lambda e: (scores[e], -e))
    right += best == int(open("%s/g%d" % (tmp, t)).read())
if abs(100.0 * right / n - final) > 1e-3:
    open(tmp + "/py.err", "w").write("%d of %d right, bitnet says %.4f %%" % (right, n, final))
    sys.exit(1)
PY
fi

# ---- bad files and flags ----------------------------------------------------------------
head -7 "$TMP/tasks.txt" >"$TMP/seven.txt"
cli_expect_error "seven.txt: 7 lines, not tasks of 6" perplexity -m "$M" --hellaswag -f "$TMP/seven.txt"
sed '2s/.*/4/' "$TMP/tasks.txt" >"$TMP/label.txt"
cli_expect_error "label.txt: line 2: the right ending must be 0, 1, 2 or 3, got '4'" perplexity -m "$M" --hellaswag -f "$TMP/label.txt"
cli_expect_error "--hellaswag-tasks 0 scores nothing" perplexity -m "$M" --hellaswag -f "$TMP/tasks.txt" --hellaswag-tasks 0
cli_expect_error "separate runs" perplexity -m "$M" --hellaswag -f "$TMP/tasks.txt" --kl-divergence-base "$TMP/b.kld"
cli_run c perplexity -m "$M" --hellaswag -f "$TMP/tasks.txt" -c 8 -t 1
[ "$rc" -ne 0 ] && grep -q "task 1: ending 0 is [0-9]* tokens, more than the context (-c 8)" "$TMP/c.err" ||
    fail "-c 8: rc $rc, $(tail -n 1 "$TMP/c.err")"

if [ "$failures" -ne 0 ]; then
    echo "cli_hellaswag: $failures failure(s)" >&2
    exit 1
fi
echo "cli_hellaswag: all checks passed"
