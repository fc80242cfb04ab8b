// Drives the chat page of `bitnet serve` in headless Chromium (playwright-core
// with the system browser): types two messages, waits for each streamed reply,
// and checks it equals the same conversation asked without streaming.
// usage: BN_NODE_DIR=DIR node chat_page_browser.mjs URL API_KEY CHROMIUM
import { createRequire } from "node:module";
import { resolve } from "node:path";

const require = createRequire(resolve(process.env.BN_NODE_DIR) + "/");
const { chromium } = require("playwright-core");
const [url, key, executablePath] = process.argv.slice(2);

let failures = 0;
const fail = (msg) => { console.error("FAIL: " + msg); failures++; };

// The reference: the same conversation, greedy, without streaming.
async function plainReply(messages) {
  const res = await fetch(url + "/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
    body: JSON.stringify({ messages, max_tokens: 16, temperature: 0 }),
  });
  return (await res.json()).choices[0].message.content;
}

// --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => fail("page error: " + e.message));
  let expect401 = false;             // the browser logs the 401 of the wrong-key check
  page.on("console", (m) => {
    if (m.type() === "error" && !(expect401 && m.text().includes("401"))) fail("console error: " + m.text());
  });
  const streamed = [];
  page.on("response", (r) => {
    if (r.url().endsWith("/v1/chat/completions")) streamed.push(r.headers()["content-type"]);
  });
  await page.goto(url + "/");
  await page.fill("#key", key);
  await page.dispatchEvent("#key", "change");
  await page.fill("#max", "16");
  await page.fill("#temp", "0");

  const history = [];
  for (const [i, text] of ["Hello", "Tell me more"].entries()) {
    await page.fill("#input", text);
    await page.press("#input", "Enter");
    const done = page.locator(".msg.assistant[data-state=done]").nth(i);
    await done.waitFor({ timeout: 60000 });
    const reply = await done.textContent();
    history.push({ role: "user", content: text });
    const want = await plainReply(history);
    history.push({ role: "assistant", content: want });
    if (!reply) fail(`turn ${i + 1}: empty reply`);
    if (reply !== want) fail(`turn ${i + 1}: page shows ${JSON.stringify(reply)}, server says ${JSON.stringify(want)}`);
    else console.log(`turn ${i + 1}: ${JSON.stringify(reply)}`);
  }
  if ((await page.locator(".msg.error").count()) !== 0) fail("the page shows an error");
  if (streamed.length !== 2 || !streamed.every((t) => t && t.startsWith("text/event-stream")))
    fail("replies were not streamed: " + JSON.stringify(streamed));
  // A wrong key shows the server's message on the page.
  expect401 = true;
  await page.fill("#key", "wrong");
  await page.fill("#input", "Hello");
  await page.press("#input", "Enter");
  await page.locator(".msg.error").first().waitFor({ timeout: 30000 });
  const err = await page.locator(".msg.error").first().textContent();
  if (!err.includes("invalid API key")) fail("wrong key: page shows " + JSON.stringify(err));
} finally {
  await browser.close();
}
if (failures) process.exit(1);
console.log("chat page: all passed");
