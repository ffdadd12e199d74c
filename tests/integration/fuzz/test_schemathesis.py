"""Schemathesis against the runtime's own /openapi.json: every operation (examples, coverage and
fuzzing phases, positive and negative data), then the stateful phase along the links the
document declares; without auth, and with the custom auth handler of tests/.../tenants.json.

Each answer must be a non-5xx whose status code, Content-Type, headers and body the document
lists. The cases per operation and phase are bounded by BERTH_FUZZ_EXAMPLES (`make fuzz` raises
it). (Schemathesis' pytest loader, `schemathesis.pytest.from_fixture`, does not run under
pytest 9: it sets `Function._nodeid`, which pytest 9 no longer has. Its engine is the same code
the `st` command runs.)
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events
from schemathesis.engine.recorder import ScenarioRecorder

from tests.integration.fuzz.conftest import TALLY, fuzz_examples
from tests.integration.runtime.conftest import RuntimeProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
ALICE = {"Authorization": "Bearer token-alice"}


def full_run() -> bool:
    """`make fuzz`: every phase for both variants, unexpected methods included."""
    return os.environ.get("BERTH_FUZZ_FULL") == "1"


def config(headers: dict[str, str] | None = None, coverage: bool = True) -> SchemathesisConfig:
    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in CHECKS})
    seed = os.environ.get("BERTH_FUZZ_SEED")
    return SchemathesisConfig.from_dict(
        {
            **({"seed": int(seed)} if seed else {}),
            "headers": headers or {},
            "request-timeout": 30,
            "continue-on-failure": True,
            "checks": checks,
            "generation": {"max-examples": fuzz_examples(), "database": "none", "mode": "all"},
            "phases": {
                "examples": {"enabled": True},
                "coverage": {
                    "enabled": coverage,
                    # Every method a path does not have (405s) only under `make fuzz`.
                    **({} if full_run() else {"unexpected-methods": []}),
                },
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": True, "max-steps": 4 * fuzz_examples()},
            },
        }
    )


def fuzz(
    server: RuntimeProcess,
    variant: str,
    headers: dict[str, str] | None = None,
    coverage: bool = True,
) -> None:
    url = f"{server.url}/openapi.json"
    schema = schemathesis.openapi.from_url(url, config=config(headers, coverage))
    counts = TALLY[variant]
    failures: list[str] = []
    errors: list[str] = []
    tested: set[str] = set()
    progress = os.environ.get("BERTH_FUZZ_PROGRESS") == "1"

    def record(recorder: ScenarioRecorder) -> None:
        for interaction in recorder.interactions.values():
            counts["cases"] += 1
            if interaction.response is None:
                counts["no answer"] += 1
            else:
                counts[f"{interaction.response.status_code // 100}xx"] += 1
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.status == Status.FAILURE and check.failure_info is not None:
                    step = check.failure_info.steps[-1] if check.failure_info.steps else None
                    where = step.operation if step else recorder.label
                    failures.append(
                        f"{where} [{check.name}] {check.failure_info.failure.title}: "
                        f"{check.failure_info.failure.message[:300]}\n  "
                        f"{check.failure_info.code_sample[:600]} (case {case_id})"
                    )

    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            record(event.recorder)
            if isinstance(event, events.ScenarioFinished):
                tested.add(event.recorder.label)
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.title}: {event.info.message[:300]}")
        elif isinstance(event, events.FatalError):
            raise event.exception
        elif isinstance(event, events.PhaseFinished) and progress:
            print(f"fuzz {variant}: {event.phase.name.value} done; {dict(counts)}", flush=True)
    print(f"fuzz {variant}: {len(tested)} operations, {dict(counts)}")
    assert counts["cases"] > 0
    assert counts["5xx"] == 0, "\n".join(failures)
    assert failures == [], f"{len(failures)} failures:\n" + "\n".join(failures[:40])
    assert errors == [], "\n".join(errors)


def test_every_operation_without_auth(plain_server: RuntimeProcess) -> None:
    fuzz(plain_server, "no auth")


def test_every_operation_with_custom_auth(tenant_server: RuntimeProcess) -> None:
    # The coverage phase's few thousand boundary cases run behind auth only under `make fuzz`
    # (BERTH_FUZZ_FULL=1): the same handlers answer them as without auth.
    fuzz(tenant_server, "custom auth", ALICE, coverage=full_run())
