"""The runtime half of `make demo`: the example agent served by Berth, driven by langgraph-sdk.

It starts a throwaway Postgres and Redis from local binaries, serves examples/agent with
`berth-runtime serve`, then holds a conversation the way an application would: one
question answered with a tool, and one refund that pauses for a human's approval and
completes once the run is resumed with `command={"resume": ...}`.
"""

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_client

from tests.support.servers import (
    create_database,
    free_port,
    postgres_server,
    redis_server,
    wait_for_port,
)

AGENT_DIR = Path(__file__).resolve().parent / "agent"
AGENT_CONFIG = AGENT_DIR / "langgraph.json"
ASSISTANT = "agent"  # the graph name in langgraph.json doubles as an assistant id

QUESTION = "What is 12 * (3 + 4)?"
REFUND_REQUEST = "Please refund order A-1002, the milk frother arrived broken."
APPROVAL = {"approved": True, "reason": "broken on arrival, photo checked"}


@dataclass
class RuntimeServer:
    url: str
    proc: "subprocess.Popen[bytes]"
    log: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def runtime_command() -> list[str]:
    """The berth-runtime console script of the interpreter running this code."""
    script = Path(sys.executable).parent / "berth-runtime"
    if not script.exists():
        raise RuntimeError(f"{script} not found: run `make install`")
    return [str(script)]


def wait_until_ok(url: str, proc: "subprocess.Popen[bytes]", timeout: float = 60.0) -> None:
    """Wait until GET /ok answers 200 (the port alone can open before the app is ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ok", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url}/ok did not answer 200 within {timeout}s")


def stop_process(proc: "subprocess.Popen[bytes]", grace: float = 20.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serve_berth_runtime(
    config: Path,
    database_uri: str,
    redis_uri: str,
    *,
    jobs_per_worker: int = 10,
    env: Mapping[str, str] | None = None,
    role: str = "serve",
) -> Iterator[RuntimeServer]:
    """Run `berth-runtime <role>` (serve, api or worker) on a free loopback port until the
    block ends."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="berth-runtime-"))
    log = workdir / "runtime.log"
    child_env = {
        **os.environ,
        "DATABASE_URI": database_uri,
        "REDIS_URI": redis_uri,
        "N_JOBS_PER_WORKER": str(jobs_per_worker),
        **(env or {}),
    }
    command = [
        *runtime_command(),
        role,
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=child_env, cwd=workdir
        )
    server = RuntimeServer(f"http://127.0.0.1:{port}", proc, log)
    try:
        wait_for_port(port, 60, proc)
        wait_until_ok(server.url, proc)
        yield server
    except BaseException:
        stop_process(proc)
        print(f"!! berth-runtime log ({log}):\n{server.log_tail()}", file=sys.stderr)
        raise
    stop_process(proc)
    shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Printing what the server streams
# ---------------------------------------------------------------------------------------


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_message(message: Mapping[str, Any]) -> str:
    """One line for one serialized LangChain message."""
    kind = message.get("type", "?")
    if kind == "ai" and message.get("tool_calls"):
        calls = ", ".join(
            f"{c['name']}({', '.join(f'{k}={v!r}' for k, v in c['args'].items())})"
            for c in message["tool_calls"]
        )
        return f"model asks for a tool: {_short(calls)}"
    if kind == "ai":
        return f"model answers: {_short(message.get('content', ''), 400)}"
    if kind == "tool":
        status = "failed" if message.get("status") == "error" else "returned"
        return f"tool {message.get('name')} {status}: {_short(message.get('content', ''))}"
    if kind == "human":
        return f"user says: {_short(message.get('content', ''))}"
    return f"{kind}: {_short(message.get('content', ''))}"


def describe_chunk(event: str, data: Any) -> list[str]:
    """Readable lines for one streamed SSE event (`updates`, `values`, `metadata`, ...)."""
    if event == "metadata" and isinstance(data, Mapping):
        return [f"[metadata] run {data.get('run_id')} (attempt {data.get('attempt', 1)})"]
    if event == "updates" and isinstance(data, Mapping):
        lines = []
        for node, update in data.items():
            if node == "__interrupt__":
                for pending in update or []:
                    value = pending.get("value", {}) if isinstance(pending, Mapping) else {}
                    lines.append(f"[paused] waiting for approval: {_short(value.get('tool'))}")
                continue
            messages = (update or {}).get("messages", []) if isinstance(update, Mapping) else []
            if not messages:
                done = "approved, nothing refused" if node == "review" else "no new messages"
                lines.append(f"[{node}] {done}")
            lines.extend(f"[{node}] {describe_message(m)}" for m in messages)
        return lines
    if event == "values":
        return []  # the full state after each step: summarised once the run ends
    if event == "end" and isinstance(data, Mapping):  # Berth closes each stream with `end`
        return [f"[end] run finished: {data.get('status', '?')}"]
    if event == "error":
        return [f"[error] {_short(data, 400)}"]
    return [f"[{event}] {_short(data)}"]


def pending_interrupts(thread: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten a thread's `interrupts` ({task id: [{id, value}]}) into one list."""
    raw = thread.get("interrupts") or {}
    groups = raw.values() if isinstance(raw, Mapping) else [raw]
    return [dict(item) for group in groups for item in group]


def final_answer(values: Any) -> str:
    """The content of the last message in a thread's values."""
    messages = values.get("messages", []) if isinstance(values, Mapping) else []
    return str(messages[-1].get("content", "")) if messages else ""


# ---------------------------------------------------------------------------------------
# The conversation
# ---------------------------------------------------------------------------------------


async def stream_run(client: Any, thread_id: str, **run: Any) -> None:
    """Stream one run, printing each node's update, then the size of the final state."""
    values: Any = None
    async for chunk in client.runs.stream(
        thread_id, ASSISTANT, stream_mode=["updates", "values"], **run
    ):
        if chunk.event == "values":
            values = chunk.data
        for line in describe_chunk(chunk.event, chunk.data):
            print(f"     {line}")
    if isinstance(values, Mapping):
        print(f"     [values] the thread now holds {len(values.get('messages', []))} messages")


async def converse(url: str) -> str:
    """Hold the demo conversation against the server at `url`; return the last answer."""
    client = get_client(url=url)
    thread = await client.threads.create(metadata={"demo": "berth"})
    thread_id = thread["thread_id"]
    print(f">> created thread {thread_id}")

    print(f">> user: {QUESTION}")
    await stream_run(client, thread_id, input={"messages": [{"role": "user", "content": QUESTION}]})

    print(f">> user: {REFUND_REQUEST}")
    request = {"messages": [{"role": "user", "content": REFUND_REQUEST}]}
    await stream_run(client, thread_id, input=request)

    thread = await client.threads.get(thread_id)
    print(f">> thread status: {thread['status']}")
    pending = pending_interrupts(thread)
    for item in pending:
        value = item.get("value", {})
        print(f"   pending interrupt {item.get('id')}: {_short(value.get('question', value), 300)}")
    if thread["status"] != "interrupted" or not pending:
        raise RuntimeError("expected the refund to pause for approval; it did not")

    print(f">> reviewer approves: resuming with command={{'resume': {APPROVAL}}}")
    await stream_run(client, thread_id, command={"resume": APPROVAL})

    thread = await client.threads.get(thread_id)
    state = await client.threads.get_state(thread_id)
    answer = final_answer(state["values"])
    print(f">> thread status: {thread['status']}")
    print(f">> final answer: {answer}")
    return answer


def run_runtime_demo() -> None:
    """Start Postgres, Redis and berth-runtime, converse through langgraph-sdk, stop all."""
    from examples.agent.agent import choose_provider

    provider = choose_provider(os.environ)
    note = "deterministic offline model" if provider == "fake" else f"{provider} chat model"
    print(f">> the example agent will use the {note} (see examples/agent/README.md)")
    with contextlib.ExitStack() as stack:
        print(">> starting Postgres (local binaries, throwaway data directory)")
        postgres = stack.enter_context(postgres_server())
        print(f"   Postgres ready on 127.0.0.1:{postgres.port}")
        print(">> starting Redis")
        redis = stack.enter_context(redis_server())
        print(f"   Redis ready on 127.0.0.1:{redis.port}")
        database_uri = create_database(postgres.uri, "berth_demo")
        print(f">> serving {os.path.relpath(AGENT_CONFIG)} with berth-runtime")
        server = stack.enter_context(
            serve_berth_runtime(AGENT_CONFIG, database_uri, redis.uri, jobs_per_worker=4)
        )
        print(f"   berth-runtime ready at {server.url} (log: {server.log})")
        asyncio.run(converse(server.url))
        print(">> stopping berth-runtime, Redis and Postgres")
    print(">> runtime demo done")


def main(argv: list[str] | None = None) -> None:
    """`python -m examples.demo_runtime [--url URL]`: the demo, or only the conversation."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="talk to an already running server instead")
    args = parser.parse_args(argv)
    if args.url:
        asyncio.run(converse(args.url.rstrip("/")))
    else:
        run_runtime_demo()


if __name__ == "__main__":
    main()
