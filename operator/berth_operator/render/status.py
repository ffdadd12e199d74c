"""Conditions and status of an AgentDeployment, computed from its observed children.

Conventions (kstatus, ``kubectl wait``, Argo CD, Flux): ``Ready`` is the positive
summary; ``Reconciling`` and ``Stalled`` are abnormal-true; component conditions
say which part is not there yet. Every condition carries ``observedGeneration``
and keeps its ``lastTransitionTime`` while its status does not change.

A workload that has not rolled out is also judged by its Pods (listed by the effect
layer only for such workloads, see ``pods_to_inspect``): a container stuck on a wrong
image or a missing Secret stalls its component with the kubelet's reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from berth_operator.api.agentdeployment import AgentDeploymentSpec
from berth_operator.render.meta import INSTANCE_LABEL, Subject
from berth_operator.render.names import DEPLOYMENT, PVC, STATEFULSET, ChildNames, ChildRef
from berth_operator.render.pod_health import label_selector, stuck_container
from berth_operator.render.runtime import Wiring

ORDER = (
    "Ready",
    "Reconciling",
    "Stalled",
    "DatabaseReady",
    "RedisReady",
    "ServerReady",
    "WorkersReady",
)
COMPONENTS = ORDER[3:]


@dataclass(frozen=True)
class Verdict:
    """One condition's outcome before it is stamped with times and generations."""

    status: bool | None
    reason: str
    message: str
    stalled: bool = False


def _rollout(live: Mapping[str, Any] | None, what: str) -> Verdict:
    """Progress of a Deployment or StatefulSet towards its current spec."""
    if live is None:
        return Verdict(False, "NotCreated", f"{what} does not exist yet")
    gen = live.get("metadata", {}).get("generation", 0)
    st = live.get("status") or {}
    for c in st.get("conditions") or ():
        if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded":
            return Verdict(
                False, "ProgressDeadlineExceeded", f"{what}: {c.get('message', '')}", True
            )
    want = (live.get("spec") or {}).get("replicas", 1)
    if st.get("observedGeneration", 0) < gen:
        return Verdict(False, "RolloutInProgress", f"{what}: waiting for generation {gen}")
    updated = st.get("updatedReplicas", 0)
    total = st.get("replicas", 0)
    ready = st.get("readyReplicas", 0)
    if want == 0:
        return Verdict(True, "ScaledToZero", f"{what} has 0 replicas")
    if updated < want:
        return Verdict(False, "RolloutInProgress", f"{what}: {updated}/{want} Pods updated")
    if total > updated:
        return Verdict(False, "RolloutInProgress", f"{what}: {total - updated} old Pods remain")
    if ready < want:
        return Verdict(False, "PodsNotReady", f"{what}: {ready}/{want} Pods ready")
    return Verdict(True, "Available", f"{what}: {ready}/{want} Pods ready")


Pods = Mapping[str, Sequence[Mapping[str, Any]]]
"""Workload name -> its Pods, for the workloads ``pods_to_inspect`` named."""


def _workload(
    live: Mapping[str, Any] | None, what: str, pods: Sequence[Mapping[str, Any]] | None
) -> Verdict:
    """``_rollout``, unless one of the workload's Pods cannot start: then Stalled."""
    verdict = _rollout(live, what)
    if verdict.status is True or live is None or not pods:
        return verdict
    stuck = stuck_container(pods, (live.get("spec") or {}).get("template"))
    if stuck is None:
        return verdict
    return Verdict(False, stuck.reason, stuck.message(what), True)


def workloads(spec: AgentDeploymentSpec, names: ChildNames) -> dict[str, ChildRef]:
    """Component condition -> the Deployment or StatefulSet it reports on."""
    out: dict[str, ChildRef] = {}
    if spec.postgres.bundled is not None:
        out["DatabaseReady"] = ChildRef(*STATEFULSET, names.postgres)
    if spec.redis.bundled is not None:
        out["RedisReady"] = ChildRef(*DEPLOYMENT, names.redis)
    out["ServerReady"] = ChildRef(*DEPLOYMENT, names.server)
    if spec.workers.enabled:
        out["WorkersReady"] = ChildRef(*DEPLOYMENT, names.worker)
    return out


def pods_to_inspect(
    spec: AgentDeploymentSpec,
    names: ChildNames,
    children: Mapping[ChildRef, Mapping[str, Any] | None],
) -> dict[str, str]:
    """Workload name -> label selector of each workload not rolled out yet.

    Only these need their Pods listed: a pass over a settled AgentDeployment lists none.
    """
    verdicts = component_verdicts(spec, names, children)
    out: dict[str, str] = {}
    for condition, ref in workloads(spec, names).items():
        live = children.get(ref)
        if live is None or verdicts[condition].status is True:
            continue
        selector = label_selector(live)
        if selector is not None:
            out[ref.name] = selector
    return out


def _problem_verdicts(problems: Sequence[Any]) -> dict[str, Verdict]:
    out: dict[str, Verdict] = {}
    for p in problems:
        out.setdefault(p.condition, Verdict(False, p.reason, p.message, True))
    return out


def component_verdicts(
    spec: AgentDeploymentSpec,
    names: ChildNames,
    children: Mapping[ChildRef, Mapping[str, Any] | None],
    problems: Sequence[Any] = (),
    pods: Pods | None = None,
) -> dict[str, Verdict]:
    """DatabaseReady, RedisReady, ServerReady and WorkersReady."""

    def get(kind: tuple[str, str], name: str) -> Mapping[str, Any] | None:
        return children.get(ChildRef(*kind, name))

    def pods_of(name: str) -> Sequence[Mapping[str, Any]] | None:
        return (pods or {}).get(name)

    verdicts = _problem_verdicts(problems)
    if "DatabaseReady" not in verdicts:
        if spec.postgres.external is not None:
            ext = spec.postgres.external
            verdicts["DatabaseReady"] = Verdict(
                True,
                "ExternalSecretFound",
                f"DATABASE_URI from Secret {ext.secret_name!r} key {ext.key!r} (not probed)",
            )
        else:
            pvc = get(PVC, names.postgres_pvc)
            phase = ((pvc or {}).get("status") or {}).get("phase")
            if pvc is not None and phase != "Bound":
                verdicts["DatabaseReady"] = Verdict(
                    False,
                    "VolumePending",
                    f"PersistentVolumeClaim {names.postgres_pvc!r} is {phase or 'Pending'}",
                )
            else:
                verdicts["DatabaseReady"] = _workload(
                    get(STATEFULSET, names.postgres),
                    f"StatefulSet {names.postgres}",
                    pods_of(names.postgres),
                )
    if "RedisReady" not in verdicts:
        if spec.redis.external is not None:
            ext = spec.redis.external
            verdicts["RedisReady"] = Verdict(
                True,
                "ExternalSecretFound",
                f"REDIS_URI from Secret {ext.secret_name!r} key {ext.key!r} (not probed)",
            )
        else:
            verdicts["RedisReady"] = _workload(
                get(DEPLOYMENT, names.redis), f"Deployment {names.redis}", pods_of(names.redis)
            )
    if "ServerReady" not in verdicts:
        verdicts["ServerReady"] = _workload(
            get(DEPLOYMENT, names.server), f"Deployment {names.server}", pods_of(names.server)
        )
    if "WorkersReady" not in verdicts:
        if spec.workers.enabled:
            verdicts["WorkersReady"] = _workload(
                get(DEPLOYMENT, names.worker), f"Deployment {names.worker}", pods_of(names.worker)
            )
        else:
            verdicts["WorkersReady"] = Verdict(True, "Combined", "the server Pods run jobs")
    return verdicts


def summary_verdicts(components: Mapping[str, Verdict]) -> dict[str, Verdict]:
    """Ready, Reconciling and Stalled from the component verdicts."""
    stalled = [(t, v) for t in COMPONENTS if (v := components.get(t)) is not None and v.stalled]
    if stalled:
        _, first = stalled[0]
        msg = "; ".join(v.message for _, v in stalled)
        return {
            "Ready": Verdict(False, first.reason, msg),
            "Reconciling": Verdict(False, "Stalled", "no progress possible until fixed"),
            "Stalled": Verdict(True, first.reason, msg),
        }
    waiting = [(t, v) for t in COMPONENTS if (v := components.get(t)) and v.status is not True]
    if waiting:
        _, first = waiting[0]
        msg = "; ".join(f"{t}: {v.message}" for t, v in waiting)
        return {
            "Ready": Verdict(False, first.reason, msg),
            "Reconciling": Verdict(True, "Progressing", msg),
            "Stalled": Verdict(False, "NotStalled", "making progress"),
        }
    return {
        "Ready": Verdict(True, "Available", "all components are ready"),
        "Reconciling": Verdict(False, "ReconciliationSucceeded", "children match the spec"),
        "Stalled": Verdict(False, "NotStalled", "no problem found"),
    }


def invalid_spec_verdicts(message: str) -> dict[str, Verdict]:
    """Everything Unknown except the summary: the spec itself cannot be used."""
    out = {t: Verdict(None, "InvalidSpec", "the spec is invalid") for t in COMPONENTS}
    out["Ready"] = Verdict(False, "InvalidSpec", message)
    out["Reconciling"] = Verdict(False, "Stalled", "no progress possible until fixed")
    out["Stalled"] = Verdict(True, "InvalidSpec", message)
    return out


def conditions(
    verdicts: Mapping[str, Verdict],
    generation: int,
    previous: Sequence[Mapping[str, Any]] | None,
    now: str,
    order: Sequence[str] = ORDER,
) -> list[dict[str, Any]]:
    """metav1.Conditions in a fixed order, keeping transition times of unchanged statuses."""
    before = {c.get("type"): c for c in previous or ()}
    out = []
    for t in order:
        v = verdicts[t]
        status = "Unknown" if v.status is None else ("True" if v.status else "False")
        old = before.get(t)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now
        out.append(
            {
                "type": t,
                "status": status,
                "reason": v.reason,
                "message": v.message[:32000],
                "observedGeneration": generation,
                "lastTransitionTime": since,
            }
        )
    return out


def endpoint(subject: Subject, spec: AgentDeploymentSpec) -> str:
    names = ChildNames(subject.name)
    host = f"{names.service}.{subject.namespace}.svc.cluster.local"
    return f"http://{host}:{spec.service.port}"


def server_selector(subject: Subject) -> str:
    return f"{INSTANCE_LABEL}={subject.name},app.kubernetes.io/component=server"


def status(
    subject: Subject,
    spec: AgentDeploymentSpec | None,
    children: Mapping[ChildRef, Mapping[str, Any] | None],
    problems: Sequence[Any],
    previous: Mapping[str, Any] | None,
    now: str,
    wiring: Wiring | None = None,
    invalid: str | None = None,
    pods: Pods | None = None,
) -> dict[str, Any]:
    """The full ``.status`` (without ``kopf``) for one observation."""
    prev_conditions = (previous or {}).get("conditions")
    if spec is None or invalid is not None:
        verdicts = invalid_spec_verdicts(invalid or "the spec is invalid")
        out: dict[str, Any] = {
            "observedGeneration": subject.generation,
            "conditions": conditions(verdicts, subject.generation, prev_conditions, now),
        }
        return out
    names = ChildNames(subject.name)
    comps = component_verdicts(spec, names, children, problems, pods)
    verdicts = {**comps, **summary_verdicts(comps)}
    server = children.get(ChildRef(*DEPLOYMENT, names.server)) or {}
    sst = server.get("status") or {}
    out = {
        "observedGeneration": subject.generation,
        "conditions": conditions(verdicts, subject.generation, prev_conditions, now),
        "endpoint": endpoint(subject, spec),
        "replicas": sst.get("replicas", 0),
        "readyReplicas": sst.get("readyReplicas", 0),
        "selector": server_selector(subject),
    }
    if spec.workers.enabled:
        wst = (children.get(ChildRef(*DEPLOYMENT, names.worker)) or {}).get("status") or {}
        out["workers"] = {
            "replicas": wst.get("replicas", 0),
            "readyReplicas": wst.get("readyReplicas", 0),
        }
    if wiring is not None:
        out["database"] = {"secretName": wiring.database.name, "key": wiring.database.key}
        out["redis"] = {"secretName": wiring.redis.name, "key": wiring.redis.key}
    return out


def status_patch(new: Mapping[str, Any], live: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A JSON merge patch turning the live status into ``new``; None when they already match.

    ``kopf`` (framework state) is left alone.
    """
    old = {k: v for k, v in (live or {}).items() if k != "kopf"}
    if old == dict(new):
        return None
    patch: dict[str, Any] = dict(new)
    for k in old:
        if k not in new:
            patch[k] = None
    return patch
