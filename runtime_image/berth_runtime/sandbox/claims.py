"""The runtime's side of sandbox claims: find or create a SandboxClaim, wait, release.

One claim per (pool, thread) or (pool, assistant): its name is derived from the scope,
so two runtime replicas asking at once create one claim (the loser's create gets 409
and reads the winner's). The synchronous official client runs in a worker thread;
waiting uses a single watch (it starts with the current state, then the changes).

The executor token is derived, not read: token = HMAC-SHA256(key, claim name) (hex), with
the AgentDeployment's key (`BERTH_SANDBOX_TOKEN_KEY`, from Secret `<name>-sandbox-key`).
Every replica computes the same token for the same claim, and the claim carries only its
sha256 (`spec.executorTokenSHA256`, which the operator puts on the Pod). So the runtime
needs no access to Secrets, and none to the auth proxy's credentials.

A new claim names its AgentDeployment (`spec.deploymentRef`, from `BERTH_DEPLOYMENT_NAME`):
a pool whose proxy rules inject thread users' OAuth tokens (Agent Auth) needs it to know
which runtime the proxy asks and which key the proxy token is derived from.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import kubernetes

GROUP = "berth.dev"
VERSION = "v1alpha1"
PLURAL = "sandboxclaims"
KIND = "SandboxClaim"
POOL_LABEL = "berth.dev/pool"
THREAD_LABEL = "berth.dev/thread-id"
ASSISTANT_LABEL = "berth.dev/assistant-id"
MIN_KEY_LENGTH = 32
ACTIVITY_ANNOTATION = "berth.dev/last-activity"
TERMINAL_REASONS = frozenset({"Expired", "SandboxLost"})
"""A claim stalled for one of these never becomes Ready: release it and ensure a new one."""
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class ClaimFailed(Exception):
    """The claim cannot become Ready (expired, deleted, or stalled for good)."""

    def __init__(self, claim: Claim, reason: str, message: str) -> None:
        self.claim = claim
        self.reason = reason
        super().__init__(f"sandbox claim {claim.namespace}/{claim.name}: {reason}: {message}")


@dataclass(frozen=True)
class Claim:
    namespace: str
    name: str
    pool: str
    uid: str
    token_sha256: str | None = None
    """The claim's `spec.executorTokenSHA256` (None: a claim made without one, by hand)."""
    token: str | None = field(default=None, repr=False, compare=False)
    """The derived token, when it matches `token_sha256`."""


@dataclass(frozen=True)
class BoundSandbox:
    """A Ready sandbox: where its executor listens and the token it accepts."""

    pod_name: str
    pod_ip: str
    token: str
    launch_type: str = ""
    bound_at: str = ""
    """`status.boundAt` (RFC 3339): the Pod's token file may lag this by kubelet's sync."""


def derive_token(key: str | bytes, claim: str) -> str:
    """A claim's executor token: HMAC-SHA256(key, claim name), hex. Same on every replica."""
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) < MIN_KEY_LENGTH:
        raise ValueError(f"the sandbox token key must be at least {MIN_KEY_LENGTH} bytes")
    return hmac.new(raw, claim.encode(), hashlib.sha256).hexdigest()


def token_sha256(token: str) -> str:
    """What the claim's `spec.executorTokenSHA256` (and the Pod's annotation) holds."""
    return hashlib.sha256(token.encode()).hexdigest()


def label_value(value: str) -> str:
    """``value`` itself when it is a valid label value, else a stable hash of it."""
    if _LABEL_VALUE.match(value):
        return value
    return "h-" + hashlib.sha256(value.encode()).hexdigest()[:40]


def claim_name(pool: str, scope: str, value: str) -> str:
    """A deterministic claim name (at most 63 characters: it is also a label value)."""
    digest = hashlib.sha256(f"{pool}\0{scope}\0{value}".encode()).hexdigest()[:16]
    return f"{pool[:40].rstrip('-')}-{scope}-{digest}"


def _condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for c in (body.get("status") or {}).get("conditions") or ():
        if c.get("type") == kind:
            return dict(c)
    return {}


def _claim_of(body: dict[str, Any], pool: str, key: str | bytes | None = None) -> Claim:
    meta = body["metadata"]
    digest = (body.get("spec") or {}).get("executorTokenSHA256")
    token = derive_token(key, meta["name"]) if key is not None else None
    if token is not None and (digest is None or token_sha256(token) != digest):
        token = None
    return Claim(meta["namespace"], meta["name"], pool, meta.get("uid", ""), digest or None, token)


def _token_of(claim: Claim) -> str:
    """The claim's token, or why it cannot be had without reading a Secret."""
    if claim.token is not None:
        return claim.token
    if claim.token_sha256 is None:
        raise ClaimFailed(
            claim,
            "NoExecutorTokenSHA256",
            "the claim has no spec.executorTokenSHA256 (made by hand?): its token is in "
            f"Secret {claim.name}-executor, which the runtime may not read; delete the claim "
            "so the runtime creates one with spec.executorTokenSHA256",
        )
    raise ClaimFailed(
        claim,
        "TokenMismatch",
        "spec.executorTokenSHA256 is not the hash of the token derived from "
        "BERTH_SANDBOX_TOKEN_KEY (was Secret <deployment>-sandbox-key replaced, or is the "
        "key unset?)",
    )


class SandboxClaims:
    """Claim operations against one API server (kubeconfig or in-cluster by default)."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self._client = api_client
        self._lock = asyncio.Lock()

    def _api_client(self) -> kubernetes.client.ApiClient:
        if self._client is None:
            try:
                kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
            except kubernetes.config.ConfigException:
                kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
            self._client = kubernetes.client.ApiClient()
        return self._client

    def _custom(self) -> Any:
        return kubernetes.client.CustomObjectsApi(self._api_client())

    # -- ensure ----------------------------------------------------------------------------
    def _ensure(
        self,
        namespace: str,
        pool: str,
        thread_id: str | None,
        assistant_id: str | None,
        ttl_seconds: int | None,
        token_key: str | bytes | None,
        deployment: str | None = None,
    ) -> Claim:
        api = self._custom()
        labels = {POOL_LABEL: pool}
        spec: dict[str, Any] = {"poolRef": {"name": pool}}
        name: str | None = None
        if thread_id is not None:
            labels[THREAD_LABEL] = label_value(thread_id)
            spec["threadId"] = labels[THREAD_LABEL]
            name = claim_name(pool, "t", thread_id)
        elif assistant_id is not None:
            labels[ASSISTANT_LABEL] = label_value(assistant_id)
            spec["assistantId"] = labels[ASSISTANT_LABEL]
            name = claim_name(pool, "a", assistant_id)
        if ttl_seconds is not None:
            spec["lifecycle"] = {"ttlSecondsAfterFinished": int(ttl_seconds)}
        if deployment:
            spec["deploymentRef"] = {"name": deployment}
        if token_key is not None and name is None:
            # The token is derived from the name, so the name is chosen here, not generated.
            name = claim_name(pool, "x", secrets.token_hex(16))
            lookup = False
        else:
            lookup = name is not None
        if token_key is not None:
            assert name is not None
            spec["executorTokenSHA256"] = token_sha256(derive_token(token_key, name))
        if lookup:
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            found = api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, label_selector=selector
            )
            live = [i for i in found.get("items", ()) if not i["metadata"].get("deletionTimestamp")]
            if live:
                return _claim_of(live[0], pool, token_key)
        meta: dict[str, Any] = {"labels": labels}
        if name is None:
            meta["generateName"] = f"{pool[:40].rstrip('-')}-"
        else:
            meta["name"] = name
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": meta, "spec": spec}
        try:
            created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        except kubernetes.client.ApiException as e:
            if e.status != 409 or not lookup:
                raise
            created = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        return _claim_of(created, pool, token_key)

    async def ensure_claim(
        self,
        namespace: str,
        pool: str,
        *,
        thread_id: str | None = None,
        assistant_id: str | None = None,
        ttl_seconds: int | None = None,
        token_key: str | bytes | None = None,
        deployment: str | None = None,
    ) -> Claim:
        """The claim of this thread (or assistant) on ``pool``; created when there is none.

        With ``token_key`` a new claim carries ``spec.executorTokenSHA256`` of the token
        derived from it, and the returned claim carries that token (see ``derive_token``).
        With ``deployment`` a new claim carries ``spec.deploymentRef`` (Agent Auth in the
        sandbox's proxy needs it).
        """
        return await asyncio.to_thread(
            self._ensure,
            namespace,
            pool,
            thread_id,
            assistant_id,
            ttl_seconds,
            token_key,
            deployment,
        )

    # -- wait ------------------------------------------------------------------------------
    def _wait(self, claim: Claim, timeout: float) -> BoundSandbox:
        token = _token_of(claim)  # fail before waiting when the token cannot be had
        api = self._custom()
        watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        last = "no status yet"
        try:
            for event in watch.stream(  # type: ignore[no-untyped-call]
                api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                claim.namespace,
                PLURAL,
                field_selector=f"metadata.name={claim.name}",
                timeout_seconds=max(1, math.ceil(timeout)),
                _request_timeout=timeout + 5,
            ):
                body: dict[str, Any] = event["object"]
                if event["type"] == "DELETED":
                    raise ClaimFailed(claim, "Deleted", "the claim was deleted")
                if event["type"] not in {"ADDED", "MODIFIED"}:
                    continue
                if claim.uid and body["metadata"].get("uid") != claim.uid:
                    raise ClaimFailed(claim, "Replaced", "the claim was deleted and recreated")
                ready, stalled = _condition(body, "Ready"), _condition(body, "Stalled")
                status = body.get("status") or {}
                if ready.get("status") == "True" and status.get("podIP"):
                    return BoundSandbox(
                        pod_name=str(status["podName"]),
                        pod_ip=str(status["podIP"]),
                        token=token,
                        launch_type=str(status.get("launchType", "")),
                        bound_at=str(status.get("boundAt") or ""),
                    )
                reason = str(stalled.get("reason", ""))
                if stalled.get("status") == "True" and reason in TERMINAL_REASONS:
                    raise ClaimFailed(claim, reason, str(stalled.get("message", "")))
                last = f"{ready.get('reason', '')}: {ready.get('message', '')}"
        finally:
            watch.stop()  # type: ignore[no-untyped-call]
        raise TimeoutError(f"sandbox claim {claim.namespace}/{claim.name} not Ready: {last}")

    async def wait_ready(self, claim: Claim, timeout: float = 60.0) -> BoundSandbox:  # noqa: ASYNC109
        """Block until the claim is Ready; ``ClaimFailed`` when it cannot be, else TimeoutError.

        The token is the one ``ensure_claim`` derived; a claim without
        ``spec.executorTokenSHA256`` (or with another key's hash) fails at once, naming why:
        the runtime never reads the operator's fallback Secret ``<claim>-executor``.
        """
        return await asyncio.to_thread(self._wait, claim, timeout)

    # -- activity --------------------------------------------------------------------------
    def _touch(self, claim: Claim, at: float | None) -> None:
        when = datetime.datetime.now(datetime.UTC) if at is None else _utc(at)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        patch = {"metadata": {"annotations": {ACTIVITY_ANNOTATION: stamp}}}
        self._custom().patch_namespaced_custom_object(
            GROUP,
            VERSION,
            claim.namespace,
            PLURAL,
            claim.name,
            patch,
            _content_type="application/merge-patch+json",
        )

    async def touch(self, claim: Claim, at: float | None = None) -> None:
        """Record a use of the sandbox at ``at`` (epoch seconds; default now): the pool's
        idleTimeout, and the other replicas' reapers, count from the last one."""
        await asyncio.to_thread(self._touch, claim, at)

    def _last_activity(self, claim: Claim) -> float | None:
        body = self._custom().get_namespaced_custom_object(
            GROUP, VERSION, claim.namespace, PLURAL, claim.name
        )
        raw = ((body.get("metadata") or {}).get("annotations") or {}).get(ACTIVITY_ANNOTATION)
        if not isinstance(raw, str):
            return None
        try:
            return datetime.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None

    async def last_activity(self, claim: Claim) -> float | None:
        """The latest recorded use (epoch seconds) by any replica, if any."""
        return await asyncio.to_thread(self._last_activity, claim)

    # -- release ---------------------------------------------------------------------------
    def _release(self, claim: Claim) -> None:
        try:
            self._custom().delete_namespaced_custom_object(
                GROUP, VERSION, claim.namespace, PLURAL, claim.name
            )
        except kubernetes.client.ApiException as e:
            if e.status != 404:
                raise

    async def release(self, claim: Claim) -> None:
        """Delete the claim; the operator deletes its sandbox Pod."""
        await asyncio.to_thread(self._release, claim)


def _utc(at: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(at, datetime.UTC)


_default: SandboxClaims | None = None


def default_claims() -> SandboxClaims:
    global _default
    if _default is None:
        _default = SandboxClaims()
    return _default


async def ensure_claim(
    namespace: str,
    pool: str,
    *,
    thread_id: str | None = None,
    assistant_id: str | None = None,
    ttl_seconds: int | None = None,
    token_key: str | bytes | None = None,
    deployment: str | None = None,
) -> Claim:
    """See ``SandboxClaims.ensure_claim`` (process-wide client)."""
    return await default_claims().ensure_claim(
        namespace,
        pool,
        thread_id=thread_id,
        assistant_id=assistant_id,
        ttl_seconds=ttl_seconds,
        token_key=token_key,
        deployment=deployment,
    )


async def wait_ready(claim: Claim, timeout: float = 60.0) -> BoundSandbox:  # noqa: ASYNC109
    return await default_claims().wait_ready(claim, timeout)


async def release(claim: Claim) -> None:
    await default_claims().release(claim)


async def touch(claim: Claim, at: float | None = None) -> None:
    await default_claims().touch(claim, at)


async def last_activity(claim: Claim) -> float | None:
    return await default_claims().last_activity(claim)
