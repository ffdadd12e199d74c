"""deploy/gitops/health.lua, the Argo CD health check for berth.dev resources, run in
Lua 5.1 (the dialect of Argo CD's gopher-lua) against conditions built by the
operator's own status functions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from berth_operator.render.status import (
    COMPONENTS,
    Verdict,
    conditions,
    invalid_spec_verdicts,
    summary_verdicts,
)
from lupa import lua51

SCRIPT = (Path(__file__).resolve().parents[2] / "deploy" / "gitops" / "health.lua").read_text()
NOW = "2026-01-01T00:00:00Z"


def _to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: _to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([_to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = lua51.LuaRuntime()
    lua.globals().obj = _to_lua(lua, obj)
    result = lua.execute(SCRIPT)
    return str(result["status"]), str(result["message"])


def resource(generation: int, observed: int, verdicts: dict[str, Verdict]) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "status": {
            "observedGeneration": observed,
            "conditions": conditions(verdicts, observed, None, NOW),
        },
    }


def with_summary(components: dict[str, Verdict]) -> dict[str, Verdict]:
    return {**components, **summary_verdicts(components)}


ALL_READY = {t: Verdict(True, "Available", "ready") for t in COMPONENTS}


def test_ready_and_current_is_healthy() -> None:
    assert health(resource(3, 3, with_summary(ALL_READY)))[0] == "Healthy"


def test_a_generation_not_yet_observed_is_progressing_even_if_ready() -> None:
    status, message = health(resource(4, 3, with_summary(ALL_READY)))
    assert status == "Progressing" and "Generation 4" in message


def test_no_status_yet_is_progressing() -> None:
    assert health({"metadata": {"generation": 1}})[0] == "Progressing"


def test_rolling_out_is_progressing() -> None:
    rolling = {**ALL_READY, "ServerReady": Verdict(False, "PodsNotReady", "1/2 Pods ready")}
    status, message = health(resource(2, 2, with_summary(rolling)))
    assert status == "Progressing" and "ServerReady: 1/2 Pods ready" in message


def test_stalled_component_is_degraded_with_its_reason() -> None:
    missing = {
        **ALL_READY,
        "DatabaseReady": Verdict(False, "SecretNotFound", "Secret pg not found", stalled=True),
    }
    assert health(resource(2, 2, with_summary(missing))) == (
        "Degraded",
        "SecretNotFound: Secret pg not found",
    )


def test_invalid_spec_is_degraded() -> None:
    status, message = health(resource(5, 5, invalid_spec_verdicts("bad graphs")))
    assert (status, message) == ("Degraded", "InvalidSpec: bad graphs")
