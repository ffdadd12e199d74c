"""The names of every child of an AgentDeployment, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChildRef:
    """Identifies one child object: API version, kind and name (namespace is the parent's)."""

    api_version: str
    kind: str
    name: str


SA = ("v1", "ServiceAccount")
CONFIGMAP = ("v1", "ConfigMap")
SECRET = ("v1", "Secret")
SERVICE = ("v1", "Service")
PVC = ("v1", "PersistentVolumeClaim")
DEPLOYMENT = ("apps/v1", "Deployment")
STATEFULSET = ("apps/v1", "StatefulSet")
PDB = ("policy/v1", "PodDisruptionBudget")
HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
ROLE = ("rbac.authorization.k8s.io/v1", "Role")
ROLEBINDING = ("rbac.authorization.k8s.io/v1", "RoleBinding")


@dataclass(frozen=True)
class ChildNames:
    """Child names derived from the AgentDeployment's name."""

    base: str

    @property
    def service_account(self) -> str:
        return self.base

    @property
    def agentcron_access(self) -> str:
        """Role and RoleBinding letting the runtime read its AgentCrons and write their status."""
        return f"{self.base}-agentcrons"

    @property
    def sandbox_access(self) -> str:
        """Role and RoleBinding letting the runtime claim sandboxes (with `spec.sandbox`)."""
        return f"{self.base}-sandboxes"

    @property
    def sandbox_key(self) -> str:
        """Secret with the key the runtime derives sandbox executor tokens from."""
        return f"{self.base}-sandbox-key"

    @property
    def config(self) -> str:
        return f"{self.base}-config"

    @property
    def credentials(self) -> str:
        return f"{self.base}-credentials"

    @property
    def server(self) -> str:
        return f"{self.base}-server"

    @property
    def worker(self) -> str:
        return f"{self.base}-worker"

    @property
    def service(self) -> str:
        return self.base

    @property
    def hpa(self) -> str:
        return self.base

    @property
    def postgres(self) -> str:
        return f"{self.base}-postgres"

    @property
    def postgres_pvc(self) -> str:
        return f"{self.base}-postgres-data"

    @property
    def redis(self) -> str:
        return f"{self.base}-redis"

    def all_children(self) -> list[ChildRef]:
        """Every child that may exist, in apply order (config before workloads)."""
        return [
            ChildRef(*SA, self.service_account),
            ChildRef(*ROLE, self.agentcron_access),
            ChildRef(*ROLEBINDING, self.agentcron_access),
            ChildRef(*ROLE, self.sandbox_access),
            ChildRef(*ROLEBINDING, self.sandbox_access),
            ChildRef(*SECRET, self.sandbox_key),
            ChildRef(*CONFIGMAP, self.config),
            ChildRef(*SECRET, self.credentials),
            ChildRef(*PVC, self.postgres_pvc),
            ChildRef(*SERVICE, self.postgres),
            ChildRef(*STATEFULSET, self.postgres),
            ChildRef(*SERVICE, self.redis),
            ChildRef(*DEPLOYMENT, self.redis),
            ChildRef(*DEPLOYMENT, self.server),
            ChildRef(*DEPLOYMENT, self.worker),
            ChildRef(*SERVICE, self.service),
            ChildRef(*PDB, self.server),
            ChildRef(*PDB, self.worker),
            ChildRef(*HPA, self.hpa),
        ]


def ref_of(obj: dict[str, object]) -> ChildRef:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return ChildRef(str(obj["apiVersion"]), str(obj["kind"]), str(meta["name"]))
