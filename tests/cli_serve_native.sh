#!/usr/bin/env bash
# `bitnet serve`'s llama-server native API, POST /completion: the text
# equals /v1/completions' for the same seed and parameters (seeded,
# greedy, token-id prompts, stop words); the summary fields (stop causes,
# counts, generation_settings, timings); streamed events with "stop":false
# then one "stop":true summary and no [DONE]; n_probs records (shape,
# probabilities in [0,1] sorted and summing to at most 1, the greedy ones
# a softmax of the top logits of `bitnet logits`); n_predict 0 and -1;
# id_slot; bad fields 400; the API key. Skipped (77) without curl or
# python3. Whole run: a few seconds.
# usage: bash cli_serve_native.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/lib_cli.sh" "$@"
. "$SRC/tests/serve/lib_serve.sh"
command -v curl >/dev/null || { echo "skipped: curl not found"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: python3 not found"; exit 77; }

TINY="$SRC/models/tiny-shakespeare.gguf"
[ -f "$TINY" ] || { echo "FAIL: $TINY is missing" >&2; exit 1; }
KEY=native-key-789

serve_start native -m "$TINY" -np 2 -t 1 --head f16
URL="http://127.0.0.1:$SERVE_PORT"
serve_start keyed -m "$TINY" -np 1 -t 1 --api-key "$KEY"
URL_KEY="http://127.0.0.1:$SERVE_PORT"

# post NAME PATH BODY [curl args]: the body to $TMP/NAME.json, status in $code
post() {
    local name=$1 path=$2 body=$3
    shift 3
    code=$(curl -s -o "$TMP/$name.json" -w '%{http_code}' -H 'Content-Type: application/json' "$@" \
        -d "$body" "$URL$path")
}
ok() {  # ok NAME: the request answered 200
    [ "$code" = 200 ] || fail "$1: status $code: $(head -c 300 "$TMP/$1.json")"
}

cat >"$TMP/lib.py" <<'EOF'
import json, math, struct, sys

def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))

def events(path):
    """The JSON objects of a native SSE stream (no [DONE] allowed)."""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line == "data: [DONE]":
            fail("the native stream sent [DONE]")
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
        elif line:
            fail("unexpected line in the stream: %r" % line)
    return out

def fail(msg):
    print(msg)
    sys.exit(1)

def same_text(native, openai, what):
    a = load(native)["content"]
    b = load(openai)["choices"][0]["text"]
    if a != b:
        fail("%s: native %r, /v1/completions %r" % (what, a, b))
EOF

cat >"$TMP/same.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
same_text(sys.argv[2], sys.argv[3], sys.argv[4])
EOF

# ---- the text equals /v1/completions' ------------------------------------------------
P="ROMEO:"
for params in '"seed":3' '"seed":11,"temperature":1.2,"top_k":0,"top_p":0.9,"min_p":0' \
              '"temperature":0' '"seed":5,"repeat_penalty":1.3,"repeat_last_n":16,"presence_penalty":0.5'; do
    post n /completion "{\"prompt\":\"$P\",\"n_predict\":24,$params}"
    ok "native $params"
    post o /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":24,$params}"
    ok "openai $params"
    check "same text ($params)" "$TMP/same.py" "$TMP" "$TMP/n.json" "$TMP/o.json" "$params"
done

# the summary fields of a length-limited seeded request
post sum /completion "{\"prompt\":\"$P\",\"n_predict\":8,\"seed\":3,\"top_k\":20}"
ok summary
cat >"$TMP/summary.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
r = load(sys.argv[2])
want = {"stop": True, "tokens_predicted": 8, "tokens_evaluated": 3, "truncated": False, "stopped_eos": False,
        "stopped_word": False, "stopped_limit": True, "stopping_word": "", "prompt": "ROMEO:", "index": 0}
for k, v in want.items():
    if r.get(k) != v: fail("%s: %r, expected %r" % (k, r.get(k), v))
for k in ("content", "model", "tokens_cached", "id_slot", "timings", "generation_settings"):
    if k not in r: fail("no %s" % k)
if "completion_probabilities" in r: fail("completion_probabilities without n_probs")
g = r["generation_settings"]
for k, v in {"seed": 3, "seed_cur": 3, "top_k": 20, "max_tokens": 8, "n_ctx": 256, "n_probs": 0,
             "stream": False, "ignore_eos": False, "stop": []}.items():
    if g.get(k) != v: fail("generation_settings.%s: %r, expected %r" % (k, g.get(k), v))
t = r["timings"]
if set(t) != {"cache_n", "prompt_n", "prompt_ms", "prompt_per_second", "predicted_n", "predicted_ms",
              "predicted_per_second"}:
    fail("timings: %r" % t)
if t["predicted_n"] != 8 or t["cache_n"] + t["prompt_n"] != 3: fail("timings counts: %r" % t)
if not 3 + 7 <= r["tokens_cached"] <= 3 + 8: fail("tokens_cached %r" % r["tokens_cached"])
EOF
check "summary fields" "$TMP/summary.py" "$TMP" "$TMP/sum.json"

# a prompt of token ids (no BOS added), echoed back as ids
post ids /tokenize "{\"content\":\"$P\",\"add_special\":true}"
ids=$(python3 -c 'import json,sys; print(",".join(map(str, json.load(open(sys.argv[1]))["tokens"])))' "$TMP/ids.json")
post n /completion "{\"prompt\":[$ids],\"n_predict\":12,\"seed\":9}"
ok "native ids"
post o /v1/completions "{\"prompt\":[$ids],\"max_tokens\":12,\"seed\":9}"
ok "openai ids"
check "same text (ids)" "$TMP/same.py" "$TMP" "$TMP/n.json" "$TMP/o.json" ids
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["prompt"]; sys.exit(p != [int(x) for x in sys.argv[2].split(",")])' \
    "$TMP/n.json" "$ids" || fail "ids: the prompt is not echoed as ids: $(head -c 300 "$TMP/n.json")"
post n /completion "{\"prompt\":[\"$P\"],\"n_predict\":12,\"seed\":9}"
ok "native [string]"
check "[string] is the string" "$TMP/same.py" "$TMP" "$TMP/n.json" "$TMP/o.json" '["string"]'

# ---- stop words ------------------------------------------------------------------------
post g /completion "{\"prompt\":\"$P\",\"n_predict\":40,\"temperature\":0}"
ok greedy
word=$(python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))["content"]
w = t[len(t) // 2:len(t) // 2 + 3]
print(w if w.strip() and "\"" not in w and "\\" not in w else "")' "$TMP/g.json")
if [ -z "$word" ]; then
    fail "stop: no plain word in the greedy text: $(head -c 300 "$TMP/g.json")"
else
    post n /completion "{\"prompt\":\"$P\",\"n_predict\":40,\"temperature\":0,\"stop\":[\"zzzq\",\"$word\"]}"
    ok "native stop"
    post o /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":40,\"temperature\":0,\"stop\":[\"zzzq\",\"$word\"]}"
    ok "openai stop"
    check "same text (stop)" "$TMP/same.py" "$TMP" "$TMP/n.json" "$TMP/o.json" stop
    cat >"$TMP/stop.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
g, r, w = load(sys.argv[2])["content"], load(sys.argv[3]), sys.argv[4]
if r["content"] != g[:g.index(w)]: fail("content %r, expected the greedy text up to %r" % (r["content"], w))
if not r["stopped_word"] or r["stopping_word"] != w or r["stopped_limit"] or r["stopped_eos"]:
    fail("stop flags: %r" % {k: r[k] for k in ("stopped_word", "stopping_word", "stopped_limit", "stopped_eos")})
if r["generation_settings"]["stop"] != ["zzzq", w]: fail("settings stop: %r" % r["generation_settings"]["stop"])
EOF
    check "stop word" "$TMP/stop.py" "$TMP" "$TMP/g.json" "$TMP/n.json" "$word"
fi

# ---- streamed: the same text in events, then the summary, no [DONE] -------------------
post plain /completion "{\"prompt\":\"$P\",\"n_predict\":20,\"seed\":4,\"n_probs\":3}"
ok "plain for stream"
post stream /completion "{\"prompt\":\"$P\",\"n_predict\":20,\"seed\":4,\"n_probs\":3,\"stream\":true}" -N
ok stream
cat >"$TMP/stream.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
plain, ev = load(sys.argv[2]), events(sys.argv[3])
if len(ev) < 2: fail("%d events" % len(ev))
*parts, last = ev
for e in parts:
    if e.get("stop") is not False or "content" not in e or "tokens_predicted" in e:
        fail("a partial event: %r" % e)
text = "".join(e["content"] for e in parts)
if text != plain["content"]: fail("streamed %r, plain %r" % (text, plain["content"]))
if last.get("stop") is not True or last.get("content") != "": fail("last event: %r" % last)
for k in ("tokens_predicted", "tokens_evaluated", "stopped_limit", "timings", "generation_settings"):
    if last.get(k) != plain[k] and k not in ("timings", "generation_settings"): fail("last %s: %r vs %r" % (k, last.get(k), plain[k]))
if last["generation_settings"]["stream"] is not True: fail("settings stream")
recs = [r for e in parts for r in e.get("completion_probabilities", [])]
if recs != plain["completion_probabilities"]: fail("streamed records differ from the plain ones")
if last["completion_probabilities"] != plain["completion_probabilities"]: fail("the last event's records differ")
EOF
check "streamed" "$TMP/stream.py" "$TMP" "$TMP/plain.json" "$TMP/stream.json"

# ---- n_probs: shape and values ---------------------------------------------------------
cat >"$TMP/probs.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
r, n, greedy = load(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
cp = r["completion_probabilities"]
if len(cp) != r["tokens_predicted"] or not cp: fail("%d records, %d tokens" % (len(cp), r["tokens_predicted"]))
text = ""
for i, rec in enumerate(cp):
    ps = rec["probs"]
    if set(rec) != {"content", "probs"} or len(ps) != n: fail("record %d: %r" % (i, rec))
    vals = [p["prob"] for p in ps]
    if any(not (0 <= v <= 1) for v in vals): fail("record %d: a probability out of [0,1]: %r" % (i, vals))
    if vals != sorted(vals, reverse=True): fail("record %d: not sorted: %r" % (i, vals))
    if sum(vals) > 1 + 1e-5: fail("record %d: sum %r > 1" % (i, sum(vals)))
    chosen = [p for p in ps if p["tok_str"] == rec["content"] and p["prob"] > 0]
    if greedy:
        if ps[0]["tok_str"] != rec["content"] or vals[0] <= 0: fail("record %d: greedy %r is not first in %r" % (i, rec["content"], ps))
        if abs(sum(vals) - 1) > 1e-5: fail("record %d: greedy probabilities sum to %r" % (i, sum(vals)))
    elif not chosen and vals[-1] == 0:     # a 0: every candidate of the draw is listed
        fail("record %d: %r drawn but not among %r" % (i, rec["content"], ps))
    text += rec["content"]
if not r["stopped_eos"] and text != r["content"]: fail("the records' tokens %r are not the text %r" % (text, r["content"]))
EOF
post pg /completion "{\"prompt\":\"$P\",\"n_predict\":16,\"temperature\":0,\"n_probs\":5}"
ok "n_probs greedy"
check "n_probs greedy" "$TMP/probs.py" "$TMP" "$TMP/pg.json" 5 1
post ps /completion "{\"prompt\":\"$P\",\"n_predict\":16,\"seed\":8,\"n_probs\":4,\"top_k\":10}"
ok "n_probs sampled"
check "n_probs sampled" "$TMP/probs.py" "$TMP" "$TMP/ps.json" 4 0
post po /v1/completions "{\"prompt\":\"$P\",\"max_tokens\":16,\"seed\":8,\"top_k\":10}"
check "same text (n_probs)" "$TMP/same.py" "$TMP" "$TMP/ps.json" "$TMP/po.json" n_probs
# the draw's candidates, all listed (top-k 3, no top-p/min-p, temperature 1): the
# probabilities sum to 1, and the first token's are a softmax of the top 3 logits
post pk /completion "{\"prompt\":\"$P\",\"n_predict\":4,\"seed\":2,\"n_probs\":3,\"top_k\":3,\"top_p\":1,\"min_p\":0,\"temperature\":1}"
ok "n_probs top_k 3"
$BN_EMULATOR "$BIN" logits -m "$TINY" --head f16 -p "$P" -o "$TMP/last.bin" -t 1 2>/dev/null ||
    fail "bitnet logits failed"
cat >"$TMP/vs_logits.py" <<'EOF'
import math, struct, sys
sys.path.insert(0, sys.argv[1])
from lib import *
def softmax_top(path, k):
    data = open(path, "rb").read()
    row = struct.unpack("<%df" % (len(data) // 4), data)[-2048:]
    top = sorted(range(len(row)), key=lambda i: (-row[i], i))[:k]
    m = row[top[0]]
    e = [math.exp(row[i] - m) for i in top]
    return [x / sum(e) for x in e]
for name in sys.argv[3:]:
    r = load(name)
    got = [p["prob"] for p in r["completion_probabilities"][0]["probs"]]
    ref = softmax_top(sys.argv[2], len(got))
    if any(abs(a - b) > 1e-5 for a, b in zip(got, ref)): fail("%s: first record %r, bitnet logits %r" % (name, got, ref))
    for i, rec in enumerate(r["completion_probabilities"]):
        if abs(sum(p["prob"] for p in rec["probs"]) - 1) > 1e-5: fail("%s: record %d does not sum to 1" % (name, i))
EOF
check "n_probs vs bitnet logits" "$TMP/vs_logits.py" "$TMP" "$TMP/last.bin" "$TMP/pg.json" "$TMP/pk.json"

# ---- n_predict 0 and -1, ignore_eos to a full context, id_slot -------------------------
post z /completion "{\"prompt\":\"$P\",\"n_predict\":0}"
ok "n_predict 0"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(not (r["content"]=="" and r["tokens_predicted"]==0 and r["stopped_limit"]))' \
    "$TMP/z.json" || fail "n_predict 0: $(head -c 400 "$TMP/z.json")"
post full /completion "{\"prompt\":\"$P\",\"n_predict\":-1,\"ignore_eos\":true,\"seed\":1,\"id_slot\":1}"
ok "n_predict -1"
cat >"$TMP/full.py" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
from lib import *
r = load(sys.argv[2])
if not (r["truncated"] and r["stopped_limit"] and not r["stopped_eos"]): fail("flags: %r" % r)
if r["tokens_cached"] != 256 or r["tokens_evaluated"] + r["tokens_predicted"] != 257:
    fail("a full context of 256: cached %r, %r + %r" % (r["tokens_cached"], r["tokens_evaluated"], r["tokens_predicted"]))
if r["id_slot"] != 1 or r["generation_settings"]["max_tokens"] != -1: fail("id_slot %r, max_tokens %r" % (r["id_slot"], r["generation_settings"]["max_tokens"]))
EOF
check "n_predict -1" "$TMP/full.py" "$TMP" "$TMP/full.json"
post e /completion "{\"prompt\":\"$P\",\"n_predict\":-1,\"seed\":6}"
ok "n_predict -1 until the end"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(not (r["stopped_eos"] or r["truncated"]))' \
    "$TMP/e.json" || fail "n_predict -1: neither end nor a full context: $(head -c 400 "$TMP/e.json")"
# ignored as llama-server ignores them: n_keep, an empty grammar, mirostat 0, unknown fields
post ign /completion "{\"prompt\":\"$P\",\"n_predict\":4,\"n_keep\":5,\"grammar\":\"\",\"mirostat\":0,\"whatever\":1,\"samplers\":[\"top_k\",\"tfs_z\",\"typical_p\",\"top_p\",\"min_p\",\"temperature\"]}"
ok "ignored fields"

# ---- bad requests: 400 with the JSON error object --------------------------------------
bad() {  # bad NAME BODY
    post bad /completion "$2"
    [ "$code" = 400 ] || fail "$1: status $code, expected 400: $(head -c 300 "$TMP/bad.json")"
    grep -q '"error":{"message":' "$TMP/bad.json" || fail "$1: no error object: $(head -c 300 "$TMP/bad.json")"
}
bad "no prompt" '{"n_predict":4}'
bad "two prompts" '{"prompt":["a","b"]}'
bad "mixed prompt" '{"prompt":[1,"a"]}'
bad "bad id" '{"prompt":[999999]}'
bad "n_probs 21" '{"prompt":"a","n_probs":21}'
bad "n_probs string" '{"prompt":"a","n_probs":"3"}'
bad "n_predict -2" '{"prompt":"a","n_predict":-2}'
bad "id_slot 2" '{"prompt":"a","id_slot":2}'
bad "grammar" '{"prompt":"a","grammar":"root ::= \"x\""}'
bad "json_schema" '{"prompt":"a","json_schema":{"type":"string"}}'
bad "mirostat" '{"prompt":"a","mirostat":2}'
bad "logit_bias" '{"prompt":"a","logit_bias":[[15,false]]}'
bad "tfs_z" '{"prompt":"a","tfs_z":0.5}'
bad "samplers order" '{"prompt":"a","samplers":["temperature","top_k","top_p","min_p"]}'
bad "penalize_nl" '{"prompt":"a","penalize_nl":false,"repeat_penalty":1.1}'
bad "temperature" '{"prompt":"a","temperature":"hot"}'
bad "stop" '{"prompt":"a","stop":[1]}'
bad "json" '{"prompt":'
code=$(curl -s -o "$TMP/get.json" -w '%{http_code}' "$URL/completion")
[ "$code" = 405 ] || fail "GET /completion: status $code, expected 405"

# ---- the API key applies -----------------------------------------------------------------
URL=$URL_KEY
post k1 /completion "{\"prompt\":\"$P\",\"n_predict\":2}"
[ "$code" = 401 ] || fail "no key: status $code, expected 401"
post k2 /completion "{\"prompt\":\"$P\",\"n_predict\":2}" -H "Authorization: Bearer wrong"
[ "$code" = 401 ] || fail "wrong key: status $code, expected 401"
post k3 /completion "{\"prompt\":\"$P\",\"n_predict\":2}" -H "Authorization: Bearer $KEY"
ok "with the key"

[ "$failures" = 0 ] || exit 1
echo "cli_serve_native: ok"
