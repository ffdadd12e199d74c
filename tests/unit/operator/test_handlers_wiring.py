"""The thin wiring: request coalescing, owner lookup, REST paths, kopf registration."""

from __future__ import annotations

import asyncio

import kopf
import pytest
from berth_operator.handlers.agentdeployment import WATCHED_CHILDREN, Operator, configure, owner_of
from berth_operator.handlers.coalesce import Coalescer, Key
from berth_operator.handlers.options import Options
from berth_operator.k8s.client import ApiError, path_of


async def test_requests_made_while_one_waits_are_merged() -> None:
    runs: list[Key] = []
    gate = asyncio.Event()

    async def run(key: Key) -> None:
        runs.append(key)
        await gate.wait()

    c = Coalescer(run)
    key = ("ns", "a")
    first = asyncio.create_task(c.request(key))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(c.request(key)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *waiting)
    assert runs == [key, key]  # the running pass, then one pass for the whole burst


async def test_forced_requests_always_run_and_raise() -> None:
    calls = 0

    async def run(key: Key) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    c = Coalescer(run)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await c.request(("ns", "a"), force=True)
    assert calls == 2


async def test_request_later_fires_once() -> None:
    runs: list[Key] = []

    async def run(key: Key) -> None:
        runs.append(key)

    c = Coalescer(run)
    c.request_later(("ns", "a"), 0.01)
    c.request_later(("ns", "a"), 0.01)
    await asyncio.sleep(0.1)
    assert runs == [("ns", "a")]


def test_owner_of_reads_the_berth_owner_reference() -> None:
    body = {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x"},
                {"apiVersion": "berth.dev/v1alpha1", "kind": "AgentDeployment", "name": "demo"},
            ]
        }
    }
    assert owner_of(body) == "demo"
    assert owner_of({"metadata": {}}) is None


def test_rest_paths() -> None:
    assert path_of("v1", "Secret", "ns", "s") == "/api/v1/namespaces/ns/secrets/s"
    assert (
        path_of("berth.dev/v1alpha1", "AgentDeployment", "ns", "a", "status")
        == "/apis/berth.dev/v1alpha1/namespaces/ns/agentdeployments/a/status"
    )
    assert (
        path_of("kopf.dev/v1", "ClusterKopfPeering", None)
        == "/apis/kopf.dev/v1/clusterkopfpeerings"
    )


def test_api_error_classification() -> None:
    assert ApiError(422, {"reason": "Invalid"}, "PATCH", "/x").rejected
    assert ApiError(403, {}, "PATCH", "/x").rejected
    assert not ApiError(500, {}, "PATCH", "/x").rejected
    assert not ApiError(409, {}, "PATCH", "/x").rejected


def test_registration_covers_changes_timer_and_children() -> None:
    registry = kopf.OperatorRegistry()
    Operator(Options(namespaces=("ns",))).register(registry)
    ids = {h.id for h in registry._changing.get_all_handlers()}
    assert "reconcile" in ids
    spawned = {h.id for h in registry._spawning.get_all_handlers()}
    assert "resync" in spawned
    watched = {h.id for h in registry._watching.get_all_handlers()}
    children = {f"child-{plural}" for _, _, plural in WATCHED_CHILDREN}
    # AgentCron deploymentRef checks: event handlers only (no finalizer on AgentCrons)
    assert {"agentcron-reference", "agentcron-deployments"} <= watched - children
    assert children <= watched


def test_kopf_settings_keep_state_under_berth_dev() -> None:
    settings = kopf.OperatorSettings()
    configure(settings, Options(namespaces=("ns",), workers=4))
    assert settings.persistence.finalizer == "berth.dev/finalizer"
    progress = settings.persistence.progress_storage
    diffbase = settings.persistence.diffbase_storage
    assert isinstance(progress, kopf.AnnotationsProgressStorage)
    assert isinstance(diffbase, kopf.AnnotationsDiffBaseStorage)
    assert progress.prefix == diffbase.prefix == "berth.dev"
    assert settings.watching.server_timeout == 300 and settings.watching.client_timeout == 330
    assert settings.peering.mandatory and settings.scanning.disabled
    assert settings.execution.max_workers == 4

    standalone = kopf.OperatorSettings()
    configure(standalone, Options(all_namespaces=True, standalone=True))
    assert not standalone.peering.mandatory
