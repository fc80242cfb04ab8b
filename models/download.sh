#!/usr/bin/env bash
# Fetch Microsoft's BitNet-b1.58-2B-4T i2_s GGUF into this folder.
# Resumes an interrupted download and checks the size before declaring success.
set -euo pipefail

url="https://huggingface.co/microsoft/BitNet-b1.58-2B-4T-gguf/resolve/main/ggml-model-i2_s.gguf"
expected_size=1187801280
dir="$(cd "$(dirname "$0")" && pwd)"
out="$dir/ggml-model-i2_s.gguf"

if command -v curl >/dev/null 2>&1; then
    curl -L --fail --retry 5 -C - -o "$out" "$url"
elif command -v wget >/dev/null 2>&1; then
    wget -c -O "$out" "$url"
else
    echo "download.sh: error: need curl or wget" >&2
    exit 1
fi

size=$(stat -c %s "$out")
if [ "$size" -ne "$expected_size" ]; then
    echo "download.sh: error: $out is $size bytes, expected $expected_size (run again to resume)" >&2
    exit 1
fi
echo "ok: $out ($size bytes)"
echo "run: ./build/bitnet -m $out -p \"The capital of France is\""
