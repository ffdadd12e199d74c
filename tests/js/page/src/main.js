// A chat page on the React useStream hook, talking to Berth on another origin (?api=URL).
// It keeps its thread id in sessionStorage and asks useStream to reconnect on mount, so a
// reload in the middle of a run rejoins that run instead of losing it.
import { createElement as h, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { useStream } from "@langchain/langgraph-sdk/react";

const params = new URLSearchParams(window.location.search);
const apiUrl = params.get("api");
const reply = params.get("reply") ?? undefined;
const delay = Number(params.get("delay") ?? "0.1");
const THREAD_KEY = "berth:thread";

// What the test reads back: every distinct length of the AI message as it grew, and
// whether the hook was streaming (isLoading) while this page was up.
window.__berth = { aiLengths: [], wasLoading: false };

function text(message) {
  return typeof message.content === "string" ? message.content : JSON.stringify(message.content);
}

function App() {
  const [threadId, setThreadId] = useState(() => window.sessionStorage.getItem(THREAD_KEY));
  const stream = useStream({
    apiUrl,
    assistantId: "streaming",
    messagesKey: "messages",
    threadId,
    onThreadId: (id) => {
      window.sessionStorage.setItem(THREAD_KEY, id);
      setThreadId(id);
    },
    reconnectOnMount: true,
  });
  const ai = stream.messages.filter((m) => m.type === "ai").at(-1);
  const aiLength = ai ? text(ai).length : 0;
  useEffect(() => {
    if (stream.isLoading) window.__berth.wasLoading = true;
  }, [stream.isLoading]);
  useEffect(() => {
    const seen = window.__berth.aiLengths;
    if (aiLength && seen.at(-1) !== aiLength) seen.push(aiLength);
  }, [aiLength]);
  const send = () =>
    stream.submit(
      { messages: [{ type: "human", content: "hi" }] },
      {
        config: { configurable: { token_delay: delay, reply } },
        streamMode: ["messages-tuple", "values"],
      },
    );
  return h(
    "main",
    null,
    h("button", { id: "send", onClick: send, disabled: stream.isLoading }, "send"),
    h("div", {
      id: "status",
      "data-loading": String(stream.isLoading),
      "data-thread": threadId ?? "",
    }),
    h(
      "ul",
      { id: "messages" },
      stream.messages.map((m, i) => h("li", { key: m.id ?? i, "data-type": m.type }, text(m))),
    ),
    stream.error ? h("pre", { id: "error" }, String(stream.error)) : null,
  );
}

createRoot(document.getElementById("root")).render(h(App));
