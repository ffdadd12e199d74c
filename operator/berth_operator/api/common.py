"""Building blocks shared by every Berth custom resource model.

The models are the single source of truth: the CRD schemas are generated from
them, and the operator validates every object it reads with them. Field names
are camelCase on the wire (Kubernetes convention) and snake_case in Python.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "berth.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# A Kubernetes resource quantity ("500m", "1Gi", 2). Same pattern as the built-in types.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

Quantity = Annotated[
    int | str,
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": QUANTITY_PATTERN}),
]
"""A resource quantity: an integer or a string such as ``"500m"`` or ``"1Gi"``."""

FreeForm = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]
"""An object passed through to Kubernetes as is (validated by the API server on apply)."""

AnyJson = Annotated[Any, WithJsonSchema({"x-kubernetes-preserve-unknown-fields": True})]
"""Any JSON value."""


class BerthModel(BaseModel):
    """camelCase on the wire, unknown fields refused (the API server prunes them anyway)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in the Kubernetes API (camelCase, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class LocalObjectReference(BerthModel):
    """A reference to an object by name in the same namespace."""

    name: str = Field(min_length=1, max_length=253)


class ResourceRequirements(BerthModel):
    """CPU and memory for a container, as in a Pod spec."""

    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class EnvVar(BerthModel):
    """An environment variable: a literal `value` or a `valueFrom` source."""

    name: str = Field(min_length=1)
    value: str | None = None
    value_from: FreeForm | None = None


class ConfigMapEnvSource(BerthModel):
    name: str = Field(min_length=1)
    optional: bool | None = None


class SecretEnvSource(BerthModel):
    name: str = Field(min_length=1)
    optional: bool | None = None


class EnvFromSource(BerthModel):
    """Every key of a ConfigMap or Secret as environment variables."""

    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None


class Toleration(BerthModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(BerthModel):
    """The standard `metav1.Condition` shape (kstatus and `kubectl wait` read it)."""

    type: str = Field(min_length=1, max_length=316)
    status: ConditionStatus
    reason: str = Field(min_length=1, max_length=1024)
    message: str = Field(default="", max_length=32768)
    observed_generation: int | None = Field(default=None, ge=0)
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})


Conditions = Annotated[
    list[Condition],
    Field(
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        }
    ),
]
