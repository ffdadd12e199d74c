"""The chart's dashboard and alerts against a real runtime's /metrics.

A `serve` runtime executes a few runs that succeed and a few that fail; its /metrics then
has every series the dashboard and the PrometheusRule read. The scraped samples, labelled
the way the chart's PodMonitor labels them, are the input series of promtool rule unit
tests: held steady no alert fires; evolved into trouble (errors, a stuck queue, lost
workers, Postgres gone, an exhausted pool, failing reconciles) each alert fires.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from langgraph_sdk import get_client
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.runtime.conftest import RuntimeProcess, launch, wait_ready
from tests.integration.runtime.test_multitask import steps_config, wait_for_step
from tests.support.opskit import (
    dashboard,
    dashboard_exprs,
    metric_names,
    promtool_binary,
    rule_groups,
    used_metric_names,
    write_rules,
)
from tests.support.servers import Server, create_database, postgres_server

pytestmark = pytest.mark.integration

AGENT_INPUT = {"messages": [{"role": "user", "content": "what is 2 + 3?"}]}
OK_RUNS, FAILED_RUNS = 4, 2
# The labels the chart's PodMonitor gives a runtime Pod's series.
POD_LABELS = {"namespace": "team-a", "agentdeployment": "agent", "job": "berth-system/runtime"}
PODS = ("agent-server-7d9f-abcde", "agent-worker-5c8b-fghij")
OPERATOR_NAMES = ("berth_operator_", "berth_sandboxpool_")

Sample = tuple[str, dict[str, str], float]


@pytest.fixture(scope="module")
def served(
    module_db: str, redis: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RuntimeProcess]:
    rp = launch("serve", module_db, redis.uri, tmp_path_factory.mktemp("ops"))
    try:
        yield rp
    finally:
        rp.terminate()


@pytest.fixture(scope="module")
async def scraped(served: RuntimeProcess) -> AsyncIterator[list[Sample]]:
    client = get_client(url=served.url)
    ok = [client.runs.wait(None, "agent", input=AGENT_INPUT) for _ in range(OK_RUNS)]
    await asyncio.gather(*ok)
    for i in range(FAILED_RUNS):
        t = await client.threads.create()
        await client.runs.wait(t["thread_id"], "failing", input={"x": i}, raise_error=False)
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
        resp = await http.get("/metrics")
    assert resp.status_code == 200, resp.text
    yield [
        (s.name, dict(s.labels), float(s.value))
        for fam in text_string_to_metric_families(resp.text)
        for s in fam.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and labels.items() <= lab.items())


async def test_every_runtime_metric_of_the_dashboard_and_alerts_is_served(
    scraped: list[Sample],
) -> None:
    served_names = {n for n, _, _ in scraped}
    runtime_used = {n for n in used_metric_names() if not n.startswith(OPERATOR_NAMES)}
    assert runtime_used, "the dashboard and rules read runtime metrics"
    assert runtime_used <= served_names, sorted(runtime_used - served_names)
    # ... and the panels that read them are about what happened.
    assert value(scraped, "berth_runs_finished_total", status="success") >= OK_RUNS
    assert value(scraped, "berth_runs_finished_total", status="error") >= FAILED_RUNS
    assert value(scraped, "berth_run_queue_wait_seconds_count") >= OK_RUNS + FAILED_RUNS
    assert value(scraped, "berth_run_first_event_seconds_count") >= OK_RUNS
    assert value(scraped, "berth_run_first_event_seconds_sum") > 0
    assert value(scraped, "berth_postgres_up") == 1
    assert value(scraped, "berth_runs_pending") == 0
    assert value(scraped, "berth_runs_oldest_pending_seconds") == 0
    assert value(scraped, "berth_worker_slots") > 0
    # Operator metrics are not the runtime's: the operator serves those (cluster test).
    assert not [n for n in served_names if n.startswith(OPERATOR_NAMES)]
    assert metric_names(dashboard_exprs(dashboard())) & {n for n in served_names}


def series_line(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def recorded_series(
    scraped: list[Sample], evolve: dict[tuple[str, str | None], str] | None = None
) -> list[dict[str, str]]:
    """Each scraped sample of each Pod as a promtool input series over 30 minutes (1m steps):
    constant, or `evolve[(name, status)]` as the step ("+5": grows 5 a minute; "=0": 0)."""
    out = []
    for pod in PODS:
        for name, labels, v in scraped:
            if name.endswith("_created"):
                continue
            step = (evolve or {}).get((name, labels.get("status")), "+0")
            values = "0x30" if step == "=0" else f"{v:g}{step}x30"
            out.append(
                {
                    "series": series_line(name, {**labels, **POD_LABELS, "pod": pod}),
                    "values": values,
                }
            )
    return out


def operator_series(*, warm: int, claimed: int, errors_per_minute: int) -> list[dict[str, str]]:
    pool = {"namespace": "team-a", "sandboxpool": "python", "job": "berth-system/operator"}
    reconcile = {"job": "berth-system/operator", "kind": "SandboxPool"}
    return [
        {"series": series_line("berth_sandboxpool_warm_pods", pool), "values": f"{warm}x30"},
        {"series": series_line("berth_sandboxpool_claimed_pods", pool), "values": f"{claimed}x30"},
        {"series": series_line("berth_sandboxpool_max_pods", pool), "values": "3x30"},
        {
            "series": series_line("berth_operator_reconciles_total", {**reconcile, "result": "ok"}),
            "values": "0+20x30",
        },
        {
            "series": series_line(
                "berth_operator_reconciles_total", {**reconcile, "result": "error"}
            ),
            "values": f"0+{errors_per_minute}x30",
        },
    ]


def without_annotations(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Labels are compared exactly; annotation templates are checked by `check rules`."""
    return [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
        for g in groups
    ]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_binary(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_accepts_the_rendered_rules(tmp_path: Path) -> None:
    rules = write_rules(tmp_path / "rules.yaml", rule_groups())
    result = promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout
    broken = rule_groups()
    broken[0]["rules"][0]["expr"] = "max by (namespace (berth_runs_pending)"
    bad = promtool("check", "rules", str(write_rules(tmp_path / "bad.yaml", broken)))
    assert bad.returncode != 0 and "parse error" in bad.stdout + bad.stderr


async def test_alerts_fire_on_trouble_and_not_on_the_recorded_healthy_run(
    scraped: list[Sample], tmp_path: Path
) -> None:
    groups = rule_groups()
    alerts = sorted(r["alert"] for g in groups for r in g["rules"])
    write_rules(tmp_path / "rules.yaml", without_annotations(groups))
    at = {"namespace": "team-a", "agentdeployment": "agent", "severity": "warning"}
    expected = {
        "BerthRunsPendingTooLong": [at],
        "BerthRunErrorRate": [at],
        "BerthWorkerHeartbeatsLost": [at],
        "BerthPostgresUnreachable": [
            {"namespace": "team-a", "agentdeployment": "agent", "pod": pod, "severity": "critical"}
            for pod in PODS
        ],
        "BerthSandboxPoolExhausted": [
            {"namespace": "team-a", "sandboxpool": "python", "severity": "warning"}
        ],
        "BerthReconcileErrors": [{"kind": "SandboxPool", "severity": "warning"}],
    }
    assert sorted(expected) == alerts
    trouble = recorded_series(
        scraped,
        {
            ("berth_runs_finished_total", "error"): "+5",
            ("berth_runs_finished_total", "success"): "+5",
            ("berth_runs_oldest_pending_seconds", None): "+60",
            ("berth_runs_reaped_total", None): "+1",
            ("berth_postgres_up", None): "=0",
        },
    ) + operator_series(warm=0, claimed=3, errors_per_minute=2)
    healthy = recorded_series(scraped) + operator_series(warm=2, claimed=1, errors_per_minute=0)
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": "recorded healthy run: silent",
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": a, "exp_alerts": []} for a in alerts
                ],
            },
            {
                "name": "trouble: every alert fires",
                "interval": "1m",
                "input_series": trouble,
                "alert_rule_test": [
                    {
                        "eval_time": "20m",
                        "alertname": a,
                        "exp_alerts": [{"exp_labels": labels} for labels in expected[a]],
                    }
                    for a in alerts
                ],
            },
            {
                "name": "trouble, but not yet for long enough",
                "interval": "1m",
                "input_series": trouble,
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": a, "exp_alerts": []}
                    for a in alerts
                    if a != "BerthWorkerHeartbeatsLost"  # fires at once: no `for`
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    # The same tests fail when an alert never fires: the check can fail.
    (tmp_path / "rules.yaml").write_text(
        (tmp_path / "rules.yaml").read_text().replace("> 300", "> 300000")
    )
    failing = promtool("test", "rules", str(tmp_path / "tests.yaml"))
    assert failing.returncode != 0 and "BerthRunsPendingTooLong" in failing.stdout + failing.stderr


async def scrape(url: str) -> list[Sample]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        resp = await http.get("/metrics")
    assert resp.status_code == 200, resp.text
    return [
        (s.name, dict(s.labels), float(s.value))
        for fam in text_string_to_metric_families(resp.text)
        for s in fam.samples
    ]


async def test_trouble_shows_in_the_metrics_the_alerts_read(redis: Server, tmp_path: Path) -> None:
    """A SIGKILLed worker's run is taken back (`berth_runs_reaped_total` of the process that
    reaped it: BerthWorkerHeartbeatsLost) and, with no worker left, waits in the queue
    (`berth_runs_oldest_pending_seconds` grows: BerthRunsPendingTooLong). Then Postgres goes
    away: /metrics still answers, with `berth_postgres_up 0` (BerthPostgresUnreachable) and
    no stale queue numbers."""
    fx = tmp_path / "fx.log"
    with postgres_server() as pg:
        db = create_database(pg.uri, "ops_trouble")
        api = launch("api", db, redis.uri, tmp_path, wait=False)
        worker = launch("worker", db, redis.uri, tmp_path, wait=False)
        try:
            wait_ready(api)
            wait_ready(worker)
            got = await scrape(api.url)
            assert (
                value(got, "berth_postgres_up") == 1 and value(got, "berth_runs_reaped_total") == 0
            )
            client = get_client(url=api.url)
            t = await client.threads.create()
            run = await client.runs.create(
                t["thread_id"], "steps", input={"done": []}, config=steps_config(fx, 0.8)
            )
            await wait_for_step(fx, run["run_id"], "s2")
            worker.kill()
            deadline = asyncio.get_running_loop().time() + 30
            while not (
                value(got, "berth_runs_reaped_total") >= 1
                and value(got, "berth_runs_oldest_pending_seconds") >= 1
            ):
                assert asyncio.get_running_loop().time() < deadline, got
                await asyncio.sleep(0.3)
                got = await scrape(api.url)
            assert value(got, "berth_runs_pending") == 1
            assert value(got, "berth_worker_slots") == 0  # the api role runs no runs itself

            # Fast shutdown of the postmaster itself (`pg.proc` is its runuser parent):
            # Postgres ends every session and stops listening.
            postmaster = int((pg.workdir / "data" / "postmaster.pid").read_text().split()[0])
            os.kill(postmaster, signal.SIGINT)
            pg.proc.wait(30)
            down = await scrape(api.url)
            names = {n for n, _, _ in down}
            assert value(down, "berth_postgres_up") == 0
            assert "berth_runs_pending" not in names and "berth_worker_slots" in names
            assert value(down, "berth_runs_reaped_total") >= 1  # counters stay
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as http:
                stats = (await http.get("/metrics", params={"format": "json"})).json()
            assert stats["postgres_up"] is False
        finally:
            api.terminate()
            worker.kill()
