// Drive Berth's chat UI (ui/, `make ui`) in headless Debian Chromium against a real Berth
// serving the example agent (examples/agent, offline model): send a message, watch the
// answer stream in, approve the refund interrupt, reload and find the thread with its history.
// Usage: node ui_browser.mjs PAGE_URL API_URL [SCREENSHOT_DIR]
// Prints one JSON line with what it saw and exits non-zero when a check fails.
import assert from "node:assert/strict";
import { join } from "node:path";
import { open } from "./chromium.mjs";

const [pageUrl, apiUrl, shots] = process.argv.slice(2);
if (!pageUrl || !apiUrl) {
  console.error("usage: node ui_browser.mjs PAGE_URL API_URL [SCREENSHOT_DIR]");
  process.exit(2);
}
const TIMEOUT = 45_000;
const api = async (path) => {
  const res = await fetch(`${apiUrl}${path}`);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
};
const uiMessages = (page) =>
  page.$$eval("#messages li", (els) =>
    els.map((e) => [e.dataset.type, e.firstChild?.nodeType === 3 ? e.firstChild.data : ""]),
  );
const serverMessages = (state) =>
  state.values.messages.map((m) => [m.type, typeof m.content === "string" ? m.content : ""]);
const shoot = async (page, name) => {
  if (shots) await page.screenshot({ path: join(shots, name) });
};

const { page, problems, close } = await open({
  timeout: TIMEOUT,
  viewport: { width: 1000, height: 560 },
});
try {
  await page.goto(`${pageUrl}?${new URLSearchParams({ api: apiUrl, assistant: "agent" })}`);

  // 1. a question the agent answers with a tool (calculator), streamed word by word
  await page.fill("#input", "What is 12 * (3 + 4)?");
  await page.click("#send");
  const threadId = await page
    .waitForFunction(() => document.querySelector("#status")?.dataset.thread || null)
    .then((h) => h.jsonValue());
  assert.match(threadId, /^[0-9a-f-]{36}$/);
  assert.equal(new URL(page.url()).searchParams.get("thread"), threadId, "thread id not in URL");
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll('#messages li[data-type="ai"]')];
    const loading = document.querySelector("#status")?.dataset.loading;
    return items.some((li) => li.textContent.startsWith("Worked out:")) && loading === "false";
  });
  const grew = await page.evaluate(() => window.__berthUi.aiLengths);
  // the answer appeared in several steps while the run went on: it was streamed
  assert.ok(grew.length >= 3, `answer did not stream: lengths ${JSON.stringify(grew)}`);
  const first = await api(`/threads/${threadId}/state`);
  assert.equal(first.values.messages.at(-1).content, "Worked out: 12 * (3 + 4) = 84");
  assert.deepEqual(await uiMessages(page), serverMessages(first));

  // 2. a refund: the run stops at the interrupt; the UI shows it with Approve / Reject
  await page.fill("#input", "Please refund order A-1002");
  await page.click("#send");
  await page.waitForSelector("#interrupt #approve");
  const paused = await api(`/threads/${threadId}`);
  assert.equal(paused.status, "interrupted");
  const question = await page.locator("#interrupt pre").textContent();
  assert.match(question, /Allow issue_refund/);
  await shoot(page, "ui-interrupt.png");
  const runsBefore = await api(`/threads/${threadId}/runs`);
  await page.click("#approve");
  // mid-stream: the answer to the resumed run is partly there while the run goes on
  const partial = await page
    .waitForFunction(() => {
      const last = [...document.querySelectorAll('#messages li[data-type="ai"]')].at(-1);
      const loading = document.querySelector("#status")?.dataset.loading;
      const text = last?.textContent ?? "";
      return loading === "true" && text.startsWith("Done, the refund went") ? text : null;
    })
    .then((h) => h.jsonValue());
  await shoot(page, "ui-streaming.png");
  await page.waitForFunction(() => {
    const items = [...document.querySelectorAll('#messages li[data-type="ai"]')];
    const loading = document.querySelector("#status")?.dataset.loading;
    return (
      items.at(-1)?.textContent.startsWith("Done, the refund went through.") &&
      loading === "false"
    );
  });
  assert.equal(await page.locator("#interrupt").count(), 0, "interrupt still shown");
  const done = await api(`/threads/${threadId}/state`);
  assert.deepEqual(done.next, []);
  assert.match(done.values.messages.at(-1).content, /^Done, the refund went through\. Refund RF-A-1002/);
  assert.deepEqual(await uiMessages(page), serverMessages(done));
  assert.ok(partial.length < done.values.messages.at(-1).content.length, `not streamed: ${partial}`);
  const runs = await api(`/threads/${threadId}/runs`);
  assert.equal(runs.length, runsBefore.length + 1, "Approve did not start one resume run");
  assert.ok(runs.every((r) => r.status === "success"), JSON.stringify(runs.map((r) => r.status)));

  // 3. reload: the thread is in the list (threads.search) and its history is back
  await page.reload();
  await page.waitForSelector(`#threads li[data-thread="${threadId}"] a.selected`);
  await page.waitForFunction(
    (n) => document.querySelectorAll("#messages li").length === n,
    done.values.messages.length,
  );
  assert.deepEqual(await uiMessages(page), serverMessages(done));
  const listed = await page.locator(`#threads li[data-thread="${threadId}"]`).getAttribute("data-status");
  assert.equal(listed, "idle");
  assert.equal(await page.locator("#error").count(), 0);
  await shoot(page, "ui-reload.png");
  assert.deepEqual(problems, []);
  console.log(
    JSON.stringify({ ok: true, threadId, aiLengths: grew, partial, messages: done.values.messages.length, runs: runs.length }),
  );
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: String(err?.stack ?? err), problems }));
  process.exitCode = 1;
} finally {
  await close();
}
