"""The whole desired state of one AgentDeployment, and the checks that precede it.

``check_references`` finds problems a schema cannot see (a referenced Secret or
ConfigMap missing, a key absent); the caller then writes nothing but a Stalled
status. ``render`` returns every child to apply, in order, plus the children
that may exist from an earlier spec and are no longer wanted.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from berth_operator.api.agentdeployment import AgentDeploymentSpec
from berth_operator.render import agentcron_access, datastores, runtime
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import Subject, digest, stamp
from berth_operator.render.names import CONFIGMAP, SECRET, ChildNames, ChildRef, ref_of
from berth_operator.render.runtime import SecretKey, Wiring
from berth_operator.render.sandbox import access as sandbox_access


@dataclass(frozen=True)
class Observed:
    """Live objects the render depends on (None: absent)."""

    credentials: Mapping[str, Any] | None = None
    graphs_config_map: Mapping[str, Any] | None = None
    postgres_secret: Mapping[str, Any] | None = None
    redis_secret: Mapping[str, Any] | None = None
    sandbox_key: Mapping[str, Any] | None = None
    """Secret `<name>-sandbox-key` (kept as is once it exists)."""


@dataclass(frozen=True)
class Problem:
    """Why the spec cannot be realised; ``condition`` is the component it blocks."""

    condition: str
    reason: str
    message: str


@dataclass(frozen=True)
class Desired:
    objects: list[dict[str, Any]]
    orphans: list[ChildRef]
    wiring: Wiring
    notes: dict[str, str] = field(default_factory=dict)


def references(spec: AgentDeploymentSpec) -> dict[str, ChildRef]:
    """User-owned objects to read before rendering, keyed by the Observed field they fill."""
    refs: dict[str, ChildRef] = {}
    if spec.graphs.config_map_ref is not None:
        refs["graphs_config_map"] = ChildRef(*CONFIGMAP, spec.graphs.config_map_ref.name)
    if spec.postgres.external is not None:
        refs["postgres_secret"] = ChildRef(*SECRET, spec.postgres.external.secret_name)
    if spec.redis.external is not None:
        refs["redis_secret"] = ChildRef(*SECRET, spec.redis.external.secret_name)
    return refs


def _secret_problem(
    condition: str, what: str, name: str, key: str, secret: Mapping[str, Any] | None
) -> Problem | None:
    if secret is None:
        return Problem(condition, "SecretNotFound", f"{what} Secret {name!r} not found")
    if key not in (secret.get("data") or {}):
        return Problem(condition, "SecretKeyMissing", f"{what} Secret {name!r} has no key {key!r}")
    return None


def check_references(spec: AgentDeploymentSpec, observed: Observed) -> list[Problem]:
    problems: list[Problem] = []
    ref = spec.graphs.config_map_ref
    if ref is not None:
        cm = observed.graphs_config_map
        if cm is None:
            problems.append(
                Problem(
                    "ServerReady", "ConfigMapNotFound", f"graphs ConfigMap {ref.name!r} not found"
                )
            )
        elif ref.key not in (cm.get("data") or {}):
            problems.append(
                Problem(
                    "ServerReady",
                    "ConfigMapKeyMissing",
                    f"graphs ConfigMap {ref.name!r} has no key {ref.key!r}",
                )
            )
        else:
            problems.extend(_config_problems(ref.name, cm["data"][ref.key]))
    pg = spec.postgres.external
    if pg is not None:
        p = _secret_problem(
            "DatabaseReady", "postgres.external", pg.secret_name, pg.key, observed.postgres_secret
        )
        problems.extend([p] if p else [])
    rd = spec.redis.external
    if rd is not None:
        p = _secret_problem(
            "RedisReady", "redis.external", rd.secret_name, rd.key, observed.redis_secret
        )
        problems.extend([p] if p else [])
    return problems


def _config_problems(name: str, text: str) -> list[Problem]:
    try:
        parsed = json.loads(text)
    except ValueError as e:
        return [Problem("ServerReady", "InvalidConfig", f"ConfigMap {name!r}: not JSON: {e}")]
    if not isinstance(parsed, dict) or not isinstance(parsed.get("graphs"), dict):
        return [Problem("ServerReady", "InvalidConfig", f"ConfigMap {name!r}: no 'graphs' object")]
    if not parsed["graphs"]:
        return [Problem("ServerReady", "InvalidConfig", f"ConfigMap {name!r}: 'graphs' is empty")]
    return []


def _key_digest(secret: Mapping[str, Any] | None, key: str) -> str:
    data = (secret or {}).get("data") or {}
    return digest(data.get(key, ""))


def wiring(subject: Subject, spec: AgentDeploymentSpec, observed: Observed) -> Wiring:
    """Secret keys, config source and the config hash the Pod templates carry."""
    names = ChildNames(subject.name)
    hashed: dict[str, str] = {}
    if spec.postgres.external is not None:
        db = SecretKey(spec.postgres.external.secret_name, spec.postgres.external.key)
        hashed["database"] = _key_digest(observed.postgres_secret, db.key)
    else:
        db = SecretKey(names.credentials, datastores.DATABASE_URI_KEY)
    if spec.redis.external is not None:
        rd = SecretKey(spec.redis.external.secret_name, spec.redis.external.key)
        hashed["redis"] = _key_digest(observed.redis_secret, rd.key)
    else:
        rd = SecretKey(names.credentials, datastores.REDIS_URI_KEY)
    inline = runtime.langgraph_json(spec)
    ref = spec.graphs.config_map_ref
    if inline is not None:
        cm_name, cm_key, content = names.config, runtime.CONFIG_FILE, inline
    else:
        assert ref is not None
        cm_name, cm_key = ref.name, ref.key
        content = ((observed.graphs_config_map or {}).get("data") or {}).get(ref.key, "")
    hashed["config"] = digest(content)
    return Wiring(
        database=db, redis=rd, config_map=cm_name, config_key=cm_key, config_hash=digest(hashed)
    )


def render(
    subject: Subject,
    spec: AgentDeploymentSpec,
    observed: Observed,
    new_passwords: Mapping[str, str],
    images: ImageDefaults,
) -> Desired:
    """Every child to apply (stamped with its content hash) and the orphans to remove.

    ``images`` fills every image the spec leaves out (the operator's configuration).
    """
    names = ChildNames(subject.name)
    wire = wiring(subject, spec, observed)
    objs: list[dict[str, Any] | None] = []
    if spec.pod is None or spec.pod.service_account_name is None:
        objs.append(runtime.service_account(subject, names))
    account = (spec.pod.service_account_name if spec.pod else None) or names.service_account
    objs += [
        agentcron_access.role(subject, names),
        agentcron_access.role_binding(subject, names, account),
    ]
    if spec.sandbox is not None:
        objs += [
            sandbox_access.role(subject, names),
            sandbox_access.role_binding(subject, names, account),
            sandbox_access.key_secret(subject, names, observed.sandbox_key, new_passwords),
        ]
    inline = runtime.langgraph_json(spec)
    if inline is not None:
        objs.append(runtime.config_map(subject, names, inline))
    objs.append(
        datastores.credentials_secret(subject, spec, names, observed.credentials, new_passwords)
    )
    if spec.postgres.bundled is not None:
        objs += [
            datastores.postgres_pvc(subject, spec.postgres.bundled, names),
            datastores.postgres_service(subject, names),
            datastores.postgres_statefulset(subject, spec.postgres.bundled, names, images),
        ]
    if spec.redis.bundled is not None:
        objs += [
            datastores.redis_service(subject, names),
            datastores.redis_deployment(subject, spec.redis.bundled, names, images),
        ]
    split = spec.workers.enabled
    role: runtime.Role = "api" if split else "serve"
    objs.append(runtime.deployment(subject, spec, names, wire, role, images))
    if split:
        objs.append(runtime.deployment(subject, spec, names, wire, "worker", images))
    objs.append(runtime.service(subject, spec, names))
    objs.append(runtime.pod_disruption_budget(subject, names, "server"))
    if split:
        objs.append(runtime.pod_disruption_budget(subject, names, "worker"))
    objs.append(runtime.horizontal_pod_autoscaler(subject, spec, names))
    objects = [stamp(o) for o in objs if o is not None]
    wanted = {ref_of(o) for o in objects}
    orphans = [c for c in names.all_children() if c not in wanted]
    return Desired(objects=objects, orphans=orphans, wiring=wire)


def decode(secret: Mapping[str, Any], key: str) -> str:
    """A Secret value as text (for tests and diagnostics)."""
    return base64.b64decode(secret["data"][key]).decode()
