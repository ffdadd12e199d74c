"""The sandbox Pod of a SandboxPool: sandbox container, auth-proxy sidecar, init containers.

Layout (SANDBOX_CONTRACT.md):

- ``egress-init`` (Transparent mode only): ``berth-netinit`` redirects every outbound TCP
  connection of every UID but the proxy's (1337) to the proxy; the one privileged bit
  (root with NET_ADMIN and NET_RAW, nothing else), and it exits before the sandbox starts;
- ``executor-install``: copies ``berth-executor`` into the ``berth-bin`` emptyDir;
- ``sandbox``: the user's image, entrypoint replaced by the executor (the user's command,
  if any, runs as its child); mounts no Secret, only the executor binary, the token hash
  (downwardAPI) and the public CA bundle (a ConfigMap);
- ``auth-proxy``: the only container that mounts Secrets (the CA key, the rule keys and,
  when a rule names an ``oauthProvider``, the optional ``<pod>-agent-auth`` of its claim).

A warm Pod is owned by the pool and labelled for it; a cold Pod is rendered already
bound to its claim. ``berth.dev/template-hash`` says which spec a Pod was made from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth_operator.api.sandboxpool import (
    CA_ENV,
    PROXY_ENV,
    SandboxPoolSpec,
    SandboxTemplate,
)
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import Subject, digest, owner_reference, propagated, prune_none
from berth_operator.render.sandbox import agent_auth
from berth_operator.render.sandbox.ca import BUNDLE_KEY, CERT_KEY, KEY_KEY
from berth_operator.render.sandbox.names import (
    ASSISTANT_LABEL,
    CLAIM_LABEL,
    CLAIMED_AT_ANNOTATION,
    EXECUTOR_PORT,
    FROM_POOL_LABEL,
    LAUNCH_LABEL,
    POOL_LABEL,
    PROXY_PORT,
    PROXY_UID,
    STATE_CLAIMED,
    STATE_LABEL,
    STATE_WARM,
    TEMPLATE_HASH_LABEL,
    THREAD_LABEL,
    TOKEN_HASH_ANNOTATION,
    PoolNames,
    recommended_labels,
)
from berth_operator.render.sandbox.proxy import (
    CA_KEY_DIR,
    CONFIG_DIR,
    CONFIG_KEY,
    UPSTREAM_CA_DIR,
    UPSTREAM_CA_FILE,
    secret_mounts,
)

RENDER_VERSION = "1"
"""Bump when the rendered Pod changes shape for the same spec (stale warm Pods follow)."""

TOOLS_DIR = "/usr/local/bin"
BIN_DIR = "/berth/bin"
EXECUTOR = f"{BIN_DIR}/berth-executor"
META_DIR = "/berth/meta"
TOKEN_HASH_FILE = "executor-token-sha256"
CA_DIR = "/berth/ca"
CA_BUNDLE_PATH = f"{CA_DIR}/{BUNDLE_KEY}"
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
NO_PROXY = "localhost,127.0.0.1"

SANDBOX = "sandbox"
AUTH_PROXY = "auth-proxy"
EGRESS_INIT = "egress-init"
EXECUTOR_INSTALL = "executor-install"

VOL_BIN = "berth-bin"
VOL_META = "berth-meta"
VOL_CA_BUNDLE = "berth-ca-bundle"
VOL_PROXY_CONFIG = "berth-proxy-config"
VOL_CA_KEY = "berth-ca-key"
VOL_UPSTREAM_CA = "berth-upstream-ca"

SIDECAR_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "10m", "memory": "32Mi"},
    "limits": {"memory": "256Mi"},
}
INIT_RESOURCES: dict[str, Any] = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "500m", "memory": "64Mi"},
}


@dataclass(frozen=True)
class Binding:
    """A claim a Pod is (or is being) bound to."""

    claim: Subject
    token_sha256: str
    claimed_at: str
    thread_id: str | None = None
    assistant_id: str | None = None


@dataclass(frozen=True)
class ProxyImages:
    """The auth proxy's images and pull policy: the spec's, else the operator's defaults."""

    agent: str
    netinit: str
    pull_policy: str

    @classmethod
    def of(cls, spec: SandboxPoolSpec, images: ImageDefaults) -> ProxyImages:
        p = spec.auth_proxy
        return cls(
            agent=p.image or images.sandbox_agent,
            netinit=p.netinit_image or images.netinit,
            pull_policy=p.image_pull_policy or images.pull_policy,
        )


def template_hash(spec: SandboxPoolSpec, images: ImageDefaults) -> str:
    """Hash of every spec part that shapes the Pod (template and authProxy), with the
    images resolved: a new operator default makes warm Pods stale like a spec change.
    A spec that names all three gets the hash it had before images had defaults."""
    resolved = ProxyImages.of(spec, images)
    wire = spec.auth_proxy.wire()
    egress = {k: v for k, v in (wire.get("egress") or {}).items() if k != "allowServices"}
    if egress:  # allowServices shapes the NetworkPolicy only, not the Pods
        wire["egress"] = egress
    else:
        wire.pop("egress", None)
    proxy = {
        **wire,
        "image": resolved.agent,
        "netinitImage": resolved.netinit,
        "imagePullPolicy": resolved.pull_policy,
    }
    return digest({"template": spec.template.wire(), "authProxy": proxy, "render": RENDER_VERSION})


def _restricted(uid: int) -> dict[str, Any]:
    """securityContext of the operator's own non-root containers."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _sandbox_security(t: SandboxTemplate) -> dict[str, Any]:
    sc = t.security_context
    seccomp: dict[str, Any] = {"type": sc.seccomp_profile.type}
    if sc.seccomp_profile.localhost_profile:
        seccomp["localhostProfile"] = sc.seccomp_profile.localhost_profile
    caps: dict[str, Any] = {"drop": ["ALL"]}
    if sc.capabilities_add:
        caps["add"] = list(sc.capabilities_add)
    return {
        "runAsNonRoot": sc.run_as_non_root,
        "runAsUser": sc.run_as_user,
        "runAsGroup": sc.run_as_group,
        "allowPrivilegeEscalation": sc.allow_privilege_escalation,
        "readOnlyRootFilesystem": sc.read_only_root_filesystem,
        "capabilities": caps,
        "seccompProfile": seccomp,
    }


def sandbox_env(spec: SandboxPoolSpec) -> list[dict[str, Any]]:
    """CA bundle variables, proxy variables (Explicit mode), then the user's."""
    env: list[dict[str, Any]] = [{"name": n, "value": CA_BUNDLE_PATH} for n in CA_ENV]
    if spec.auth_proxy.mode == "Explicit":
        for n in PROXY_ENV:
            env.append({"name": n, "value": NO_PROXY if n.lower() == "no_proxy" else PROXY_URL})
    env.extend(e.wire() for e in spec.template.env or ())
    return env


def sandbox_command(t: SandboxTemplate) -> list[str]:
    """The executor, then (after ``--``) the user's command and args."""
    cmd = [
        EXECUTOR,
        "serve",
        "--addr",
        f":{EXECUTOR_PORT}",
        "--token-hash-file",
        f"{META_DIR}/{TOKEN_HASH_FILE}",
    ]
    if t.command:
        cmd += ["--", *t.command, *(t.args or ())]
    return cmd


def sandbox_container(spec: SandboxPoolSpec) -> dict[str, Any]:
    t = spec.template
    mounts = [
        {"name": VOL_BIN, "mountPath": BIN_DIR, "readOnly": True},
        {"name": VOL_META, "mountPath": META_DIR, "readOnly": True},
        {"name": VOL_CA_BUNDLE, "mountPath": CA_DIR, "readOnly": True},
        *(m.wire() for m in t.volume_mounts or ()),
    ]
    container: dict[str, Any] = prune_none(
        {
            "name": SANDBOX,
            "image": t.image,
            "imagePullPolicy": t.image_pull_policy,
            "command": sandbox_command(t),
            "workingDir": t.working_dir,
            "ports": [{"name": "executor", "containerPort": EXECUTOR_PORT, "protocol": "TCP"}],
            "env": sandbox_env(spec),
            "envFrom": [e.wire() for e in t.env_from] if t.env_from else None,
            "resources": t.resources.wire() if t.resources else None,
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": "executor"},
                "periodSeconds": 2,
                "failureThreshold": 3,
                "timeoutSeconds": 2,
            },
            "volumeMounts": mounts,
            "securityContext": _sandbox_security(t),
        }
    )
    return container


def proxy_container(spec: SandboxPoolSpec, images: ImageDefaults) -> dict[str, Any]:
    p = spec.auth_proxy
    resolved = ProxyImages.of(spec, images)
    mounts = [
        {"name": VOL_PROXY_CONFIG, "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": VOL_CA_KEY, "mountPath": CA_KEY_DIR, "readOnly": True},
        *(
            {"name": m.volume, "mountPath": m.mount_path, "readOnly": True}
            for m in secret_mounts(p)
        ),
    ]
    if p.upstream_ca is not None:
        mounts.append({"name": VOL_UPSTREAM_CA, "mountPath": UPSTREAM_CA_DIR, "readOnly": True})
    if spec.uses_agent_auth:
        mounts.append(agent_auth.volume_mount())
    return {
        "name": AUTH_PROXY,
        "image": resolved.agent,
        "imagePullPolicy": resolved.pull_policy,
        "command": [f"{TOOLS_DIR}/berth-auth-proxy", "--config", f"{CONFIG_DIR}/{CONFIG_KEY}"],
        "resources": p.resources.wire() if p.resources else SIDECAR_RESOURCES,
        # Both the proxy and its admin port listen on loopback only (the iptables REDIRECT
        # of locally generated traffic lands on 127.0.0.1), so no other Pod can borrow the
        # proxy's credentials even where NetworkPolicies are not enforced; kubelet cannot
        # reach loopback, so readiness is an exec probe that asks the admin server.
        "readinessProbe": {
            "exec": {
                "command": [
                    f"{TOOLS_DIR}/berth-auth-proxy",
                    "--config",
                    f"{CONFIG_DIR}/{CONFIG_KEY}",
                    "--probe",
                    "readyz",
                ]
            },
            "periodSeconds": 2,
            "failureThreshold": 3,
            "timeoutSeconds": 2,
        },
        "volumeMounts": mounts,
        "securityContext": _restricted(PROXY_UID),
    }


def init_containers(spec: SandboxPoolSpec, images: ImageDefaults) -> list[dict[str, Any]]:
    p = spec.auth_proxy
    resolved = ProxyImages.of(spec, images)
    out: list[dict[str, Any]] = []
    if p.mode == "Transparent":
        out.append(
            {
                "name": EGRESS_INIT,
                "image": resolved.netinit,
                "imagePullPolicy": resolved.pull_policy,
                "command": [
                    f"{TOOLS_DIR}/berth-netinit",
                    "--proxy-uid",
                    str(PROXY_UID),
                    "--proxy-port",
                    str(PROXY_PORT),
                    "--dns-allow",
                ],
                "resources": INIT_RESOURCES,
                "securityContext": {
                    "runAsNonRoot": False,
                    "runAsUser": 0,
                    "runAsGroup": 0,
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_RAW"]},
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
            }
        )
    out.append(
        {
            "name": EXECUTOR_INSTALL,
            "image": resolved.agent,
            "imagePullPolicy": resolved.pull_policy,
            "command": [f"{TOOLS_DIR}/berth-executor", "install", "--to", BIN_DIR],
            "resources": INIT_RESOURCES,
            "volumeMounts": [{"name": VOL_BIN, "mountPath": BIN_DIR}],
            "securityContext": _restricted(PROXY_UID),
        }
    )
    return out


def volumes(pool_name: str, spec: SandboxPoolSpec, pod_name: str | None) -> list[dict[str, Any]]:
    names = PoolNames(pool_name)
    out: list[dict[str, Any]] = [
        {"name": VOL_BIN, "emptyDir": {"sizeLimit": "128Mi"}},
        {
            "name": VOL_META,
            "downwardAPI": {
                "items": [
                    {
                        "path": TOKEN_HASH_FILE,
                        "fieldRef": {
                            "fieldPath": f"metadata.annotations['{TOKEN_HASH_ANNOTATION}']"
                        },
                    }
                ]
            },
        },
        {
            "name": VOL_CA_BUNDLE,
            "configMap": {
                "name": names.ca_bundle,
                "items": [{"key": BUNDLE_KEY, "path": BUNDLE_KEY}],
            },
        },
        {
            "name": VOL_PROXY_CONFIG,
            "configMap": {
                "name": names.proxy_config,
                "items": [{"key": CONFIG_KEY, "path": CONFIG_KEY}],
            },
        },
        {
            "name": VOL_CA_KEY,
            "secret": {
                "secretName": names.ca_secret,
                "items": [{"key": CERT_KEY, "path": CERT_KEY}, {"key": KEY_KEY, "path": KEY_KEY}],
            },
        },
    ]
    for m in secret_mounts(spec.auth_proxy):
        out.append(
            {
                "name": m.volume,
                "secret": {
                    "secretName": m.secret,
                    "items": [{"key": k, "path": k} for k in m.keys],
                },
            }
        )
    upstream_ca = spec.auth_proxy.upstream_ca
    if upstream_ca is not None:
        out.append(
            {
                "name": VOL_UPSTREAM_CA,
                "configMap": {
                    "name": upstream_ca.name,
                    "items": [{"key": upstream_ca.key, "path": UPSTREAM_CA_FILE}],
                },
            }
        )
    if spec.uses_agent_auth:
        if pod_name is None:
            raise ValueError(
                "a pool whose rules name an oauthProvider needs named Pods (their Agent Auth "
                "Secret is named after the Pod)"
            )
        out.append(agent_auth.volume(pod_name))
    out.extend(v.wire() for v in spec.template.volumes or ())
    return out


def pod_spec(
    pool_name: str, spec: SandboxPoolSpec, images: ImageDefaults, pod_name: str | None = None
) -> dict[str, Any]:
    t = spec.template
    body: dict[str, Any] = {
        "automountServiceAccountToken": t.automount_service_account_token,
        "serviceAccountName": t.service_account_name,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "runtimeClassName": t.runtime_class_name,
        "securityContext": {
            "fsGroup": t.security_context.fs_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": init_containers(spec, images),
        "containers": [sandbox_container(spec), proxy_container(spec, images)],
        "volumes": volumes(pool_name, spec, pod_name),
        "nodeSelector": t.node_selector,
        "tolerations": [x.wire() for x in t.tolerations] if t.tolerations else None,
        "affinity": t.affinity,
        "imagePullSecrets": [s.wire() for s in t.image_pull_secrets]
        if t.image_pull_secrets
        else None,
        "priorityClassName": t.priority_class_name,
        "terminationGracePeriodSeconds": t.termination_grace_period_seconds,
    }
    out: dict[str, Any] = prune_none(body)
    return out


def _base_labels(pool: Subject, spec: SandboxPoolSpec, thash: str) -> dict[str, str]:
    return {
        **(spec.template.labels or {}),
        **recommended_labels(),
        FROM_POOL_LABEL: pool.name,
        TEMPLATE_HASH_LABEL: thash,
    }


def warm_pod(
    pool: Subject,
    spec: SandboxPoolSpec,
    name: str | None = None,
    thash: str | None = None,
    token_sha256: str | None = None,
    *,
    images: ImageDefaults,
) -> dict[str, Any]:
    """A warm Pod owned by the pool, waiting for a claim.

    Without ``token_sha256`` its token hash file is empty and the executor refuses every
    request until adoption writes the annotation (the kubelet then refreshes the file,
    usually within a second, at worst a sync period). With it (the hash of
    ``claim.derive_token(pool key, name)``), the file is there from the start
    and adoption changes nothing the executor reads: the claim is usable at once.
    Without ``name`` the Pod gets ``generateName: <pool>-`` (the API server picks).
    """
    thash = thash or template_hash(spec, images)
    labels = {**_base_labels(pool, spec, thash), POOL_LABEL: pool.name, STATE_LABEL: STATE_WARM}
    meta: dict[str, Any] = {
        **({"name": name} if name else {"generateName": f"{pool.name}-"}),
        "namespace": pool.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(pool)],
    }
    notes = {**propagated(pool.annotations), **(spec.template.annotations or {})}
    if token_sha256:
        notes[TOKEN_HASH_ANNOTATION] = token_sha256
    if notes:
        meta["annotations"] = notes
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": pod_spec(pool.name, spec, images, name),
    }


def bound_labels(binding: Binding, launch: str) -> dict[str, str]:
    """Labels a Pod carries once bound (added by adoption, or set on a cold Pod)."""
    labels = {
        CLAIM_LABEL: binding.claim.name,
        STATE_LABEL: STATE_CLAIMED,
        LAUNCH_LABEL: launch,
    }
    if binding.thread_id:
        labels[THREAD_LABEL] = binding.thread_id
    if binding.assistant_id:
        labels[ASSISTANT_LABEL] = binding.assistant_id
    return labels


def bound_annotations(binding: Binding) -> dict[str, str]:
    return {
        TOKEN_HASH_ANNOTATION: binding.token_sha256,
        CLAIMED_AT_ANNOTATION: binding.claimed_at,
    }


def cold_pod(
    pool: Subject,
    spec: SandboxPoolSpec,
    name: str,
    binding: Binding,
    thash: str | None = None,
    *,
    images: ImageDefaults,
) -> dict[str, Any]:
    """A Pod started for one claim because the pool had no Ready warm Pod; owned by the claim."""
    thash = thash or template_hash(spec, images)
    labels = {**_base_labels(pool, spec, thash), **bound_labels(binding, "cold")}
    notes = {
        **propagated(pool.annotations),
        **(spec.template.annotations or {}),
        **bound_annotations(binding),
    }
    meta: dict[str, Any] = {
        "name": name,
        "namespace": pool.namespace,
        "labels": labels,
        "annotations": notes,
        "ownerReferences": [owner_reference(binding.claim)],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": pod_spec(pool.name, spec, images, name),
    }
