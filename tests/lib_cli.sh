# Shared set-up of the tests/cli_*.sh scripts (sourced, not run):
#   . "$(dirname "$0")/lib_cli.sh" "$@"
# gives BUILD, SRC, BIN (the bitnet binary), a scratch TMP removed on exit,
# fail() which counts failures, and cli_run / cli_expect_error (below).
# BN_EMULATOR (e.g. "qemu-aarch64 -L /") prefixes every binary the scripts
# run; empty for native builds.
set -u
BN_EMULATOR=${BN_EMULATOR:-}
BUILD=${1:?build dir}
SRC=${2:?source dir}
BIN="$BUILD/bitnet"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# cli_run NAME ARGS...: bitnet ARGS... (stdin empty), stdout and stderr to
# $TMP/NAME.out and $TMP/NAME.err, the exit status in $rc
cli_run() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" "$@" </dev/null >"$TMP/$name.out" 2>"$TMP/$name.err"
    rc=$?
}
# cli_expect_error PATTERN ARGS...: a non-zero exit, nothing on stdout, one
# stderr line "bitnet: error: ..." matching PATTERN (grep -E)
cli_expect_error() {
    local pattern=$1
    shift
    cli_run e "$@"
    [ "$rc" -ne 0 ] || fail "bitnet $*: exit status 0, expected an error"
    [ -s "$TMP/e.out" ] && fail "bitnet $*: stdout not empty"
    [ "$(wc -l <"$TMP/e.err")" -eq 1 ] || fail "bitnet $*: stderr is not one line: $(cat "$TMP/e.err")"
    grep -qE "^bitnet: error: .*($pattern)" "$TMP/e.err" || fail "bitnet $*: expected /$pattern/, got: $(cat "$TMP/e.err")"
}
