"""`berth deploy / status / logs / delete`: orchestration of the pure parts and the cluster."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from berth_cli import status as st
from berth_cli.kube import Cluster
from berth_cli.manifests import DeployOptions, diff, render
from berth_cli.project import Project

STATE_STYLE = {"ready": "green", "waiting": "yellow", "failed": "red", "off": "dim"}


@dataclass
class DeployResult:
    name: str
    namespace: str
    image: str
    changed: list[str]
    unchanged: list[str]
    pruned: list[str]
    ready: bool
    endpoint: str | None
    failure: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "image": self.image,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "pruned": self.pruned,
            "ready": self.ready,
            "endpoint": self.endpoint,
            "failure": self.failure,
        }


def apply_project(
    cluster: Cluster,
    project: Project,
    env_values: Mapping[str, str],
    options: DeployOptions,
    console: Console,
) -> DeployResult:
    desired = render(project, env_values, options)
    cluster.ensure_namespace(options.namespace)
    live = cluster.project_objects(options.name, options.namespace)
    changes = diff(desired, live)
    for obj in changes.apply:
        cluster.apply(obj)
        console.print(f"  applied {obj['kind']} {obj['metadata']['name']}")
    for kind, name in changes.prune:
        cluster.delete(kind, name, options.namespace)
        console.print(f"  removed {kind} {name} (no longer in the project)")
    if not changes.apply and not changes.prune:
        console.print(f"  no change: {options.name} is up to date")
    return DeployResult(
        name=options.name,
        namespace=options.namespace,
        image=options.image,
        changed=[f"{o['kind']}/{o['metadata']['name']}" for o in changes.apply],
        unchanged=[f"{k}/{n}" for k, n in changes.unchanged],
        pruned=[f"{k}/{n}" for k, n in changes.prune],
        ready=False,
        endpoint=None,
    )


def wait_ready(
    cluster: Cluster, name: str, namespace: str, timeout: float, console: Console
) -> tuple[dict[str, Any] | None, bool]:
    """Poll the AgentDeployment until Ready on its latest spec, stalled, or timeout;
    prints each phase when its state changes."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    ad: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        ad = cluster.get("AgentDeployment", name, namespace)
        if ad is not None:
            for p in st.phases(ad):
                line = f"{p.state} {p.reason}"
                if seen.get(p.name) != line and (p.state != "waiting" or p.reason):
                    seen[p.name] = line
                    style = STATE_STYLE[p.state]
                    detail = (
                        f" ({p.reason}: {p.message})" if p.state != "ready" and p.reason else ""
                    )
                    console.print(f"  {p.name:<9} [{style}]{p.state}[/]{detail}")
            if st.ready(ad):
                return ad, True
            if st.failure(ad) is not None:
                return ad, False
        time.sleep(1)
    return ad, False


def failure_report(
    cluster: Cluster, ad: Mapping[str, Any] | None, namespace: str, console: Console
) -> dict[str, Any]:
    """The condition's reason and the last lines of the failing Pod's log."""
    reason, message = ("Timeout", "not Ready in time")
    if ad is not None:
        fail = st.failure(ad)
        if fail is not None:
            reason, message = fail
        else:
            cond = st.conditions(ad).get("Ready", {})
            reason = str(cond.get("reason") or reason)
            message = str(cond.get("message") or message)
    console.print(f"[red]failed:[/] {reason}: {message}")
    out: dict[str, Any] = {"reason": reason, "message": message, "pod": None, "log": None}
    if ad is None:
        return out
    name = ad["metadata"]["name"]
    pods = cluster.pods(name, namespace)
    if not any(reason in _waiting_reasons(p) for p in pods):
        # No container waits with the reason: the Pods of the component that is behind.
        component = st.failing_component(ad)
        pods = cluster.pods(name, namespace, component) if component else pods
    failing = failing_pod(pods, reason)
    if failing is not None:
        pod = failing
        log = cluster.log(pod, namespace, tail=20)
        console.print(f"last lines of Pod {pod}:")
        console.print(log.rstrip() or "(empty log)", markup=False, highlight=False)
        out.update(pod=pod, log=log)
    return out


def failing_pod(pods: Sequence[Mapping[str, Any]], reason: str) -> str | None:
    """The Pod to show the log of: one the kubelet reports the condition's reason for
    (ImagePullBackOff, CrashLoopBackOff, ...), else the first not Ready, else any."""
    bad = [p for p in pods if not _pod_ready(p)] or list(pods)
    bad.sort(key=lambda p: reason not in _waiting_reasons(p))
    return str(bad[0]["metadata"]["name"]) if bad else None


def _waiting_reasons(pod: Mapping[str, Any]) -> set[str]:
    status = pod.get("status") or {}
    containers = [
        *(status.get("initContainerStatuses") or []),
        *(status.get("containerStatuses") or []),
    ]
    return {
        str(c["state"]["waiting"].get("reason"))
        for c in containers
        if (c.get("state") or {}).get("waiting")
    }


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def port_forward(
    name: str, namespace: str, context: str | None, port: int, console: Console
) -> int:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        console.print("[red]error:[/] --port-forward needs kubectl on PATH")
        return 2
    argv = [kubectl, "-n", namespace, "port-forward", f"service/{name}", f"{port}:8000"]
    if context:
        argv[1:1] = ["--context", context]
    console.print(f"API on http://127.0.0.1:{port} (Ctrl-C stops the port-forward)")
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.call(argv)
    return 0


@contextlib.contextmanager
def temporary_port_forward(
    name: str, namespace: str, context: str | None, timeout: float = 30.0
) -> Iterator[str]:
    """A `kubectl port-forward` to the deployment's Service on a free local port for the
    duration of a command; yields its URL once the port accepts connections."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("reaching a deployment needs kubectl on PATH (or pass --url)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [kubectl, "-n", namespace, "port-forward", f"service/{name}", f"{port}:8000"]
    if context:
        argv[1:1] = ["--context", context]
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace")
                raise RuntimeError(f"kubectl port-forward to service/{name} failed: {err.strip()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"port-forward to service/{name} not ready after {timeout}s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        if proc.poll() is None:
            proc.kill()


def status_table(ads: list[dict[str, Any]]) -> Table:
    table = Table(title="AgentDeployments")
    for col in ("NAME", "READY", "REASON", "SERVER", "WORKERS", "IMAGE", "ENDPOINT"):
        table.add_column(col)
    for ad in ads:
        s = st.summary(ad)
        table.add_row(
            str(s["name"]),
            "[green]yes[/]" if s["ready"] else "[red]no[/]",
            str(s["reason"] or ""),
            f"{s['server']['ready']}/{s['server']['replicas'] or 0}",
            f"{s['workers']['ready']}/{s['workers']['replicas']}",
            str(s["image"] or ""),
            str(s["endpoint"] or ""),
        )
    return table


def phases_table(ad: Mapping[str, Any]) -> Table:
    table = Table(title=f"{ad['metadata']['name']}: components")
    for col in ("COMPONENT", "STATE", "REASON", "MESSAGE"):
        table.add_column(col)
    for p in st.phases(ad):
        table.add_row(p.name, f"[{STATE_STYLE[p.state]}]{p.state}[/]", p.reason, p.message)
    return table
