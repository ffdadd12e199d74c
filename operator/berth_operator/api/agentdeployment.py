"""`AgentDeployment`: one LangGraph agent server (API + workers) with its Postgres and Redis.

Defaults live here and are emitted into the CRD schema, so the API server fills
them in; the operator never writes a user's spec. Images are the exception: they have
no schema default, because the operator's configuration (a chart value) decides them;
the render fills an unset image from ``render.images.ImageDefaults``. Cross-field rules are CEL
(`x-kubernetes-validations`) checked at admission, mirrored by pydantic
validators so the operator refuses the same objects if an old CRD let them in.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from berth_operator.api.common import (
    AnyJson,
    BerthModel,
    Conditions,
    EnvFromSource,
    EnvVar,
    FreeForm,
    LocalObjectReference,
    Quantity,
    ResourceRequirements,
    Toleration,
)

KIND = "AgentDeployment"
PLURAL = "agentdeployments"
SINGULAR = "agentdeployment"
SHORT_NAMES = ["agd"]

DEFAULT_PORT = 8000
RESERVED_ENV = ("DATABASE_URI", "REDIS_URI", "PORT", "N_JOBS_PER_WORKER")
MAX_NAME_LENGTH = 40
"""Children append suffixes such as ``-postgres-data``; Services need DNS-1035 labels."""

EMPTY_DEFAULT: dict[str, Any] = {"default": {}}
"""Schema default of a nested object: ``{}``, which the nested field defaults then fill."""


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    return {"rule": rule, "message": message, **extra}


def _rules(*rules: dict[str, str]) -> ConfigDict:
    extra: dict[str, Any] = {"x-kubernetes-validations": list(rules)}
    return ConfigDict(json_schema_extra=extra)


class ConfigMapKeyRef(BerthModel):
    """A ConfigMap in the same namespace holding `langgraph.json` under `key`."""

    name: str = Field(min_length=1, max_length=253, description="ConfigMap name.")
    key: str = Field(default="langgraph.json", min_length=1, description="Key holding the JSON.")


class LangGraphConfig(BerthModel):
    """The content of `langgraph.json`; only `graphs` is checked, the rest passes through."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
        alias_generator=None,
    )

    graphs: dict[str, AnyJson] = Field(
        min_length=1,
        description="Graph id to `./path.py:attribute` (or an object with `path`).",
    )


class GraphsSpec(BerthModel):
    """Where `langgraph.json` comes from: inline, or a ConfigMap."""

    model_config = _rules(
        cel(
            "has(self.inline) != has(self.configMapRef)",
            "set exactly one of graphs.inline or graphs.configMapRef",
        )
    )

    inline: LangGraphConfig | None = Field(
        default=None, description="The `langgraph.json` content as an object."
    )
    config_map_ref: ConfigMapKeyRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> GraphsSpec:
        if (self.inline is None) == (self.config_map_ref is None):
            raise ValueError("set exactly one of graphs.inline or graphs.configMapRef")
        return self


class ServerSpec(BerthModel):
    """The HTTP API Pods (they also run jobs when workers are disabled)."""

    replicas: int = Field(default=1, ge=0, le=1000)
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="Container port (PORT).")
    resources: ResourceRequirements | None = None


class WorkersSpec(BerthModel):
    """Separate worker Pods that execute runs. Disabled: the server Pods run jobs too."""

    enabled: bool = False
    replicas: int = Field(default=1, ge=0, le=1000)
    jobs_per_worker: int = Field(
        default=10, ge=1, le=1000, description="Concurrent runs per Pod (N_JOBS_PER_WORKER)."
    )
    resources: ResourceRequirements | None = None
    shutdown_grace_seconds: int = Field(
        default=180,
        ge=1,
        le=3600,
        description=(
            "How long a stopping Pod lets its runs finish before it re-queues them for "
            "another Pod (BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS). The Pod's "
            "terminationGracePeriodSeconds is this plus 15 s, so the kubelet never kills it "
            "mid-hand-over."
        ),
    )


class QueueDepthMetric(BerthModel):
    """Scale on pending runs, read by the HPA from an external-metrics adapter."""

    metric_name: str = Field(default="berth_runs_pending", min_length=1)
    target_pending_runs_per_replica: int = Field(default=10, ge=1)


class AutoscalingSpec(BerthModel):
    """A HorizontalPodAutoscaler for the server or the worker Pods."""

    model_config = _rules(
        cel(
            "self.minReplicas <= self.maxReplicas",
            "autoscaling.minReplicas must be <= autoscaling.maxReplicas",
        ),
        cel(
            "(has(self.scaler) && self.scaler == 'External')"
            " || has(self.targetCPUUtilizationPercentage) || has(self.queueDepth)",
            "autoscaling needs targetCPUUtilizationPercentage or queueDepth",
        ),
    )

    enabled: bool = True
    target: Literal["Server", "Workers"] = Field(
        default="Server", description="Which Deployment the HPA scales."
    )
    scaler: Literal["HPA", "External"] = Field(
        default="HPA",
        description=(
            "HPA: the operator renders a HorizontalPodAutoscaler. External: another "
            "autoscaler (a KEDA ScaledObject, see the chart's keda.scaledObjects) scales the "
            "target Deployment; the operator renders no HPA and leaves its replicas alone."
        ),
    )
    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int = Field(ge=1, le=1000)
    target_cpu_utilization_percentage: int | None = Field(
        default=None, ge=1, le=1000, alias="targetCPUUtilizationPercentage"
    )
    queue_depth: QueueDepthMetric | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must be <= autoscaling.maxReplicas")
        if (
            self.scaler == "HPA"
            and self.target_cpu_utilization_percentage is None
            and self.queue_depth is None
        ):
            raise ValueError("autoscaling needs targetCPUUtilizationPercentage or queueDepth")
        return self


class ExternalSecretRef(BerthModel):
    """An existing Secret whose `key` holds a connection URI (production setup)."""

    secret_name: str = Field(
        min_length=1, max_length=253, description="Secret in the same namespace."
    )
    key: str = Field(default="uri", min_length=1, description="Key holding the URI.")


class StorageSpec(BerthModel):
    """The bundled Postgres volume: a PersistentVolumeClaim of its own."""

    size: Quantity = Field(default="1Gi", description="Requested volume size.")
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the PVC (immutable); default: the cluster's."
    )
    keep_on_delete: bool = Field(
        default=True,
        description="Keep the PersistentVolumeClaim (and its password) when the "
        "AgentDeployment is deleted.",
    )


class BundledPostgres(BerthModel):
    """A single in-cluster Postgres (dev and evaluation; use `external` in production)."""

    image: str | None = Field(
        default=None,
        min_length=1,
        description="Default: the operator's configured Postgres image (postgres:16).",
    )
    storage: StorageSpec = Field(default_factory=StorageSpec, json_schema_extra=EMPTY_DEFAULT)
    resources: ResourceRequirements | None = None


class BundledRedis(BerthModel):
    """A single in-cluster Redis without persistence (Redis holds no source of truth)."""

    image: str | None = Field(
        default=None,
        min_length=1,
        description="Default: the operator's configured Redis image (redis:7).",
    )
    resources: ResourceRequirements | None = None


class PostgresSpec(BerthModel):
    """The database (the only source of truth): bundled, or an external URI."""

    model_config = _rules(
        cel(
            "has(self.bundled) != has(self.external)",
            "set exactly one of postgres.bundled or postgres.external",
        )
    )

    bundled: BundledPostgres | None = None
    external: ExternalSecretRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> PostgresSpec:
        if (self.bundled is None) == (self.external is None):
            raise ValueError("set exactly one of postgres.bundled or postgres.external")
        return self


class RedisSpec(BerthModel):
    """Redis for wake-ups, cancellation and stream fan-out: bundled, or an external URI."""

    model_config = _rules(
        cel(
            "has(self.bundled) != has(self.external)",
            "set exactly one of redis.bundled or redis.external",
        )
    )

    bundled: BundledRedis | None = None
    external: ExternalSecretRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RedisSpec:
        if (self.bundled is None) == (self.external is None):
            raise ValueError("set exactly one of redis.bundled or redis.external")
        return self


class ServiceSpec(BerthModel):
    """The Service in front of the server Pods (the endpoint)."""

    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535, description="Service port.")
    annotations: dict[str, str] | None = None


class PodOverrides(BerthModel):
    """Applied to the runtime (server and worker) Pods."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    affinity: FreeForm | None = None
    security_context: FreeForm | None = Field(
        default=None, description="The Pod's securityContext."
    )
    container_security_context: FreeForm | None = None
    service_account_name: str | None = Field(
        default=None,
        description="Use this ServiceAccount instead of the one the operator creates.",
    )
    image_pull_secrets: list[LocalObjectReference] | None = None


class SandboxSpec(BerthModel):
    """Sandboxes for agents that run code: claims on a SandboxPool in this namespace.

    Rendered as `BERTH_SANDBOX_*` env on the runtime Pods; graphs get the sandbox through
    `berth_runtime.sandbox.sandbox_backend()`. Overrides the `sandbox` key of langgraph.json.
    """

    pool: str = Field(
        min_length=1, max_length=253, description="SandboxPool (same namespace) to claim from."
    )
    scope: Literal["Thread", "Assistant"] = Field(
        default="Thread",
        description="One sandbox per thread, or one per assistant shared by its threads.",
    )
    ttl_seconds: int = Field(
        default=1800,
        ge=1,
        le=604800,
        description="Release a sandbox after this many seconds without a tool call.",
    )
    ready_timeout_seconds: int = Field(
        default=60, ge=1, le=3600, description="How long a run waits for its claim to be Ready."
    )


class SecretKeyRef(BerthModel):
    """One key of a Secret in the AgentDeployment's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


_URL = r"^https?://[^\s/#]+[^\s#]*$"
_CALLBACK = "/v2/auth/callback"


class OAuthProviderSpec(BerthModel):
    """An OAuth 2.0 provider graphs get user tokens for (`authenticate(name, scopes)`)."""

    model_config = _rules(
        cel(
            "has(self.issuer) || (has(self.authorizationEndpoint) && has(self.tokenEndpoint))",
            "set issuer (OIDC discovery) or both authorizationEndpoint and tokenEndpoint",
        ),
        cel(
            "self.tokenEndpointAuthMethod == 'none' || has(self.clientSecretRef)",
            "clientSecretRef is required unless tokenEndpointAuthMethod is none",
        ),
        cel(
            f"self.redirectURL.endsWith('{_CALLBACK}')",
            f"redirectURL must be this deployment's {_CALLBACK} as users reach it",
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z0-9][-_.a-zA-Z0-9]*$",
        description="The provider id graphs ask for.",
    )
    issuer: str | None = Field(default=None, pattern=_URL, description="OIDC issuer URL.")
    authorization_endpoint: str | None = Field(default=None, pattern=_URL)
    token_endpoint: str | None = Field(default=None, pattern=_URL)
    revocation_endpoint: str | None = Field(default=None, pattern=_URL)
    client_id: str = Field(min_length=1, max_length=1024)
    client_secret_ref: SecretKeyRef | None = None
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = (
        "client_secret_basic"
    )
    scopes: list[str] | None = Field(
        default=None, max_length=64, description="Scopes always requested."
    )
    redirect_url: str = Field(
        alias="redirectURL",
        pattern=_URL,
        description=f"This deployment's {_CALLBACK} as users' browsers reach it; registered "
        "with the provider.",
    )

    @model_validator(mode="after")
    def _complete(self) -> OAuthProviderSpec:
        if self.issuer is None and not (self.authorization_endpoint and self.token_endpoint):
            raise ValueError(
                "set issuer (OIDC discovery) or both authorizationEndpoint and tokenEndpoint"
            )
        if self.token_endpoint_auth_method != "none" and self.client_secret_ref is None:
            raise ValueError("clientSecretRef is required unless tokenEndpointAuthMethod is none")
        if not self.redirect_url.endswith(_CALLBACK):
            raise ValueError(f"redirectURL must be this deployment's {_CALLBACK} as users reach it")
        return self

    def runtime_json(self, secret_env: str | None) -> dict[str, Any]:
        """The provider as `BERTH_AGENT_AUTH_PROVIDERS` spells it for the runtime."""
        out: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_url": self.redirect_url,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        }
        for key in ("issuer", "authorization_endpoint", "token_endpoint", "revocation_endpoint"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.scopes:
            out["scopes"] = list(self.scopes)
        if secret_env is not None:
            out["client_secret_env"] = secret_env
        return out


class AgentAuthSpec(BerthModel):
    """Agent Auth: graphs act for their user with OAuth tokens the runtime stores encrypted."""

    keys_secret_ref: SecretKeyRef = Field(
        description="Fernet keys (comma-separated, newest first) that encrypt tokens at rest."
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Key for langchain-auth's Client (x-api-key) on /v2/auth/authenticate.",
    )
    providers: list[OAuthProviderSpec] = Field(
        min_length=1,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


def _bundled_postgres() -> PostgresSpec:
    return PostgresSpec(bundled=BundledPostgres())


def _bundled_redis() -> RedisSpec:
    return RedisSpec(bundled=BundledRedis())


class AgentDeploymentSpec(BerthModel):
    """The desired agent server."""

    model_config = _rules(
        cel(
            "!has(self.autoscaling) || !self.autoscaling.enabled || "
            "self.autoscaling.target != 'Workers' || (has(self.workers) && self.workers.enabled)",
            "autoscaling.target Workers needs workers.enabled",
        ),
        cel(
            "!has(self.env) || self.env.all(e, !(e.name in "
            + "["
            + ", ".join(f"'{n}'" for n in RESERVED_ENV)
            + "]))",
            "env must not set " + ", ".join(RESERVED_ENV) + " (the operator sets them)",
        ),
    )

    image: str | None = Field(
        default=None,
        min_length=1,
        description="The runtime image (berth-runtime + your graphs). Default: the operator's "
        "configured berth-runtime image, which holds the example agent.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        description="Default: the operator's configured policy (IfNotPresent).",
    )
    graphs: GraphsSpec
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    secret_refs: list[LocalObjectReference] | None = Field(
        default=None, description="Secrets whose keys all become environment variables."
    )
    server: ServerSpec = Field(default_factory=ServerSpec, json_schema_extra=EMPTY_DEFAULT)
    workers: WorkersSpec = Field(default_factory=WorkersSpec, json_schema_extra=EMPTY_DEFAULT)
    autoscaling: AutoscalingSpec | None = None
    postgres: PostgresSpec = Field(
        default_factory=_bundled_postgres, json_schema_extra={"default": {"bundled": {}}}
    )
    redis: RedisSpec = Field(
        default_factory=_bundled_redis, json_schema_extra={"default": {"bundled": {}}}
    )
    service: ServiceSpec = Field(default_factory=ServiceSpec, json_schema_extra=EMPTY_DEFAULT)
    pod: PodOverrides | None = None
    sandbox: SandboxSpec | None = None
    agent_auth: AgentAuthSpec | None = None

    @model_validator(mode="after")
    def _cross_field(self) -> AgentDeploymentSpec:
        a = self.autoscaling
        if a is not None and a.enabled and a.target == "Workers" and not self.workers.enabled:
            raise ValueError("autoscaling.target Workers needs workers.enabled")
        for e in self.env or ():
            if e.name in RESERVED_ENV:
                raise ValueError(f"env must not set {e.name} (the operator sets it)")
        return self

    @property
    def hpa_owns_server(self) -> bool:
        a = self.autoscaling
        return a is not None and a.enabled and a.target == "Server"

    @property
    def hpa_owns_workers(self) -> bool:
        a = self.autoscaling
        return a is not None and a.enabled and a.target == "Workers" and self.workers.enabled


class ReplicaStatus(BerthModel):
    replicas: int = 0
    ready_replicas: int = 0


class SecretKeyStatus(BerthModel):
    secret_name: str
    key: str


class AgentDeploymentStatus(BerthModel):
    """What the operator observed; written only by the operator."""

    observed_generation: int | None = None
    conditions: Conditions | None = None
    endpoint: str | None = Field(default=None, description="In-cluster URL of the API.")
    replicas: int | None = Field(default=None, description="Server Pods (scale subresource).")
    ready_replicas: int | None = None
    selector: str | None = Field(default=None, description="Label selector of the server Pods.")
    workers: ReplicaStatus | None = None
    database: SecretKeyStatus | None = Field(
        default=None, description="The Secret key wired into DATABASE_URI."
    )
    redis: SecretKeyStatus | None = Field(
        default=None, description="The Secret key wired into REDIS_URI."
    )
    kopf: FreeForm | None = Field(default=None, description="Reserved for the kopf framework.")


def parse_spec(spec: Any) -> AgentDeploymentSpec:
    """Validate a spec read from the API (raises pydantic.ValidationError)."""
    return AgentDeploymentSpec.model_validate(spec)
