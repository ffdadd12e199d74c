"""The runtime's only Kubernetes calls: list its AgentCrons, patch their status, post Events.

Credentials: in a Pod, the ServiceAccount the operator renders for the AgentDeployment (a
namespaced Role allows exactly these calls); elsewhere the kubeconfig ($KUBECONFIG). Calls
are blocking (the official client) and run in a thread.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kubernetes

from berth_runtime.crons.agentcron import GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)

DEPLOYMENT_ENV = "BERTH_DEPLOYMENT_NAME"
NAMESPACE_ENV = "POD_NAMESPACE"
SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
COMPONENT = "berth-runtime"


def _client() -> kubernetes.client.ApiClient:
    config = kubernetes.client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SA_DIR / "token").exists():
        kubernetes.config.load_incluster_config(client_configuration=config)  # type: ignore[no-untyped-call]
    else:
        kubernetes.config.load_kube_config(client_configuration=config)  # type: ignore[no-untyped-call]
    return kubernetes.client.ApiClient(configuration=config)


class KubeLink:
    """Namespaced calls on behalf of one AgentDeployment's runtime."""

    def __init__(self, namespace: str, deployment: str, client: Any) -> None:
        self.namespace = namespace
        self.deployment = deployment
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.instance = socket.gethostname()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> KubeLink | None:
        """None when the process is not told which AgentDeployment it serves."""
        deployment = env.get(DEPLOYMENT_ENV)
        if not deployment:
            return None
        namespace = env.get(NAMESPACE_ENV)
        if not namespace and (SA_DIR / "namespace").exists():
            namespace = (SA_DIR / "namespace").read_text().strip()
        if not namespace:
            log.warning(
                "%s is set but %s is not: AgentCron sync off", DEPLOYMENT_ENV, NAMESPACE_ENV
            )
            return None
        return cls(namespace, deployment, _client())

    def list_agentcrons(self) -> list[dict[str, Any]]:
        out: Any = self.custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)
        return list(out.get("items") or [])

    def patch_status(self, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP,
            VERSION,
            self.namespace,
            PLURAL,
            name,
            {"status": status},
            _content_type="application/merge-patch+json",
        )

    def event(self, name: str, uid: str, reason: str, message: str, warning: bool) -> None:
        now = datetime.now(UTC)
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        body: Any = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": name,
                "namespace": self.namespace,
                "uid": uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": COMPONENT, "host": self.instance},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
        }
        self.core.create_namespaced_event(self.namespace, body)
