"""A support agent with tools, whose refunds wait for a human's approval.

The graph is ``agent -> [review ->] tools -> agent``. ``review`` pauses the run with
``interrupt()`` before a sensitive tool call (a refund moves money) and carries on when
the run is resumed with the reviewer's reply, e.g. ``Command(resume={"approved": True})``.
A resumed node runs again from its start, so ``review`` does nothing with side effects;
tools run in their own node, exactly once.

The chat model is picked by ``AGENT_MODEL_PROVIDER`` (``auto``, ``fake``, ``anthropic``,
``openai``). ``auto`` (the default) uses Anthropic or OpenAI when that provider's API key
is set and its LangChain package is installed, and otherwise a deterministic offline
model, so the example runs with no network and no key.

This file is self-contained on purpose: servers load it by path (``./agent.py:graph``).
"""

import ast
import importlib
import importlib.util
import json
import operator
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, ToolException, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Checkpointer, interrupt

SYSTEM_PROMPT = (
    "You are the support assistant of {shop_name}. Use lookup_order to "
    "read an order, calculator for arithmetic, and issue_refund to refund an order in full "
    "(a human approves every refund before it happens). Answer briefly, using tool results."
)


@dataclass(kw_only=True)
class Context:
    """Per-run settings, written the way LangGraph's templates write them: defaults here,
    overridable from the environment (``SYSTEM_PROMPT``, ``SHOP_NAME``), and per assistant or
    per run with ``context={...}``. The server builds it from the assistant's context merged
    with the run's; with neither, from these defaults."""

    system_prompt: str = field(default=SYSTEM_PROMPT)
    shop_name: str = field(default="a small coffee-equipment shop")

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.init and getattr(self, f.name) == f.default:
                setattr(self, f.name, os.environ.get(f.name.upper(), f.default))


# ---------------------------------------------------------------------------------------
# The shop's data and the tools that act on it
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    order_id: str
    item: str
    amount_cents: int
    status: str


ORDERS: Mapping[str, Order] = {
    o.order_id: o
    for o in (
        Order("A-1001", "espresso grinder", 12900, "delivered"),
        Order("A-1002", "milk frother", 4550, "delivered"),
        Order("B-2001", "three-month coffee subscription", 5400, "active"),
    )
}

# Tools that change the world and therefore wait for a human's approval.
SENSITIVE_TOOLS = frozenset({"issue_refund"})


def money(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


@dataclass
class RefundDesk:
    """Where refunds land. A stand-in for a payments API: it records what was refunded."""

    issued: list[tuple[str, int]] = field(default_factory=list)

    def refund(self, order_id: str) -> str:
        order = ORDERS.get(order_id)
        if order is None:
            raise ToolException(f"there is no order {order_id}; nothing was refunded")
        self.issued.append((order.order_id, order.amount_cents))
        return (
            f"Refund RF-{order.order_id} issued: {money(order.amount_cents)} for the "
            f"{order.item}, back to the original payment method."
        )


def describe_order(order_id: str) -> str:
    order = ORDERS.get(order_id)
    if order is None:
        raise ToolException(f"there is no order {order_id}")
    return f"Order {order.order_id}: {order.item}, {money(order.amount_cents)}, {order.status}."


_BINARY: Mapping[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: Mapping[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def evaluate(expression: str) -> int | float:
    """Evaluate plain arithmetic without ``eval``: numbers, + - * / // % ** and parentheses."""
    if len(expression) > 200:
        raise ToolException("the expression is too long (200 characters at most)")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ToolException(f"{expression!r} is not an arithmetic expression") from exc
    try:
        return _evaluate_node(tree.body)
    except (ZeroDivisionError, OverflowError) as exc:
        raise ToolException(f"cannot evaluate {expression!r}: {exc}") from exc


def _evaluate_node(node: ast.expr) -> int | float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ToolException("booleans are not numbers here")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate_node(node.left), _evaluate_node(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ToolException("exponents above 64 are not supported")
        result: int | float = _BINARY[type(node.op)](left, right)
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        negated: int | float = _UNARY[type(node.op)](_evaluate_node(node.operand))
        return negated
    raise ToolException(f"unsupported element {ast.unparse(node)!r} in the expression")


def format_number(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return f"{value:.10g}" if isinstance(value, float) else str(value)


def make_tools(desk: RefundDesk) -> list[BaseTool]:
    """The agent's tools; ``desk`` receives the refunds (tests pass their own)."""

    @tool
    def lookup_order(order_id: str) -> str:
        """Look up an order by its id (like A-1001): item, amount paid and status."""
        return describe_order(order_id.strip().upper())

    @tool
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression using + - * / // % ** and parentheses."""
        return f"{expression.strip()} = {format_number(evaluate(expression))}"

    @tool
    def issue_refund(order_id: str, reason: str) -> str:
        """Refund an order in full to the original payment method. A human must approve."""
        return desk.refund(order_id.strip().upper())

    return [lookup_order, calculator, issue_refund]


# ---------------------------------------------------------------------------------------
# The offline chat model: deterministic, reads the request, calls one tool, then answers
# ---------------------------------------------------------------------------------------

_ORDER_ID = re.compile(r"\b[A-Z]-\d{4}\b")
_ARITHMETIC = re.compile(r"[\d.\s()+\-*/%]+")
_HELP = (
    "I can look up an order (try 'Where is order A-1001?'), refund one after a human "
    "approves ('Please refund order A-1002'), or do arithmetic ('What is 12 * (3 + 4)?')."
)
_ANSWER_LEAD = {
    "lookup_order": "Here is what I found.",
    "calculator": "Worked out:",
    "issue_refund": "Done, the refund went through.",
}


def current_turn(messages: Sequence[BaseMessage]) -> tuple[str, list[BaseMessage]]:
    """The latest user request and every message after it."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return messages[index].text, list(messages[index + 1 :])
    return "", list(messages)


def find_expression(text: str) -> str | None:
    """The longest run of arithmetic in ``text`` that has a digit and an operator."""
    candidates = [
        m.strip()
        for m in _ARITHMETIC.findall(text)
        if re.search(r"\d", m) and re.search(r"\d\s*[-+*/%]", m)
    ]
    return max(candidates, key=len) if candidates else None


def plan_tool_call(request: str, call_id: str) -> ToolCall | None:
    """Which tool the offline model calls for a request, if any."""
    order_ids = _ORDER_ID.findall(request.upper())
    if order_ids and re.search(r"\brefund", request, re.IGNORECASE):
        args: dict[str, Any] = {"order_id": order_ids[0], "reason": request.strip()[:200]}
        return ToolCall(name="issue_refund", args=args, id=call_id)
    if order_ids:
        return ToolCall(name="lookup_order", args={"order_id": order_ids[0]}, id=call_id)
    expression = find_expression(request)
    if expression is not None:
        return ToolCall(name="calculator", args={"expression": expression}, id=call_id)
    return None


def answer_from(results: Sequence[ToolMessage]) -> str:
    parts = []
    for result in results:
        if result.status == "error":
            parts.append(f"I could not complete {result.name}: {result.text}")
        else:
            parts.append(f"{_ANSWER_LEAD.get(result.name or '', 'Result:')} {result.text}")
    return " ".join(parts)


def offline_reply(messages: Sequence[BaseMessage]) -> AIMessage:
    """The offline model's whole behaviour, as a pure function of the conversation."""
    request, turn = current_turn(messages)
    results = [m for m in turn if isinstance(m, ToolMessage)]
    if results:
        return AIMessage(content=answer_from(results))
    call = plan_tool_call(request, call_id=f"call_{len(messages)}")
    if call is None:
        return AIMessage(content=_HELP)
    return AIMessage(content="", tool_calls=[call])


class OfflineSupportModel(BaseChatModel):
    """A deterministic chat model so the example and its tests need no LLM and no network.

    Streamed (a server streaming the ``messages`` mode, a chat UI), it sends its answer a
    word at a time, ``token_delay`` seconds apart (``AGENT_FAKE_TOKEN_DELAY``), like a real
    model; a tool call comes whole, in one chunk."""

    token_delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "berth-offline-support"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        # It already knows the example's tools by name.
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=offline_reply(messages))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        # The base class reports each chunk to the callbacks (LangGraph's messages stream).
        reply = offline_reply(messages)
        if reply.tool_calls:
            chunks = [
                tool_call_chunk(
                    name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=i
                )
                for i, call in enumerate(reply.tool_calls)
            ]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))
            return
        words = reply.text.split(" ")
        for i, word in enumerate(words):
            if self.token_delay > 0:
                time.sleep(self.token_delay)
            token = word if i == len(words) - 1 else word + " "
            yield ChatGenerationChunk(message=AIMessageChunk(content=token))


# ---------------------------------------------------------------------------------------
# Choosing the model
# ---------------------------------------------------------------------------------------

Provider = Literal["fake", "anthropic", "openai"]


@dataclass(frozen=True)
class ProviderSpec:
    module: str
    chat_class: str
    key_variable: str
    model_variable: str
    default_model: str
    package: str


PROVIDERS: Mapping[str, ProviderSpec] = {
    "anthropic": ProviderSpec(
        "langchain_anthropic",
        "ChatAnthropic",
        "ANTHROPIC_API_KEY",
        "AGENT_ANTHROPIC_MODEL",
        "claude-sonnet-4-5",
        "langchain-anthropic",
    ),
    "openai": ProviderSpec(
        "langchain_openai",
        "ChatOpenAI",
        "OPENAI_API_KEY",
        "AGENT_OPENAI_MODEL",
        "gpt-4.1-mini",
        "langchain-openai",
    ),
}


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose_provider(
    env: Mapping[str, str], can_import: Callable[[str], bool] = importable
) -> Provider:
    """Decide which model backs the agent; an explicit choice that cannot work is an error."""
    wanted = env.get("AGENT_MODEL_PROVIDER", "auto").strip().lower() or "auto"
    if wanted == "fake":
        return "fake"
    if wanted in PROVIDERS:
        spec = PROVIDERS[wanted]
        if not can_import(spec.module):
            raise RuntimeError(
                f"AGENT_MODEL_PROVIDER={wanted} needs the {spec.package} package: "
                f"pip install {spec.package}"
            )
        if not env.get(spec.key_variable):
            raise RuntimeError(f"AGENT_MODEL_PROVIDER={wanted} needs {spec.key_variable} set")
        return "anthropic" if wanted == "anthropic" else "openai"
    if wanted != "auto":
        raise ValueError(
            f"AGENT_MODEL_PROVIDER must be one of auto, fake, anthropic, openai; got {wanted!r}"
        )
    for name in ("anthropic", "openai"):
        spec = PROVIDERS[name]
        if env.get(spec.key_variable) and can_import(spec.module):
            return "anthropic" if name == "anthropic" else "openai"
    return "fake"


def load_model(env: Mapping[str, str] = os.environ) -> BaseChatModel:
    provider = choose_provider(env)
    if provider == "fake":
        return OfflineSupportModel(token_delay=float(env.get("AGENT_FAKE_TOKEN_DELAY", "0")))
    spec = PROVIDERS[provider]
    chat_class = getattr(importlib.import_module(spec.module), spec.chat_class)
    model: BaseChatModel = chat_class(
        model=env.get(spec.model_variable, spec.default_model), temperature=0
    )
    return model


# ---------------------------------------------------------------------------------------
# The human approval step and the graph
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    approved: bool
    reason: str


_YES = frozenset({"yes", "y", "approve", "approved", "ok", "okay"})


def parse_decision(reply: object) -> Decision:
    """Read a reviewer's reply. Only an explicit yes approves; anything else refuses."""
    if reply is True:
        return Decision(True, "approved")
    if isinstance(reply, str):
        text = reply.strip()
        if text.lower() in _YES:
            return Decision(True, "approved")
        return Decision(False, text or "no reason given")
    if isinstance(reply, Mapping):
        approved = reply.get("approved") is True
        reason = reply.get("reason")
        default = "approved" if approved else "no reason given"
        return Decision(approved, str(reason) if reason else default)
    if reply is False or reply is None:
        return Decision(False, "no reason given")
    return Decision(False, f"unrecognised reply {reply!r}")


def approval_request(call: ToolCall) -> dict[str, Any]:
    """What the paused run shows the reviewer (the interrupt's value)."""
    return {
        "kind": "approval",
        "tool": call["name"],
        "args": call["args"],
        "tool_call_id": call["id"],
        "question": (
            f"Allow {call['name']} with {call['args']}? Resume with "
            '{"approved": true} or {"approved": false, "reason": "..."}.'
        ),
    }


def last_model_turn(messages: Sequence[BaseMessage]) -> tuple[AIMessage, list[BaseMessage]]:
    """The latest AI message and the messages after it."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if isinstance(message, AIMessage):
            return message, list(messages[index + 1 :])
    raise ValueError("the conversation has no AI message to act on")


def next_step(
    messages: Sequence[BaseMessage], sensitive: frozenset[str]
) -> Literal["review", "tools", "__end__"]:
    """After the model: a human reviews sensitive calls, other calls run, no call ends."""
    last = messages[-1] if messages else None
    if not isinstance(last, AIMessage) or not last.tool_calls:
        return "__end__"
    if any(call["name"] in sensitive for call in last.tool_calls):
        return "review"
    return "tools"


def build_graph(
    model: BaseChatModel | None = None,
    *,
    desk: RefundDesk | None = None,
    sensitive: frozenset[str] = SENSITIVE_TOOLS,
    checkpointer: Checkpointer = None,
) -> CompiledStateGraph[MessagesState, None, MessagesState, MessagesState]:
    """Wire the agent. Servers supply their own checkpointer; tests pass one in."""
    tools = make_tools(desk if desk is not None else RefundDesk())
    by_name = {t.name: t for t in tools}
    llm = (model if model is not None else load_model()).bind_tools(tools)

    def agent(state: MessagesState, runtime: Runtime[Context]) -> dict[str, list[BaseMessage]]:
        """Ask the model for the next step: a tool call or the answer."""
        # Invoked without a server (tests, scripts) there may be no context at all.
        ctx = runtime.context if runtime.context is not None else Context()
        prompt = ctx.system_prompt.format(shop_name=ctx.shop_name)
        reply = llm.invoke([SystemMessage(prompt), *state.get("messages", [])])
        return {"messages": [reply]}

    def review(state: MessagesState) -> dict[str, list[BaseMessage]]:
        """Pause for a human before each sensitive call; a refused call gets a refusal."""
        ai, _ = last_model_turn(state["messages"])
        refusals: list[BaseMessage] = []
        for call in ai.tool_calls:
            if call["name"] not in sensitive:
                continue
            decision = parse_decision(interrupt(approval_request(call)))
            if not decision.approved:
                refusals.append(
                    ToolMessage(
                        content=f"the reviewer declined ({decision.reason}); nothing was done",
                        tool_call_id=call["id"] or "",
                        name=call["name"],
                        status="error",
                    )
                )
        return {"messages": refusals}

    def run_tools(state: MessagesState) -> dict[str, list[BaseMessage]]:
        """Run each tool call of the last model turn that has no answer yet."""
        ai, after = last_model_turn(state["messages"])
        answered = {m.tool_call_id for m in after if isinstance(m, ToolMessage)}
        results: list[BaseMessage] = []
        for call in ai.tool_calls:
            if call["id"] in answered:
                continue
            call_id, name = call["id"] or "", call["name"]
            selected = by_name.get(name)
            try:
                if selected is None:
                    raise ToolException(f"there is no tool named {name}")
                content = str(selected.invoke(call["args"]))
                results.append(ToolMessage(content=content, tool_call_id=call_id, name=name))
            except (ToolException, ValueError) as exc:
                results.append(
                    ToolMessage(content=str(exc), tool_call_id=call_id, name=name, status="error")
                )
        return {"messages": results}

    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node("agent", agent)
    builder.add_node("review", review)
    builder.add_node("tools", run_tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges(
        "agent",
        lambda state: next_step(state.get("messages", []), sensitive),
        ["review", "tools", END],
    )
    builder.add_edge("review", "tools")
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, name="support-agent")


graph = build_graph()
