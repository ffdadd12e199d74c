"""A thin, synchronous Kubernetes REST client for the few kinds the operator touches.

It uses the official client's configuration and connection handling (kubeconfig,
in-cluster, token refresh) but speaks plain JSON, so objects stay the plain
dicts the render layer produces. Writes are server-side apply with field
manager ``berth-operator`` and ``force``; every write is counted.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from typing import Any

import kubernetes

from berth_operator.render.meta import MANAGER
from berth_operator.render.names import ChildRef

log = logging.getLogger("berth.k8s")

_PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Service": "services",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "AgentDeployment": "agentdeployments",
    "AgentCron": "agentcrons",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Pod": "pods",
    "NetworkPolicy": "networkpolicies",
    "SandboxPool": "sandboxpools",
    "SandboxClaim": "sandboxclaims",
    "KopfPeering": "kopfpeerings",
    "ClusterKopfPeering": "clusterkopfpeerings",
}
_CLUSTER_SCOPED = {"ClusterKopfPeering"}


class ApiError(Exception):
    """A non-2xx answer from the API server."""

    def __init__(self, status: int, body: dict[str, Any], method: str, path: str) -> None:
        self.status = status
        self.body = body
        self.reason = str(body.get("reason") or "")
        self.message = str(body.get("message") or body)
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}")

    @property
    def rejected(self) -> bool:
        """The request itself is wrong (invalid object, forbidden): retrying will not help."""
        return self.status in {400, 403, 422}


def path_of(
    api_version: str, kind: str, namespace: str | None, name: str | None = None, sub: str = ""
) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    plural = _PLURALS[kind]
    parts = [base]
    if namespace and kind not in _CLUSTER_SCOPED:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if sub:
        parts.append(sub)
    return "/".join(parts)


def load_client(pool_size: int = 16) -> kubernetes.client.ApiClient:
    """Client from the in-cluster config inside a Pod, else the current kubeconfig."""
    config = kubernetes.client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.path.exists(
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    ):
        kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    else:
        kubernetes.config.load_kube_config(client_configuration=config)  # type: ignore[no-untyped-call]
    config.connection_pool_maxsize = pool_size
    return kubernetes.client.ApiClient(configuration=config)


class Api:
    """GET, server-side apply, DELETE and status patches as plain dicts."""

    def __init__(self, client: kubernetes.client.ApiClient, timeout: float = 30.0) -> None:
        self._client = client
        self._timeout = timeout
        self._lock = threading.Lock()
        self.writes: Counter[str] = Counter()

    def _count(self, what: str) -> None:
        with self._lock:
            self.writes[what] += 1

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        m, url, h, b, p = self._client.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        resp: Any = self._client.call_api(
            m, url, header_params=h, body=b, post_params=p, _request_timeout=self._timeout
        )
        resp.read()
        try:
            data: dict[str, Any] = json.loads(resp.data) if resp.data else {}
        except ValueError:
            data = {"message": resp.data.decode(errors="replace")}
        if resp.status >= 400:
            raise ApiError(resp.status, data, method, path)
        return data

    def get(self, ref: ChildRef, namespace: str) -> dict[str, Any] | None:
        try:
            return self.request("GET", path_of(ref.api_version, ref.kind, namespace, ref.name))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply (create or update) as ``berth-operator``, taking over conflicts."""
        meta = obj["metadata"]
        path = path_of(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = [("fieldManager", MANAGER), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        else:
            self._count(f"apply {obj['kind']}")
            log.info("apply %s %s/%s", obj["kind"], meta.get("namespace"), meta["name"])
        return self.request(
            "PATCH", path, query=query, body=obj, content_type="application/apply-patch+yaml"
        )

    def replace(
        self, obj: dict[str, Any], resource_version: str, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """PUT the whole object (drops fields other writers added to lists we render)."""
        meta = {**obj["metadata"], "resourceVersion": resource_version}
        path = path_of(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])
        query = [("fieldManager", MANAGER)]
        if dry_run:
            query.append(("dryRun", "All"))
        else:
            self._count(f"replace {obj['kind']}")
            log.info("replace %s %s/%s", obj["kind"], meta.get("namespace"), meta["name"])
        return self.request("PUT", path, query=query, body={**obj, "metadata": meta})

    def delete(self, ref: ChildRef, namespace: str, uid: str | None = None) -> None:
        """Delete (background propagation), only if still the object with ``uid``."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        if uid:
            body["preconditions"] = {"uid": uid}
        self._count(f"delete {ref.kind}")
        log.info("delete %s %s/%s", ref.kind, namespace, ref.name)
        try:
            self.request(
                "DELETE", path_of(ref.api_version, ref.kind, namespace, ref.name), body=body
            )
        except ApiError as e:
            if e.status not in {404, 409}:
                raise

    def patch_status(self, ref: ChildRef, namespace: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._count("patch status")
        log.info("patch status %s %s/%s", ref.kind, namespace, ref.name)
        return self.request(
            "PATCH",
            path_of(ref.api_version, ref.kind, namespace, ref.name, "status"),
            body={"status": patch},
            content_type="application/merge-patch+json",
        )

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create; None when it already exists."""
        meta = obj["metadata"]
        path = path_of(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        try:
            self._count(f"create {obj['kind']}")
            return self.request("POST", path, body=obj)
        except ApiError as e:
            if e.status == 409:
                return None
            raise
