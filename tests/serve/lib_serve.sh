# Shared set-up of the tests/cli_serve_*.sh scripts (sourced after lib_cli.sh):
#   serve_start NAME ARGS...   starts `bitnet serve ARGS... --port 0` in the
#                              background, waits for its port: sets SERVE_PID,
#                              SERVE_PORT; its log is $TMP/NAME.err
#   node_package SPEC          installs an npm package (once per build dir)
#                              into $BUILD/node-NAME: sets NODE_DIR, or exits
#                              77 (skipped) when npm or the network is missing
#   check NAME PY ARGS...      runs python3 PY ARGS..., a failure with its message
# Every server started is stopped on exit.
SERVE_PIDS=
trap 'for p in $SERVE_PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$TMP"' EXIT

serve_start() {
    local name=$1
    shift
    $BN_EMULATOR "$BIN" serve "$@" --port 0 2>"$TMP/$name.err" &
    SERVE_PID=$!
    SERVE_PIDS="$SERVE_PIDS $SERVE_PID"
    SERVE_PORT=
    for _ in $(seq 1 300); do
        SERVE_PORT=$(sed -n 's|^serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$TMP/$name.err")
        [ -n "$SERVE_PORT" ] && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: server $name did not start: $(cat "$TMP/$name.err")" >&2
    exit 1
}

# The newest releases want Node 20; Debian 12 ships Node 18, which gets the
# last release that supports it.
node_major() { node -p 'process.versions.node.split(".")[0]'; }

node_package() {
    local spec=$1 name=${1%@*}
    command -v node >/dev/null || { echo "skipped: node not found"; exit 77; }
    command -v npm >/dev/null || { echo "skipped: npm not found"; exit 77; }
    NODE_DIR="$BUILD/node-$name"
    [ -f "$NODE_DIR/node_modules/$name/package.json" ] && return 0
    echo "npm install $spec into $NODE_DIR"
    timeout 300 npm install --prefix "$NODE_DIR" --no-audit --no-fund --no-save --loglevel=error \
        --fetch-retries=1 "$spec" >"$TMP/npm.log" 2>&1 ||
        { echo "skipped: npm install $spec failed (no network?): $(tail -n 3 "$TMP/npm.log")"; exit 77; }
}

# check NAME PYTHON_FILE ARGS...: runs a python check, failing with its message
check() {
    local name=$1
    shift
    python3 "$@" >"$TMP/check.out" 2>&1 || fail "$name: $(tail -n 5 "$TMP/check.out")"
}
