"""Every Berth kind the generator turns into a CRD, with its CRD-level extras.

AgentCron, SandboxPool and SandboxClaim join by adding one `CustomResource`
entry next to their models; the generator needs no change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from berth_operator.api import agentcron as ac
from berth_operator.api import agentdeployment as ad
from berth_operator.api import sandboxclaim as sc
from berth_operator.api import sandboxpool as sp
from berth_operator.api.common import GROUP, VERSION


def ready_columns() -> list[dict[str, Any]]:
    """The Ready/Reason columns every kind shows (agent-sandbox, Flux and kagent do the same)."""
    return [
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        },
    ]


AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


@dataclass(frozen=True)
class CustomResource:
    kind: str
    plural: str
    singular: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=lambda: ["berth"])
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    scale: dict[str, str] | None = None
    root_rules: list[dict[str, str]] = field(default_factory=list)
    spec_required: bool = True
    group: str = GROUP
    version: str = VERSION

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


AGENT_DEPLOYMENT = CustomResource(
    kind=ad.KIND,
    plural=ad.PLURAL,
    singular=ad.SINGULAR,
    short_names=ad.SHORT_NAMES,
    spec_model=ad.AgentDeploymentSpec,
    status_model=ad.AgentDeploymentStatus,
    printer_columns=[
        *ready_columns(),
        {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas", "priority": 1},
        {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
        AGE_COLUMN,
    ],
    scale={
        "specReplicasPath": ".spec.server.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
    root_rules=[
        {
            "rule": f"self.metadata.name.size() <= {ad.MAX_NAME_LENGTH}",
            "message": f"metadata.name must be at most {ad.MAX_NAME_LENGTH} characters "
            "(child object names extend it)",
        },
        {
            "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
            "message": "metadata.name must be a DNS-1035 label (lower case letters, digits and "
            "'-', starting with a letter): it names a Service",
        },
    ],
)

AGENT_CRON = CustomResource(
    kind=ac.KIND,
    plural=ac.PLURAL,
    singular=ac.SINGULAR,
    short_names=ac.SHORT_NAMES,
    spec_model=ac.AgentCronSpec,
    status_model=ac.AgentCronStatus,
    printer_columns=[
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule"},
        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
        {"name": "Last", "type": "date", "jsonPath": ".status.lastScheduleTime"},
        {"name": "Next", "type": "date", "jsonPath": ".status.nextScheduleTime"},
        *ready_columns(),
        {
            "name": "Deployment",
            "type": "string",
            "jsonPath": ".spec.deploymentRef.name",
            "priority": 1,
        },
        AGE_COLUMN,
    ],
)

SANDBOX_POOL = CustomResource(
    kind=sp.KIND,
    plural=sp.PLURAL,
    singular=sp.SINGULAR,
    short_names=sp.SHORT_NAMES,
    spec_model=sp.SandboxPoolSpec,
    status_model=sp.SandboxPoolStatus,
    printer_columns=[
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
        {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
        {"name": "Claimed", "type": "integer", "jsonPath": ".status.claimed"},
        {"name": "Max", "type": "integer", "jsonPath": ".spec.maxSize", "priority": 1},
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        },
        {"name": "Image", "type": "string", "jsonPath": ".spec.template.image", "priority": 1},
        AGE_COLUMN,
    ],
    scale={
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
    root_rules=[
        {
            "rule": f"self.metadata.name.size() <= {sp.MAX_NAME_LENGTH}",
            "message": f"metadata.name must be at most {sp.MAX_NAME_LENGTH} characters "
            "(sandbox Pod names extend it)",
        },
        {
            "rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": "metadata.name must be a DNS-1123 label (lower case letters, digits and "
            "'-'): it is a label value and prefixes Pod names",
        },
    ],
)

SANDBOX_CLAIM = CustomResource(
    kind=sc.KIND,
    plural=sc.PLURAL,
    singular=sc.SINGULAR,
    short_names=sc.SHORT_NAMES,
    spec_model=sc.SandboxClaimSpec,
    status_model=sc.SandboxClaimStatus,
    printer_columns=[
        *ready_columns(),
        {"name": "Pool", "type": "string", "jsonPath": ".spec.poolRef.name"},
        {"name": "Pod", "type": "string", "jsonPath": ".status.podName"},
        {"name": "Launch", "type": "string", "jsonPath": ".status.launchType"},
        {"name": "Thread", "type": "string", "jsonPath": ".spec.threadId", "priority": 1},
        AGE_COLUMN,
    ],
    root_rules=[
        {
            "rule": f"self.metadata.name.size() <= {sc.MAX_NAME_LENGTH}",
            "message": f"metadata.name must be at most {sc.MAX_NAME_LENGTH} characters "
            "(it labels the sandbox Pod)",
        },
        {
            "rule": "self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
            "message": "metadata.name must be a DNS-1123 label (lower case letters, digits and "
            "'-'): it is a label value on the sandbox Pod",
        },
    ],
)

KINDS: tuple[CustomResource, ...] = (AGENT_DEPLOYMENT, AGENT_CRON, SANDBOX_POOL, SANDBOX_CLAIM)
