"""A real local Kubernetes control plane for tests and demos.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler are the
official binaries built from the pinned Go modules (hack/build-controlplane.sh);
kwok plays the kubelet for a few fake nodes so that scheduled Pods become
Running and Ready. Everything binds to loopback on random free ports and keeps
its state in a temporary directory.

    python -m tests.support.controlplane up     # writes .berth/kubeconfig
    python -m tests.support.controlplane down   # stops what `up` started
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.pki import Pki, make_pki
from tests.support.servers import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / ".berth"
SERVICE_CIDR = "10.96.0.0/16"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"


def log(msg: str) -> None:
    print(f">> {msg}", file=sys.stderr, flush=True)


def binaries_dir() -> Path:
    """Build the control-plane binaries if needed (cached) and return their directory."""
    result = subprocess.run(
        ["bash", str(ROOT / "hack" / "build-controlplane.sh")],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class ControlPlane:
    """Handles to a running control plane; serialisable so `down` can find the pids."""

    workdir: Path
    kubeconfig: Path
    server: str
    pids: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The environment for a subprocess that should talk to this control plane."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_binary(), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            input=input,
            check=check,
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        data["kubeconfig"] = str(self.kubeconfig)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ControlPlane:
        data = json.loads(text)
        return cls(
            workdir=Path(data["workdir"]),
            kubeconfig=Path(data["kubeconfig"]),
            server=data["server"],
            pids={k: int(v) for k, v in data["pids"].items()},
        )


def kubectl_binary() -> str:
    venv_kubectl = ROOT / ".venv" / "bin" / "kubectl"
    if venv_kubectl.exists():
        return str(venv_kubectl)
    found = shutil.which("kubectl")
    if found is None:
        raise RuntimeError("kubectl not found: run `make install`")
    return found


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, server: str, pki: Pki) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "berth-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(pki.ca_cert)},
            }
        ],
        "users": [
            {
                "name": "berth-admin",
                "user": {
                    "client-certificate-data": _b64(pki.admin_cert),
                    "client-key-data": _b64(pki.admin_key),
                },
            }
        ],
        "contexts": [
            {"name": "berth-local", "context": {"cluster": "berth-local", "user": "berth-admin"}}
        ],
        "current-context": "berth-local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _spawn(name: str, argv: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    logfile = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        argv,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # survives the `up` command; `down` stops it by pid
    )


def _wait_http_ok(url: str, pki: Pki, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    tls = ssl.create_default_context(cafile=str(pki.ca_cert))
    tls.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    with httpx.Client(verify=tls, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"process for {url} exited with {proc.returncode}")
            try:
                r = client.get(url)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:300]}"
            except httpx.HTTPError as e:
                last = str(e)
            time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}


def fake_node(name: str, tainted: bool = False) -> dict[str, Any]:
    """A Node object that kwok manages (annotation-selected) and the scheduler can use."""
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "status": {
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "1000"},
        },
    }
    if tainted:
        node["spec"] = {"taints": [FAKE_NODE_TAINT]}
    return node


@dataclass(frozen=True)
class NodeAccess:
    """How a real node reaches this control plane (the e2e tier); None: loopback only.

    The API server then listens on every address, advertises `advertise_address`
    as the endpoint of the `kubernetes` Service (so Pods reach it at 10.96.0.1),
    and calls kubelets by their InternalIP with the admin client certificate.
    """

    advertise_address: str
    api_port: int = 6443


FAKE_NODE_TAINT = {"key": FAKE_NODE_ANNOTATION, "value": "fake", "effect": "NoSchedule"}


def start(
    workdir: Path | None = None, nodes: int = 2, node_access: NodeAccess | None = None
) -> ControlPlane:
    """Start etcd, the three control-plane components and kwok; return when usable.

    With node_access the kwok nodes are tainted, so only Pods that tolerate the
    taint land on them and everything else goes to the real node.
    """
    t0 = time.monotonic()
    bins = binaries_dir()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="berth-cp-"))
    workdir.mkdir(parents=True, exist_ok=True)
    extra_names = (node_access.advertise_address,) if node_access else ()
    pki = make_pki(workdir / "pki", extra_server_names=extra_names)
    procs: dict[str, subprocess.Popen[bytes]] = {}

    try:
        etcd_port, etcd_peer = free_port(), free_port()
        log(f"starting etcd on 127.0.0.1:{etcd_port}")
        procs["etcd"] = _spawn(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=berth",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
                f"--initial-cluster=berth=http://127.0.0.1:{etcd_peer}",
                "--listen-metrics-urls=",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
            workdir,
        )
        wait_for_port(etcd_port, 30, procs["etcd"])

        api_port = node_access.api_port if node_access else free_port()
        server = f"https://127.0.0.1:{api_port}"
        if node_access:
            access_args = [
                "--bind-address=0.0.0.0",
                f"--advertise-address={node_access.advertise_address}",
                "--endpoint-reconciler-type=lease",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--kubelet-client-certificate={pki.admin_cert}",
                f"--kubelet-client-key={pki.admin_key}",
            ]
        else:
            access_args = [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--endpoint-reconciler-type=none",
            ]
        log(f"starting kube-apiserver on {server}")
        procs["kube-apiserver"] = _spawn(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                *access_args,
                f"--secure-port={api_port}",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=0",
            ],
            workdir,
        )
        _wait_http_ok(f"{server}/readyz", pki, 90, procs["kube-apiserver"])
        kubeconfig = workdir / "kubeconfig"
        write_kubeconfig(kubeconfig, server, pki)

        log("starting kube-controller-manager and kube-scheduler")
        procs["kube-controller-manager"] = _spawn(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                "--secure-port=0",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca_cert}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=false",
                "--controllers=*,-nodeipam",
                # Dynamic PVs for bundled databases: the in-tree host-path provisioner,
                # meant for exactly this kind of single-machine test cluster.
                "--enable-hostpath-provisioner",
                "--pvclaimbinder-sync-period=2s",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-statefulset-syncs=10",
                "--concurrent-gc-syncs=20",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=0",
            ],
            workdir,
        )
        procs["kube-scheduler"] = _spawn(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--secure-port=0",
                "--leader-elect=false",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--v=0",
            ],
            workdir,
        )

        log(f"starting kwok with {nodes} fake node(s)")
        procs["kwok"] = _spawn(
            "kwok",
            [
                str(bins / "kwok"),
                f"--kubeconfig={kubeconfig}",
                f"--config={bins / 'kwok-stages.yaml'}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                "--cidr=10.244.0.0/16",
                "--node-ip=127.0.0.1",
                f"--server-address=127.0.0.1:{free_port()}",
                "--node-lease-duration-seconds=40",
            ],
            workdir,
        )

        cp = ControlPlane(
            workdir=workdir,
            kubeconfig=kubeconfig,
            server=server,
            pids={name: p.pid for name, p in procs.items()},
        )
        nodes_yaml = "\n---\n".join(
            yaml.safe_dump(fake_node(f"kwok-node-{i}", tainted=node_access is not None))
            for i in range(nodes)
        )
        cp.kubectl("apply", "-f", "-", input=nodes_yaml + "\n---\n" + yaml.safe_dump(STORAGE_CLASS))
        cp.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
        # Pods need the namespace's default ServiceAccount, made by the controller manager.
        _wait_for(
            lambda: cp.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
            60,
            "default ServiceAccount",
        )
        log(f"control plane ready in {time.monotonic() - t0:.1f}s (workdir {workdir})")
        return cp
    except BaseException:
        for p in procs.values():
            _terminate(p.pid)
        sys.stderr.write(tail_logs(workdir))
        raise


def _wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def tail_logs(workdir: Path, lines: int = 20) -> str:
    out = []
    for logfile in sorted(workdir.glob("*.log")):
        tail = logfile.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"--- {logfile.name}\n" + "\n".join(tail))
    return "\n".join(out) + "\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _terminate(pid: int, grace: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def stop(cp: ControlPlane, remove: bool = True) -> None:
    """Stop the processes in reverse start order, then delete the state directory."""
    for name in reversed(list(cp.pids)):
        _terminate(cp.pids[name])
    if remove:
        shutil.rmtree(cp.workdir, ignore_errors=True)


def _cli(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "down"}:
        print("usage: python -m tests.support.controlplane up|down", file=sys.stderr)
        return 2
    state = STATE_DIR / "controlplane.json"
    kubeconfig = STATE_DIR / "kubeconfig"
    if argv[0] == "up":
        if state.exists():
            cp = ControlPlane.from_json(state.read_text())
            if all(_alive(pid) for pid in cp.pids.values()):
                log("control plane already running")
                print(f"export KUBECONFIG={kubeconfig}")
                return 0
            stop(cp)
        STATE_DIR.mkdir(exist_ok=True)
        cp = start()
        shutil.copy(cp.kubeconfig, kubeconfig)
        kubeconfig.chmod(0o600)
        cp.kubeconfig = kubeconfig
        state.write_text(cp.to_json())
        print(f"export KUBECONFIG={kubeconfig}")
        return 0
    if not state.exists():
        log("no control plane is running (nothing in .berth/controlplane.json)")
        return 0
    cp = ControlPlane.from_json(state.read_text())
    log(f"stopping {', '.join(f'{n} (pid {p})' for n, p in cp.pids.items())}")
    stop(cp)
    state.unlink()
    kubeconfig.unlink(missing_ok=True)
    log("control plane stopped")
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
