// Berth's chat UI (`make ui`): the React useStream hook of @langchain/langgraph-sdk against a
// Berth URL, with no Berth-specific code. A thread list (threads.search), the selected
// thread's messages (its history is fetched again on reload: the thread id is in the URL,
// ?thread=ID), an input, the answer streamed as it arrives, and an interrupt shown with
// Approve / Reject buttons that resume the run with a Command.
import { createElement as h, useCallback, useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";
import { Client } from "@langchain/langgraph-sdk";
import { useStream } from "@langchain/langgraph-sdk/react";

const params = new URLSearchParams(window.location.search);
// eslint-disable-next-line no-undef
const apiUrl = params.get("api") ?? __BERTH_URL__;
// eslint-disable-next-line no-undef
const assistantId = params.get("assistant") ?? __BERTH_ASSISTANT__;
const client = new Client({ apiUrl });

// What the browser test reads: how the last AI message grew while it streamed.
window.__berthUi = { aiLengths: [], loadingSeen: false };

function text(message) {
  if (typeof message.content === "string") return message.content;
  return message.content
    .map((part) => (typeof part === "string" ? part : (part.text ?? "")))
    .join("");
}

function setUrlThread(threadId) {
  const url = new URL(window.location.href);
  if (threadId) url.searchParams.set("thread", threadId);
  else url.searchParams.delete("thread");
  window.history.replaceState(null, "", url);
}

function title(thread) {
  const messages = thread.values?.messages ?? [];
  const first = messages.find((m) => m.type === "human");
  return first ? text(first) : thread.thread_id;
}

function ThreadList({ threads, selected, onSelect, onNew }) {
  return h(
    "aside",
    null,
    h("h1", null, "Berth chat"),
    h("div", { className: "api" }, `${apiUrl} · ${assistantId}`),
    h("button", { className: "new", id: "new-thread", onClick: onNew }, "+ New thread"),
    h(
      "ul",
      { id: "threads" },
      threads.map((t) =>
        h(
          "li",
          { key: t.thread_id, "data-thread": t.thread_id, "data-status": t.status },
          h(
            "a",
            {
              href: `?thread=${t.thread_id}`,
              className: t.thread_id === selected ? "selected" : "",
              onClick: (e) => {
                e.preventDefault();
                onSelect(t.thread_id);
              },
            },
            h("div", null, title(t)),
            h("div", { className: "meta" }, `${t.status} · ${t.updated_at?.slice(0, 19) ?? ""}`),
          ),
        ),
      ),
    ),
  );
}

function Message({ message }) {
  const calls = message.tool_calls ?? [];
  return h(
    "li",
    { "data-type": message.type, "data-id": message.id ?? "" },
    text(message),
    calls.length
      ? h(
          "div",
          { className: "calls" },
          calls.map((c) => `→ ${c.name}(${JSON.stringify(c.args)})`).join("\n"),
        )
      : null,
  );
}

function Interrupt({ interrupt, onResume }) {
  const value = interrupt.value ?? interrupt;
  const question = typeof value === "object" && value?.question ? value.question : null;
  return h(
    "div",
    { id: "interrupt" },
    h("strong", null, "The run is waiting for you"),
    h("pre", null, question ?? JSON.stringify(value, null, 2)),
    h("button", { id: "approve", onClick: () => onResume({ approved: true }) }, "Approve"),
    h(
      "button",
      {
        id: "reject",
        onClick: () => onResume({ approved: false, reason: "rejected in the UI" }),
      },
      "Reject",
    ),
  );
}

function App() {
  const [threadId, setThreadId] = useState(() => params.get("thread"));
  const [threads, setThreads] = useState([]);
  const [draft, setDraft] = useState("");

  const refreshThreads = useCallback(async () => {
    const found = await client.threads.search({
      limit: 50,
      sortBy: "updated_at",
      sortOrder: "desc",
    });
    setThreads(found);
  }, []);

  const stream = useStream({
    apiUrl,
    assistantId,
    messagesKey: "messages",
    threadId,
    onThreadId: (id) => {
      setThreadId(id);
      setUrlThread(id);
    },
    reconnectOnMount: true,
    onFinish: () => refreshThreads(),
  });

  useEffect(() => {
    refreshThreads().catch(() => {});
  }, [refreshThreads, threadId]);

  const messages = stream.messages;
  const ai = messages.filter((m) => m.type === "ai").at(-1);
  const aiLength = ai ? text(ai).length : 0;
  useEffect(() => {
    if (stream.isLoading) window.__berthUi.loadingSeen = true;
  }, [stream.isLoading]);
  useEffect(() => {
    const seen = window.__berthUi.aiLengths;
    if (aiLength && seen.at(-1) !== aiLength) seen.push(aiLength);
  }, [aiLength]);

  const interrupt = useMemo(() => {
    const all = stream.interrupts ?? [];
    return all.find((i) => i.value !== undefined) ?? null;
  }, [stream.interrupts]);

  const send = (e) => {
    e.preventDefault();
    const content = draft.trim();
    if (!content) return;
    setDraft("");
    stream.submit(
      { messages: [{ type: "human", content }] },
      {
        streamMode: ["messages-tuple", "values"],
        optimisticValues: (prev) => ({
          ...prev,
          messages: [...(prev.messages ?? []), { type: "human", content }],
        }),
      },
    );
  };
  const resume = (answer) =>
    stream.submit(undefined, {
      command: { resume: answer },
      streamMode: ["messages-tuple", "values"],
    });
  const select = (id) => {
    setThreadId(id);
    setUrlThread(id);
  };

  return h(
    "div",
    { id: "app" },
    h(ThreadList, { threads, selected: threadId, onSelect: select, onNew: () => select(null) }),
    h(
      "main",
      null,
      h(
        "ul",
        { id: "messages" },
        messages.map((m, i) => h(Message, { key: m.id ?? i, message: m })),
      ),
      interrupt && !stream.isLoading ? h(Interrupt, { interrupt, onResume: resume }) : null,
      h(
        "div",
        {
          id: "status",
          "data-loading": String(stream.isLoading),
          "data-thread": threadId ?? "",
        },
        stream.isLoading ? "streaming…" : threadId ? `thread ${threadId}` : "new thread",
      ),
      stream.error ? h("pre", { id: "error" }, String(stream.error)) : null,
      h(
        "form",
        { onSubmit: send },
        h("input", {
          id: "input",
          value: draft,
          placeholder: "Ask the agent, e.g. Please refund order A-1002",
          onChange: (e) => setDraft(e.target.value),
          disabled: stream.isLoading,
        }),
        h("button", { id: "send", type: "submit", disabled: stream.isLoading }, "Send"),
      ),
    ),
  );
}

createRoot(document.getElementById("root")).render(h(App));
