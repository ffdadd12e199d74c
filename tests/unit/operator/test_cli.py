"""`berth-operator run` arguments."""

from __future__ import annotations

import pytest
from berth_operator.cli import build_parser, options_from


def test_namespaces_are_repeatable() -> None:
    o = options_from(
        build_parser().parse_args(["run", "-n", "a", "--namespace", "b", "--priority", "7"])
    )
    assert o.namespaces == ("a", "b") and not o.all_namespaces and o.priority == 7


def test_all_namespaces_and_liveness() -> None:
    args = ["run", "--all-namespaces", "--liveness", "http://0.0.0.0:8080/healthz", "--standalone"]
    o = options_from(build_parser().parse_args(args))
    assert o.all_namespaces and o.namespaces == ()
    assert o.liveness == "http://0.0.0.0:8080/healthz" and o.standalone


def test_default_priority_is_random_so_replicas_do_not_tie() -> None:
    parse = build_parser().parse_args
    priorities = {options_from(parse(["run", "-A"])).priority for _ in range(5)}
    assert len(priorities) > 1 and all(p > 0 for p in priorities)


@pytest.mark.parametrize("argv", [["run"], ["run", "-A", "-n", "x"]])
def test_scope_is_required_and_exclusive(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
