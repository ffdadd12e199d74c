"""Execute one attempt of a run: stream the graph, emit events, report the outcome.

The graph runs with the Postgres checkpointer keyed by the run's thread, so a later attempt
(after a crash) resumes from the last checkpoint the previous attempt wrote instead of starting
over: nodes that completed before that checkpoint are not executed again.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.types import Command, Send

from berth_runtime.auth.authorize import User
from berth_runtime.context import Runtime
from berth_runtime.db.checkpointer import batched_writes
from berth_runtime.executor.messages import MessageEvents
from berth_runtime.executor.state import final_output, snapshot_to_json
from berth_runtime.serde import to_jsonable
from berth_runtime.streams.sse import event_name, langgraph_modes

if TYPE_CHECKING:
    from opentelemetry.trace import Span

log = logging.getLogger(__name__)

Emit = Callable[[str, Any], Awaitable[None]]


@dataclass
class Outcome:
    status: str  # success | error | timeout
    output: Any  # what /wait and /join return
    values: Any
    snapshot: dict[str, Any] | None
    error: dict[str, Any] | None


def to_command(raw: dict[str, Any]) -> Command[Any]:
    """An API `command` object as a LangGraph Command (goto entries may be Sends)."""
    kwargs: dict[str, Any] = {}
    if raw.get("update") is not None:
        kwargs["update"] = raw["update"]
    if "resume" in raw and raw["resume"] is not None:
        kwargs["resume"] = raw["resume"]
    goto = raw.get("goto")
    if goto:

        def one(g: Any) -> Any:
            if isinstance(g, dict) and "node" in g:
                return Send(g["node"], g.get("input"))
            return g

        kwargs["goto"] = [one(g) for g in goto] if isinstance(goto, list) else one(goto)
    return Command(**kwargs)


def run_config(run: dict[str, Any]) -> dict[str, Any]:
    """The RunnableConfig of a run: the stored config plus ids LangGraph and nodes may read."""
    kwargs = run["kwargs"]
    config: dict[str, Any] = copy.deepcopy(kwargs.get("config") or {})
    conf = config.setdefault("configurable", {})
    run_id, thread_id = str(run["run_id"]), str(run["thread_id"])
    conf.update(
        thread_id=thread_id,
        run_id=run_id,
        assistant_id=str(run["assistant_id"]),
        graph_id=kwargs.get("graph_id"),
    )
    conf.setdefault("checkpoint_ns", "")
    user = kwargs.get("user")
    if user:
        # As the Agent Server: the authenticated caller, for nodes and tools acting for them.
        conf["langgraph_auth_user_id"] = user["identity"]
        conf["langgraph_auth_permissions"] = list(user.get("permissions") or [])
    meta = config.setdefault("metadata", {})
    meta.update(run.get("metadata") or {})
    meta.update(
        run_id=run_id,
        thread_id=thread_id,
        assistant_id=str(run["assistant_id"]),
        graph_id=kwargs.get("graph_id"),
        run_attempt=run["attempt"],
    )
    config["run_id"] = run_id
    return config


def run_user(stored: dict[str, Any] | None) -> User | None:
    """The caller who created the run, as a factory's `ServerRuntime.user` (the BaseUser
    interface); None when the deployment has no custom auth."""
    if not stored:
        return None
    identity = str(stored["identity"])
    return User(
        identity,
        list(stored.get("permissions") or []),
        str(stored.get("display_name") or identity),
    )


def schema_context(
    graph: Any, context: dict[str, Any], config: dict[str, Any], provided: bool
) -> dict[str, Any]:
    """The run's context cut to the fields of the graph's context schema, as the Agent Server
    does: a dataclass schema is then built from it (defaults fill the rest), so a
    template-style graph reading `runtime.context.model` works with an empty context.
    A key the schema drops also leaves `configurable` when the caller sent the context
    (it was mirrored there), unless the run set it there to something else."""
    if not context:
        return context
    try:
        schema = graph.get_context_jsonschema()
    except Exception as e:  # a schema LangGraph cannot render: pass everything, as upstream
        log.debug("context schema of %s: %r", type(graph).__name__, e)
        return context
    props = (schema or {}).get("properties") or {}
    if not props:
        return context
    kept = {k: v for k, v in context.items() if k in props}
    if provided:
        conf = config.get("configurable") or {}
        for key in context.keys() - kept.keys():
            if key in conf and conf[key] == context[key]:
                conf.pop(key)
    return kept


def thread_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def resumes_from_checkpoint(rt: Runtime, run: dict[str, Any]) -> bool:
    """A retried or re-queued run continues where an earlier attempt checkpointed, if it did.

    The latest checkpoint of the thread carries the run id in its metadata; if it is this run's,
    an earlier attempt got that far (a run that never executed cannot own a checkpoint).
    """
    if run.get("never_claimed"):
        return False  # no earlier attempt started, so none can have checkpointed
    latest = await rt.checkpointer.aget_tuple(thread_config(str(run["thread_id"])))
    return bool(latest and (latest.metadata or {}).get("run_id") == str(run["run_id"]))


async def thread_snapshot(rt: Runtime, graph_id: str, thread_id: str) -> dict[str, Any] | None:
    cfg = thread_config(thread_id)
    graph = await rt.graphs.get(graph_id, cfg)
    snap = await graph.aget_state(cfg)
    return snapshot_to_json(snap)


def settled_state(checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    """The thread's state after a run, from the root graph's last `checkpoints` event, when
    that says the graph ran to its end: no next task, so no interrupt either (an interrupted
    or failed run is read back with `thread_snapshot`). Only what settling a run reads."""
    if checkpoint is None or checkpoint.get("next") or checkpoint.get("tasks"):
        return None
    return {"values": to_jsonable(checkpoint.get("values")), "next": [], "tasks": []}


async def execute_run(
    rt: Runtime, run: dict[str, Any], emit: Emit, span: Span | None = None
) -> Outcome:
    """Run the graph for this attempt. Cancellation propagates (CancelledError).

    With `span` (tracing on), nodes and model/tool calls become its child spans.
    """
    kwargs = run["kwargs"]
    graph_id = kwargs["graph_id"]
    thread_id = str(run["thread_id"])
    config = run_config(run)
    # `async` (LangGraph's default) and `exit` do not wait for checkpoint writes between steps,
    # so the checkpointer may group-commit them (the worker flushes before settling).
    batched_writes.set(kwargs.get("durability") in (None, "async", "exit"))
    if span is not None:
        from berth_runtime.telemetry.tracing import SpanCallbackHandler

        config["callbacks"] = [SpanCallbackHandler(span)]
    if run["attempt"] > 1:
        await emit("metadata", {"run_id": str(run["run_id"]), "attempt": run["attempt"]})

    graph_input: Any
    if await resumes_from_checkpoint(rt, run):
        log.info(
            "run %s attempt %s resumes from its last checkpoint", run["run_id"], run["attempt"]
        )
        config["configurable"].pop("checkpoint_id", None)
        config["configurable"].pop("checkpoint_map", None)
        graph_input = None
    elif kwargs.get("command") is not None:
        graph_input = to_command(kwargs["command"])
    else:
        graph_input = kwargs.get("input")

    requested = list(kwargs.get("stream_mode") or ["values"])
    wanted_modes = set(langgraph_modes(requested))
    messages = MessageEvents(requested)
    with_events = "events" in requested
    subgraphs = bool(kwargs.get("subgraphs"))
    # `events` alone still needs one LangGraph mode to drive the graph. Otherwise `checkpoints`
    # is always on: the root graph's last one is the thread's final state, so a run that ends
    # cleanly need not read it back (see settled_state). Not with `events`, whose root
    # `on_chain_stream` events would carry those chunks too.
    internal = set() if with_events else {"checkpoints"}
    stream_kwargs: dict[str, Any] = {
        "stream_mode": sorted(wanted_modes | internal) or ["values"],
        # As LangGraph itself: without `stream_subgraphs` a model inside a subgraph still
        # reaches `messages` (as its node's finished message), but its tokens do not.
        "subgraphs": subgraphs,
        "interrupt_before": kwargs.get("interrupt_before"),
        "interrupt_after": kwargs.get("interrupt_after"),
    }
    if kwargs.get("durability"):
        stream_kwargs["durability"] = kwargs["durability"]

    error: dict[str, Any] | None = None
    status = "success"
    last_checkpoint: dict[str, Any] | None = None

    async def forward(chunk: Any) -> None:
        nonlocal last_checkpoint
        ns, mode, data = chunk if subgraphs else ((), *chunk)
        if mode == "checkpoints" and not ns:
            last_checkpoint = data
        if mode not in wanted_modes:
            return
        if mode == "messages":
            for name, payload in messages.events(tuple(ns), data):
                await emit(name, payload)
        else:
            await emit(event_name(mode, ns), data)

    context: dict[str, Any] = dict(kwargs.get("context") or {})
    try:
        # A factory that is an async context manager stays open for the whole run.
        async with rt.graphs.open(
            graph_id,
            config,
            access="threads.create_run",
            context=context,
            user=run_user(kwargs.get("user")),
        ) as graph:
            stream_kwargs["context"] = schema_context(
                graph, context, config, bool(kwargs.get("context_provided"))
            )
            async with asyncio.timeout(rt.settings.bg_job_timeout_secs):
                if with_events:
                    # astream_events wraps the same stream: the root graph's `on_chain_stream`
                    # events carry what astream would have yielded.
                    async for ev in graph.astream_events(
                        graph_input, config, version="v2", **stream_kwargs
                    ):
                        if ev.get("event") == "on_chain_stream" and not ev.get("parent_ids"):
                            await forward(ev["data"]["chunk"])
                        await emit("events", ev)
                else:
                    async for chunk in graph.astream(graph_input, config, **stream_kwargs):
                        await forward(chunk)
    except TimeoutError:
        status = "timeout"
        error = {
            "error": "TimeoutError",
            "message": f"Run exceeded BG_JOB_TIMEOUT_SECS={rt.settings.bg_job_timeout_secs}",
        }
    except Exception as e:  # the graph's own failure is the run's outcome, not ours
        log.info("run %s failed: %r", run["run_id"], e)
        status = "error"
        error = {"error": type(e).__name__, "message": str(e)}
    if error is not None:
        await emit("error", error)

    snapshot: dict[str, Any] | None = settled_state(last_checkpoint) if error is None else None
    if snapshot is None:
        try:
            snapshot = await thread_snapshot(rt, graph_id, thread_id)
        except Exception as e:
            log.warning("run %s: reading the final state failed: %r", run["run_id"], e)
    values = snapshot["values"] if snapshot else None
    output = final_output(to_jsonable(values or {}), snapshot or {}, error)
    return Outcome(status, output, values, snapshot, error)
