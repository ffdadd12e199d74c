"""Claim mode of the sandbox backend on a real API server, with the real executor.

The runtime side is all real: the provider claims through `berth_runtime.sandbox.claims`
(SandboxClaim with `spec.executorTokenSHA256` of the token it derives from its key, then a
watch; no Secret), calls the Go executor with that token, records activity in the claim's
`berth.dev/last-activity` annotation, and deletes the claim after the idle TTL. The test
binds the claim itself, as the operator would (kwok Pods run no processes): status Ready
with a Pod IP (the loopback address where the executor listens), and the claim's hash in
the executor's token file only a while later, as kubelet's downwardAPI refresh lags.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import kubernetes
import pytest
from berth_runtime.sandbox.claims import GROUP, PLURAL, VERSION, SandboxClaims, derive_token
from berth_runtime.sandbox.provider import SandboxProvider
from berth_runtime.sandbox.resolvers import (
    ACTIVITY_ANNOTATION,
    ClaimResolver,
    SandboxUnavailable,
    ScopeKey,
    parse_rfc3339,
)
from berth_runtime.sandbox.scoped import ScopedSandboxBackend
from berth_runtime.sandbox.settings import parse_sandbox

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import ROOT
from tests.support.sandbox_executor import Executor, running_executor

pytestmark = pytest.mark.cluster

CLAIM_CRD = "sandboxclaims.berth.dev"
KEY = "5a" * 32
"""The AgentDeployment's token key (BERTH_SANDBOX_TOKEN_KEY)."""
FILE_LAG = 1.5
"""Seconds between Ready and the executor's token file holding the claim's hash."""


@pytest.fixture(scope="module")
def claim_crd(kubectl: Kubectl) -> None:
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(ROOT / "crds" / f"{CLAIM_CRD}.yaml"),
    )
    kubectl("wait", "--for=condition=Established", f"crd/{CLAIM_CRD}", "--timeout=30s")


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_executor(tmp_path_factory.mktemp("executor")) as ex:
        yield ex


class Clock:
    """Monotonic and wall clock in one, moved by the test (starts at the real time)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _bind_when_created(
    api: kubernetes.client.ApiClient,
    ns: str,
    executor: Executor,
    deadline: float,
    not_uid: str | None = None,
) -> str:
    """Play the operator (and kubelet): wait for the runtime's claim (not ``not_uid``), bind
    it to 127.0.0.1, and put its token hash into the executor's token file ``FILE_LAG``
    later."""
    objects = kubernetes.client.CustomObjectsApi(api)
    while time.monotonic() < deadline:
        items = [
            i
            for i in objects.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
            if i["metadata"]["uid"] != not_uid and not i["metadata"].get("deletionTimestamp")
        ]
        if items:
            name = items[0]["metadata"]["name"]
            digest = items[0]["spec"]["executorTokenSHA256"]
            break
        time.sleep(0.05)
    else:
        raise TimeoutError("the runtime created no SandboxClaim")
    # The runtime named the hash of HMAC-SHA256(key, claim name): any replica knows the token.
    token = derive_token(KEY, name)
    assert digest == hashlib.sha256(token.encode()).hexdigest()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Bound", "lastTransitionTime": now}
            ],
            "podName": f"{name}-pod",
            "podIP": "127.0.0.1",
            "launchType": "warm",
            "boundAt": now,
        }
    }
    objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, name, status, _content_type="application/merge-patch+json"
    )
    time.sleep(FILE_LAG)
    # Until kubelet refreshes the file, the executor refuses even the right token.
    early = httpx.post(
        f"{executor.url}/v1/exec",
        json={"command": "true"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert early.status_code == 401, early.text
    assert executor.hash_file is not None
    executor.hash_file.write_text(digest)
    return str(name)


def _claim(api: kubernetes.client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    try:
        body: dict[str, Any] = kubernetes.client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, name
        )
    except kubernetes.client.ApiException as e:
        if e.status == 404:
            return None
        raise
    return body


async def test_thread_sandbox_claimed_used_recorded_and_released(
    claim_crd: None,
    namespace: str,
    api_client: kubernetes.client.ApiClient,
    executor: Executor,
) -> None:
    port = int(executor.url.rsplit(":", 1)[1])
    assert executor.hash_file is not None
    executor.hash_file.write_text("")  # a warm, unclaimed executor: refuses every token
    resolver = ClaimResolver(
        namespace,
        "py",
        ready_timeout=60,
        claims=SandboxClaims(api_client),
        executor_port=port,
        token_key=KEY,
        token_wait=60,
    )
    clock = Clock()
    settings = parse_sandbox({"pool": "py", "scope": "thread", "ttlSeconds": 300})
    provider = SandboxProvider(settings, resolver, clock, wall=clock, auto_reap=False)
    run = {"configurable": {"thread_id": "thread-1", "assistant_id": "a-1"}}
    backend = ScopedSandboxBackend(provider, run)

    binder = asyncio.create_task(
        asyncio.to_thread(
            _bind_when_created, api_client, namespace, executor, time.monotonic() + 60
        )
    )
    # Ready comes FILE_LAG before the token file: the fresh lease retries its 401s meanwhile.
    result = await backend.aexecute("echo hello from the claim")
    name = await binder
    assert (result.output.strip(), result.exit_code) == ("hello from the claim", 0)
    assert backend.id == f"{namespace}/{name}"

    claim = _claim(api_client, namespace, name)
    assert claim is not None
    assert claim["metadata"]["labels"]["berth.dev/thread-id"] == "thread-1"
    assert claim["spec"]["poolRef"] == {"name": "py"}
    lease = provider.backend_for(ScopeKey("thread", "thread-1"))
    assert lease is not None and not lease.in_token_grace  # the accepted call ended it
    secrets = kubernetes.client.CoreV1Api(api_client).list_namespaced_secret(namespace).items
    assert not [s.metadata.name for s in secrets if s.metadata.name.endswith("-executor")]

    # Activity is shared through the claim (the operator's idleTimeout reads it too).
    deadline = time.monotonic() + 30
    recorded: float | None = None
    while recorded is None and time.monotonic() < deadline:
        claim = _claim(api_client, namespace, name) or {}
        raw = (claim.get("metadata", {}).get("annotations") or {}).get(ACTIVITY_ANNOTATION)
        recorded = parse_rfc3339(raw) if raw else None
        await asyncio.sleep(0.05)
    assert recorded is not None and abs(recorded - clock.now) < 1

    # A second call reuses the lease: no second claim.
    assert (await backend.aexecute("true")).exit_code == 0
    items = kubernetes.client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    assert [i["metadata"]["name"] for i in items] == [name]

    # Another replica records a use 200 s after ours: kept past our TTL, released at its.
    bound = provider.bound(ScopeKey("thread", "thread-1"))
    assert bound is not None
    await resolver.touch(bound, clock.now + 200)
    clock.now += 301
    assert await provider.reap() == []
    assert _claim(api_client, namespace, name) is not None
    clock.now += 200
    released = await provider.reap()
    assert [k.value for k in released] == ["thread-1"]
    assert _claim(api_client, namespace, name) is None
    await provider.aclose()


def _resolver(
    namespace: str, api_client: kubernetes.client.ApiClient, executor: Executor, ready: float
) -> tuple[ClaimResolver, SandboxProvider]:
    port = int(executor.url.rsplit(":", 1)[1])
    resolver = ClaimResolver(
        namespace,
        "py",
        ready_timeout=ready,
        claims=SandboxClaims(api_client),
        executor_port=port,
        token_key=KEY,
        token_wait=60,
    )
    settings = parse_sandbox({"pool": "py", "scope": "thread", "ttlSeconds": 300})
    return resolver, SandboxProvider(settings, resolver, auto_reap=False)


def _stall(api: kubernetes.client.ApiClient, ns: str, name: str, reason: str) -> None:
    """The operator's status of a finished claim (its Pod deleted)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    conditions = [
        {"type": t, "status": s, "reason": reason, "message": f"{reason} (test)",
         "lastTransitionTime": now}
        for t, s in (("Ready", "False"), ("Stalled", "True"))
    ]  # fmt: skip
    kubernetes.client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, name, {"status": {"conditions": conditions}},
        _content_type="application/merge-patch+json",
    )  # fmt: skip


@pytest.mark.parametrize("reason", ["Expired", "SandboxLost"])
async def test_finished_claim_of_the_thread_is_replaced_by_a_fresh_one(
    claim_crd: None,
    namespace: str,
    api_client: kubernetes.client.ApiClient,
    executor: Executor,
    reason: str,
) -> None:
    """A claim left by a runtime process that restarted, then expired by the pool's
    idleTimeout (or lost its Pod), never becomes Ready again: the thread's next call
    deletes it and works on a fresh claim instead of failing for good."""
    assert executor.hash_file is not None
    executor.hash_file.write_text("")
    old = await SandboxClaims(api_client).ensure_claim(
        namespace, "py", thread_id="thread-2", token_key=KEY
    )
    _stall(api_client, namespace, old.name, reason)
    _, provider = _resolver(namespace, api_client, executor, ready=60)
    backend = ScopedSandboxBackend(provider, {"configurable": {"thread_id": "thread-2"}})
    binder = asyncio.create_task(
        asyncio.to_thread(
            _bind_when_created,
            api_client,
            namespace,
            executor,
            time.monotonic() + 60,
            old.uid,
        )
    )
    result = await backend.aexecute("echo on a fresh claim")
    name = await binder
    assert (result.output.strip(), result.exit_code) == ("on a fresh claim", 0)
    assert name == old.name  # the thread's claim name, made anew
    fresh = _claim(api_client, namespace, name)
    assert fresh is not None and fresh["metadata"]["uid"] != old.uid
    assert fresh["metadata"]["labels"]["berth.dev/thread-id"] == "thread-2"
    await provider.aclose()


async def test_claim_not_ready_in_time_is_released(
    claim_crd: None,
    namespace: str,
    api_client: kubernetes.client.ApiClient,
    executor: Executor,
) -> None:
    """A claim that is not Ready within readyTimeoutSeconds (here: nothing binds it, as
    with a missing pool) fails the call naming its state, and is deleted: bound later, no
    lease would ever release it."""
    _, provider = _resolver(namespace, api_client, executor, ready=2)
    backend = ScopedSandboxBackend(provider, {"configurable": {"thread_id": "thread-3"}})
    with pytest.raises(SandboxUnavailable, match="not Ready"):
        await backend.aexecute("true")
    items = kubernetes.client.CustomObjectsApi(api_client).list_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL
    )["items"]
    assert [i for i in items if not i["metadata"].get("deletionTimestamp")] == []
    await provider.aclose()
