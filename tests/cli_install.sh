#!/usr/bin/env bash
# Install: `cmake --install` into a scratch prefix puts the library, bitnet.h,
# a pkg-config file, the binaries and the bundled model in their places; a
# program built with nothing but `pkg-config --cflags --libs bitnet`
# (tests/install/generate_example.c) loads the installed model and generates
# the same 8 greedy tokens as the installed `bitnet`, which finds that model
# on its own. Skipped (exit 77) without pkg-config.
# usage: bash cli_install.sh BUILD_DIR SOURCE_DIR   (BN_EMULATOR: e.g. qemu-aarch64)
. "$(dirname "$0")/lib_cli.sh" "$@"

if ! command -v pkg-config >/dev/null 2>&1; then
    echo "skipped: pkg-config not found (apt-get install pkg-config)"
    exit 77
fi

P="$TMP/prefix"
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1 ||
    { cat "$TMP/install.log" >&2; fail "cmake --install failed"; exit 1; }
for f in lib/libbitnet.a include/bitnet.h lib/pkgconfig/bitnet.pc bin/bitnet bin/bitnet-synth \
         share/bitnet/models/tiny-shakespeare.gguf; do
    [ -f "$P/$f" ] || fail "not installed: $f"
done
[ -x "$P/bin/bitnet" ] || fail "bin/bitnet is not executable"

# The compiler and flags the library was built with (a sanitizer build's
# library needs its runtime; a cross build's example runs under BN_EMULATOR).
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
CC_USED=${BN_CC:-$(cache_value CMAKE_C_COMPILER)}
EXTRA=()
[ "$(cache_value BITNET_SANITIZE)" = ON ] && EXTRA=(-fsanitize=address,undefined)
flags=$(PKG_CONFIG_PATH="$P/lib/pkgconfig" pkg-config --cflags --libs bitnet) ||
    { fail "pkg-config does not know the installed bitnet"; exit 1; }
echo "$flags" | grep -q -- "-lbitnet" || fail "pkg-config --libs lacks -lbitnet: $flags"
# shellcheck disable=SC2086  # $flags is a list of words
"${CC_USED:-cc}" -std=c11 -Wall -Wextra -Werror "${EXTRA[@]}" "$SRC/tests/install/generate_example.c" \
    $flags -o "$TMP/example" 2>"$TMP/cc.err" ||
    { cat "$TMP/cc.err" >&2; fail "the example does not build against the installed library"; exit 1; }

# The same greedy text from the library and from the installed binary.
MODEL="$P/share/bitnet/models/tiny-shakespeare.gguf"
PROMPT="ROMEO: "
$BN_EMULATOR "$TMP/example" "$MODEL" "$PROMPT" 8 >"$TMP/example.out" 2>"$TMP/example.err" ||
    fail "the example failed: $(cat "$TMP/example.err")"
$BN_EMULATOR "$P/bin/bitnet" -p "$PROMPT" -n 8 --temp 0 </dev/null >"$TMP/bitnet.out" 2>"$TMP/bitnet.err" ||
    fail "the installed bitnet failed: $(tail -n 2 "$TMP/bitnet.err")"
grep -q "share/bitnet/models/tiny-shakespeare.gguf" "$TMP/bitnet.err" ||
    fail "the installed bitnet did not load the installed model: $(head -n 1 "$TMP/bitnet.err")"
[ "$(wc -c <"$TMP/example.out")" -gt $((${#PROMPT} + 1)) ] || fail "the example generated nothing"
cmp -s "$TMP/example.out" "$TMP/bitnet.out" ||
    fail "example and bitnet differ: '$(cat "$TMP/example.out")' vs '$(cat "$TMP/bitnet.out")'"

[ "$failures" -eq 0 ] && echo "cli_install: all passed"
exit $((failures > 0))
