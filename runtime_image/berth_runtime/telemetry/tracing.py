"""OpenTelemetry traces of runs: one root span per run attempt, a child per graph node, and
grandchildren for model and tool calls, exported over OTLP/HTTP.

On only when an OTLP endpoint is configured with the standard variables
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` apply as usual; `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none` turn it off). Off, `tracer()` is None and the hot path creates no
span, attaches no callback handler and imports nothing from the SDK.

Nodes and model/tool calls come from LangChain's callback events (every LangGraph node is a
runnable, so its start/end events carry `langgraph_node` metadata); the handler runs inline on
the event loop, without a thread hop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "berth-runtime"

_provider: TracerProvider | None = None
_tracer: Tracer | None = None


def tracing_enabled(env: Mapping[str, str]) -> bool:
    if (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true":
        return False
    if (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower() == "none":
        return False
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup_tracing(env: Mapping[str, str]) -> Tracer | None:
    """Start exporting spans if the environment asks for it; idempotent."""
    global _provider, _tracer
    if _tracer is not None or not tracing_enabled(env):
        return _tracer
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attrs = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # so spans of the graph's own instrumentation nest
    _provider, _tracer = provider, provider.get_tracer("berth_runtime")
    log.info("OpenTelemetry tracing on: spans go to the OTLP/HTTP endpoint from the environment")
    return _tracer


def shutdown_tracing() -> None:
    """Flush what is buffered and stop exporting."""
    global _provider, _tracer
    if _provider is not None:
        _provider.shutdown()
    _provider, _tracer = None, None


def tracer() -> Tracer | None:
    return _tracer


def _usage(response: Any) -> dict[str, int]:
    """Token counts of a model response (LangChain's `usage_metadata`), if it reports them."""
    for generations in getattr(response, "generations", None) or []:
        for gen in generations:
            usage = getattr(getattr(gen, "message", None), "usage_metadata", None)
            if usage:
                return {
                    "gen_ai.usage.input_tokens": int(usage.get("input_tokens", 0)),
                    "gen_ai.usage.output_tokens": int(usage.get("output_tokens", 0)),
                }
    return {}


class SpanCallbackHandler(BaseCallbackHandler):
    """Turns LangChain/LangGraph callback events of one run into spans under `root`.

    Runnables that are neither nodes nor model/tool calls (the graph itself, edges, channel
    writers, sequences inside a node) get no span; their children attach to the nearest
    ancestor that has one.
    """

    run_inline = True  # called on the event loop, no executor hop

    def __init__(self, root: Span) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._root = root
        self._spans: dict[UUID, Span] = {}  # runs that own a span
        self._anchor: dict[UUID, Span] = {}  # any run -> the span its children nest under

    def _parent(self, parent_run_id: UUID | None) -> Span:
        if parent_run_id is None:
            return self._root
        return self._anchor.get(parent_run_id, self._root)

    def _start(
        self, run_id: UUID, parent_run_id: UUID | None, name: str, attrs: dict[str, Any]
    ) -> None:
        assert self._tracer is not None
        ctx = self._trace.set_span_in_context(self._parent(parent_run_id))
        span = self._tracer.start_span(name, context=ctx, attributes=attrs)
        self._spans[run_id] = span
        self._anchor[run_id] = span

    @property
    def _tracer(self) -> Tracer | None:
        return _tracer

    def _pass_through(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        self._anchor[run_id] = self._parent(parent_run_id)

    def _end(
        self, run_id: UUID, error: BaseException | None = None, attrs: dict[str, Any] | None = None
    ) -> None:
        self._anchor.pop(run_id, None)
        span = self._spans.pop(run_id, None)
        if span is None:
            return
        if attrs:
            span.set_attributes(attrs)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()

    # chains: graph nodes ---------------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        meta = metadata or {}
        node = meta.get("langgraph_node")
        # `__start__` (writing the input) is a Pregel task too, but not a node of the user's.
        is_node = node is not None and kwargs.get("name") == node and node != "__start__"
        if is_node and self._tracer is not None:
            attrs = {
                "langgraph.node": str(node),
                "langgraph.step": int(meta.get("langgraph_step", -1)),
                "langgraph.checkpoint_ns": str(meta.get("langgraph_checkpoint_ns", "")),
            }
            self._start(run_id, parent_run_id, f"node {node}", attrs)
        else:
            self._pass_through(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        # A node that interrupts (GraphInterrupt) or bubbles a Command is not a failure.
        failed = type(error).__name__ not in ("GraphInterrupt", "ParentCommand", "GraphBubbleUp")
        self._end(run_id, error if failed else None)

    # models ----------------------------------------------------------------------------------

    def _model_start(
        self,
        serialized: dict[str, Any] | None,
        run_id: UUID,
        parent_run_id: UUID | None,
        kwargs: dict[str, Any],
    ) -> None:
        if self._tracer is None:
            return
        params = kwargs.get("invocation_params") or {}
        name = kwargs.get("name") or (serialized or {}).get("name") or "model"
        model = params.get("model") or params.get("model_name") or params.get("_type") or name
        attrs = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": str(model),
            "langchain.model.class": str(name),
        }
        self._start(run_id, parent_run_id, f"chat {model}", attrs)

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._model_start(serialized, run_id, parent_run_id, kwargs)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None, _usage(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    # tools -----------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        if self._tracer is None:
            return
        name = kwargs.get("name") or (serialized or {}).get("name") or "tool"
        attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        if kwargs.get("tool_call_id"):
            attrs["gen_ai.tool.call.id"] = str(kwargs["tool_call_id"])
        self._start(run_id, parent_run_id, f"execute_tool {name}", attrs)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)


def start_run_span(run: Mapping[str, Any]) -> Span | None:
    """The root span of one attempt of a run; None when tracing is off."""
    if _tracer is None:
        return None
    kwargs = run.get("kwargs") or {}
    attrs: dict[str, Any] = {
        "berth.run_id": str(run["run_id"]),
        "berth.thread_id": str(run["thread_id"]),
        "berth.assistant_id": str(run["assistant_id"]),
        "berth.attempt": int(run["attempt"]),
        "berth.graph_id": str(kwargs.get("graph_id") or ""),
    }
    return _tracer.start_span(f"run {kwargs.get('graph_id') or ''}".strip(), attributes=attrs)


def end_run_span(span: Span, status: str, error: Mapping[str, Any] | None = None) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("berth.run.status", status)
    if status in ("error", "timeout"):
        detail = f"{(error or {}).get('error', status)}: {(error or {}).get('message', '')}"
        span.set_status(Status(StatusCode.ERROR, detail))
    span.end()
