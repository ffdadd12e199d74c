"""One level-triggered pass over one AgentDeployment: read, decide (pure), write the difference.

read the resource and its children -> validate -> render -> apply only what
differs (all changes dry-run first, so a rejected object leaves everything
untouched) -> delete unwanted children we own -> list the Pods of workloads not
rolled out yet (a stuck container stalls them) -> one status patch if it changed.
A pass over an unchanged world performs reads only.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from berth_operator.api.agentdeployment import KIND, AgentDeploymentSpec, parse_spec
from berth_operator.api.common import API_VERSION
from berth_operator.k8s.client import Api, ApiError
from berth_operator.k8s.sandbox import list_pods
from berth_operator.render import datastores
from berth_operator.render.desired import Observed, Problem, check_references, references, render
from berth_operator.render.drift import adoption_conflict, is_owned_by, needs_apply
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import INSTANCE_LABEL, Subject
from berth_operator.render.names import ChildNames, ChildRef, ref_of
from berth_operator.render.pod_health import same_stall
from berth_operator.render.sandbox import access as sandbox_access
from berth_operator.render.status import pods_to_inspect, status, status_patch

log = logging.getLogger("berth.reconcile")

_COMPONENT_CONDITION = {
    "database": "DatabaseReady",
    "cache": "RedisReady",
    "worker": "WorkersReady",
}


@dataclass
class Outcome:
    """What one pass did and found (for logs, handlers and tests)."""

    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_written: bool = False
    ready: bool = False
    stalled: bool = False
    reason: str = ""
    newly_stalled: tuple[str, str] | None = None
    """(reason, message) when this pass moved the object into Stalled (worth an Event)."""
    target: dict[str, Any] = field(default_factory=dict)
    """apiVersion, kind and metadata of the AgentDeployment, to attach Events to."""

    @property
    def wrote(self) -> bool:
        return bool(self.applied or self.deleted or self.status_written)


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fresh_passwords() -> dict[str, str]:
    """Random values, used only for keys the generated Secrets do not have yet."""
    return {
        datastores.PG_PASSWORD_KEY: secrets.token_hex(24),
        datastores.REDIS_PASSWORD_KEY: secrets.token_hex(24),
        sandbox_access.NEW_KEY: secrets.token_hex(32),
    }


def _condition_of(obj: dict[str, Any]) -> str:
    component = obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", "")
    return _COMPONENT_CONDITION.get(component, "ServerReady")


def _rejection(obj: dict[str, Any], err: ApiError) -> Problem:
    condition = _condition_of(obj)
    reason = "Forbidden" if err.status == 403 else "ApplyRejected"
    return Problem(condition, reason, f"{obj['kind']} {obj['metadata']['name']}: {err.message}")


def _try_write(
    api: Api,
    obj: dict[str, Any],
    live: dict[str, Any] | None,
    owner_uid: str,
    replace: dict[ChildRef, str],
) -> None:
    """Dry-run the write of one child; fall back to a full replace of a child we own.

    Server-side apply merges lists by key, so an entry another writer added (say
    a Service port renamed by hand) survives next to ours and can make the object
    invalid; replacing our own child restores exactly the rendered content.
    """
    try:
        api.apply(obj, dry_run=True)
    except ApiError as e:
        if e.status == 404 and live is None and obj["kind"] == "RoleBinding":
            # The API server's escalation check reads the bound Role, which this same pass
            # creates just before (a dry run persists nothing); the real apply checks it.
            return
        if not e.rejected or e.status == 403 or live is None:
            raise
        labels = live["metadata"].get("labels") or {}
        ours = labels.get(INSTANCE_LABEL) == obj["metadata"]["labels"][INSTANCE_LABEL]
        if not (is_owned_by(live, owner_uid) or ours):
            raise
        version = str(live["metadata"]["resourceVersion"])
        api.replace(obj, version, dry_run=True)
        replace[ref_of(obj)] = version


def _summarise(
    outcome: Outcome, new_status: Mapping[str, Any], old_status: Mapping[str, Any]
) -> None:
    conds = {c["type"]: c for c in new_status.get("conditions", [])}
    before = {c.get("type"): c for c in old_status.get("conditions") or ()}
    outcome.ready = conds.get("Ready", {}).get("status") == "True"
    outcome.stalled = conds.get("Stalled", {}).get("status") == "True"
    outcome.reason = conds.get("Ready", {}).get("reason", "")
    stalled, was = conds.get("Stalled", {}), before.get("Stalled", {})
    if outcome.stalled and (
        was.get("status") != "True" or not same_stall(was.get("reason"), stalled["reason"])
    ):
        outcome.newly_stalled = (stalled["reason"], stalled.get("message", ""))


def reconcile(
    api: Api,
    namespace: str,
    name: str,
    *,
    now: str | None = None,
    passwords: Mapping[str, str] | None = None,
    full: bool = True,
    images: ImageDefaults,
) -> Outcome | None:
    """Bring one AgentDeployment's children and status in line; None if it is gone.

    ``images`` are the operator's configured defaults for images a spec leaves out.

    A ``full`` pass also reads every child that an earlier spec may have created, to
    delete the unwanted ones; a light pass (after a child event, with the spec unchanged
    since the last completed pass) reads only the children the current spec wants.
    """
    self_ref = ChildRef(API_VERSION, KIND, name)
    body = api.get(self_ref, namespace)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return None
    subject = Subject.from_body(body)
    now = now or now_rfc3339()
    live_status = body.get("status") or {}
    outcome = Outcome(
        target={
            "apiVersion": body.get("apiVersion", API_VERSION),
            "kind": body.get("kind", KIND),
            "metadata": {
                k: body["metadata"][k]
                for k in ("name", "namespace", "uid")
                if k in body["metadata"]
            },
        }
    )
    names = ChildNames(subject.name)
    was_stalled = any(
        c.get("type") == "Stalled" and c.get("status") == "True"
        for c in live_status.get("conditions") or ()
    )
    full = full or was_stalled or live_status.get("observedGeneration") != subject.generation
    children: dict[ChildRef, dict[str, Any] | None] = {}

    def read(refs: list[ChildRef]) -> None:
        for ref in refs:
            if ref not in children:
                children[ref] = api.get(ref, namespace)

    def finish(new_status: dict[str, Any]) -> Outcome:
        patch = status_patch(new_status, live_status)
        if patch is not None:
            api.patch_status(self_ref, namespace, patch)
            outcome.status_written = True
        _summarise(outcome, new_status, live_status)
        return outcome

    try:
        spec: AgentDeploymentSpec = parse_spec(body.get("spec"))
    except ValidationError as e:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in e.errors()
        )
        log.warning("%s/%s: invalid spec: %s", namespace, name, detail)
        return finish(status(subject, None, children, [], live_status, now, invalid=detail))

    refs = references(spec)
    credentials = ChildRef("v1", "Secret", names.credentials)
    if spec.postgres.bundled is not None or spec.redis.bundled is not None:
        read([credentials])
    sandbox_key = ChildRef("v1", "Secret", names.sandbox_key)
    if spec.sandbox is not None:
        read([sandbox_key])
    observed = Observed(
        credentials=children.get(credentials),
        sandbox_key=children.get(sandbox_key),
        **{key: api.get(ref, namespace) for key, ref in refs.items()},
    )
    problems = check_references(spec, observed)
    if problems:
        log.warning("%s/%s: stalled: %s", namespace, name, problems[0].message)
        read(names.all_children())
        return finish(status(subject, spec, children, problems, live_status, now))

    desired = render(subject, spec, observed, passwords or fresh_passwords(), images)
    read([ref_of(o) for o in desired.objects])
    if full:
        read(names.all_children())
    conflicts = [
        Problem(_condition_of(o), "AdoptionConflict", why)
        for o in desired.objects
        if (why := adoption_conflict(o, children.get(ref_of(o)), subject.uid))
    ]
    if conflicts:
        log.warning("%s/%s: stalled: %s", namespace, name, conflicts[0].message)
        return finish(status(subject, spec, children, conflicts, live_status, now, desired.wiring))
    changed = [o for o in desired.objects if needs_apply(o, children.get(ref_of(o)))]
    replace: dict[ChildRef, str] = {}
    for obj in changed:  # all or nothing: a rejected object must not leave half an update
        try:
            _try_write(api, obj, children.get(ref_of(obj)), subject.uid, replace)
        except ApiError as e:
            if not e.rejected:
                raise
            problem = _rejection(obj, e)
            log.warning("%s/%s: stalled: %s", namespace, name, problem.message)
            return finish(
                status(subject, spec, children, [problem], live_status, now, desired.wiring)
            )
    for obj in changed:
        ref = ref_of(obj)
        if ref in replace:
            children[ref] = api.replace(obj, replace[ref])
        else:
            children[ref] = api.apply(obj)
        outcome.applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
    for ref in desired.orphans:
        live = children.get(ref)
        if live is not None and is_owned_by(live, subject.uid):
            api.delete(ref, namespace, uid=live["metadata"].get("uid"))
            children[ref] = None
            outcome.deleted.append(f"{ref.kind}/{ref.name}")
    pods = {
        workload: list_pods(api, namespace, selector)[0]
        for workload, selector in pods_to_inspect(spec, names, children).items()
    }
    return finish(status(subject, spec, children, [], live_status, now, desired.wiring, pods=pods))
