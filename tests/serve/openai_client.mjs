// The official `openai` npm package against `bitnet serve`: a chat
// completion, a streamed one, a completion, a streamed completion, the model
// list and an authentication error, each checked against the server's own
// greedy answers (fetched here without the client), and chat logprobs.
// usage: BN_NODE_DIR=DIR node openai_client.mjs URL API_KEY
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(resolve(process.env.BN_NODE_DIR) + "/");
const OpenAI = require("openai");
const [url, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: url + "/v1", apiKey, maxRetries: 0 });

let failures = 0;
const fail = (msg) => { console.error("FAIL: " + msg); failures++; };
const check = (name, got, want) => {
  if (got !== want) fail(`${name}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  else console.log(`${name}: ok`);
};
async function raw(path, body) {
  const res = await fetch(url + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + apiKey },
    body: JSON.stringify(body),
  });
  return res.json();
}

const messages = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello" }];
const chatWant = (await raw("/v1/chat/completions", { messages, max_tokens: 12, temperature: 0 }))
  .choices[0].message.content;
const prompt = "Once upon a time";
const textWant = (await raw("/v1/completions", { prompt, max_tokens: 12, temperature: 0 })).choices[0].text;

const models = await client.models.list();
check("models.list", models.data.length >= 1 && typeof models.data[0].id, "string");
const model = models.data[0].id;

const chat = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
check("chat.completions.create", chat.choices[0].message.content, chatWant);
check("chat usage", chat.usage.completion_tokens > 0, true);

const stream = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0, stream: true });
let streamed = "", chunks = 0, finish = null;
for await (const chunk of stream) {
  chunks++;
  streamed += chunk.choices[0]?.delta?.content ?? "";
  finish = chunk.choices[0]?.finish_reason ?? finish;
}
check("chat.completions.create stream", streamed, chatWant);
check("chat stream chunks > 1", chunks > 1, true);
check("chat stream finish_reason", finish !== null, true);

// logprobs as the client types them: the greedy token is the first of its alternatives
const lp = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0,
                                                  logprobs: true, top_logprobs: 3 });
const content = lp.choices[0].logprobs?.content ?? [];
check("chat logprobs: one per token", content.length, lp.usage.completion_tokens);
check("chat logprobs: greedy is the top", content.every((t) => t.top_logprobs.length === 3 &&
      t.top_logprobs[0].logprob === t.logprob && t.logprob <= 0), true);
try {
  await client.chat.completions.create({ model, messages, top_logprobs: 3 });
  fail("top_logprobs without logprobs was accepted");
} catch (e) {
  check("top_logprobs without logprobs: BadRequestError", e instanceof OpenAI.BadRequestError, true);
}

const comp = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0 });
check("completions.create", comp.choices[0].text, textWant);

const cstream = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, stream: true });
let ctext = "";
for await (const chunk of cstream) ctext += chunk.choices[0]?.text ?? "";
check("completions.create stream", ctext, textWant);

try {
  await new OpenAI({ baseURL: url + "/v1", apiKey: "wrong", maxRetries: 0 }).models.list();
  fail("a wrong key was accepted");
} catch (e) {
  check("wrong key: AuthenticationError", e instanceof OpenAI.AuthenticationError, true);
}
try {
  await client.completions.create({ model, prompt, temperature: "hot" });
  fail("a bad request was accepted");
} catch (e) {
  check("bad request: BadRequestError", e instanceof OpenAI.BadRequestError && e.status === 400, true);
}

if (failures) process.exit(1);
console.log("openai client: all passed");
