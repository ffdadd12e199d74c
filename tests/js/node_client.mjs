// Berth driven by the official JavaScript SDK (@langchain/langgraph-sdk) from Node.js.
// Usage: node node_client.mjs http://127.0.0.1:PORT
// Prints one line per check and exits non-zero on the first failure.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { Client } from "@langchain/langgraph-sdk";

const apiUrl = process.argv[2];
if (!apiUrl) {
  console.error("usage: node node_client.mjs API_URL");
  process.exit(2);
}
const client = new Client({ apiUrl });

const REPLY = "Berth streams every token of this answer to you as it is made";
const INPUT = { messages: [{ role: "user", content: "hi" }] };
const LONG_REPLY = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");
const split = (text) => text.split(" ").map((w, i, all) => (i < all.length - 1 ? `${w} ` : w));
const TOKENS = split(REPLY);
const slow = (delay, reply) => ({ configurable: { token_delay: delay, reply } });

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

const tokenTexts = (parts) =>
  parts
    .filter((p) => p.event === "messages")
    .map((p) => p.data[0].content)
    .filter((c) => c);

const checks = [];
function check(name, fn) {
  checks.push([name, fn]);
}

check("assistants are found by graph id", async () => {
  const found = await client.assistants.search({ graphId: "streaming" });
  assert.equal(found.length, 1);
  assert.equal(found[0].graph_id, "streaming");
});

check("stream: several modes, tokens one by one", async () => {
  const thread = await client.threads.create();
  const parts = await collect(
    client.runs.stream(thread.thread_id, "streaming", {
      input: INPUT,
      streamMode: ["values", "messages-tuple", "updates", "custom"],
    }),
  );
  assert.equal(parts[0].event, "metadata");
  assert.deepEqual(tokenTexts(parts), TOKENS);
  const values = parts.filter((p) => p.event === "values").at(-1).data;
  assert.deepEqual(
    values.messages.map((m) => [m.type, m.content]),
    [
      ["human", "hi"],
      ["ai", REPLY],
    ],
  );
  const updates = parts.filter((p) => p.event === "updates").map((p) => Object.keys(p.data)[0]);
  assert.deepEqual(updates, ["model", "child", "finish"]);
  const custom = parts.filter((p) => p.event === "custom").map((p) => p.data);
  assert.deepEqual(custom, [{ progress: 0 }, { progress: 1 }, { progress: 2 }]);
  const state = await client.threads.getState(thread.thread_id);
  assert.equal(state.values.messages.at(-1).content, REPLY);
  const runs = await client.runs.list(thread.thread_id);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].status, "success");
});

check("stream: subgraphs are namespaced mode|ns", async () => {
  const parts = await collect(
    client.runs.stream(null, "streaming_nested", {
      input: INPUT,
      streamMode: ["updates"],
      streamSubgraphs: true,
    }),
  );
  const names = parts.map((p) => p.event);
  assert.ok(names.includes("updates"), names.join(","));
  assert.ok(names.some((n) => /^updates\|agent:[0-9a-f-]{36}$/.test(n)), names.join(","));
  assert.ok(
    names.some((n) => /^updates\|agent:[0-9a-f-]{36}\|child:[0-9a-f-]{36}$/.test(n)),
    names.join(","),
  );
});

check("joinStream: cut mid-run, resumed with lastEventId, no gap or duplicate", async () => {
  const thread = await client.threads.create();
  const run = await client.runs.create(thread.thread_id, "streaming", {
    input: INPUT,
    streamMode: ["messages-tuple", "updates"],
    config: slow(0.1, LONG_REPLY),
  });
  const abort = new AbortController();
  const before = [];
  try {
    for await (const part of client.runs.joinStream(thread.thread_id, run.run_id, {
      signal: abort.signal,
    })) {
      before.push(part);
      if (tokenTexts(before).length === 3) abort.abort();
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  }
  assert.equal(tokenTexts(before).length, 3);
  assert.equal((await client.runs.get(thread.thread_id, run.run_id)).status, "running");
  const lastEventId = before.at(-1).id;
  assert.match(lastEventId, /^\d+-\d+$/);
  const after = await collect(
    client.runs.joinStream(thread.thread_id, run.run_id, { lastEventId }),
  );
  const full = await collect(client.runs.joinStream(thread.thread_id, run.run_id));
  const ids = (parts) => parts.filter((p) => p.event !== "metadata").map((p) => p.id);
  assert.deepEqual([...ids(before), ...ids(after)], ids(full));
  assert.deepEqual(tokenTexts([...before, ...after]), split(LONG_REPLY));
  assert.equal((await client.runs.get(thread.thread_id, run.run_id)).status, "success");
});

check("wait: stateless run returns the final values", async () => {
  const out = await client.runs.wait(null, "streaming", { input: INPUT });
  assert.equal(out.messages.at(-1).content, REPLY);
  assert.deepEqual(out.trail, ["model", "finish"]);
});

check("errors: a missing thread is a 404 with detail", async () => {
  await assert.rejects(client.threads.get(randomUUID()), (err) => {
    assert.equal(err.status, 404);
    return true;
  });
});

let failed = 0;
for (const [name, fn] of checks) {
  const t0 = performance.now();
  try {
    await fn();
    console.log(`ok ${name} (${Math.round(performance.now() - t0)} ms)`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}
console.log(`${checks.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
