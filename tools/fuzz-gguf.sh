#!/usr/bin/env bash
# Fuzz the GGUF reader: builds tests/fuzz/fuzz_gguf.c with clang + libFuzzer
# (ASan + UBSan, whole library instrumented) into build-fuzz, writes a seed
# corpus of small valid files, then fuzzes for SECONDS (default 60).
# Exits non-zero when the fuzzer finds a crash; the input is saved as
# build-fuzz/fuzz-gguf-crash-*.
#   usage: tools/fuzz-gguf.sh [SECONDS] [extra libFuzzer flags...]
set -euo pipefail
secs=${1:-60}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BITNET_FUZZ_BUILD:-$root/build-fuzz}

# The library itself must carry coverage instrumentation, or libFuzzer only
# sees the harness; -fno-sanitize-recover turns UBSan reports into crashes.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang cmake -S "$root" -B "$build" -DBITNET_FUZZ=ON -DBITNET_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$flags" >/dev/null
cmake --build "$build" --target fuzz_gguf -j2 >/dev/null

seeds=$build/fuzz-gguf-seeds
corpus=$build/fuzz-gguf-corpus
mkdir -p "$seeds" "$corpus"
FUZZ_GGUF_WRITE_SEEDS=$seeds "$build/fuzz_gguf"

# Tokens the format is made of help the mutator past the magic and keys.
dict=$build/fuzz-gguf.dict
cat > "$dict" <<'DICT'
"GGUF"
"\x03\x00\x00\x00"
"\x02\x00\x00\x00"
"general.alignment"
"general.architecture"
"tokenizer.ggml.tokens"
"\x09\x00\x00\x00"
"\x08\x00\x00\x00"
"\x24\x00\x00\x00"
"\x40\x00\x00\x00"
"\xff\xff\xff\xff\xff\xff\xff\xff"
"\x00\x00\x00\x00\x00\x00\x00\x80"
DICT

echo "fuzzing the GGUF reader for ${secs}s (corpus $corpus)"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
"$build/fuzz_gguf" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
    -dict="$dict" -artifact_prefix="$build/fuzz-gguf-" -print_final_stats=1 "$@" \
    "$corpus" "$seeds"
