#!/usr/bin/env bash
# --prompt-cache FILE, --prompt-cache-all, --prompt-cache-ro (llama-cli's
# prompt cache; docs/FORMAT.md, Session file) on the bundled model:
#   - the first run creates FILE; a second with the same prompt prints the
#     same text and evaluates one prompt token (the last, for its logits),
#     leaving FILE as it was; a longer prompt reuses the saved start, prints
#     what a run without the cache prints, and saves the longer prompt;
#   - --prompt-cache-ro never writes FILE (checksums); --prompt-cache-all
#     saves the prompt and the generated tokens, not after a context shift;
#   - a truncated file, a flipped header byte, another model's file and
#     other cache types are ignored with one warning line saying why, and
#     the text is that of a run without the cache;
#   - chat (-cnv): the file holds the system turn; a second run with the
#     same -sys decodes none of it, writes nothing and prints the same
#     replies as a run without the cache; another -sys reuses the common start;
#   - errors: a FILE in a directory that does not exist (named), a
#     directory, a save that fails after those checks (the run stops),
#     --prompt-cache-all/-ro without --prompt-cache, --prompt-cache-all in chat mode,
#     the flag in another command.
# usage: bash cli_prompt_cache.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

M="$SRC/models/tiny-shakespeare.gguf"
if [ ! -f "$M" ]; then
    echo "skipped: no bundled model at $M"
    exit 77
fi

# gen NAME ARGS...: greedy generation; stdout to $TMP/NAME.out, stderr to .err
gen() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" -m "$M" --temp 0 "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$name: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}
same() {    # same A B WHAT
    cmp -s "$TMP/$1.out" "$TMP/$2.out" || fail "$3: outputs differ ($1 vs $2)"
}
has() {     # has NAME PATTERN: a line of NAME's stderr matches
    grep -qE "$2" "$TMP/$1.err" || fail "$1: expected /$2/ on stderr, got: $(cat "$TMP/$1.err")"
}
expect_error() {    # expect_error PATTERN ARGS...: exactly one error line matching PATTERN
    local pattern=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/err.out" 2>"$TMP/err.err"
    local st=$?
    [ "$st" -ne 0 ] || fail "bitnet $*: exit status 0, expected an error"
    [ "$(wc -l <"$TMP/err.err")" -eq 1 ] || fail "bitnet $*: stderr is not one line: $(cat "$TMP/err.err")"
    grep -qE "^bitnet: error: $pattern" "$TMP/err.err" || fail "bitnet $*: expected /$pattern/, got: $(cat "$TMP/err.err")"
}
n_prompt() {    # the prompt's token count from the "prompt: N tokens" line
    sed -n 's/^prompt: \([0-9]*\) tokens.*/\1/p' "$TMP/$1.err"
}
evaluated() {   # the token count of the "prompt eval time" line
    sed -n 's/.*prompt eval time = .* ms \/ *\([0-9]*\) tokens.*/\1/p' "$TMP/$1.err"
}
sum() { cksum <"$1"; }

P="ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is the sun."
P2="$P Arise, fair sun, and kill the envious moon."
C="$TMP/romeo.cache"

# ---- the first run saves, the second reuses ----------------------------------------------
gen plain -p "$P" -n 24
gen first -p "$P" -n 24 --prompt-cache "$C"
same plain first "the first run with --prompt-cache"
[ -s "$C" ] || fail "the first run wrote no $C"
N=$(n_prompt first)
has first "prompt cache: .*romeo.cache does not exist; it will be created"
has first "prompt cache: saved $N tokens to "
[ "$(evaluated first)" = "$N" ] || fail "first run: $(evaluated first) prompt tokens evaluated, expected $N"
s1=$(sum "$C")

gen second -p "$P" -n 24 --prompt-cache "$C"
same plain second "the second run (the whole prompt from the cache)"
has second "prompt cache: loaded $N tokens from .*; $N of the prompt's $N tokens match"
[ "$(evaluated second)" = 1 ] || fail "second run: $(evaluated second) prompt tokens evaluated, expected 1"
[ "$(sum "$C")" = "$s1" ] || fail "the second run rewrote a cache that held its whole prompt"

gen second-t1 -p "$P" -n 24 --prompt-cache "$C" -t 1 -b 5
same plain second-t1 "the cache on 1 thread with -b 5"

# ---- a longer prompt: the saved start, then the rest ------------------------------------------
gen plain2 -p "$P2" -n 24
gen longer -p "$P2" -n 24 --prompt-cache "$C"
same plain2 longer "a prompt extending the cached one"
N2=$(n_prompt longer)
has longer "prompt cache: loaded $N tokens from .*; [0-9]+ of the prompt's $N2 tokens match"
[ "$(evaluated longer)" -lt "$N2" ] || fail "longer prompt: $(evaluated longer) of $N2 tokens evaluated"
has longer "prompt cache: saved $N2 tokens to "
gen shorter -p "$P" -n 24 --prompt-cache "$C"          # the file's start: no save
same plain shorter "a prompt that is the start of the cached one"
[ "$(evaluated shorter)" = 1 ] || fail "shorter prompt: $(evaluated shorter) tokens evaluated, expected 1"

# ---- --prompt-cache-ro ------------------------------------------------------------------------------
s2=$(sum "$C")
gen ro -p "Good morrow, cousin." -n 16 --prompt-cache "$C" --prompt-cache-ro
gen ro-plain -p "Good morrow, cousin." -n 16
same ro-plain ro "--prompt-cache-ro with a prompt that parts from the file's"
[ "$(sum "$C")" = "$s2" ] || fail "--prompt-cache-ro changed the file"
! grep -q "saved" "$TMP/ro.err" || fail "--prompt-cache-ro says it saved"
gen ro-new -p "$P" -n 4 --prompt-cache "$TMP/none.cache" --prompt-cache-ro
[ ! -e "$TMP/none.cache" ] || fail "--prompt-cache-ro created a file"
has ro-new "does not exist \(--prompt-cache-ro: nothing is saved\)"

# ---- --prompt-cache-all ----------------------------------------------------------------------------
gen plain20 -p "$P" -n 20 --ignore-eos
gen all -p "$P" -n 20 --ignore-eos --prompt-cache "$TMP/all.cache" --prompt-cache-all
same plain20 all "--prompt-cache-all"
has all "prompt cache: saved $N tokens to "
has all "prompt cache: saved $((N + 20)) tokens to "
gen all-again -p "$P" -n 20 --ignore-eos --prompt-cache "$TMP/all.cache"
has all-again "prompt cache: loaded $((N + 20)) tokens from .*; $N of the prompt's $N tokens match"
same plain20 all-again "a prompt that is the start of a --prompt-cache-all file"
gen all-shift -p "$P" -n 80 --ignore-eos -c 48 --prompt-cache "$TMP/shift.cache" --prompt-cache-all
has all-shift "prompt cache: the context shifted; .*shift.cache is left as it was"

# ---- damaged, foreign and mismatched files are ignored, with the reason ------------------------------
check_ignored() {   # check_ignored NAME REASON: one warning line, the text of a run without the cache
    has "$1" "^bitnet: warning: .*: $2.*; the prompt cache is ignored and the whole prompt evaluated$"
    [ "$(grep -c '^bitnet: warning:' "$TMP/$1.err")" = 1 ] || fail "$1: not one warning line"
    ! grep -q "^bitnet: error" "$TMP/$1.err" || fail "$1: an error line"
    [ "$(evaluated "$1")" = "$N" ] || fail "$1: $(evaluated "$1") prompt tokens evaluated, expected $N"
}
gen base -p "$P" -n 24 --prompt-cache "$TMP/base.cache"
head -c 500 "$TMP/base.cache" >"$TMP/cut.cache"
gen cut -p "$P" -n 24 --prompt-cache "$TMP/cut.cache" --prompt-cache-ro
same plain cut "a truncated cache"
check_ignored cut "truncated"
cp "$TMP/base.cache" "$TMP/flip.cache"
printf '\x63' | dd of="$TMP/flip.cache" bs=1 seek=64 conv=notrunc 2>/dev/null    # n_layer
gen flip -p "$P" -n 24 --prompt-cache "$TMP/flip.cache"
same plain flip "a cache with a flipped header byte"
check_ignored flip "saved with another model shape"
gen flip-again -p "$P" -n 24 --prompt-cache "$TMP/flip.cache"     # rewritten by the run above
same plain flip-again "a cache rewritten after a refusal"
[ "$(evaluated flip-again)" = 1 ] || fail "the rewritten cache: $(evaluated flip-again) tokens evaluated"
printf 'not a session' >"$TMP/junk.cache"
gen junk -p "$P" -n 24 --prompt-cache "$TMP/junk.cache" --prompt-cache-ro
check_ignored junk "not a bitnet session file"
gen q8 -p "$P" -n 24 --prompt-cache "$TMP/base.cache" --prompt-cache-ro -ctk q8_0
check_ignored q8 "saved with K / V caches of f16 / f16; this context's are q8_0 / f16 \(-ctk / -ctv\)"
gen numerics -p "$P" -n 24 --prompt-cache "$TMP/base.cache" --prompt-cache-ro --batch-numerics bitnet-cpp
check_ignored numerics "saved with the decode batch numerics"
$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/other.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
$BN_EMULATOR "$BIN" -m "$TMP/other.gguf" --temp 0 -p "$P" -n 4 --prompt-cache "$TMP/base.cache" \
    --prompt-cache-ro </dev/null >"$TMP/other.out" 2>"$TMP/other.err" || fail "another model's cache: exit status $?"
has other "^bitnet: warning: .*base.cache: saved with another model .*; the prompt cache is ignored"
: >"$TMP/empty.cache"
gen empty -p "$P" -n 4 --prompt-cache "$TMP/empty.cache"
has empty "empty.cache is empty; a new session starts"
[ -s "$TMP/empty.cache" ] || fail "an empty cache file was not written"

# ---- chat: the session holds the system turn ------------------------------------------------------
chat() {    # chat NAME ARGS...: two piped messages, greedy; stdout/stderr to $TMP/NAME.out/.err
    local name=$1
    shift
    printf 'Good morrow\nWhat news?\n' | $BN_EMULATOR "$BIN" -m "$M" -cnv --temp 0 -n 12 "$@" \
        >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
    [ "$rc" -eq 0 ] || fail "$name: exit status $rc: $(tail -n 3 "$TMP/$name.err")"
}
SYS="You are Friar Laurence, who answers in verse and counsels patience."
CC="$TMP/chat.cache"
chat chat-plain -sys "$SYS"
chat chat-first -sys "$SYS" --prompt-cache "$CC"
has chat-first "^prompt cache: saved [0-9]+ tokens to $CC"
same chat-plain chat-first "chat, first run with the cache"
n_sys=$(sed -n 's/^prompt cache: saved \([0-9]*\) tokens.*/\1/p' "$TMP/chat-first.err")
sum_before=$(sum "$CC")
chat chat-again -sys "$SYS" --prompt-cache "$CC"
has chat-again "^prompt cache: loaded $n_sys tokens from $CC in .*; $n_sys of the prompt's $n_sys tokens match"
grep -q "^prompt cache: saved" "$TMP/chat-again.err" && fail "chat: a cache holding the whole system turn was rewritten"
same chat-plain chat-again "chat, the system turn from the cache"
[ "$(sum "$CC")" = "$sum_before" ] || fail "chat: the cache file changed on a full match"
chat chat-other -sys "You are Mercutio." --prompt-cache "$CC"
has chat-other "^prompt cache: loaded $n_sys tokens .*; [0-9]+ of the prompt's [0-9]+ tokens match"
has chat-other "^prompt cache: saved [0-9]+ tokens to $CC"
chat chat-other-plain -sys "You are Mercutio."
same chat-other-plain chat-other "chat, another system prompt over the cache"

# ---- errors --------------------------------------------------------------------------------------------
expect_error "$TMP/no/such/dir/x.cache: cannot write the prompt cache there: No such file or directory$" \
    -m "$M" -p hi --prompt-cache "$TMP/no/such/dir/x.cache"
expect_error "$TMP: is a directory, not a prompt cache file$" -m "$M" -p hi --prompt-cache "$TMP"
expect_error "--prompt-cache-all needs --prompt-cache FILE$" -m "$M" -p hi --prompt-cache-all
expect_error "--prompt-cache-ro needs --prompt-cache FILE$" -m "$M" -p hi --prompt-cache-ro
expect_error "--prompt-cache-all is not supported in chat mode \(-cnv\)" -m "$M" -cnv \
    --prompt-cache "$C" --prompt-cache-all
expect_error "--prompt-cache needs a value" -m "$M" -p hi --prompt-cache
expect_error "--prompt-cache is not an option of 'bitnet tokenize'" tokenize -m "$M" -p hi --prompt-cache "$C"
# a save that fails after the checks (the temporary name is too long): an error, the run stops
long=$(printf 'a%.0s' $(seq 1 250))
$BN_EMULATOR "$BIN" -m "$M" -p hi -n 2 --temp 0 --log-disable --prompt-cache "$TMP/$long" \
    </dev/null >"$TMP/long.out" 2>"$TMP/long.err" && fail "a failed save: exit status 0"
grep -qE "^bitnet: error: $TMP/$long: cannot save the prompt cache: cannot create the temporary file beside it: File name too long$" \
    "$TMP/long.err" || fail "a failed save: $(cat "$TMP/long.err")"
[ "$(wc -l <"$TMP/long.err")" -eq 1 ] || fail "a failed save: stderr is not one line"
# read-only: a directory that refuses writes is caught before the run (not as root, who may write anyway)
if [ "$(id -u)" != 0 ]; then
    mkdir "$TMP/ro-dir" && chmod 555 "$TMP/ro-dir"
    expect_error "$TMP/ro-dir/x.cache: cannot write the prompt cache there: Permission denied$" \
        -m "$M" -p hi --prompt-cache "$TMP/ro-dir/x.cache"
    chmod 755 "$TMP/ro-dir"
fi

echo "$failures failures"
exit $((failures > 0))
