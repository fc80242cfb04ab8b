#!/usr/bin/env bash
# Cross-build bitnet.c for aarch64 and run the WHOLE test suite (ctest) under
# user-mode QEMU, once per emulated CPU model, so both NEON paths are tested:
#   QEMU_CPU=max         has ASIMDDP -> the sdot kernels (ternary_neon_dotprod.c)
#   QEMU_CPU=cortex-a57  ARMv8.0     -> the lookup-table kernels (ternary_neon.c)
# Exits non-zero if the build or any test fails under any CPU model.
#
# Usage: tools/test-aarch64.sh [extra ctest arguments, e.g. -R kernels]
# Environment:
#   BN_AARCH64_BUILD  build folder           (default: <repo>/build-aarch64)
#   BN_AARCH64_CPUS   QEMU CPU models to run (default: "max cortex-a57")
#   BN_AARCH64_WERROR ON: warnings are errors, as CI's native builds (default: OFF)
#   JOBS              parallel build / test  (default: 2)
#
# Convention for tests that run built binaries themselves (tests/cli_*.sh, or C
# tests that spawn a program): this script exports
#   BN_EMULATOR="qemu-aarch64 -L /"
# and such tests must prefix every binary they execute with it, unquoted:
#   $BN_EMULATOR "$BIN/bitnet" -m ...
# It is empty/unset in native builds, so the same script runs both ways.
# (ctest already runs tests/test_*.c under the emulator through the toolchain
# file's CMAKE_CROSSCOMPILING_EMULATOR; binfmt_misc is not assumed.)
#
# Prerequisites (Debian bookworm; CI installs them, this script does not):
#   apt-get install -y cmake gcc-aarch64-linux-gnu qemu-user
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install -y libcmocka-dev:arm64
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BN_AARCH64_BUILD:-$ROOT/build-aarch64}
CPUS=${BN_AARCH64_CPUS:-"max cortex-a57"}
JOBS=${JOBS:-2}
TRIPLE=aarch64-linux-gnu
# Run against Debian's multiarch runtime (libc6:arm64 in /lib/aarch64-linux-gnu),
# not the cross toolchain's copy in /usr/$TRIPLE: with the latter, qemu 7.2 on
# this machine hangs in the first pthread_create.
SYSROOT=/

die() {
    echo "test-aarch64.sh: error: $*" >&2
    exit 2
}

for tool in cmake ctest "$TRIPLE-gcc" qemu-aarch64; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' not found (apt-get install cmake gcc-aarch64-linux-gnu qemu-user)"
done
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] ||
    die "no aarch64 runtime in $SYSROOT (dpkg --add-architecture arm64; apt-get install libc6:arm64 libcmocka-dev:arm64)"
[ -e "/usr/lib/$TRIPLE/libcmocka.so" ] && [ -e /usr/include/cmocka.h ] ||
    die "cmocka for arm64 missing (dpkg --add-architecture arm64; apt-get update; apt-get install libcmocka-dev:arm64)"

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_TOOLCHAIN_FILE="$ROOT/tools/aarch64-toolchain.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DBITNET_BUILD_TESTS=ON -DBITNET_WERROR="${BN_AARCH64_WERROR:-OFF}" >/dev/null ||
    die "cmake configure failed for $BUILD"
cmake --build "$BUILD" -j "$JOBS" || die "aarch64 cross build failed"

# A smoke test of the emulator itself, so a broken qemu setup reads as such
# rather than as every test failing.
export BN_EMULATOR="qemu-aarch64 -L $SYSROOT"
$BN_EMULATOR "$SYSROOT/lib/ld-linux-aarch64.so.1" --version >/dev/null ||
    die "qemu-aarch64 cannot run the aarch64 loader in $SYSROOT"
[ -n "$(find "$BUILD" -maxdepth 1 -name 'test_*' -type f -perm -u+x -print -quit)" ] ||
    die "no test binaries were built in $BUILD"

failed=()
for cpu in $CPUS; do
    echo "=== ctest under qemu-aarch64, QEMU_CPU=$cpu ==="
    if ! (cd "$BUILD" && QEMU_CPU=$cpu ctest --output-on-failure -j "$JOBS" "$@"); then
        failed+=("$cpu")
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "test-aarch64.sh: FAILED under QEMU_CPU: ${failed[*]}" >&2
    exit 1
fi
echo "test-aarch64.sh: all tests passed under QEMU_CPU: $CPUS"
