// Load on `bitnet serve` from N concurrent clients for a fixed time, with
// Node's built-in fetch only. Each client loops over a mix: plain and
// streamed completions, plain and streamed chat, and malformed requests
// (bad JSON, a wrong type, a wrong key, an unknown path, a bad chat) that
// must get their 4xx. Samples the server's RSS after the warm-up and at the
// end. Prints a table; exits 1 on any failed request or RSS growth past the
// limit.
// usage: node load.mjs URL API_KEY SERVER_PID SECONDS CLIENTS RSS_LIMIT_MB
import { readFileSync } from "node:fs";

const [url, key, pid, seconds, clients, rssLimitMb] = process.argv.slice(2);
const duration = Number(seconds) * 1000, nClients = Number(clients);
const warmup = Math.min(5000, duration / 4);

function rssKb() {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return m ? Number(m[1]) : NaN;
}

const auth = { "Content-Type": "application/json", Authorization: "Bearer " + key };
const prompts = ["Once upon a time", "The king", "ROMEO:", "What light", "To be, or not"];
// kind -> [requests, failures, tokens, ms]
const stats = {};
const count = (kind, ok, tokens, ms) => {
  const s = (stats[kind] ??= [0, 0, 0, 0]);
  s[0]++; s[1] += ok ? 0 : 1; s[2] += tokens; s[3] += ms;
};
const failures = [];

async function post(path, body, headers = auth) {
  return fetch(url + path, { method: "POST", headers, body, signal: AbortSignal.timeout(120000) });
}

// Reads an SSE stream: number of data chunks, whether it ended with [DONE].
async function readStream(res) {
  const text = await res.text();
  const events = text.split("\n\n").filter((e) => e.startsWith("data: "));
  const done = events.length > 0 && events[events.length - 1] === "data: [DONE]";
  const errors = events.filter((e) => e.includes('"error"'));
  return { chunks: events.length - 1, ok: done && errors.length === 0 };
}

const malformed = [
  () => post("/v1/completions", '{"prompt": "x",'),
  () => post("/v1/completions", '{"prompt":"x","temperature":"hot"}'),
  () => post("/v1/chat/completions", '{"messages":[{"role":"assistant","content":"x"}]}'),
  () => post("/v1/completions", '{"prompt":"x"}', { ...auth, Authorization: "Bearer wrong" }),
  () => fetch(url + "/v1/nothing", { headers: auth }),
];
const malformedStatus = [400, 400, 400, 401, 404];

async function one(i, n) {
  const prompt = prompts[n % prompts.length], max_tokens = 8 + (n % 4) * 8;
  const kind = ["completion", "completion", "stream", "chat", "chat stream", "malformed"][n % 6];
  // every other valid request asks for log-probabilities (completions: top 3, some with echo)
  const lp = Math.floor(n / 6) % 2 === 1;
  const t0 = Date.now();
  let ok = false, tokens = 0, why = "";
  try {
    if (kind === "malformed") {
      const m = n % malformed.length;
      const res = await malformed[m]();
      await res.text();
      ok = res.status === malformedStatus[m];
      why = `status ${res.status}, want ${malformedStatus[m]}`;
    } else if (kind === "completion" || kind === "chat") {
      const chat = kind === "chat";
      const res = await post(chat ? "/v1/chat/completions" : "/v1/completions", JSON.stringify(
        chat ? { messages: [{ role: "user", content: prompt }], max_tokens, seed: n,
                 ...(lp ? { logprobs: true, top_logprobs: 2 } : {}) }
             : { prompt, max_tokens, seed: n, ...(lp ? { logprobs: 3, echo: n % 4 === 1 } : {}) }));
      const body = await res.json();
      ok = res.status === 200 && body.usage && body.choices.length === 1 &&
           (!lp || (body.choices[0].logprobs !== null && typeof body.choices[0].logprobs === "object"));
      tokens = ok ? body.usage.completion_tokens : 0;
      why = `status ${res.status}: ${JSON.stringify(body).slice(0, 200)}`;
    } else {
      const chat = kind === "chat stream";
      const res = await post(chat ? "/v1/chat/completions" : "/v1/completions", JSON.stringify(
        chat ? { messages: [{ role: "user", content: prompt }], max_tokens, stream: true,
                 ...(lp ? { logprobs: true, top_logprobs: 2 } : {}) }
             : { prompt, max_tokens, stream: true, ...(lp ? { logprobs: 3 } : {}) }));
      const r = res.status === 200 ? await readStream(res) : { ok: false, chunks: 0 };
      ok = r.ok;
      tokens = r.chunks;            // about one chunk a token
      why = `status ${res.status}, stream not ended by [DONE]`;
    }
  } catch (e) {
    why = String(e);
  }
  count(kind, ok, tokens, Date.now() - t0);
  if (!ok && failures.length < 10) failures.push(`client ${i} ${kind}: ${why}`);
}

// The server's own count of generated tokens (streams are counted in chunks here).
async function tokensPredicted() {
  const text = await (await fetch(url + "/metrics", { headers: auth })).text();
  return Number(text.match(/^bitnet_tokens_predicted_total (\d+)/m)[1]);
}

const tokens0 = await tokensPredicted();
const start = Date.now();
let rssWarm = NaN, rssPeak = 0;
const sampler = setInterval(() => {
  const r = rssKb();
  rssPeak = Math.max(rssPeak, r);
  if (Number.isNaN(rssWarm) && Date.now() - start >= warmup) rssWarm = r;
}, 200);
const rssStart = rssKb();
await Promise.all(Array.from({ length: nClients }, async (_, i) => {
  for (let n = i; Date.now() - start < duration; n += nClients) await one(i, n);
}));
clearInterval(sampler);
const elapsed = (Date.now() - start) / 1000;
const rssEnd = rssKb();
const tokens = (await tokensPredicted()) - tokens0;

const pad = (s, w) => String(s).padStart(w);
console.log(`${nClients} clients, ${elapsed.toFixed(1)} s`);
console.log("kind          requests  failed  tokens* mean ms    (*streams: chunks)");
let total = [0, 0, 0];
for (const [kind, [n, f, t, ms]] of Object.entries(stats)) {
  console.log(`${kind.padEnd(12)} ${pad(n, 9)} ${pad(f, 7)} ${pad(t, 7)} ${pad((ms / n).toFixed(0), 8)}`);
  total = [total[0] + n, total[1] + f, total[2] + t];
}
console.log(`${"all".padEnd(12)} ${pad(total[0], 9)} ${pad(total[1], 7)} ${pad(total[2], 7)}`);
console.log(`requests/s: ${(total[0] / elapsed).toFixed(1)}, generated tokens (server's count): ${tokens}, ` +
            `${(tokens / elapsed).toFixed(1)}/s`);
const mb = (kb) => (kb / 1024).toFixed(1);
console.log(`server RSS MB: start ${mb(rssStart)}, after warm-up ${mb(rssWarm)}, peak ${mb(rssPeak)}, end ${mb(rssEnd)}`);
for (const f of failures) console.error("FAIL: " + f);
let bad = total[1] > 0;
if (rssEnd - rssWarm > Number(rssLimitMb) * 1024) {
  console.error(`FAIL: RSS grew ${mb(rssEnd - rssWarm)} MB after the warm-up (limit ${rssLimitMb} MB)`);
  bad = true;
}
process.exit(bad ? 1 : 0);
