"""OpenTelemetry spans over OTLP/HTTP and JSON logs, from a real `berth-runtime` process.

The OTLP receiver is a tiny HTTP server in the test process that decodes the protobuf
`ExportTraceServiceRequest`s the runtime's exporter posts to `/v1/traces`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.integration.runtime.conftest import RuntimeProcess, launch
from tests.support.servers import Server, create_database

pytestmark = pytest.mark.integration


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status_code: int
    service: str


class OtlpReceiver:
    """Collects the spans of every ExportTraceServiceRequest posted to /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        with self.lock:
            self.requests += 1
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append(
                            Span(
                                name=s.name,
                                trace_id=s.trace_id.hex(),
                                span_id=s.span_id.hex(),
                                parent_id=s.parent_span_id.hex(),
                                attributes={a.key: _value(a.value) for a in s.attributes},
                                status_code=s.status.code,
                                service=str(resource.get("service.name")),
                            )
                        )

    def trace_of_run(self, run_id: str) -> list[Span]:
        """Every span in the trace whose root span is this run's attempt."""
        with self.lock:
            roots = [s for s in self.spans if s.attributes.get("berth.run_id") == run_id]
            if not roots:
                return []
            return [s for s in self.spans if s.trace_id == roots[0].trace_id]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver()
    r.thread.start()
    yield r
    r.server.shutdown()


@pytest.fixture(scope="module")
def traced_server(
    postgres: Server,
    redis: Server,
    receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RuntimeProcess]:
    db = create_database(postgres.uri, f"otel_{uuid.uuid4().hex[:12]}")
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "berth-otel-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "BERTH_LOG_FORMAT": "json",
    }
    rp = launch("serve", db, redis.uri, tmp_path_factory.mktemp("otel"), extra_env=env)
    yield rp
    rp.terminate()


@pytest.fixture
async def traced(traced_server: RuntimeProcess) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=traced_server.url)
    yield c
    await c.aclose()


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout}s")


async def test_run_with_a_tool_call_exports_its_span_tree(
    traced: LangGraphClient, receiver: OtlpReceiver
) -> None:
    thread = await traced.threads.create()
    run = await traced.runs.create(
        thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "2+3?"}]}
    )
    await traced.runs.join(thread["thread_id"], run["run_id"])

    def complete() -> list[Span] | None:
        spans = receiver.trace_of_run(run["run_id"])
        names = [s.name for s in spans]
        enough = names.count("node model") == 2 and "execute_tool add" in names
        return spans if enough and sum(n.startswith("chat ") for n in names) == 2 else None

    spans = wait_for(complete)
    by_id = {s.span_id: s for s in spans}
    (root,) = [s for s in spans if s.attributes.get("berth.run_id") == run["run_id"]]
    assert root.parent_id == ""  # the attempt is the trace's root
    assert root.service == "berth-otel-test"
    assert root.attributes["berth.thread_id"] == thread["thread_id"]
    assert root.attributes["berth.assistant_id"] == run["assistant_id"]
    assert root.attributes["berth.attempt"] == 1
    assert root.attributes["berth.graph_id"] == "agent"
    assert root.attributes["berth.run.status"] == "success"

    nodes = [s for s in spans if s.name.startswith("node ")]
    assert sorted(s.name for s in nodes) == ["node model", "node model", "node tools"]
    assert all(s.parent_id == root.span_id for s in nodes)
    assert sorted(s.attributes["langgraph.step"] for s in nodes) == [1, 2, 3]

    (tool,) = [s for s in spans if s.name == "execute_tool add"]
    assert by_id[tool.parent_id].name == "node tools"
    assert tool.attributes["gen_ai.tool.name"] == "add"
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert all(by_id[c.parent_id].name == "node model" for c in chats)
    assert all(c.attributes["gen_ai.operation.name"] == "chat" for c in chats)
    assert all(s.status_code != 2 for s in spans)  # STATUS_CODE_ERROR


async def test_failing_run_marks_its_spans_as_errors_and_logs_json_with_ids(
    traced: LangGraphClient, receiver: OtlpReceiver, traced_server: RuntimeProcess
) -> None:
    thread = await traced.threads.create()
    run = await traced.runs.create(thread["thread_id"], "failing", input={"x": 1})
    await traced.runs.join(thread["thread_id"], run["run_id"])

    def done() -> list[Span] | None:
        spans = receiver.trace_of_run(run["run_id"])
        return spans if any(s.name == "node boom" for s in spans) and len(spans) >= 2 else None

    spans = wait_for(done)
    root = next(s for s in spans if s.attributes.get("berth.run_id") == run["run_id"])
    node = next(s for s in spans if s.name == "node boom")
    assert root.attributes["berth.run.status"] == "error"
    assert root.status_code == 2 and node.status_code == 2

    # Every line the server wrote is one JSON object; the run's own lines carry its ids.
    def run_lines() -> list[dict[str, Any]] | None:
        records = [json.loads(line) for line in traced_server.log().splitlines() if line]
        mine = [r for r in records if r.get("run_id") == run["run_id"]]
        return mine or None

    mine = wait_for(run_lines)
    assert all(r["thread_id"] == thread["thread_id"] for r in mine)
    assert any("boom" in r["message"] and r["level"] == "INFO" for r in mine)
    assert {"ts", "logger", "level", "message"} <= set(mine[0])


def test_bad_log_format_stops_the_process(postgres: Server, redis: Server, tmp_path: Path) -> None:
    db = create_database(postgres.uri, f"otel_{uuid.uuid4().hex[:12]}")
    rp = launch(
        "serve", db, redis.uri, tmp_path, extra_env={"BERTH_LOG_FORMAT": "yaml"}, wait=False
    )
    assert rp.proc.wait(60) == 2
    assert "BERTH_LOG_FORMAT must be 'json' or 'text'" in rp.log()
