"""Agent Auth in the auth proxy: a sandbox claimed for a thread injects its user's OAuth token.

A proxy rule header with ``oauthProvider`` (instead of ``secretRef``) makes the proxy ask
the runtime of the claiming AgentDeployment for the token of the thread's user:
``GET <tokenURL>?provider=P`` with ``X-Berth-Thread-Id`` and a per-thread proxy token,
HMAC-SHA256(the deployment's sandbox key, ``"agent-auth-proxy\\0" + thread id``) (hex),
which the runtime derives and checks without reading a Secret.

The pool's ``config.json`` is shared by all its Pods, so it names only files; what one
claim contributes (runtime URL, thread id, proxy token) is Secret ``<pod>-agent-auth``,
written when a claim with ``threadId`` and ``deploymentRef`` binds the Pod and owned by
that Pod. Every Pod of such a pool mounts it (``optional``: a warm Pod has none yet) into
the auth-proxy container only, never into the sandbox container; the proxy re-reads the
files when kubelet updates them, so a warm Pod needs no restart. The Secret is named after
the Pod because a warm Pod's volumes are fixed before any claim exists; only the operator,
after winning the adoption, writes it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from berth_operator.api.agentdeployment import AgentDeploymentSpec
from berth_operator.api.sandboxclaim import SandboxClaimSpec
from berth_operator.api.sandboxpool import SandboxPoolSpec
from berth_operator.render.names import ChildNames
from berth_operator.render.sandbox.access import KEY as SANDBOX_KEY_KEY
from berth_operator.render.sandbox.names import (
    CLAIM_LABEL,
    FROM_POOL_LABEL,
    recommended_labels,
)

DIR = "/berth/agent-auth"
"""Where the auth-proxy container (only) mounts Secret ``<pod>-agent-auth``."""
VOLUME = "berth-agent-auth"
TOKEN_URL_KEY = "token-url"
THREAD_ID_KEY = "thread-id"
PROXY_TOKEN_KEY = "proxy-token"
TOKEN_PATH = "/v2/auth/sandbox/token"
PROXY_TOKEN_CONTEXT = b"agent-auth-proxy\x00"
"""Separates proxy tokens from executor tokens derived from the same key."""
SECRET_ANNOTATION = "berth.dev/agent-auth-secret"
"""On a bound Pod: the name of its Agent Auth Secret, set once the Secret exists (the Pod
update makes kubelet refresh the Pod's volumes instead of waiting for its sync period)."""
MIN_KEY_LENGTH = 32


def secret_name(pod_name: str) -> str:
    """Secret ``<pod>-agent-auth``: token URL, thread id and proxy token of the Pod's claim."""
    return f"{pod_name}-agent-auth"


def config_block() -> dict[str, str]:
    """The ``agentAuth`` block of the proxy's ``config.json``: files, no values."""
    return {
        "tokenURLFile": f"{DIR}/{TOKEN_URL_KEY}",
        "threadIdFile": f"{DIR}/{THREAD_ID_KEY}",
        "proxyTokenFile": f"{DIR}/{PROXY_TOKEN_KEY}",
    }


def volume(pod_name: str) -> dict[str, Any]:
    """The Pod's volume of Secret ``<pod>-agent-auth`` (optional: absent until a claim binds)."""
    return {
        "name": VOLUME,
        "secret": {
            "secretName": secret_name(pod_name),
            "optional": True,
            "items": [
                {"key": k, "path": k} for k in (TOKEN_URL_KEY, THREAD_ID_KEY, PROXY_TOKEN_KEY)
            ],
        },
    }


def volume_mount() -> dict[str, Any]:
    """The auth-proxy container's mount of ``volume`` (the sandbox container has none)."""
    return {"name": VOLUME, "mountPath": DIR, "readOnly": True}


def proxy_token(key: str, thread_id: str) -> str:
    """What the proxy presents for ``thread_id``; the runtime derives the same
    (``berth_runtime.api.agent_auth.sandbox_proxy_token``) from ``BERTH_SANDBOX_TOKEN_KEY``."""
    return hmac.new(
        key.encode(), PROXY_TOKEN_CONTEXT + thread_id.encode(), hashlib.sha256
    ).hexdigest()


def token_url(deployment: str, namespace: str, service_port: int) -> str:
    """The runtime's ``/v2/auth/sandbox/token`` through the deployment's Service."""
    service = ChildNames(deployment).service
    return f"http://{service}.{namespace}.svc:{service_port}{TOKEN_PATH}"


def wanted(claim: SandboxClaimSpec, pool: SandboxPoolSpec) -> bool:
    """Whether binding this claim gives the proxy a thread user's tokens: the pool's rules
    name an ``oauthProvider`` and the claim names its thread and its AgentDeployment.
    (A claim without them binds too; the proxy then answers those hosts with a 502 that
    says the sandbox is not claimed for a thread.)"""
    return pool.uses_agent_auth and claim.thread_id is not None and claim.deployment_ref is not None


@dataclass(frozen=True)
class Files:
    """What one claim puts into Secret ``<pod>-agent-auth``."""

    token_url: str
    thread_id: str
    proxy_token: str = field(repr=False)


@dataclass(frozen=True)
class Resolution:
    """``files`` when the claim's deployment can serve the pool's providers, else ``problem``."""

    files: Files | None = None
    problem: str = ""


def _key_of(secret: Mapping[str, Any] | None) -> str | None:
    raw = ((secret or {}).get("data") or {}).get(SANDBOX_KEY_KEY)
    if not raw:
        return None
    try:
        key = base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return key if len(key) >= MIN_KEY_LENGTH else None


def resolve(
    claim: SandboxClaimSpec,
    namespace: str,
    pool_name: str,
    pool: SandboxPoolSpec,
    deployment: Mapping[str, Any] | None,
    key_secret: Mapping[str, Any] | None,
) -> Resolution:
    """Check the claim's AgentDeployment (its body, and Secret ``<name>-sandbox-key``) and
    derive the files; ``problem`` names what is missing. Call only when ``wanted``."""
    assert claim.thread_id is not None and claim.deployment_ref is not None
    name = claim.deployment_ref.name
    where = f"AgentDeployment {name}"
    try:
        thread = str(uuid.UUID(claim.thread_id))
    except ValueError:
        return Resolution(
            problem=f"threadId {claim.thread_id!r} is not a thread id (a UUID): the runtime "
            "answers token requests only for its threads"
        )
    if deployment is None or (deployment.get("metadata") or {}).get("deletionTimestamp"):
        return Resolution(problem=f"{where} (deploymentRef) not found")
    try:
        spec = AgentDeploymentSpec.model_validate(deployment.get("spec"))
    except ValidationError:
        return Resolution(problem=f"{where} has an invalid spec (see its status)")
    if spec.sandbox is None or spec.sandbox.pool != pool_name:
        return Resolution(
            problem=f"{where} does not claim from SandboxPool {pool_name} (its spec.sandbox.pool "
            f"is {spec.sandbox.pool if spec.sandbox else 'unset'}): only the deployment that "
            "uses a pool gets its users' tokens into it"
        )
    if spec.agent_auth is None:
        return Resolution(
            problem=f"{where} has no spec.agentAuth: no runtime answers the proxy's token requests"
        )
    configured = sorted(p.name for p in spec.agent_auth.providers)
    unknown = [p for p in pool.auth_proxy.oauth_providers() if p not in configured]
    if unknown:
        return Resolution(
            problem=f"SandboxPool {pool_name} injects tokens of oauthProvider "
            f"{', '.join(unknown)}, which {where} does not configure (its spec.agentAuth "
            f"providers: {', '.join(configured)})"
        )
    np = pool.network_policy
    if np.mode == "Managed" and name not in (np.allowed_deployments or ()):
        return Resolution(
            problem=f"{where} is not in networkPolicy.allowedDeployments of SandboxPool "
            f"{pool_name}: the proxy could not reach its runtime"
        )
    key = _key_of(key_secret)
    if key is None:
        return Resolution(
            problem=f"Secret {ChildNames(name).sandbox_key} (key {SANDBOX_KEY_KEY}, the sandbox "
            f"key of {where}) is missing or malformed; the operator creates it for "
            "AgentDeployments with spec.sandbox"
        )
    return Resolution(
        files=Files(
            token_url=token_url(name, namespace, spec.service.port),
            thread_id=thread,
            proxy_token=proxy_token(key, thread),
        )
    )


def files_secret(
    pod: Mapping[str, Any], claim_name: str, pool_name: str, files: Files
) -> dict[str, Any]:
    """Secret ``<pod>-agent-auth``, owned by the Pod (it goes when the sandbox goes)."""
    meta = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {
                **recommended_labels(),
                CLAIM_LABEL: claim_name,
                FROM_POOL_LABEL: pool_name,
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    # No blockOwnerDeletion: that would need update on pods/finalizers.
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {
            k: base64.b64encode(v.encode()).decode()
            for k, v in (
                (TOKEN_URL_KEY, files.token_url),
                (THREAD_ID_KEY, files.thread_id),
                (PROXY_TOKEN_KEY, files.proxy_token),
            )
        },
    }


def secret_holds(secret: Mapping[str, Any] | None, files: Files) -> bool:
    """Whether the live Secret already holds ``files`` (nothing to write)."""
    if secret is None:
        return False
    want = files_secret({"metadata": {"name": "", "namespace": "", "uid": ""}}, "", "", files)
    live: dict[str, Any] = dict(secret.get("data") or {})
    return bool(live == want["data"])


def touch_patch(pod_name: str) -> dict[str, Any]:
    """Merge patch recording the Secret on the Pod (and waking kubelet to mount it)."""
    return {"metadata": {"annotations": {SECRET_ANNOTATION: secret_name(pod_name)}}}
