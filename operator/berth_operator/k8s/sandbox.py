"""Effects of the sandbox pool and claim handlers: Pods, the pool's children, claims.

Every function is synchronous (the handlers run them in a thread pool) and takes
objects the render layer produced. Two writes are guarded for concurrency:
adopting a warm Pod carries the Pod's resourceVersion (the API server refuses a
second adoption of the same Pod with 409), and the CA Secret is created, never
overwritten (a second operator replica's create gets 409 and keeps the first CA).
"""

from __future__ import annotations

import logging
from typing import Any

from berth_operator.api.common import API_VERSION
from berth_operator.k8s.client import Api, ApiError, path_of
from berth_operator.render.drift import needs_apply
from berth_operator.render.names import ChildRef

log = logging.getLogger("berth.sandbox")


def list_pods(api: Api, namespace: str, selector: str) -> tuple[list[dict[str, Any]], str]:
    """Pods matching a label selector, read from the API server (not a cache), and the
    list's resourceVersion."""
    data = api.request("GET", path_of("v1", "Pod", namespace), query=[("labelSelector", selector)])
    return list(data.get("items") or ()), str(
        (data.get("metadata") or {}).get("resourceVersion", "0")
    )


def create_pod(api: Api, pod: dict[str, Any]) -> dict[str, Any]:
    """POST a Pod (usually with ``generateName``)."""
    api._count("create Pod")
    return api.request("POST", path_of("v1", "Pod", pod["metadata"]["namespace"]), body=pod)


def delete_pod(
    api: Api,
    namespace: str,
    name: str,
    uid: str | None = None,
    resource_version: str | None = None,
) -> bool:
    """Delete a Pod now (grace period 0: a sandbox has no state worth a graceful stop).

    With ``resource_version`` only that exact version goes: a warm Pod that a claim
    adopted a moment ago (its resourceVersion moved) is left alone. False when the
    precondition failed or the Pod is gone.
    """
    body: dict[str, Any] = {"propagationPolicy": "Background", "gracePeriodSeconds": 0}
    pre = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
    if pre:
        body["preconditions"] = pre
    api._count("delete Pod")
    try:
        api.request("DELETE", path_of("v1", "Pod", namespace, name), body=body)
    except ApiError as e:
        if e.status in {404, 409}:
            return False
        raise
    return True


def patch_pod(
    api: Api, namespace: str, name: str, patch: dict[str, Any], resource_version: str
) -> dict[str, Any] | None:
    """JSON merge patch of a Pod, only if it is still at ``resource_version``.

    Returns None when the Pod changed or is gone (someone else adopted it first).
    """
    meta = {**patch.get("metadata", {}), "resourceVersion": resource_version}
    api._count("adopt Pod")
    try:
        return api.request(
            "PATCH",
            path_of("v1", "Pod", namespace, name),
            body={**patch, "metadata": meta},
            content_type="application/merge-patch+json",
        )
    except ApiError as e:
        if e.status in {404, 409}:
            return None
        raise


def annotate_pod(
    api: Api, namespace: str, name: str, patch: dict[str, Any]
) -> dict[str, Any] | None:
    """JSON merge patch of a bound Pod's metadata, whatever its resourceVersion (it already
    belongs to the caller's claim); None when the Pod is gone."""
    api._count("annotate Pod")
    try:
        return api.request(
            "PATCH",
            path_of("v1", "Pod", namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
        )
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def apply_secret(api: Api, secret: dict[str, Any]) -> dict[str, Any]:
    """Server-side apply a Secret the operator alone writes (force: it wins over strays)."""
    return api.apply(secret)


def get(api: Api, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
    return api.get(ChildRef(api_version, kind, name), namespace)


def apply_if_changed(api: Api, obj: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Server-side apply ``obj`` unless the live object already holds it."""
    if not needs_apply(obj, live):
        return False
    api.apply(obj)
    return True


def delete_owned(
    api: Api, kind: str, api_version: str, namespace: str, name: str, uid: str
) -> bool:
    """Delete a child only if ``uid`` owns it (an Unmanaged policy the user wrote stays)."""
    live = get(api, api_version, kind, namespace, name)
    if live is None:
        return False
    owners = live["metadata"].get("ownerReferences") or ()
    if not any(o.get("uid") == uid for o in owners):
        return False
    api.delete(ChildRef(api_version, kind, name), namespace, uid=live["metadata"].get("uid"))
    return True


def create_secret(api: Api, secret: dict[str, Any]) -> dict[str, Any]:
    """Create a Secret; when it exists already, return the live one unchanged."""
    created = api.create(secret)
    if created is not None:
        return created
    live = get(api, "v1", "Secret", secret["metadata"]["namespace"], secret["metadata"]["name"])
    if live is None:  # deleted between the two calls: try once more
        created = api.create(secret)
        if created is None:
            raise RuntimeError(f"Secret {secret['metadata']['name']} flaps")
        return created
    return live


def patch_status(
    api: Api, kind: str, namespace: str, name: str, patch: dict[str, Any]
) -> dict[str, Any] | None:
    """Merge-patch the status of a pool or claim; None when it is gone."""
    try:
        return api.patch_status(ChildRef(API_VERSION, kind, name), namespace, patch)
    except ApiError as e:
        if e.status == 404:
            return None
        raise


def delete_object(api: Api, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
    api.delete(ChildRef(API_VERSION, kind, name), namespace, uid=uid)
