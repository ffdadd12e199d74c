"""A real Kubernetes node on this machine, beside the control plane's kwok nodes.

kubelet and kube-proxy (the control plane's release), containerd with its runc
shim (all built from Go modules by hack/build-node.sh), Debian's runc and CNI
plugins, CoreDNS, and kube-router's firewall controller as the NetworkPolicy engine
(hack/build-kube-router.sh, Debian's ipset). The host stays untouched: the node lives in a network
namespace of its own (bridge CNI, kube-proxy's iptables rules, all inside it),
joined to the host by one veth pair, and in a private mount namespace held open
by one process, so every mount it makes (container root filesystems, volumes,
a fresh sysfs, the sysctl files the kubelet insists on writing) vanishes with it.
Every process it starts lives under one cgroup, `berth-node`, in each hierarchy;
teardown kills that cgroup's processes, deletes the namespace and the state.

Facts behind the settings: ../shared/reference/real_node.md.

    python -m tests.support.node up      # control plane + real node; .berth/e2e/kubeconfig
    python -m tests.support.node down    # stop it all, leave nothing behind
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.support import controlplane
from tests.support.controlplane import ControlPlane, NodeAccess

ROOT = Path(__file__).resolve().parents[2]
E2E_DIR = ROOT / ".berth" / "e2e"
# Short and fixed: unix socket paths under it must stay below 108 bytes, and one
# machine runs one node (the namespace name is fixed too).
STATE = Path("/tmp/berth-node")

NETNS = "berth-node"
NODE_NAME = "berth-node"
HOST_IF, NODE_IF = "berth-h0", "berth-n0"
HOST_IP, NODE_IP = "10.250.0.1", "10.250.0.2"
LINK_PREFIX = 24
POD_CIDR = "10.245.0.0/24"
CLUSTER_DNS = "10.96.0.10"
API_PORT = 6443
REGISTRY_PORT = 5000
REGISTRY = f"{HOST_IP}:{REGISTRY_PORT}"
CGROUP = "berth-node"
CGROUP_ROOT = Path("/sys/fs/cgroup")
NODE_LABEL = "berth.dev/node"

# Values the kubelet checks or sets at start; files bound over them inside the
# node's mount namespace take its writes, so the host's settings never change.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


def log(msg: str) -> None:
    print(f">> node: {msg}", file=sys.stderr, flush=True)


def run(*argv: str, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[-2000:]}"
        )
    return result.stdout


def _built(script: str) -> Path:
    """Run a hack/ build script (cached); its last line of output is the path it built."""
    out = subprocess.run(
        ["bash", str(ROOT / "hack" / script)], stdout=subprocess.PIPE, text=True, check=True
    )
    return Path(out.stdout.strip().splitlines()[-1])


def node_binaries() -> Path:
    """Build kubelet, kube-proxy, containerd and CoreDNS if needed; return their folder."""
    subprocess.run(["bash", str(ROOT / "hack" / "ensure-node-debs.sh")], check=True)
    return _built("build-node.sh")


def kube_router_binary() -> Path:
    """kube-router, the node's NetworkPolicy engine (its own cache; see the script)."""
    return _built("build-kube-router.sh")


def start_network_policy_engine(node: Node, kubeconfig: Path) -> None:
    """kube-router's firewall controller alone (no routing, no service proxy, no CNI: the
    bridge plugin and kube-proxy do those) enforces NetworkPolicies on this node's Pods with
    iptables and ipset, in the node's network namespace."""
    spawn(node, "kube-router", [
        str(kube_router_binary()),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={NODE_NAME}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        "--metrics-port=0",
        "--v=1",
    ])  # fmt: skip
    wait_for(
        lambda: "KUBE-ROUTER-FORWARD" in node.exec("iptables", "-S", check=False),
        60, "kube-router's NetworkPolicy chains", node,
    )  # fmt: skip


@dataclass
class Node:
    """Handles to a running node; serialisable so `down` finds what `up` started."""

    cp: ControlPlane
    state: Path
    holder_pid: int
    pids: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        data = asdict(self)
        data["cp"] = json.loads(self.cp.to_json())
        data["state"] = str(self.state)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Node:
        data = json.loads(text)
        return cls(
            cp=ControlPlane.from_json(json.dumps(data["cp"])),
            state=Path(data["state"]),
            holder_pid=int(data["holder_pid"]),
            pids={k: int(v) for k, v in data["pids"].items()},
        )

    def exec(self, *argv: str, check: bool = True) -> str:
        """Run a command inside the node's network and mount namespaces."""
        return run(*enter(self.holder_pid), *argv, check=check)

    def ctr(self, *args: str, check: bool = True) -> str:
        bins = self.state / "bin"
        return self.exec(
            str(bins / "ctr"),
            "--address",
            "/run/containerd/containerd.sock",
            "-n",
            "k8s.io",
            *args,
            check=check,
        )


def enter(holder_pid: int) -> list[str]:
    return ["nsenter", f"--target={holder_pid}", "--mount", "--net", "--"]


# --- cgroups ------------------------------------------------------------------------------


def hierarchies() -> list[Path]:
    """Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers, named, unified)."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _dev, mountpoint, fstype, *_ = line.split()
        if fstype in {"cgroup", "cgroup2"} and mountpoint.startswith(str(CGROUP_ROOT) + "/"):
            found.append(Path(mountpoint))
    return found


def make_cgroups() -> None:
    """berth-node (the kubelet's cgroupRoot) and berth-node/system (the node's daemons)."""
    for h in hierarchies():
        for sub in (CGROUP, f"{CGROUP}/system"):
            d = h / sub
            d.mkdir(exist_ok=True)
            if h.name == "cpuset":  # a new cpuset cgroup starts empty: no CPU to run on
                for f in ("cpuset.cpus", "cpuset.mems"):
                    (d / f).write_text((d.parent / f).read_text())


def join_cgroup(pid: int) -> None:
    for h in hierarchies():
        procs = h / CGROUP / "system" / "cgroup.procs"
        if procs.exists():
            procs.write_text(str(pid))


def _cgroup_dirs(h: Path) -> Iterator[Path]:
    """The node's cgroups in one hierarchy, deepest first (the order rmdir needs)."""
    top = h / CGROUP
    if not top.is_dir():
        return iter(())
    return iter(
        [*sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)), top]
    )


def kill_cgroups(timeout: float = 30) -> int:
    """SIGKILL every process under berth-node, then remove its cgroups; return pids killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    while True:
        pids = set()
        for h in hierarchies():
            for d in _cgroup_dirs(h):
                procs = d / "cgroup.procs"
                if procs.exists():
                    pids |= {int(p) for p in procs.read_text().split()}
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of cgroup {CGROUP} would not die: {sorted(pids)}")
        time.sleep(0.2)
    for h in hierarchies():
        for d in _cgroup_dirs(h):
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # a dying process still counted: try again shortly
                    time.sleep(0.1)
    return len(killed)


# --- network and mount namespaces ----------------------------------------------------------


def make_netns() -> None:
    """The node's network namespace, joined to the host by one veth pair."""
    run("ip", "netns", "add", NETNS)
    run("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NODE_IF, "netns", NETNS)
    run("ip", "addr", "add", f"{HOST_IP}/{LINK_PREFIX}", "dev", HOST_IF)
    run("ip", "link", "set", HOST_IF, "up")
    ns = ["ip", "netns", "exec", NETNS]
    run(*ns, "ip", "link", "set", "lo", "up")
    run(*ns, "ip", "addr", "add", f"{NODE_IP}/{LINK_PREFIX}", "dev", NODE_IF)
    run(*ns, "ip", "link", "set", NODE_IF, "up")
    # kube-proxy's ClusterIP rules only see traffic that has a route.
    run(*ns, "ip", "route", "add", "default", "via", HOST_IP)
    for key, value in {
        "net.ipv4.ip_forward": "1",
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.ipv4.conf.all.route_localnet": "1",
    }.items():
        run(*ns, "sysctl", "-qw", f"{key}={value}")
    # Nothing from the node or its Pods leaves for anywhere but the host's end of the
    # link (the API server, the registry); mangle runs after kube-proxy's DNAT and is a
    # table kube-proxy never touches. Replies to the host come from the node's address.
    run(*ns, "iptables", "-t", "mangle", "-A", "POSTROUTING", "-o", NODE_IF, "!", "-d", HOST_IP,
        "-j", "DROP")  # fmt: skip
    run(*ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", NODE_IF, "-j", "MASQUERADE")


HOLDER_SCRIPT = r"""
set -eu
state="$1"
# A fresh /run (containerd's sockets, pod network namespaces) and /var/log (the
# kubelet's hard-coded /var/log/containers); both vanish with this namespace.
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /var/log
# A sysfs of this network namespace, with the cgroup hierarchies carried over.
mkdir -p /run/berth-cgroup
mount --rbind /sys/fs/cgroup /run/berth-cgroup
mount -t sysfs sysfs /sys
mount --move /run/berth-cgroup /sys/fs/cgroup
for f in "$state"/sysctl/*; do
  mount --bind "$f" "/proc/sys/$(basename "$f" | tr . /)"
done
# Shared inside this namespace (the kubelet wants propagation for its volumes),
# private from the host (the namespace was made private first).
mount --make-rshared /
echo ready
exec sleep infinity
"""


def start_holder(state: Path) -> int:
    sysctl_dir = state / "sysctl"
    sysctl_dir.mkdir(parents=True, exist_ok=True)
    for key, value in KUBELET_SYSCTLS.items():
        (sysctl_dir / key.replace("/", ".")).write_text(value + "\n")
    proc = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{NETNS}", "--", "unshare", "--mount",
         "--propagation", "private", "--", "sh", "-c", HOLDER_SCRIPT, "holder", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    join_cgroup(proc.pid)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"node mount namespace setup failed: {line} {err}")
    # unshare execs sh, which execs sleep: the pid is the namespace holder.
    return proc.pid


# --- configuration ---------------------------------------------------------------------------


def write_kubeconfig(cp: ControlPlane, path: Path) -> None:
    """The admin kubeconfig, pointed at the host's end of the link the node sees."""
    config = yaml.safe_load(cp.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://{HOST_IP}:{API_PORT}"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def containerd_config(state: Path, bins: Path, sandbox_image: str) -> str:
    return f"""version = 3
root = "{state}/containerd"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here to lower oom_score_adj: without this every sandbox fails.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "{state}/cni/net.d"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{sandbox_image}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{state}/certs.d"
[plugins.'io.containerd.grpc.v1.cri']
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def cni_config(state: Path) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": "berth",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(state / "cni" / "ipam"),
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(state: Path, pki_dir: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # This kernel mounts cgroup v1 (hybrid); 1.35+ refuses it unless told not to.
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{CGROUP}",
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "protectKernelDefaults": False,
        "containerRuntimeEndpoint": "unix:///run/containerd/containerd.sock",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(pki_dir / "ca.crt")},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": "cluster.local",
        "resolvConf": str(state / "resolv.conf"),
        "podLogsDir": str(state / "pod-logs"),
        "serializeImagePulls": False,
        "maxPods": 110,
        "podPidsLimit": -1,
        # A test machine's disk is shared with everything else: never evict for it.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": False,
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "clusterCIDR": POD_CIDR,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # Leave the kernel's global conntrack limits alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
        "iptables": {"syncPeriod": "10s", "minSyncPeriod": "0s"},
    }


def registry_hosts(state: Path, registry: str) -> None:
    """containerd pulls from the local test registry over plain HTTP."""
    d = state / "certs.d" / registry
    d.mkdir(parents=True, exist_ok=True)
    (d / "hosts.toml").write_text(
        f'server = "http://{registry}"\n\n[host."http://{registry}"]\n'
        '  capabilities = ["pull", "resolve"]\n  skip_verify = true\n'
    )


# --- processes ---------------------------------------------------------------------------------


def spawn(node: Node, name: str, argv: list[str]) -> int:
    env = {**os.environ, "PATH": f"{node.state / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin"}
    logfile = open(node.state / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
    proc = subprocess.Popen(
        [*enter(node.holder_pid), *argv],
        stdout=logfile,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    join_cgroup(proc.pid)
    node.pids[name] = proc.pid
    return proc.pid


def wait_for(pred: Any, timeout: float, what: str, node: Node | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.25)
    tail = controlplane.tail_logs(node.state) if node else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def preflight() -> None:
    """Fail with the reason when this machine cannot run a node (never skip silently)."""
    if os.geteuid() != 0:
        raise RuntimeError("the real node needs root (network and mount namespaces, cgroups)")
    if not hierarchies():
        raise RuntimeError("no cgroup hierarchy is mounted under /sys/fs/cgroup")
    for tool in ("ip", "iptables", "nsenter", "unshare", "runc"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise RuntimeError(f"{tool} not found: hack/ensure-node-debs.sh installs it")
    if not Path("/usr/lib/cni/bridge").exists():
        raise RuntimeError("CNI plugins missing: Debian's containernetworking-plugins")
    if "overlay" not in Path("/proc/filesystems").read_text():
        raise RuntimeError("the kernel has no overlay filesystem (containerd's snapshotter)")


def start_node(cp: ControlPlane, pause: tuple[str, Path], registry: str = REGISTRY) -> Node:
    """Start containerd, kubelet and kube-proxy in the node's namespaces; wait for Ready.

    pause: (ref, archive) of the Pod sandbox image, imported before the kubelet starts.
    """
    sandbox_image, pause_archive = pause
    t0 = time.monotonic()
    bins = node_binaries()
    preflight()
    teardown_leftovers()
    state = STATE
    state.mkdir(parents=True)
    (state / "bin").symlink_to(bins)
    (state / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    for d in ("cni/net.d", "pod-logs", "kubelet"):
        (state / d).mkdir(parents=True, exist_ok=True)
    (state / "cni" / "net.d" / "10-berth.conflist").write_text(json.dumps(cni_config(state)))
    registry_hosts(state, registry)
    pki_dir = cp.workdir / "pki"
    kubeconfig = state / "kubeconfig"
    write_kubeconfig(cp, kubeconfig)
    (state / "containerd.toml").write_text(containerd_config(state, bins, sandbox_image))
    (state / "kubelet.yaml").write_text(yaml.safe_dump(kubelet_config(state, pki_dir)))
    (state / "kube-proxy.yaml").write_text(yaml.safe_dump(kube_proxy_config(kubeconfig)))

    log("making cgroups, the network namespace and the mount namespace")
    make_cgroups()
    make_netns()
    node = Node(cp=cp, state=state, holder_pid=start_holder(state))
    try:
        log("starting containerd")
        spawn(
            node,
            "containerd",
            [str(bins / "containerd"), "--config", str(state / "containerd.toml")],
        )
        wait_for(
            lambda: node.exec(str(bins / "ctr"), "--address", "/run/containerd/containerd.sock",
                              "version", check=False).count("Version:") >= 2,
            30, "containerd", node,
        )  # fmt: skip
        node.ctr("images", "import", str(pause_archive))
        log("starting kubelet and kube-proxy")
        spawn(node, "kubelet", [
            str(bins / "kubelet"),
            f"--config={state / 'kubelet.yaml'}",
            f"--kubeconfig={kubeconfig}",
            f"--root-dir={state / 'kubelet'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            f"--node-labels={NODE_LABEL}=real",
            "--v=1",
        ])  # fmt: skip
        spawn(
            node, "kube-proxy", [str(bins / "kube-proxy"), f"--config={state / 'kube-proxy.yaml'}"]
        )
        wait_for(lambda: node_ready(cp), 90, f"node {NODE_NAME} Ready", node)
        log(f"node {NODE_NAME} Ready in {time.monotonic() - t0:.1f}s; starting kube-router")
        start_network_policy_engine(node, kubeconfig)
        log("NetworkPolicies enforced (kube-router); starting CoreDNS")
        start_coredns(node)
        volumes = "\n---\n".join(yaml.safe_dump(v) for v in local_volumes(state))
        cp.kubectl("apply", "-f", "-", input=volumes)
        log(f"CoreDNS Ready; node up in {time.monotonic() - t0:.1f}s")
        return node
    except BaseException:
        sys.stderr.write(controlplane.tail_logs(state))
        stop_node(node)
        raise


def coredns_image(bins: Path) -> tuple[str, Path]:
    """CoreDNS as an image from scratch (the static binary only); cached by its hash."""
    digest = run("sha256sum", str(bins / "coredns")).split()[0][:12]
    ref = f"localhost/berth-coredns:{digest}"
    archive = bins.parent / f"berth-coredns-{digest}.tar"
    if archive.exists():
        return ref, archive
    log("building the CoreDNS image")
    ctr = run("buildah", "from", "scratch").strip()
    try:
        run("buildah", "copy", "--chmod", "0755", ctr, str(bins / "coredns"), "/coredns")
        run("buildah", "config", "--entrypoint", '["/coredns"]', "--user", "65532:65532",
            "--port", "53/udp", "--port", "53/tcp", ctr)  # fmt: skip
        run("buildah", "commit", "-q", ctr, ref)
    finally:
        run("buildah", "rm", ctr, check=False)
    tmp = archive.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    run("buildah", "push", "-q", ref, f"docker-archive:{tmp}:{ref}")
    tmp.rename(archive)
    return ref, archive


COREFILE = """.:53 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    loadbalance
}
"""


def coredns_manifests(image: str) -> list[dict[str, Any]]:
    """Cluster DNS at 10.96.0.10; answers for cluster.local only (no upstream reachable)."""
    ns = "kube-system"
    labels = {"k8s-app": "kube-dns"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": ns},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": ns},
            "data": {"Corefile": COREFILE},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": ns, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "dnsPolicy": "Default",
                        "nodeSelector": {NODE_LABEL: "real"},
                        "securityContext": {
                            "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": image,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"containerPort": 53, "protocol": "UDP", "name": "dns"},
                                    {"containerPort": 53, "protocol": "TCP", "name": "dns-tcp"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                                },
                                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": ns, "labels": labels},
            "spec": {
                "clusterIP": CLUSTER_DNS,
                "selector": labels,
                "ports": [
                    {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                ],
            },
        },
    ]


def local_volumes(state: Path, count: int = 8, size: str = "5Gi") -> list[dict[str, Any]]:
    """Pre-made PersistentVolumes on the node's disk for the `standard` class.

    The in-tree host-path provisioner makes its folders 0750 root:root, which a
    non-root database (Postgres drops to uid 999) cannot enter; these are 0755, as a
    real disk's root is. The volume binder prefers an existing PV to provisioning.
    """
    pvs = []
    for i in range(count):
        path = state / "volumes" / f"pv{i}"
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o755)
        pvs.append({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"berth-node-pv{i}", "labels": {NODE_LABEL: "real"}},
            "spec": {
                "capacity": {"storage": size},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "standard",
                "hostPath": {"path": str(path), "type": "Directory"},
            },
        })  # fmt: skip
    return pvs


def start_coredns(node: Node) -> None:
    ref, archive = coredns_image((node.state / "bin").resolve())
    node.ctr("images", "import", str(archive))
    docs = "\n---\n".join(yaml.safe_dump(m) for m in coredns_manifests(ref))
    node.cp.kubectl("apply", "-f", "-", input=docs)
    node.cp.kubectl("-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=90s")


def node_ready(cp: ControlPlane) -> bool:
    out = cp.kubectl(
        "get", "node", NODE_NAME, "-o",
        "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False,
    ).stdout  # fmt: skip
    return out.strip() == "True"


def stop_node(node: Node) -> None:
    for name in ("kube-router", "kube-proxy", "kubelet", "containerd"):
        pid = node.pids.get(name)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    teardown_leftovers()


def teardown_leftovers() -> None:
    """Remove everything a node (this one, or one that died) left: processes, links, state."""
    killed = kill_cgroups()
    if killed:
        log(f"killed {killed} node process(es)")
    if Path(f"/run/netns/{NETNS}").exists():
        run("ip", "netns", "del", NETNS, check=False)
    if run("ip", "link", "show", HOST_IF, check=False):
        run("ip", "link", "del", HOST_IF, check=False)
    if STATE.exists():
        # Mounts lived in the node's mount namespace, gone with its last process.
        shutil.rmtree(STATE, ignore_errors=True)


def pause_image() -> tuple[str, Path]:
    """The Pod sandbox image from `make images` (.berth/images.json)."""
    index = ROOT / ".berth" / "images.json"
    if not index.exists():
        raise RuntimeError(f"{index} missing: run `make images` first")
    entry = json.loads(index.read_text())["berth-pause"]
    return entry["ref"], Path(entry["archive"])


def up() -> Node:
    """A control plane reachable from the node, then the node; stops what is left first."""
    down()
    E2E_DIR.mkdir(parents=True, exist_ok=True)
    cp = controlplane.start(
        workdir=E2E_DIR / "controlplane", node_access=NodeAccess(HOST_IP, API_PORT)
    )
    try:
        node = start_node(cp, pause_image())
    except BaseException:
        controlplane.stop(cp)
        raise
    (E2E_DIR / "node.json").write_text(node.to_json())
    return node


def down() -> None:
    """Stop the node and its control plane (from .berth/e2e/node.json) and any leftover."""
    state_file = E2E_DIR / "node.json"
    if state_file.exists():
        node = Node.from_json(state_file.read_text())
        stop_node(node)
        controlplane.stop(node.cp)
        state_file.unlink()
    teardown_leftovers()


def leftovers() -> list[str]:
    """What a node left on the host; empty after `down`."""
    found = []
    if Path(f"/run/netns/{NETNS}").exists():
        found.append(f"network namespace {NETNS}")
    if run("ip", "link", "show", HOST_IF, check=False):
        found.append(f"link {HOST_IF}")
    if STATE.exists():
        found.append(f"folder {STATE}")
    found += [f"cgroup {h / CGROUP}" for h in hierarchies() if (h / CGROUP).exists()]
    for line in Path("/proc/self/mounts").read_text().splitlines():
        if str(STATE) in line.split()[1]:
            found.append(f"mount {line.split()[1]}")
    return found


def _cli(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "down"}:
        print("usage: python -m tests.support.node up|down", file=sys.stderr)
        return 2
    if argv[0] == "down":
        down()
        left = leftovers()
        log("node and control plane stopped; " + (f"LEFT: {left}" if left else "nothing left"))
        return 1 if left else 0
    node = up()
    print(f"export KUBECONFIG={node.cp.kubeconfig}")
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
