"""The cluster side of `berth deploy/status/logs/delete` (the effect layer).

Plain dicts in and out, through the operator's thin REST client; writes are server-side
apply with field manager `berth-cli`. Deciding what to write is `berth_cli.manifests`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import kubernetes
from berth_operator.k8s.client import Api, ApiError, path_of
from berth_operator.render.meta import INSTANCE_LABEL

from berth_cli.manifests import GROUP_VERSION, PROJECT_LABEL

FIELD_MANAGER = "berth-cli"
PROJECT_KINDS = (
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    (GROUP_VERSION, "AgentDeployment"),
    (GROUP_VERSION, "AgentCron"),
)
API_VERSIONS = dict((kind, av) for av, kind in PROJECT_KINDS)
COMPONENTS = {"server": "server", "worker": "worker", "postgres": "database", "redis": "cache"}


class ClusterError(RuntimeError):
    """The cluster cannot be reached or refused a request; the message says which."""


class Cluster:
    def __init__(self, context: str | None = None) -> None:
        config = kubernetes.client.Configuration()
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                context=context, client_configuration=config
            )
            _, active = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
            if context is not None:
                contexts, _ = kubernetes.config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
                active = next(c for c in contexts if c["name"] == context)
        except (kubernetes.config.ConfigException, StopIteration, OSError) as e:
            detail = str(e) or "no such context"
            raise ClusterError(f"kubeconfig: {detail} (set KUBECONFIG or --context)") from None
        self.default_namespace = str((active.get("context") or {}).get("namespace") or "default")
        self.client = kubernetes.client.ApiClient(configuration=config)
        self.api = Api(self.client)

    def _call(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        try:
            return self.api.request(method, path, **kw)
        except ApiError as e:
            raise ClusterError(str(e)) from None
        except OSError as e:  # urllib3 connection errors are OSErrors
            raise ClusterError(f"cannot reach the API server: {e}") from None

    def list_objects(
        self, api_version: str, kind: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        path = path_of(api_version, kind, namespace)
        try:
            data = self.api.request("GET", path, query=[("labelSelector", selector)])
        except ApiError as e:
            if e.status == 404 and kind.startswith("Agent"):
                raise ClusterError(
                    f"the cluster has no {kind} kind: install Berth's operator and CRDs "
                    "(helm install berth charts/berth)"
                ) from None
            raise ClusterError(str(e)) from None
        return list(data.get("items") or [])

    def project_objects(self, name: str, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The objects an earlier `berth deploy` of `name` made (by label)."""
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for api_version, kind in PROJECT_KINDS:
            for obj in self.list_objects(api_version, kind, namespace, f"{PROJECT_LABEL}={name}"):
                out[(kind, obj["metadata"]["name"])] = obj
        return out

    def ensure_namespace(self, namespace: str) -> None:
        try:
            self.api.request("GET", f"/api/v1/namespaces/{namespace}")
        except ApiError as e:
            if e.status != 404:
                raise ClusterError(str(e)) from None
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            self._call("POST", "/api/v1/namespaces", body=body)

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        path = path_of(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self._call(
            "PATCH", path, query=query, body=dict(obj), content_type="application/apply-patch+yaml"
        )

    def get(self, kind: str, name: str, namespace: str, api_version: str | None = None) -> Any:
        path = path_of(api_version or API_VERSIONS[kind], kind, namespace, name)
        try:
            return self.api.request("GET", path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise ClusterError(str(e)) from None

    def delete(self, kind: str, name: str, namespace: str, api_version: str | None = None) -> bool:
        """True when something was deleted (an object already being deleted, e.g. a volume
        held by its protection finalizer until its Pod is gone, counts as done)."""
        path = path_of(api_version or API_VERSIONS[kind], kind, namespace, name)
        current = self.get(kind, name, namespace, api_version)
        if current is None or current.get("metadata", {}).get("deletionTimestamp"):
            return False
        try:
            self.api.request("DELETE", path, body={"propagationPolicy": "Background"})
        except ApiError as e:
            if e.status == 404:
                return False
            raise ClusterError(str(e)) from None
        return True

    def pods(self, name: str, namespace: str, component: str | None = None) -> list[dict[str, Any]]:
        selector = f"{INSTANCE_LABEL}={name}"
        if component is not None:
            selector += f",app.kubernetes.io/component={COMPONENTS[component]}"
        return self.list_objects("v1", "Pod", namespace, selector)

    def log(self, pod: str, namespace: str, tail: int | None = 20) -> str:
        core = kubernetes.client.CoreV1Api(self.client)
        try:
            text: str = core.read_namespaced_pod_log(pod, namespace, tail_lines=tail)
        except kubernetes.client.ApiException as e:
            return f"(no log: {e.reason})"
        return text

    def follow(self, pod: str, namespace: str, tail: int | None) -> Iterator[bytes]:
        core = kubernetes.client.CoreV1Api(self.client)
        resp: Any = core.read_namespaced_pod_log(
            pod, namespace, follow=True, tail_lines=tail, _preload_content=False
        )
        yield from resp.stream()
