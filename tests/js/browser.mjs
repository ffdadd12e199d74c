// Drive the useStream page in headless Debian Chromium: send, reload mid-run, reconnect.
// Usage: node browser.mjs PAGE_URL API_URL   (PAGE_URL is served from another origin)
// Prints one JSON line with what it saw and exits non-zero when a check fails.
import assert from "node:assert/strict";
import { open } from "./chromium.mjs";

const [pageUrl, apiUrl] = process.argv.slice(2);
if (!pageUrl || !apiUrl) {
  console.error("usage: node browser.mjs PAGE_URL API_URL");
  process.exit(2);
}
const REPLY = Array.from({ length: 60 }, (_, i) => `w${i}`).join(" ");
const TIMEOUT = 45_000;

const { page, problems, close } = await open({ timeout: TIMEOUT });
const rejoins = [];
try {
  page.on("request", (req) => {
    if (req.method() === "GET" && /\/runs\/[0-9a-f-]{36}\/stream/.test(req.url())) {
      rejoins.push({ url: req.url(), lastEventId: req.headers()["last-event-id"] ?? null });
    }
  });
  const url = `${pageUrl}?${new URLSearchParams({ api: apiUrl, reply: REPLY, delay: "0.1" })}`;
  await page.goto(url);
  await page.click("#send");

  // 1. tokens arrive one by one while the run goes on
  const ai = page.locator('#messages li[data-type="ai"]');
  await page.waitForFunction(() => window.__berth.aiLengths.length >= 3);
  const partialBefore = await ai.last().textContent();
  assert.ok(partialBefore.length < REPLY.length, "the answer was not streamed");
  const threadId = await page.locator("#status").getAttribute("data-thread");
  assert.match(threadId, /^[0-9a-f-]{36}$/);
  const runId = await page.evaluate(
    (tid) => window.sessionStorage.getItem(`lg:stream:${tid}`),
    threadId,
  );
  assert.match(runId ?? "", /^[0-9a-f-]{36}$/, "useStream did not store the run for reconnect");

  // 2. reload in the middle of the run: the hook rejoins the same run
  await page.reload();
  const runAtReload = await (await fetch(`${apiUrl}/threads/${threadId}/runs/${runId}`)).json();
  assert.equal(runAtReload.status, "running", "the run ended before the page came back");
  await page.waitForFunction(() => window.__berth.aiLengths.length >= 1);
  await page.waitForFunction(
    (reply) => {
      const items = document.querySelectorAll('#messages li[data-type="ai"]');
      const loading = document.querySelector("#status")?.dataset.loading;
      return items.length && items[items.length - 1].textContent === reply && loading === "false";
    },
    REPLY,
  );
  const lengthsAfterReload = await page.evaluate(() => window.__berth.aiLengths);
  // the reloaded page streamed (the run was still going), growing the answer token by token
  assert.ok(await page.evaluate(() => window.__berth.wasLoading), "never streamed after reload");
  assert.ok(lengthsAfterReload.length >= 3, JSON.stringify(lengthsAfterReload));
  const messages = await page.$$eval("#messages li", (els) =>
    els.map((e) => [e.dataset.type, e.textContent]),
  );
  assert.deepEqual(messages, [
    ["human", "hi"],
    ["ai", REPLY],
  ]);
  assert.ok(
    rejoins.some((r) => r.url.includes(runId)),
    `no join-stream request for run ${runId}: ${JSON.stringify(rejoins)}`,
  );
  assert.equal(await page.locator("#error").count(), 0);

  // 3. the server agrees: one run, finished, and the thread holds the whole answer
  const runs = await (await fetch(`${apiUrl}/threads/${threadId}/runs`)).json();
  assert.deepEqual(
    runs.map((r) => [r.run_id, r.status]),
    [[runId, "success"]],
  );
  const state = await (await fetch(`${apiUrl}/threads/${threadId}/state`)).json();
  assert.equal(state.values.messages.at(-1).content, REPLY);
  assert.deepEqual(problems, []);
  console.log(
    JSON.stringify({
      ok: true,
      threadId,
      runId,
      partialBefore,
      lengthsAfterReload: lengthsAfterReload.length,
      rejoins,
    }),
  );
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err), problems, rejoins }));
  process.exitCode = 1;
} finally {
  await close();
}
