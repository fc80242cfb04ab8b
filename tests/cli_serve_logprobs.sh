#!/usr/bin/env bash
# `bitnet serve`'s log-probabilities (OpenAI's "logprobs") and GET /slots:
# greedy completions whose tokens are the most likely of their top_logprobs
# and whose bytes make the text; the values against a log-softmax computed
# here from `bitnet logits` (first generated token, and every prompt token
# with "echo"); the exact head against --head f16; streamed equal to plain;
# chat's shape (bytes, U+FFFD-safe tokens); bad values 400; /slots idle and
# busy, behind the API key, off with --no-slots. Skipped (77) without curl
# or python3. Whole run: a few seconds.
# usage: bash cli_serve_logprobs.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
command -v curl >/dev/null || { echo "skipped: curl not found"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: python3 not found"; exit 77; }

TINY="$SRC/models/tiny-shakespeare.gguf"
[ -f "$TINY" ] || { echo "FAIL: $TINY is missing" >&2; exit 1; }
$BN_EMULATOR "$BUILD/bitnet-synth" --preset small -o "$TMP/chat.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
KEY=lp-key-456

serve_start f16 -m "$TINY" -np 2 -t 1 --head f16
URL_F16="http://127.0.0.1:$SERVE_PORT"
serve_start exact -m "$TINY" -np 1 -t 1 --head exact
URL_EXACT="http://127.0.0.1:$SERVE_PORT"
serve_start chat -m "$TMP/chat.gguf" -np 2 -t 1 --api-key "$KEY"
URL_CHAT="http://127.0.0.1:$SERVE_PORT"
serve_start noslots -m "$TINY" -np 1 -t 1 --no-slots
URL_NOSLOTS="http://127.0.0.1:$SERVE_PORT"

# post URL PATH BODY OUT [curl args]: status in $code
post() {
    local url=$1 path=$2 body=$3 out=$4
    shift 4
    code=$(curl -s -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $KEY" "$@" -d "$body" "$url$path")
}

cat >"$TMP/lib.py" <<'EOF'
import json, math, struct, sys

def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))

def sse(path):
    """The JSON objects of an SSE stream, [DONE] last."""
    out, done = [], False
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line == "data: [DONE]":
            done = True
        elif line.startswith("data: "):
            out.append(json.loads(line[6:]))
    assert done, "no [DONE]"
    return out

def logits_rows(path, n_vocab):
    data = open(path, "rb").read()
    n = len(data) // 4
    assert n % n_vocab == 0, "logits file size"
    flat = struct.unpack("<%df" % n, data)
    return [flat[i:i + n_vocab] for i in range(0, n, n_vocab)]

def log_softmax(row):
    m = max(row)
    s = math.fsum(math.exp(x - m) for x in row)
    return [x - m - math.log(s) for x in row]

def fail(msg):
    print(msg)
    sys.exit(1)
EOF

# ---- /v1/completions, greedy, logprobs 5 (the f16 head) ------------------------------
P="ROMEO:"
post "$URL_F16" /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":16,\"temperature\":0,\"logprobs\":5}" "$TMP/c.json"
[ "$code" = 200 ] || fail "completion logprobs: status $code: $(head -c 300 "$TMP/c.json")"
cat >"$TMP/greedy.py" <<'EOF'
import math, sys
sys.path.insert(0, sys.argv[1])
from lib import *
r = load(sys.argv[2])
ch = r["choices"][0]
lp = ch["logprobs"]
toks, tlp, top, off = lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], lp["text_offset"]
n = r["usage"]["completion_tokens"]
if not (len(toks) == len(tlp) == len(top) == len(off) == n and n > 0):
    fail("lengths: %d %d %d %d, %d tokens" % (len(toks), len(tlp), len(top), len(off), n))
if "".join(toks) != ch["text"]:
    fail("tokens %r do not make the text %r" % (toks, ch["text"]))
for i, (t, v, d, o) in enumerate(zip(toks, tlp, top, off)):
    vals = list(d.values())
    if len(d) != 5: fail("token %d: %d alternatives" % (i, len(d)))
    if vals != sorted(vals, reverse=True): fail("token %d: top_logprobs not sorted: %r" % (i, d))
    if any(x > 0 for x in vals): fail("token %d: a logprob > 0: %r" % (i, d))
    if sum(math.exp(x) for x in vals) > 1 + 1e-6: fail("token %d: probabilities sum over 1" % i)
    if v != max(vals) or d.get(t) != v: fail("token %d: greedy %r %r is not the top of %r" % (i, t, v, d))
    if ch["text"][o:o + len(t)] != t: fail("token %d: text_offset %d" % (i, o))
EOF
check "greedy completion" "$TMP/greedy.py" "$TMP" "$TMP/c.json"

# against `bitnet logits`: the first generated token's distribution
$BN_EMULATOR "$BIN" logits -m "$TINY" --head f16 -p "$P" -o "$TMP/last.bin" -t 1 2>/dev/null ||
    fail "bitnet logits failed"
cat >"$TMP/vs_logits.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
r = load(sys.argv[2])
lp = r["choices"][0]["logprobs"]
ref = log_softmax(logits_rows(sys.argv[3], 2048)[-1])
best = sorted(range(len(ref)), key=lambda i: (-ref[i], i))[:5]
got = list(lp["top_logprobs"][0].values())
for k in range(5):
    if abs(got[k] - ref[best[k]]) > 1e-5:
        fail("alternative %d: %r, bitnet logits gives %r" % (k, got[k], ref[best[k]]))
if abs(lp["token_logprobs"][0] - ref[best[0]]) > 1e-5:
    fail("first token: %r vs %r" % (lp["token_logprobs"][0], ref[best[0]]))
EOF
check "logprobs vs bitnet logits" "$TMP/vs_logits.py" "$TMP" "$TMP/c.json" "$TMP/last.bin"

# ---- echo: every prompt token's logprob (lm-evaluation-harness's request) ---------------
E="ROMEO: But soft, what light"
post "$URL_F16" /tokenize "{\"content\":\"$E\",\"add_special\":true}" "$TMP/ids.json"
ids=$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' "$TMP/ids.json")
post "$URL_F16" /v1/completions "{\"prompt\":[[${ids}]],\"max_tokens\":1,\"temperature\":0,\"logprobs\":1,\"echo\":true}" \
    "$TMP/echo.json"
[ "$code" = 200 ] || fail "echo: status $code: $(head -c 300 "$TMP/echo.json")"
post "$URL_F16" /v1/completions "{\"prompt\":[${ids}],\"max_tokens\":0,\"logprobs\":2,\"echo\":true}" "$TMP/echo0.json"
[ "$code" = 200 ] || fail "echo, max_tokens 0: status $code: $(head -c 300 "$TMP/echo0.json")"
$BN_EMULATOR "$BIN" logits -m "$TINY" --head f16 --tokens "$ids" --all -o "$TMP/all.bin" -t 1 2>/dev/null ||
    fail "bitnet logits --all failed"
cat >"$TMP/echo.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
ids = [int(x) for x in sys.argv[4].split(",")]
rows = logits_rows(sys.argv[3], 2048)
for path, n_gen in ((sys.argv[2], 1), (sys.argv[5], 0)):
    r = load(path)
    ch = r["choices"][0]
    lp = ch["logprobs"]
    toks, tlp, top, off = lp["tokens"], lp["token_logprobs"], lp["top_logprobs"], lp["text_offset"]
    if len(tlp) != len(ids) + n_gen: fail("%s: %d records for %d + %d tokens" % (path, len(tlp), len(ids), n_gen))
    if tlp[0] is not None or top[0] is not None: fail("the first prompt token has a logprob")
    for t in range(1, len(ids)):
        ref = log_softmax(rows[t - 1])[ids[t]]
        if abs(tlp[t] - ref) > 1e-5: fail("prompt token %d: %r, bitnet logits gives %r" % (t, tlp[t], ref))
        if tlp[t] > max(top[t].values()) + 1e-12: fail("prompt token %d above its top_logprobs" % t)
        if toks[t] not in top[t]: fail("prompt token %d not in its top_logprobs (OpenAI's: it is added)" % t)
    if not ch["text"].startswith("ROMEO: But soft, what light"): fail("echo text: %r" % ch["text"])
    if r["usage"]["completion_tokens"] != n_gen: fail("%s: %d tokens generated" % (path, r["usage"]["completion_tokens"]))
    for t in range(len(toks)):
        if ch["text"][off[t]:off[t] + len(toks[t])] != toks[t] and toks[t] != "<|begin_of_text|>" and t > 0:
            fail("text_offset of token %d (%r): %d in %r" % (t, toks[t], off[t], ch["text"]))
    if n_gen:   # the generated token: the greedy one, from the last prompt position's logits
        ls = log_softmax(rows[-1])
        if abs(tlp[-1] - max(ls)) > 1e-5: fail("the generated token after echo: %r vs %r" % (tlp[-1], max(ls)))
EOF
check "echo" "$TMP/echo.py" "$TMP" "$TMP/echo.json" "$TMP/all.bin" "$ids" "$TMP/echo0.json"

# ---- the exact head gives the F16 head's tokens and (to its screen) logprobs -----------
post "$URL_EXACT" /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":16,\"temperature\":0,\"logprobs\":5}" "$TMP/cx.json"
[ "$code" = 200 ] || fail "exact head: status $code"
post "$URL_EXACT" /v1/completions "{\"prompt\":[[${ids}]],\"max_tokens\":1,\"temperature\":0,\"logprobs\":1,\"echo\":true}" \
    "$TMP/echox.json"
cat >"$TMP/heads.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
# A record's values differ from the F16 head's by one shift, its normaliser's
# (the screen's values of the rows left out); the chosen token and the
# alternatives are F16 values, so their differences are the F16 head's. The
# echoed prompt computes every row from F16: the same values.
worst_shift = 0.0
for a, b, whole in ((sys.argv[2], sys.argv[3], False), (sys.argv[4], sys.argv[5], True)):
    la, lb = load(a)["choices"][0]["logprobs"], load(b)["choices"][0]["logprobs"]
    if la["tokens"] != lb["tokens"]: fail("tokens differ: %r vs %r" % (la["tokens"], lb["tokens"]))
    for i, (x, y, da, db) in enumerate(zip(la["token_logprobs"], lb["token_logprobs"], la["top_logprobs"], lb["top_logprobs"])):
        if (x is None) != (y is None) or (da is None) != (db is None): fail("record %d: null differs" % i)
        if x is None: continue
        if list(da.keys()) != list(db.keys()): fail("record %d: alternatives differ: %r vs %r" % (i, da, db))
        shift = x - y
        if whole and abs(shift) > 1e-6: fail("echo record %d: %r vs %r" % (i, x, y))
        worst_shift = max(worst_shift, abs(shift))
        for k in da:
            if abs((da[k] - db[k]) - shift) > 1e-5:
                fail("record %d: %r is not the F16 head's %r shifted by %r" % (i, da[k], db[k], shift))
print("largest normaliser shift %.3g" % worst_shift)
if worst_shift > 1e-2: fail("exact vs f16 head: the normalisers differ by %.3g" % worst_shift)
EOF
check "exact head vs f16" "$TMP/heads.py" "$TMP" "$TMP/c.json" "$TMP/cx.json" "$TMP/echo.json" "$TMP/echox.json"
echo "exact vs f16 head: $(cat "$TMP/check.out")"

# ---- streamed equals plain (completions, seeded sampling with top_k) --------------------
B="{\"prompt\":\"$P\",\"max_tokens\":20,\"seed\":7,\"temperature\":0.9,\"top_k\":40,\"logprobs\":3"
post "$URL_F16" /v1/completions "$B}" "$TMP/s_plain.json"
post "$URL_F16" /v1/completions "$B,\"stream\":true}" "$TMP/s_stream.txt" -N
cat >"$TMP/stream.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
plain = load(sys.argv[2])["choices"][0]
toks, tlp, top, off, text = [], [], [], [], ""
for c in sse(sys.argv[3]):
    ch = c["choices"][0]
    text += ch["text"]
    if ch["logprobs"] is None:
        if ch["finish_reason"] is None: fail("a chunk without logprobs")
        continue
    toks += ch["logprobs"]["tokens"]; tlp += ch["logprobs"]["token_logprobs"]
    top += ch["logprobs"]["top_logprobs"]; off += ch["logprobs"]["text_offset"]
p = plain["logprobs"]
if text != plain["text"]: fail("streamed text %r vs %r" % (text, plain["text"]))
if (toks, tlp, top, off) != (p["tokens"], p["token_logprobs"], p["top_logprobs"], p["text_offset"]):
    fail("streamed logprobs differ:\n%r\n%r" % ((toks, tlp, off), (p["tokens"], p["token_logprobs"], p["text_offset"])))
EOF
check "completion stream" "$TMP/stream.py" "$TMP" "$TMP/s_plain.json" "$TMP/s_stream.txt"
# with a stop string that starts inside a token (made from the greedy tokens
# above): that token stays, the later ones are left out, streamed or not
stop=$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["choices"][0]["logprobs"]["tokens"]
i = next(i for i in range(1, len(t) - 1) if len(t[i]) >= 2)
print(json.dumps(t[i][1:] + t[i + 1]))' "$TMP/c.json")
B="{\"prompt\":\"$P\",\"max_tokens\":16,\"temperature\":0,\"logprobs\":2,\"stop\":[$stop]"
post "$URL_F16" /v1/completions "$B}" "$TMP/t_plain.json"
post "$URL_F16" /v1/completions "$B,\"stream\":true}" "$TMP/t_stream.txt" -N
check "completion stream with stop" "$TMP/stream.py" "$TMP" "$TMP/t_plain.json" "$TMP/t_stream.txt"
# echo streamed: the prompt's pieces and records in the first event, then as above
for B in "{\"prompt\":\"$P\",\"max_tokens\":12,\"seed\":7,\"temperature\":0.9,\"logprobs\":2,\"echo\":true" \
         "{\"prompt\":\"$P\",\"max_tokens\":0,\"logprobs\":1,\"echo\":true"; do
    post "$URL_F16" /v1/completions "$B}" "$TMP/e_plain.json"
    post "$URL_F16" /v1/completions "$B,\"stream\":true}" "$TMP/e_stream.txt" -N
    check "completion stream with echo ($B)" "$TMP/stream.py" "$TMP" "$TMP/e_plain.json" "$TMP/e_stream.txt"
    python3 -c '
import json, sys
first = json.loads(open(sys.argv[1]).readline()[6:])["choices"][0]
if not first["text"].startswith(sys.argv[2]) or first["logprobs"]["top_logprobs"][0] is not None:
    sys.exit("the first event is not the echoed prompt with its records: %r" % first)' "$TMP/e_stream.txt" "$P" ||
        fail "completion stream with echo: the prompt does not come first"
done
# without logprobs: the text alone, the prompt first
B="{\"prompt\":\"$P\",\"max_tokens\":6,\"temperature\":0,\"echo\":true"
post "$URL_F16" /v1/completions "$B}" "$TMP/e_plain.json"
post "$URL_F16" /v1/completions "$B,\"stream\":true}" "$TMP/e_stream.txt" -N
python3 -c '
import json, sys
sys.path.insert(0, sys.argv[1])
from lib import *
plain = load(sys.argv[2])["choices"][0]["text"]
texts = [c["choices"][0]["text"] for c in sse(sys.argv[3])]
if "".join(texts) != plain or texts[0] != sys.argv[4]: fail("echo stream %r vs %r" % (texts, plain))' \
    "$TMP" "$TMP/e_plain.json" "$TMP/e_stream.txt" "$P" || fail "completion stream with echo, no logprobs"
cat >"$TMP/stop.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
ch = load(sys.argv[2])["choices"][0]
toks = ch["logprobs"]["tokens"]
if ch["finish_reason"] != "stop": fail("no stop string met: %r" % ch)
if not ch["text"].startswith("".join(toks[:-1])) or not "".join(toks).startswith(ch["text"]):
    fail("tokens %r against the text %r cut at its stop string" % (toks, ch["text"]))
EOF
check "logprobs with a stop string" "$TMP/stop.py" "$TMP" "$TMP/t_plain.json"

# ---- chat: logprobs true, top_logprobs 3; streamed the same -----------------------------
C='{"messages":[{"role":"user","content":"Hello there"}],"max_tokens":24,"temperature":0,"logprobs":true,"top_logprobs":3'
post "$URL_CHAT" /v1/chat/completions "$C}" "$TMP/chat.json"
[ "$code" = 200 ] || fail "chat logprobs: status $code: $(head -c 300 "$TMP/chat.json")"
post "$URL_CHAT" /v1/chat/completions "$C,\"stream\":true}" "$TMP/chat_stream.txt" -N
post "$URL_CHAT" /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"logprobs":false}' \
    "$TMP/chat_off.json"
cat >"$TMP/chat.py" <<'EOF'
import math, sys
sys.path.insert(0, sys.argv[1])
from lib import *
r = load(sys.argv[2])
ch = r["choices"][0]
content = ch["logprobs"]["content"]
if len(content) != r["usage"]["completion_tokens"]:
    fail("%d records for %d tokens" % (len(content), r["usage"]["completion_tokens"]))
def same_text(raw, text):
    """raw bytes vs the server's text: equal where raw is UTF-8, else up to
    its first bad byte (the server writes U+FFFD for bad bytes its own way)"""
    try:
        return raw.decode("utf-8") == text
    except UnicodeDecodeError as e:
        good = raw[:e.start].decode("utf-8")
        return text.startswith(good) and "\ufffd" in text[len(good):]
raw = b"".join(bytes(e["bytes"]) for e in content)
if not same_text(raw, ch["message"]["content"]):
    fail("the bytes %r do not make the content %r" % (raw, ch["message"]["content"]))
for i, e in enumerate(content):
    if set(e) != {"token", "logprob", "bytes", "top_logprobs"}: fail("record %d keys %r" % (i, sorted(e)))
    tops = e["top_logprobs"]
    vals = [t["logprob"] for t in tops]
    if len(tops) != 3 or vals != sorted(vals, reverse=True) or any(v > 0 for v in vals):
        fail("record %d: top_logprobs %r" % (i, tops))
    if sum(math.exp(v) for v in vals) > 1 + 1e-6: fail("record %d: probabilities sum over 1" % i)
    if e["logprob"] != vals[0] or tops[0]["bytes"] != e["bytes"]: fail("record %d: greedy token is not the top" % i)
    if not same_text(bytes(e["bytes"]), e["token"]): fail("record %d: token %r vs bytes %r" % (i, e["token"], e["bytes"]))
# streamed: the same records, each with the chunk of its text
rec, text = [], ""
for c in sse(sys.argv[3]):
    cc = c["choices"][0]
    text += cc["delta"].get("content", "")
    if cc["logprobs"] is not None: rec += cc["logprobs"]["content"]
if text != ch["message"]["content"] or rec != content: fail("the stream differs from the plain reply")
off = load(sys.argv[4])["choices"][0]
if "logprobs" not in off or off["logprobs"] is not None: fail("logprobs false: %r" % off)
EOF
check "chat logprobs" "$TMP/chat.py" "$TMP" "$TMP/chat.json" "$TMP/chat_stream.txt" "$TMP/chat_off.json"

# ---- tokens that are not UTF-8 on their own: completions' "bytes:\xNN" form ------------
# (a 4-byte character and CJK split over byte-level BPE tokens, echoed)
post "$URL_CHAT" /v1/completions '{"prompt":"Music: \ud834\udd1e \u6f22\u5b57!","max_tokens":0,"logprobs":3,"echo":true}' \
    "$TMP/bytes.json"
[ "$code" = 200 ] || fail "echo of split characters: status $code: $(head -c 300 "$TMP/bytes.json")"
cat >"$TMP/bytes.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
r = load(sys.argv[2])
toks = r["choices"][0]["logprobs"]["tokens"]
def raw(t):
    if not t.startswith("bytes:"): return t.encode()
    parts = t[6:].split("\\x")
    if parts[0] != "" or any(len(p) != 2 for p in parts[1:]): fail("bad bytes: token %r" % t)
    return bytes(int(p, 16) for p in parts[1:])
joined = b"".join(raw(t) for t in toks)
want = "Music: \U0001d11e \u6f22\u5b57!".encode()
if not joined.endswith(want) or joined[:-len(want)] not in (b"", b"<|begin_of_text|>"):
    fail("the tokens %r make %r" % (toks, joined))
if not any(t.startswith("bytes:") for t in toks): fail("no token in the bytes: form: %r" % toks)
if r["choices"][0]["text"] != "Music: \U0001d11e \u6f22\u5b57!": fail("echo text %r" % r["choices"][0]["text"])
# text_offset: a piece inside a character has that character's offset
offs = r["choices"][0]["logprobs"]["text_offset"]
if offs[-12:] != [7, 7, 7, 7, 8, 9, 9, 9, 10, 10, 10, 11] and "bytes:\\x9d" in toks:
    fail("text_offset of split characters: %r" % offs)
EOF
check "bytes: tokens" "$TMP/bytes.py" "$TMP" "$TMP/bytes.json"

# ---- bad values: 400 with OpenAI's error shape -------------------------------------------
bad() {  # bad URL PATH BODY: expects 400 invalid_request_error
    post "$1" "$2" "$3" "$TMP/bad.json"
    [ "$code" = 400 ] && grep -q '"type":"invalid_request_error","code":400' "$TMP/bad.json" ||
        fail "bad request $3: status $code: $(head -c 300 "$TMP/bad.json")"
}
M='"messages":[{"role":"user","content":"Hi"}]'
bad "$URL_CHAT" /v1/chat/completions "{$M,\"logprobs\":true,\"top_logprobs\":21}"
bad "$URL_CHAT" /v1/chat/completions "{$M,\"logprobs\":true,\"top_logprobs\":-1}"
bad "$URL_CHAT" /v1/chat/completions "{$M,\"logprobs\":true,\"top_logprobs\":1.5}"
bad "$URL_CHAT" /v1/chat/completions "{$M,\"top_logprobs\":2}"
bad "$URL_CHAT" /v1/chat/completions "{$M,\"logprobs\":false,\"top_logprobs\":2}"
bad "$URL_CHAT" /v1/chat/completions "{$M,\"logprobs\":1}"
bad "$URL_F16" /v1/completions '{"prompt":"a","logprobs":21}'
bad "$URL_F16" /v1/completions '{"prompt":"a","logprobs":-1}'
bad "$URL_F16" /v1/completions '{"prompt":"a","logprobs":"5"}'
bad "$URL_F16" /v1/completions '{"prompt":"a","echo":1}'
bad "$URL_F16" /v1/completions '{"prompt":["a","b"]}'
bad "$URL_CHAT" /v1/chat/completions "{$M,\"top_logprobs\":2}"
grep -q "'top_logprobs' needs 'logprobs' set to true" "$TMP/bad.json" ||
    fail "top_logprobs without logprobs: no clear message: $(cat "$TMP/bad.json")"

# ---- GET /slots ----------------------------------------------------------------------------
code=$(curl -s -o "$TMP/slots0.json" -w '%{http_code}' "$URL_CHAT/slots")
[ "$code" = 401 ] || fail "/slots without the API key: status $code"
code=$(curl -s -o "$TMP/slots0.json" -w '%{http_code}' "$URL_NOSLOTS/slots")
[ "$code" = 501 ] || fail "/slots with --no-slots: status $code"
code=$(curl -s -o "$TMP/slots1.json" -w '%{http_code}' "$URL_F16/slots")
[ "$code" = 200 ] || fail "/slots: status $code"
cat >"$TMP/slots_idle.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
s = load(sys.argv[2])
if len(s) != 2 or [x["id"] for x in s] != [0, 1]: fail("slots: %r" % s)
for x in s:
    if x["is_processing"] or x["state"] != "idle" or x["id_task"] != -1 or x["params"] is not None or x["n_ctx"] != 256:
        fail("an idle slot: %r" % x)
if max(x["n_cached"] for x in s) <= 0: fail("no slot has cached tokens after requests: %r" % s)
EOF
check "/slots idle" "$TMP/slots_idle.py" "$TMP" "$TMP/slots1.json"
# busy: a request long enough to be seen under any load (16,000 tokens on a
# model with a 16K context; the client leaves once /slots has shown it, and the
# server drops the request) while /slots is polled
$BN_EMULATOR "$BUILD/bitnet-synth" --preset small --ctx 16384 -o "$TMP/long.gguf" >/dev/null 2>&1 || fail "bitnet-synth failed"
serve_start busy -m "$TMP/long.gguf" -np 1 -t 1 --api-key "$KEY"
URL_BUSY="http://127.0.0.1:$SERVE_PORT"
curl -s -o "$TMP/long.json" -H 'Content-Type: application/json' -H "Authorization: Bearer $KEY" \
    -d '{"prompt":"The","max_tokens":16000,"temperature":0.7,"top_k":9,"seed":3,"ignore_eos":true,"logprobs":2}' \
    "$URL_BUSY/v1/completions" &
long=$!
busy=0
for _ in $(seq 1 400); do
    curl -s -H "Authorization: Bearer $KEY" "$URL_BUSY/slots" >"$TMP/slots2.json"
    if grep -q '"is_processing":true' "$TMP/slots2.json"; then busy=1; break; fi
    kill -0 $long 2>/dev/null || break
    sleep 0.05
done
kill $long 2>/dev/null
wait $long 2>/dev/null
if [ $busy = 1 ]; then
    cat >"$TMP/slots_busy.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
s = load(sys.argv[2])
run = [x for x in s if x["is_processing"]]
if len(run) != 1: fail("busy slots: %r" % s)
x = run[0]
p = x["params"]
if x["id_task"] < 1 or x["state"] not in ("prompt", "generating") or not p: fail("the busy slot: %r" % x)
if (p["top_k"], p["seed"], p["ignore_eos"], p["n_probs"], p["temperature"]) != (9, 3, True, 2, 0.7):
    fail("the busy slot's params: %r" % p)
EOF
    check "/slots busy" "$TMP/slots_busy.py" "$TMP" "$TMP/slots2.json"
else
    fail "/slots never showed the long request running: $(cat "$TMP/slots2.json")"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "cli_serve_logprobs: all passed"
