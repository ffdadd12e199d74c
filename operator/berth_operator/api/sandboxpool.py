"""`SandboxPool`: warm, isolated sandbox Pods that a `SandboxClaim` binds in milliseconds.

Each Pod runs the user's sandbox container (behind the in-sandbox executor), an
auth-proxy sidecar that injects credentials and enforces the egress allow list,
and init containers for the egress redirection and the executor binary. The
sandbox container never sees a Secret: only the proxy mounts them.

Safe defaults (non-root, no privilege escalation, all capabilities dropped,
seccomp ``RuntimeDefault``, no ServiceAccount token) are schema defaults; a user
turns one off only by writing the opposite value. Every CEL rule below has a
pydantic twin, so the operator refuses what an older CRD may have let in.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from berth_operator.api.common import (
    BerthModel,
    Conditions,
    FreeForm,
    LocalObjectReference,
    ResourceRequirements,
    Toleration,
)

KIND = "SandboxPool"
PLURAL = "sandboxpools"
SINGULAR = "sandboxpool"
SHORT_NAMES = ["sbp"]
MAX_NAME_LENGTH = 50
"""Pods are named ``<pool>-<suffix>`` and must stay DNS-1123 labels (hostnames)."""

DEFAULT_GRACE_SECONDS = 300

EMPTY_DEFAULT: dict[str, Any] = {"default": {}}

# Host globs: lower-case DNS names, optionally one leading "*." (any subdomain).
# Regexes avoid backslashes: they are embedded in CEL string literals.
HOST_GLOB = r"^([*][.])?([a-z0-9]([-a-z0-9]*[a-z0-9])?[.])*[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HOST_GLOB_MESSAGE = (
    "hosts must be lower-case DNS names, optionally starting with '*.' "
    "(e.g. api.openai.com, *.githubusercontent.com); no scheme, port, path or other wildcard"
)
HEADER_NAME = r"^[A-Za-z0-9][-A-Za-z0-9_]*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SECRET_PLACEHOLDER = "{secret}"
PROVIDER_NAME = r"^[a-zA-Z0-9][-_.a-zA-Z0-9]*$"
"""An Agent Auth provider id, as AgentDeployment ``spec.agentAuth.providers[].name`` spells it."""

# Go-style durations ("90s", "30m", "1h30m"); parsed by parse_duration().
DURATION = r"^([0-9]+([.][0-9]+)?(ms|s|m|h))+$"
DURATION_MESSAGE = "must be a duration such as 90s, 30m, 12h or 1h30m (units ms, s, m, h)"
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

# Environment variables the operator sets in the sandbox container.
CA_ENV = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
)
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
RESERVED_ENV = CA_ENV + PROXY_ENV
RESERVED_PATH = "/berth"
"""Mount paths under this prefix belong to the operator (executor, CA bundle, metadata)."""
RESERVED_VOLUME_PREFIX = "berth-"
RESERVED_LABEL_PREFIX = "berth.dev/"
PROXY_UID = 1337
"""The auth-proxy's UID: the egress redirection exempts it."""


def cel(rule: str, message: str, **extra: str) -> dict[str, str]:
    return {"rule": rule, "message": message, **extra}


def _rules(*rules: dict[str, str]) -> ConfigDict:
    extra: dict[str, Any] = {"x-kubernetes-validations": list(rules)}
    return ConfigDict(json_schema_extra=extra)


def _field_rules(*rules: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules), **extra}


def parse_duration(value: str) -> float:
    """Seconds in a Go-style duration (``"1h30m"`` -> 5400.0); ValueError if malformed."""
    if not re.fullmatch(DURATION, value):
        raise ValueError(f"{value!r} {DURATION_MESSAGE}")
    return sum(
        float(n) * _UNIT_SECONDS[u]
        for n, u in re.findall(r"([0-9]+(?:[.][0-9]+)?)(ms|s|m|h)", value)
    )


def _check_hosts(hosts: list[str] | None, *, allow_star: bool = False) -> None:
    for h in hosts or ():
        if allow_star and h == "*":
            continue
        if not re.fullmatch(HOST_GLOB, h):
            raise ValueError(f"{h!r}: {HOST_GLOB_MESSAGE}")


Duration = str
HostGlob = Annotated[str, Field(max_length=253)]
CIDR = Annotated[str, Field(max_length=64)]
Port = Annotated[int, Field(ge=1, le=65535)]
DeploymentName = Annotated[str, Field(min_length=1, max_length=63)]
Capability = Annotated[str, Field(min_length=1, max_length=64)]


def _duration_field(description: str) -> Any:
    return Field(
        default=None,
        max_length=32,
        description=description,
        json_schema_extra=_field_rules(cel(f"self.matches('{DURATION}')", DURATION_MESSAGE)),
    )


# --- sandbox container template ----------------------------------------------------------


class SandboxEnvVarSource(BerthModel):
    """Where a variable's value comes from. Secrets are refused: the sandbox runs
    untrusted code; give it credentials through `authProxy.rules` instead."""

    model_config = _rules(
        cel(
            "!has(self.secretKeyRef)",
            "secretKeyRef is not allowed in the sandbox (untrusted code would read it): "
            "inject credentials with authProxy.rules",
        ),
        cel(
            "has(self.secretKeyRef) || [has(self.configMapKeyRef), has(self.fieldRef), "
            "has(self.resourceFieldRef)].exists_one(x, x)",
            "valueFrom needs exactly one of configMapKeyRef, fieldRef or resourceFieldRef",
        ),
    )

    config_map_key_ref: FreeForm | None = None
    field_ref: FreeForm | None = None
    resource_field_ref: FreeForm | None = None
    secret_key_ref: FreeForm | None = Field(
        default=None, description="Refused at admission; present only to say so clearly."
    )

    @model_validator(mode="after")
    def _no_secret(self) -> SandboxEnvVarSource:
        if self.secret_key_ref is not None:
            raise ValueError(
                "secretKeyRef is not allowed in the sandbox (untrusted code would read it): "
                "inject credentials with authProxy.rules"
            )
        sources = [self.config_map_key_ref, self.field_ref, self.resource_field_ref]
        if sum(s is not None for s in sources) != 1:
            raise ValueError(
                "valueFrom needs exactly one of configMapKeyRef, fieldRef or resourceFieldRef"
            )
        return self


class SandboxEnvVar(BerthModel):
    """A non-secret environment variable of the sandbox container."""

    model_config = _rules(
        cel("!(has(self.value) && has(self.valueFrom))", "set value or valueFrom, not both")
    )

    name: str = Field(min_length=1, max_length=256)
    value: str | None = None
    value_from: SandboxEnvVarSource | None = None

    @model_validator(mode="after")
    def _one(self) -> SandboxEnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class SandboxEnvFromSource(BerthModel):
    """Every key of a ConfigMap as environment variables (Secrets are refused)."""

    model_config = _rules(
        cel(
            "!has(self.secretRef)",
            "envFrom.secretRef is not allowed in the sandbox: inject credentials with "
            "authProxy.rules",
        ),
        cel("has(self.secretRef) || has(self.configMapRef)", "envFrom needs configMapRef"),
    )

    prefix: str | None = None
    config_map_ref: LocalObjectReference | None = None
    secret_ref: FreeForm | None = Field(default=None, description="Refused at admission.")

    @model_validator(mode="after")
    def _no_secret(self) -> SandboxEnvFromSource:
        if self.secret_ref is not None:
            raise ValueError(
                "envFrom.secretRef is not allowed in the sandbox: inject credentials with "
                "authProxy.rules"
            )
        if self.config_map_ref is None:
            raise ValueError("envFrom needs configMapRef")
        return self


class SandboxVolume(BerthModel):
    """A volume of the sandbox container: emptyDir, configMap, a PVC or an ephemeral volume.

    Secret, projected and hostPath volumes are refused: the sandbox must not read
    credentials or the node's file system.
    """

    model_config = _rules(
        cel(
            "!has(self.secret) && !has(self.projected)",
            "secret and projected volumes are not allowed in the sandbox (untrusted code would "
            "read them): inject credentials with authProxy.rules",
        ),
        cel("!has(self.hostPath)", "hostPath volumes are not allowed in the sandbox"),
        cel(
            "has(self.secret) || has(self.projected) || has(self.hostPath) || "
            "[has(self.emptyDir), has(self.configMap), has(self.persistentVolumeClaim), "
            "has(self.ephemeral)].exists_one(x, x)",
            "each volume needs exactly one of emptyDir, configMap, persistentVolumeClaim "
            "or ephemeral",
        ),
        cel(
            f"!self.name.startsWith('{RESERVED_VOLUME_PREFIX}')",
            f"volume names starting with '{RESERVED_VOLUME_PREFIX}' are reserved for the operator",
        ),
    )

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    empty_dir: FreeForm | None = None
    config_map: FreeForm | None = None
    persistent_volume_claim: FreeForm | None = None
    ephemeral: FreeForm | None = None
    secret: FreeForm | None = Field(default=None, description="Refused at admission.")
    projected: FreeForm | None = Field(default=None, description="Refused at admission.")
    host_path: FreeForm | None = Field(default=None, description="Refused at admission.")

    @model_validator(mode="after")
    def _allowed_source(self) -> SandboxVolume:
        if self.secret is not None or self.projected is not None:
            raise ValueError(
                "secret and projected volumes are not allowed in the sandbox (untrusted code "
                "would read them): inject credentials with authProxy.rules"
            )
        if self.host_path is not None:
            raise ValueError("hostPath volumes are not allowed in the sandbox")
        sources = [self.empty_dir, self.config_map, self.persistent_volume_claim, self.ephemeral]
        if sum(s is not None for s in sources) != 1:
            raise ValueError(
                "each volume needs exactly one of emptyDir, configMap, persistentVolumeClaim "
                "or ephemeral"
            )
        if self.name.startswith(RESERVED_VOLUME_PREFIX):
            raise ValueError(
                f"volume names starting with '{RESERVED_VOLUME_PREFIX}' are reserved for the "
                "operator"
            )
        return self


class SandboxVolumeMount(BerthModel):
    """Where a `template.volumes` entry appears in the sandbox container."""

    model_config = _rules(
        cel(
            f"self.mountPath != '{RESERVED_PATH}' && "
            f"!self.mountPath.startsWith('{RESERVED_PATH}/')",
            f"mountPath under {RESERVED_PATH} is reserved for the operator",
        ),
        cel("self.mountPath.startsWith('/')", "mountPath must be an absolute path"),
    )

    name: str = Field(min_length=1, max_length=63)
    mount_path: str = Field(min_length=1, max_length=1024)
    sub_path: str | None = None
    read_only: bool | None = None

    @model_validator(mode="after")
    def _paths(self) -> SandboxVolumeMount:
        p = self.mount_path
        if p == RESERVED_PATH or p.startswith(RESERVED_PATH + "/"):
            raise ValueError(f"mountPath under {RESERVED_PATH} is reserved for the operator")
        if not p.startswith("/"):
            raise ValueError("mountPath must be an absolute path")
        return self


class SeccompProfile(BerthModel):
    model_config = _rules(
        cel(
            "!has(self.type) || self.type != 'Localhost' || has(self.localhostProfile)",
            "seccompProfile type Localhost needs localhostProfile",
        )
    )

    type: Literal["RuntimeDefault", "Localhost", "Unconfined"] = "RuntimeDefault"
    localhost_profile: str | None = None


class SandboxSecurityContext(BerthModel):
    """The sandbox container's security settings. Each default is the safe choice;
    writing the opposite value is the explicit opt-out (documented in docs/sandbox.md)."""

    model_config = _rules(
        cel(
            "!has(self.runAsUser) || self.runAsUser != 0 || "
            "(has(self.runAsNonRoot) && !self.runAsNonRoot)",
            "runAsUser 0 (root) needs runAsNonRoot: false, written explicitly",
        ),
        cel(
            f"!has(self.runAsUser) || self.runAsUser != {PROXY_UID}",
            f"runAsUser {PROXY_UID} is the auth-proxy's UID: its traffic would bypass the proxy",
        ),
        cel(
            "!has(self.capabilitiesAdd) || self.capabilitiesAdd.all(c, !(c in "
            "['NET_ADMIN', 'CAP_NET_ADMIN', 'ALL']))",
            "capabilitiesAdd must not contain NET_ADMIN or ALL: sandbox code could remove the "
            "egress redirection",
        ),
    )

    run_as_non_root: bool = True
    run_as_user: int = Field(default=1000, ge=0, le=2147483647)
    run_as_group: int = Field(default=1000, ge=0, le=2147483647)
    fs_group: int | None = Field(
        default=1000, ge=0, le=2147483647, description="Group owning the Pod's volumes."
    )
    allow_privilege_escalation: bool = False
    read_only_root_filesystem: bool = False
    capabilities_add: list[Capability] | None = Field(
        default=None,
        max_length=16,
        description="Capabilities added back after dropping ALL (default: none).",
    )
    seccomp_profile: SeccompProfile = Field(
        default_factory=SeccompProfile, json_schema_extra=EMPTY_DEFAULT
    )

    @model_validator(mode="after")
    def _root(self) -> SandboxSecurityContext:
        if self.run_as_non_root and self.run_as_user == 0:
            raise ValueError("runAsUser 0 (root) needs runAsNonRoot: false, written explicitly")
        if self.run_as_user == PROXY_UID:
            raise ValueError(
                f"runAsUser {PROXY_UID} is the auth-proxy's UID: its traffic would bypass the proxy"
            )
        if {"NET_ADMIN", "CAP_NET_ADMIN", "ALL"}.intersection(self.capabilities_add or ()):
            raise ValueError(
                "capabilitiesAdd must not contain NET_ADMIN or ALL: sandbox code could remove "
                "the egress redirection"
            )
        if self.seccomp_profile.type == "Localhost" and not self.seccomp_profile.localhost_profile:
            raise ValueError("seccompProfile type Localhost needs localhostProfile")
        return self


class SandboxTemplate(BerthModel):
    """The sandbox container and its Pod-level settings."""

    model_config = _rules(
        cel(
            "!has(self.args) || has(self.command)",
            "template.args needs template.command (the executor replaces the image's entrypoint)",
        ),
        cel(
            "!has(self.env) || self.env.all(e, !(e.name in ["
            + ", ".join(f"'{n}'" for n in RESERVED_ENV)
            + "]))",
            "env must not set " + ", ".join(RESERVED_ENV) + " (the operator sets them)",
        ),
        cel(
            f"!has(self.labels) || self.labels.all(k, !k.startsWith('{RESERVED_LABEL_PREFIX}'))",
            f"template.labels must not use the {RESERVED_LABEL_PREFIX} prefix (the operator and "
            "the NetworkPolicies rely on those labels)",
        ),
        cel(
            "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
            "self.volumes.exists(v, v.name == m.name))",
            "every volumeMounts[].name must name an entry of template.volumes",
        ),
    )

    image: str = Field(min_length=1, max_length=1024, description="The sandbox image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    command: list[str] | None = Field(
        default=None,
        max_length=64,
        description="Process started next to the executor (its exit is logged; the "
        "executor keeps serving). Default: none, the executor alone.",
    )
    args: list[str] | None = Field(default=None, max_length=256)
    working_dir: str | None = None
    env: list[SandboxEnvVar] | None = Field(default=None, max_length=256)
    env_from: list[SandboxEnvFromSource] | None = Field(default=None, max_length=32)
    resources: ResourceRequirements | None = None
    volumes: list[SandboxVolume] | None = Field(
        default=None,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    volume_mounts: list[SandboxVolumeMount] | None = Field(default=None, max_length=32)
    runtime_class_name: str | None = Field(
        default=None, description="RuntimeClass such as gvisor or kata for a stronger boundary."
    )
    security_context: SandboxSecurityContext = Field(
        default_factory=SandboxSecurityContext, json_schema_extra=EMPTY_DEFAULT
    )
    automount_service_account_token: bool = Field(
        default=False, description="Mount a ServiceAccount token into the Pod (default: no)."
    )
    service_account_name: str | None = None
    labels: dict[str, str] | None = Field(
        default=None, max_length=64, description="Extra labels of the sandbox Pods."
    )
    annotations: dict[str, str] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    affinity: FreeForm | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    priority_class_name: str | None = None
    termination_grace_period_seconds: int | None = Field(default=None, ge=0, le=3600)

    @model_validator(mode="after")
    def _cross_field(self) -> SandboxTemplate:
        if self.args is not None and self.command is None:
            raise ValueError(
                "template.args needs template.command (the executor replaces the image's "
                "entrypoint)"
            )
        for e in self.env or ():
            if e.name in RESERVED_ENV:
                raise ValueError(f"env must not set {e.name} (the operator sets it)")
        for k in self.labels or {}:
            if k.startswith(RESERVED_LABEL_PREFIX):
                raise ValueError(
                    f"template.labels must not use the {RESERVED_LABEL_PREFIX} prefix (the "
                    "operator and the NetworkPolicies rely on those labels)"
                )
        names = {v.name for v in self.volumes or ()}
        for m in self.volume_mounts or ():
            if m.name not in names:
                raise ValueError("every volumeMounts[].name must name an entry of template.volumes")
        return self


# --- auth proxy ---------------------------------------------------------------------------


class SecretKeySelector(BerthModel):
    """One key of a Secret in the pool's namespace (mounted into the proxy only)."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY)


class ConfigMapKeySelector(BerthModel):
    """One key of a ConfigMap in the pool's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY)


class HeaderInjection(BerthModel):
    """A header the proxy sets on matching requests; ``{secret}`` is the Secret key's value,
    or, with ``oauthProvider``, the OAuth access token of the user of the thread the sandbox
    is claimed for (Agent Auth; the proxy asks the claiming AgentDeployment's runtime)."""

    model_config = _rules(
        cel(
            f"self.value.contains('{SECRET_PLACEHOLDER}')",
            f"headers[].value must contain {SECRET_PLACEHOLDER} where the Secret value goes "
            "(e.g. 'Bearer {secret}')",
        ),
        cel(
            "!(has(self.secretRef) && has(self.oauthProvider))",
            "set secretRef (a Secret key) or oauthProvider (the thread user's OAuth token), "
            "not both",
        ),
        cel(
            "has(self.secretRef) || has(self.oauthProvider)",
            "headers[] needs secretRef (a Secret key) or oauthProvider (the thread user's "
            "OAuth token for that Agent Auth provider)",
        ),
    )

    name: str = Field(min_length=1, max_length=128, pattern=HEADER_NAME)
    value: str = Field(
        default=SECRET_PLACEHOLDER,
        min_length=1,
        max_length=1024,
        description="Template of the value, e.g. 'Bearer {secret}'.",
    )
    secret_ref: SecretKeySelector | None = None
    oauth_provider: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=PROVIDER_NAME,
        description="Inject the OAuth access token of the thread's user for this Agent Auth "
        "provider (a name in the claiming AgentDeployment's spec.agentAuth.providers) instead "
        "of a Secret key. Only claims with threadId and deploymentRef get a token; the token "
        "reaches the proxy only.",
    )

    @model_validator(mode="after")
    def _template(self) -> HeaderInjection:
        if SECRET_PLACEHOLDER not in self.value:
            raise ValueError(
                f"headers[].value must contain {SECRET_PLACEHOLDER} where the Secret value goes "
                "(e.g. 'Bearer {secret}')"
            )
        if self.secret_ref is not None and self.oauth_provider is not None:
            raise ValueError(
                "set secretRef (a Secret key) or oauthProvider (the thread user's OAuth token), "
                "not both"
            )
        if self.secret_ref is None and self.oauth_provider is None:
            raise ValueError(
                "headers[] needs secretRef (a Secret key) or oauthProvider (the thread user's "
                "OAuth token for that Agent Auth provider)"
            )
        return self


_HOSTS_RULE = cel(f"self.all(h, h.matches('{HOST_GLOB}'))", HOST_GLOB_MESSAGE)


class ProxyRule(BerthModel):
    """Requests to `hosts` (and `pathPrefix`) get `headers` injected from Secrets."""

    model_config = _rules(
        cel(
            "!has(self.pathPrefix) || self.pathPrefix.startsWith('/')",
            "pathPrefix must start with '/'",
        ),
        cel(
            "self.headers.all(h, self.headers.exists_one(o, o.name.lowerAscii() == "
            "h.name.lowerAscii()))",
            "a rule must not inject the same header twice",
        ),
        cel(
            "!has(self.placeholder) || !self.placeholder.contains('{secret}')",
            "placeholder is the dummy value the sandbox sends; it must not contain {secret}",
        ),
    )

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    hosts: list[HostGlob] = Field(
        min_length=1,
        max_length=32,
        description="Host globs: 'api.openai.com' or '*.openai.azure.com' (no bare '*').",
        json_schema_extra=_field_rules(_HOSTS_RULE),
    )
    path_prefix: str | None = Field(default=None, max_length=1024)
    headers: list[HeaderInjection] = Field(min_length=1, max_length=16)
    placeholder: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="When set, a request must carry exactly this value in the injected header "
        "(the sandbox's fake key); the proxy replaces it. Others are refused.",
    )

    @model_validator(mode="after")
    def _check(self) -> ProxyRule:
        _check_hosts(self.hosts)
        if self.path_prefix is not None and not self.path_prefix.startswith("/"):
            raise ValueError("pathPrefix must start with '/'")
        lowered = [h.name.lower() for h in self.headers]
        if len(set(lowered)) != len(lowered):
            raise ValueError("a rule must not inject the same header twice")
        if self.placeholder is not None and SECRET_PLACEHOLDER in self.placeholder:
            raise ValueError(
                "placeholder is the dummy value the sandbox sends; it must not contain {secret}"
            )
        return self


class ServiceReference(BerthModel):
    """A Service of the cluster the sandbox's traffic may reach (its backing Pods)."""

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    namespace: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL,
        description="Default: the pool's namespace.",
    )


class EgressSpec(BerthModel):
    """What the sandbox may reach besides rule and passthrough hosts (which are implied)."""

    model_config = _rules(
        cel(
            "!has(self.allowCIDRs) || self.allowCIDRs.all(c, isCIDR(c))",
            "allowCIDRs entries must be CIDRs such as 10.1.0.0/16 or 2001:db8::/32",
        ),
    )

    allow_hosts: list[HostGlob] | None = Field(
        default=None,
        max_length=256,
        description="Host globs reachable without credentials; '*' allows every host.",
        json_schema_extra=_field_rules(
            cel(
                f"self.all(h, h == '*' || h.matches('{HOST_GLOB}'))",
                HOST_GLOB_MESSAGE + " ('*' alone allows every host)",
            ),
        ),
    )
    allow_cidrs: list[CIDR] | None = Field(
        default=None,
        alias="allowCIDRs",
        max_length=64,
        description="Address ranges reachable directly (they win over the blocked ranges).",
    )
    allow_ports: list[Port] | None = Field(
        default=None, max_length=32, description="Destination ports allowed (default: 443 and 80)."
    )
    allow_services: list[ServiceReference] | None = Field(
        default=None,
        max_length=16,
        description="In-cluster upstreams behind a Service: the managed NetworkPolicy lets the "
        "sandbox reach the Service's backing Pods on its target ports (policies see traffic "
        "after the Service address is translated, so allowCIDRs of the Service IP alone is not "
        "enough). The proxy still needs the Service's address in allowCIDRs and its port in "
        "allowPorts.",
    )
    allow_cluster_cidrs: bool = Field(
        default=False,
        alias="allowClusterCIDRs",
        description="Allow private and cluster-internal ranges (10/8, 172.16/12, 192.168/16, "
        "100.64/10, fd00::/8). Default: blocked.",
    )
    allow_metadata: bool = Field(
        default=False, description="Allow the cloud metadata address 169.254.169.254."
    )

    @model_validator(mode="after")
    def _check(self) -> EgressSpec:
        _check_hosts(self.allow_hosts, allow_star=True)
        for c in self.allow_cidrs or ():
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise ValueError(
                    "allowCIDRs entries must be CIDRs such as 10.1.0.0/16 or 2001:db8::/32"
                ) from None
            if "/" not in c:
                raise ValueError(
                    "allowCIDRs entries must be CIDRs such as 10.1.0.0/16 or 2001:db8::/32"
                )
        return self


class AuthProxySpec(BerthModel):
    """The auth-proxy sidecar: credential injection and the egress allow list."""

    model_config = _rules(
        cel(
            "!has(self.passthroughHosts) || !has(self.rules) || self.rules.all(r, "
            "r.hosts.all(h, !(h in self.passthroughHosts)))",
            "a host cannot be in both a rule (which needs TLS interception to inject headers) "
            "and passthroughHosts",
        ),
    )

    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Image of the proxy and the executor. Default: the operator's configured "
        "berth-sandbox-agent image.",
    )
    netinit_image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Image of the egress-init container (Transparent mode): berth-netinit "
        "plus iptables. Default: the operator's configured berth-sandbox-netinit image.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        description="For the proxy and init containers. Default: the operator's configured "
        "policy (IfNotPresent).",
    )
    mode: Literal["Transparent", "Explicit"] = Field(
        default="Transparent",
        description="Transparent: iptables sends all outbound TCP through the proxy (needs an "
        "init container with NET_ADMIN). Explicit: only HTTP(S)_PROXY env; no privileged init "
        "container, but programs that ignore the variables have no egress.",
    )
    resources: ResourceRequirements | None = None
    rules: list[ProxyRule] | None = Field(
        default=None,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    egress: EgressSpec = Field(default_factory=EgressSpec, json_schema_extra=EMPTY_DEFAULT)
    passthrough_hosts: list[HostGlob] | None = Field(
        default=None,
        max_length=64,
        description="Host globs tunnelled without TLS interception (still allow-listed by SNI).",
        json_schema_extra=_field_rules(_HOSTS_RULE),
    )
    upstream_ca: ConfigMapKeySelector | None = Field(
        default=None,
        alias="upstreamCA",
        description="PEM certificates (a ConfigMap key in the pool's namespace) the proxy "
        "trusts, besides the system roots, when it verifies upstream servers: for private APIs "
        "with their own CA. Mounted into the proxy container only.",
    )

    @model_validator(mode="after")
    def _check(self) -> AuthProxySpec:
        _check_hosts(self.passthrough_hosts)
        passthrough = set(self.passthrough_hosts or ())
        names = [r.name for r in self.rules or ()]
        if len(set(names)) != len(names):
            raise ValueError("authProxy.rules names must be unique")
        for r in self.rules or ():
            both = passthrough.intersection(r.hosts)
            if both:
                raise ValueError(
                    "a host cannot be in both a rule (which needs TLS interception to inject "
                    f"headers) and passthroughHosts: {sorted(both)}"
                )
        return self

    def secret_names(self) -> list[str]:
        """Names of every Secret a rule reads, sorted, without duplicates."""
        return sorted(
            {h.secret_ref.name for r in self.rules or () for h in r.headers if h.secret_ref}
        )

    def oauth_providers(self) -> list[str]:
        """Agent Auth providers whose user tokens the rules inject, sorted, no duplicates."""
        return sorted(
            {h.oauth_provider for r in self.rules or () for h in r.headers if h.oauth_provider}
        )


# --- pool -----------------------------------------------------------------------------------


class PoolLifecycle(BerthModel):
    """When a claimed sandbox is reclaimed (its Pod deleted); unset means never."""

    idle_timeout: Duration | None = _duration_field(
        "Reclaim after this long without use (the claim's berth.dev/last-activity annotation, "
        "else its boundAt)."
    )
    max_lifetime: Duration | None = _duration_field("Reclaim this long after binding.")

    @field_validator("idle_timeout", "max_lifetime")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @property
    def idle_timeout_seconds(self) -> float | None:
        return None if self.idle_timeout is None else parse_duration(self.idle_timeout)

    @property
    def max_lifetime_seconds(self) -> float | None:
        return None if self.max_lifetime is None else parse_duration(self.max_lifetime)


class UpdateStrategy(BerthModel):
    """How warm Pods with an old template are replaced."""

    type: Literal["OnReplenish", "Recreate"] = Field(
        default="OnReplenish",
        description="OnReplenish: stale warm Pods stay usable and are replaced as they are "
        "claimed. Recreate: stale warm Pods are deleted and recreated at once.",
    )


class NetworkPolicySpec(BerthModel):
    """The managed NetworkPolicy of the sandbox Pods."""

    mode: Literal["Managed", "Unmanaged"] = Field(
        default="Managed",
        description="Unmanaged: no NetworkPolicy; you must restrict ingress and non-TCP egress.",
    )
    allowed_deployments: list[DeploymentName] | None = Field(
        default=None,
        max_length=64,
        description="AgentDeployments (same namespace) whose Pods may reach the sandboxes.",
    )
    ingress_from: list[FreeForm] | None = Field(
        default=None,
        max_length=16,
        description="Extra NetworkPolicyPeers allowed to reach the executor port.",
    )


_USES_OAUTH = (
    "has(self.authProxy) && has(self.authProxy.rules) && "
    "self.authProxy.rules.exists(r, r.headers.exists(h, has(h.oauthProvider)))"
)
OAUTH_TRANSPARENT_MESSAGE = (
    "headers with oauthProvider need authProxy.mode Transparent: the NetworkPolicy lets the "
    "proxy reach the runtime for tokens, and only the egress redirection keeps sandbox code "
    "from using that path itself"
)
OAUTH_DEPLOYMENTS_MESSAGE = (
    "headers with oauthProvider need networkPolicy.allowedDeployments (with the Managed "
    "NetworkPolicy): the proxy may ask only those AgentDeployments' runtimes for tokens"
)


class SandboxPoolSpec(BerthModel):
    """Warm sandbox Pods kept ready for SandboxClaims."""

    model_config = _rules(
        cel(
            "self.maxSize >= self.replicas",
            "maxSize (warm plus claimed Pods) must be >= replicas (warm Pods)",
        ),
        cel(
            f"!({_USES_OAUTH}) || !has(self.authProxy.mode) || "
            "self.authProxy.mode == 'Transparent'",
            OAUTH_TRANSPARENT_MESSAGE,
        ),
        cel(
            f"!({_USES_OAUTH}) || (has(self.networkPolicy) && has(self.networkPolicy.mode) && "
            "self.networkPolicy.mode == 'Unmanaged') || (has(self.networkPolicy) && "
            "has(self.networkPolicy.allowedDeployments) && "
            "size(self.networkPolicy.allowedDeployments) > 0)",
            OAUTH_DEPLOYMENTS_MESSAGE,
        ),
    )

    template: SandboxTemplate
    replicas: int = Field(default=1, ge=0, le=10000, description="Warm Pods kept ready.")
    max_size: int = Field(ge=0, le=100000, description="Most Pods of the pool, warm plus claimed.")
    readiness_grace_period_seconds: int = Field(
        default=DEFAULT_GRACE_SECONDS,
        ge=10,
        le=86400,
        description="A warm Pod not Ready after this long is replaced.",
    )
    lifecycle: PoolLifecycle = Field(default_factory=PoolLifecycle, json_schema_extra=EMPTY_DEFAULT)
    update_strategy: UpdateStrategy = Field(
        default_factory=UpdateStrategy, json_schema_extra=EMPTY_DEFAULT
    )
    auth_proxy: AuthProxySpec = Field(
        default_factory=AuthProxySpec, json_schema_extra=EMPTY_DEFAULT
    )
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, json_schema_extra=EMPTY_DEFAULT
    )

    @model_validator(mode="after")
    def _sizes(self) -> SandboxPoolSpec:
        if self.max_size < self.replicas:
            raise ValueError("maxSize (warm plus claimed Pods) must be >= replicas (warm Pods)")
        if self.auth_proxy.oauth_providers():
            if self.auth_proxy.mode != "Transparent":
                raise ValueError(OAUTH_TRANSPARENT_MESSAGE)
            np = self.network_policy
            if np.mode == "Managed" and not np.allowed_deployments:
                raise ValueError(OAUTH_DEPLOYMENTS_MESSAGE)
        return self

    @property
    def uses_agent_auth(self) -> bool:
        """Whether a rule injects a thread user's OAuth token (``oauthProvider``)."""
        return bool(self.auth_proxy.oauth_providers())


class SandboxPoolStatus(BerthModel):
    """What the operator observed; written only by the operator."""

    observed_generation: int | None = None
    conditions: Conditions | None = None
    replicas: int | None = Field(default=None, description="Warm Pods (scale subresource).")
    ready_replicas: int | None = Field(default=None, description="Ready warm Pods.")
    claimed: int | None = Field(default=None, description="Pods bound to claims.")
    selector: str | None = Field(default=None, description="Label selector of the warm Pods.")
    template_hash: str | None = Field(default=None, description="Hash of the current template.")
    kopf: FreeForm | None = Field(default=None, description="Reserved for the kopf framework.")


def parse_spec(spec: Any) -> SandboxPoolSpec:
    """Validate a spec read from the API (raises pydantic.ValidationError)."""
    return SandboxPoolSpec.model_validate(spec)
