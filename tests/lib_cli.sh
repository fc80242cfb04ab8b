# Shared set-up of the tests/cli_*.sh scripts (sourced, not run):
#   . "$(dirname "$0")/lib_cli.sh" "$@"
# gives BUILD, SRC, BIN (the bitnet binary), a scratch TMP removed on exit,
# and fail() which counts failures. BN_EMULATOR (e.g. "qemu-aarch64 -L /")
# prefixes every binary the scripts run; empty for native builds.
set -u
BN_EMULATOR=${BN_EMULATOR:-}
BUILD=${1:?build dir}
SRC=${2:?source dir}
BIN="$BUILD/bitnet"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
