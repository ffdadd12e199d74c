"""The example agent, run in process with LangGraph's InMemorySaver: tools, approval, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import ToolException
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from examples.agent import agent as example
from examples.agent.agent import (
    OfflineSupportModel,
    RefundDesk,
    build_graph,
    choose_provider,
    evaluate,
    find_expression,
    parse_decision,
    plan_tool_call,
)

AGENT_DIR = Path(example.__file__).parent


def new_graph(desk: RefundDesk) -> Any:
    return build_graph(OfflineSupportModel(), desk=desk, checkpointer=InMemorySaver())


def config(thread: str = "t1") -> Any:
    return {"configurable": {"thread_id": thread}}


def say(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text)]}


def tool_messages(state: Any, name: str) -> list[ToolMessage]:
    return [m for m in state.values["messages"] if isinstance(m, ToolMessage) and m.name == name]


def test_refund_pauses_for_approval_and_runs_once_after_it() -> None:
    desk = RefundDesk()
    graph = new_graph(desk)

    graph.invoke(say("Please refund order A-1002, it arrived broken"), config())

    paused = graph.get_state(config())
    assert paused.next == ("review",)
    assert desk.issued == []  # nothing moved before a human said yes
    [pending] = paused.interrupts
    assert pending.value["kind"] == "approval"
    assert pending.value["tool"] == "issue_refund"
    assert pending.value["args"]["order_id"] == "A-1002"
    assert "approved" in pending.value["question"]

    result = graph.invoke(Command(resume={"approved": True}), config())

    assert desk.issued == [("A-1002", 4550)]
    done = graph.get_state(config())
    assert done.next == ()
    assert done.interrupts == ()
    [refund] = tool_messages(done, "issue_refund")
    assert refund.status == "success"
    assert "RF-A-1002" in refund.text and "$45.50" in refund.text
    answer = result["messages"][-1]
    assert isinstance(answer, AIMessage) and not answer.tool_calls
    assert refund.text in answer.text


def test_declined_refund_is_not_executed_and_the_answer_says_so() -> None:
    desk = RefundDesk()
    graph = new_graph(desk)
    graph.invoke(say("refund A-1001 please"), config())

    result = graph.invoke(
        Command(resume={"approved": False, "reason": "outside the return window"}), config()
    )

    assert desk.issued == []
    [refusal] = tool_messages(graph.get_state(config()), "issue_refund")
    assert refusal.status == "error"
    assert "outside the return window" in refusal.text
    assert "could not complete issue_refund" in result["messages"][-1].text


def test_unclear_reply_counts_as_a_refusal() -> None:
    desk = RefundDesk()
    graph = new_graph(desk)
    graph.invoke(say("refund A-1001"), config())
    graph.invoke(Command(resume=42), config())
    assert desk.issued == []
    [refusal] = tool_messages(graph.get_state(config()), "issue_refund")
    assert "unrecognised reply 42" in refusal.text


def test_tools_that_change_nothing_run_without_approval() -> None:
    graph = new_graph(RefundDesk())

    result = graph.invoke(say("What is 12 * (3 + 4)?"), config())

    assert graph.get_state(config()).next == ()
    [calc] = tool_messages(graph.get_state(config()), "calculator")
    assert calc.text == "12 * (3 + 4) = 84"
    assert result["messages"][-1].text == "Worked out: 12 * (3 + 4) = 84"


def test_lookup_and_unknown_order() -> None:
    graph = new_graph(RefundDesk())
    result = graph.invoke(say("Where is order B-2001?"), config())
    assert "three-month coffee subscription, $54.00, active" in result["messages"][-1].text

    result = graph.invoke(say("Where is order Z-9999?"), config())
    [_, missing] = tool_messages(graph.get_state(config()), "lookup_order")
    assert missing.status == "error" and "no order Z-9999" in missing.text
    assert "could not complete lookup_order" in result["messages"][-1].text


def test_a_conversation_keeps_its_turns_apart_and_refunds_each_once() -> None:
    desk = RefundDesk()
    graph = new_graph(desk)
    graph.invoke(say("What is 2 ** 10?"), config())
    graph.invoke(say("Please refund A-1001"), config())
    graph.invoke(Command(resume="yes"), config())
    graph.invoke(say("And refund A-1002 too"), config())
    graph.invoke(Command(resume=True), config())

    assert desk.issued == [("A-1001", 12900), ("A-1002", 4550)]
    state = graph.get_state(config())
    assert len(tool_messages(state, "issue_refund")) == 2
    assert len(tool_messages(state, "calculator")) == 1
    ids = [m.tool_call_id for m in state.values["messages"] if isinstance(m, ToolMessage)]
    assert len(ids) == len(set(ids))

    other = graph.invoke(say("hello"), config("t2"))  # a second thread starts from scratch
    assert len(other["messages"]) == 2 and "look up an order" in other["messages"][-1].text


def test_an_empty_conversation_gets_the_help_text() -> None:
    graph = new_graph(RefundDesk())
    result = graph.invoke({}, config())
    [answer] = result["messages"]
    assert isinstance(answer, AIMessage) and "look up an order" in answer.text


def test_a_bad_expression_becomes_a_failed_tool_result_not_a_crash() -> None:
    graph = new_graph(RefundDesk())
    result = graph.invoke(say("What is 1 / 0 ?"), config())
    [calc] = tool_messages(graph.get_state(config()), "calculator")
    assert calc.status == "error" and "division by zero" in calc.text
    assert "could not complete calculator" in result["messages"][-1].text


@pytest.mark.parametrize(
    ("reply", "approved"),
    [
        (True, True),
        ("yes", True),
        (" Approve ", True),
        ({"approved": True}, True),
        ({"approved": "true"}, False),  # only a real boolean approves
        ({"approved": False, "reason": "no"}, False),
        (False, False),
        (None, False),
        ("no way", False),
        ("", False),
        (1, False),
    ],
)
def test_parse_decision_only_an_explicit_yes_approves(reply: object, approved: bool) -> None:
    assert parse_decision(reply).approved is approved


def test_parse_decision_keeps_the_reason() -> None:
    assert parse_decision({"approved": False, "reason": "fraud"}).reason == "fraud"
    assert parse_decision("too late").reason == "too late"


@pytest.mark.parametrize(
    ("expression", "value"),
    [("12 * (3 + 4)", 84), ("2 ** 10", 1024), ("7 / 2", 3.5), ("-3 + 5 % 3", -1), ("9 // 2", 4)],
)
def test_evaluate_does_arithmetic(expression: str, value: float) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("__import__('os').system('true')", "unsupported element"),
        ("a + 1", "unsupported element"),
        ("2 ** 100", "exponents above 64"),
        ("1 / 0", "division by zero"),
        ("1 +", "not an arithmetic expression"),
        ("1" * 201, "too long"),
        ("True + 1", "booleans"),
    ],
)
def test_evaluate_rejects_what_is_not_arithmetic(expression: str, error: str) -> None:
    with pytest.raises(ToolException, match=error):
        evaluate(expression)


def test_offline_model_plans_from_the_request() -> None:
    refund = plan_tool_call("please refund a-1001", "c1")
    assert refund is not None and refund["name"] == "issue_refund"
    assert refund["args"]["order_id"] == "A-1001"
    lookup = plan_tool_call("status of A-1002?", "c2")
    assert lookup is not None and lookup["name"] == "lookup_order"
    assert plan_tool_call("hi there", "c3") is None
    assert find_expression("what is 3.5 * (2 + 2)?") == "3.5 * (2 + 2)"
    assert find_expression("I have 3 cats") is None


def test_choose_provider() -> None:
    def yes(_: str) -> bool:
        return True

    def no(_: str) -> bool:
        return False

    assert choose_provider({}, no) == "fake"
    assert choose_provider({"ANTHROPIC_API_KEY": "k"}, no) == "fake"  # package not installed
    assert choose_provider({"ANTHROPIC_API_KEY": "k"}, yes) == "anthropic"
    assert choose_provider({"OPENAI_API_KEY": "k"}, yes) == "openai"
    assert choose_provider({"ANTHROPIC_API_KEY": "k", "AGENT_MODEL_PROVIDER": "fake"}, yes) == (
        "fake"
    )
    with pytest.raises(RuntimeError, match="pip install langchain-openai"):
        choose_provider({"AGENT_MODEL_PROVIDER": "openai", "OPENAI_API_KEY": "k"}, no)
    with pytest.raises(RuntimeError, match="ANTHROPIC_API_KEY"):
        choose_provider({"AGENT_MODEL_PROVIDER": "anthropic"}, yes)
    with pytest.raises(ValueError, match="must be one of"):
        choose_provider({"AGENT_MODEL_PROVIDER": "gpt"}, yes)


def test_langgraph_json_points_at_the_compiled_graph() -> None:
    config_json = json.loads((AGENT_DIR / "langgraph.json").read_text())
    assert config_json["dependencies"] == ["."]
    path, variable = config_json["graphs"]["agent"].split(":")
    assert (AGENT_DIR / path).resolve() == Path(example.__file__).resolve()
    graph = getattr(example, variable)
    assert {"agent", "review", "tools"} <= set(graph.get_graph().nodes)


def test_offline_model_streams_its_answer_a_word_at_a_time() -> None:
    model = example.OfflineSupportModel()
    turn = [
        HumanMessage("Please refund order A-1002"),
        AIMessage("", tool_calls=[{"name": "issue_refund", "args": {}, "id": "c1"}]),
        ToolMessage("Refund RF-A-1002 issued", tool_call_id="c1", name="issue_refund"),
    ]
    tokens = [chunk.text for chunk in model.stream(turn) if chunk.text]
    assert len(tokens) > 5
    assert "".join(tokens) == model.invoke(turn).text
    # a tool call comes whole, the same as from invoke
    [call] = [c for c in model.stream([HumanMessage("Refund order A-1002")]) if c.tool_calls]
    assert call.tool_calls == model.invoke([HumanMessage("Refund order A-1002")]).tool_calls
    delayed = example.load_model({"AGENT_MODEL_PROVIDER": "fake", "AGENT_FAKE_TOKEN_DELAY": "0.01"})
    assert isinstance(delayed, example.OfflineSupportModel) and delayed.token_delay == 0.01
