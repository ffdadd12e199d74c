"""SandboxPool Pods on the real node: the isolation promise checked in the Pods the
operator renders, from inside a real sandbox container (`kubectl exec` and the executor).

One pool of the berth-test-curl image (read-only root, a writable workspace) in a
namespace whose Pod Security labels enforce `privileged` and warn/audit `restricted`; an
upstream Pod standing in for an API (Python HTTPS with a CA made here, behind a Service);
one claim bound to a warm Pod. The upstream never echoes the credential: it answers with
the header value's sha256 and logs the value, which only the test reads.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.access import pods, port_forward
from tests.e2e.conftest import E2E
from tests.support.pki import make_ca, make_leaf

pytestmark = pytest.mark.e2e

NS = "sandboxes"
UPSTREAM_NS = "upstream"
POOL = "py"
CLAIM = "c1"
API_HOST = f"api.{UPSTREAM_NS}.svc.cluster.local"
SECRET_PREFIX = "sk-e2e-"
ALLOWED_DEPLOYMENT = "agent"
ECHO_PORT = 9053
PSA = {
    "pod-security.kubernetes.io/enforce": "privileged",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}

UPSTREAM_SERVER = r"""
import hashlib, http.server, json, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        value = self.headers.get("X-Api-Key", "")
        print("X-Api-Key=" + value, flush=True)
        digest = hashlib.sha256(value.encode()).hexdigest()
        body = json.dumps({"path": self.path, "keySha256": digest, "hasKey": bool(value)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        sys.stdout.write("req " + (fmt % args) + "\n"); sys.stdout.flush()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/tls/tls.crt", "/tls/tls.key")
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 8443), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
"""

# Runs inside the sandbox: every occurrence of the secret's public prefix in what the
# sandbox can read (its files, every visible /proc/*/environ and cmdline, its env), as the
# sha256 of prefix + the next N characters. The secret itself never enters the sandbox.
FINDER = r"""
import hashlib, os, sys
prefix, n = sys.argv[1].encode(), int(sys.argv[2])
found, scanned = [], 0
def scan(data, where):
    i = data.find(prefix)
    while i >= 0:
        found.append([where, hashlib.sha256(data[i:i + n]).hexdigest()])
        i = data.find(prefix, i + 1)
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root in ("/proc", "/sys", "/dev"):
        dirs[:] = []
        continue
    for f in files:
        p = os.path.join(root, f)
        try:
            if os.path.islink(p) or not os.path.isfile(p) or os.path.getsize(p) > 4 << 20:
                continue
            with open(p, "rb") as fh:
                scan(fh.read(), p)
            scanned += 1
        except OSError:
            pass
for pid in os.listdir("/proc"):
    if pid.isdigit():
        for part in ("environ", "cmdline"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as fh:
                    scan(fh.read(), f"/proc/{pid}/{part}")
            except OSError:
                pass
scan(repr(dict(os.environ)).encode(), "env")
print(__import__("json").dumps({"found": found, "scanned": scanned}))
"""


@dataclass
class Sandbox:
    e2e: E2E
    secret: str
    token: str
    pod: str
    api_ip: str
    upstream_pod_ip: str
    ready_seconds: list[float]
    claim_seconds: float

    def exec(self, *cmd: str, check: bool = True) -> str:
        return self.e2e.kubectl(
            "-n", NS, "exec", self.pod, "-c", "sandbox", "--", *cmd, check=check
        )

    def sh(self, script: str, check: bool = True) -> str:
        return self.exec("sh", "-c", script, check=check)


def _docs(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs)


def _start_upstream(e2e: E2E, ca: Any) -> tuple[str, str]:
    cert, key = make_leaf(ca, [API_HOST, f"api.{UPSTREAM_NS}.svc", f"api.{UPSTREAM_NS}"])
    e2e.kubectl("create", "namespace", UPSTREAM_NS)
    e2e.kubectl(
        "apply",
        "-f",
        "-",
        input=_docs(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "api-tls", "namespace": UPSTREAM_NS},
                "type": "kubernetes.io/tls",
                "stringData": {"tls.crt": cert.decode(), "tls.key": key.decode()},
            },
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "api", "namespace": UPSTREAM_NS, "labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": e2e.image("berth-test-curl"),
                            "command": ["python3", "-u", "-c", UPSTREAM_SERVER],
                            "ports": [{"containerPort": 8443}],
                            "readinessProbe": {"tcpSocket": {"port": 8443}, "periodSeconds": 1},
                            "volumeMounts": [{"name": "tls", "mountPath": "/tls"}],
                        }
                    ],
                    "volumes": [{"name": "tls", "secret": {"secretName": "api-tls"}}],
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "api", "namespace": UPSTREAM_NS},
                "spec": {"selector": {"app": "api"}, "ports": [{"port": 443, "targetPort": 8443}]},
            },
        ),
    )
    e2e.kubectl("-n", UPSTREAM_NS, "wait", "--for=condition=Ready", "pod/api", "--timeout=120s")
    svc = json.loads(e2e.kubectl("-n", UPSTREAM_NS, "get", "svc", "api", "-o", "json"))
    pod = json.loads(e2e.kubectl("-n", UPSTREAM_NS, "get", "pod", "api", "-o", "json"))
    return str(svc["spec"]["clusterIP"]), str(pod["status"]["podIP"])


def pool_manifest(e2e: E2E, api_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxPool",
        "metadata": {"name": POOL, "namespace": NS},
        "spec": {
            "replicas": 2,
            "maxSize": 4,
            "template": {
                "image": e2e.image("berth-test-curl"),
                "command": ["sleep", "infinity"],
                "workingDir": "/work",
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumes": [
                    {"name": "work", "emptyDir": {"sizeLimit": "64Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
                ],
                "volumeMounts": [
                    {"name": "work", "mountPath": "/work"},
                    {"name": "tmp", "mountPath": "/tmp"},
                ],
            },
            "authProxy": {
                "upstreamCA": {"name": "upstream-ca", "key": "ca.crt"},
                "rules": [
                    {
                        "name": "test-api",
                        "hosts": [API_HOST],
                        "headers": [
                            {
                                "name": "X-Api-Key",
                                "value": "{secret}",
                                "secretRef": {"name": "api-key", "key": "key"},
                            }
                        ],
                    }
                ],
                # The proxy dials the Service address; the NetworkPolicy (evaluated after
                # kube-proxy's translation) must let the Service's Pods through.
                "egress": {
                    "allowCIDRs": [f"{api_ip}/32"],
                    "allowServices": [{"name": "api", "namespace": UPSTREAM_NS}],
                },
            },
            "networkPolicy": {"allowedDeployments": [ALLOWED_DEPLOYMENT]},
        },
    }


def _ready_seconds(pod: dict[str, Any]) -> float:
    created = pod["metadata"]["creationTimestamp"]
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return time.mktime(time.strptime(ready["lastTransitionTime"], fmt)) - time.mktime(
        time.strptime(created, fmt)
    )


@pytest.fixture(scope="module")
def sandbox(e2e: E2E) -> Iterator[Sandbox]:
    ca = make_ca("berth e2e upstream CA")
    api_ip, upstream_pod_ip = _start_upstream(e2e, ca)
    secret = SECRET_PREFIX + secrets.token_hex(16)
    token = secrets.token_hex(16)
    e2e.kubectl("create", "namespace", NS)
    e2e.kubectl("label", "namespace", NS, *(f"{k}={v}" for k, v in PSA.items()))
    e2e.kubectl(
        "apply",
        "-f",
        "-",
        input=_docs(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "api-key", "namespace": NS},
                "stringData": {"key": secret},
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "upstream-ca", "namespace": NS},
                "data": {"ca.crt": ca.cert_pem.decode()},
            },
        ),
    )
    started = time.monotonic()
    e2e.kubectl("apply", "-f", "-", input=_docs(pool_manifest(e2e, api_ip)))
    try:
        e2e.kubectl(
            "-n", NS, "wait", "--for=condition=Ready", f"sandboxpool/{POOL}", "--timeout=180s"
        )
    except AssertionError:
        print(e2e.kubectl("-n", NS, "get", "pods,sandboxpools", "-o", "wide"))
        print(e2e.kubectl("-n", NS, "describe", "pods", check=False))
        raise
    pool_ready = time.monotonic() - started
    warm = pods(e2e.cp, NS, f"berth.dev/pool={POOL}")
    ready_seconds = [_ready_seconds(p) for p in warm]
    print(f"pool of 2 Ready {pool_ready:.1f} s after apply; Pods created->Ready {ready_seconds}")

    claim = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxClaim",
        "metadata": {"name": CLAIM, "namespace": NS},
        "spec": {
            "poolRef": {"name": POOL},
            "threadId": "5f0c3a52-0d7c-4c1e-9a43-1f2d5b6c7d8e",
            "executorTokenSHA256": hashlib.sha256(token.encode()).hexdigest(),
        },
    }
    started = time.monotonic()
    e2e.kubectl("apply", "-f", "-", input=_docs(claim))
    e2e.kubectl("-n", NS, "wait", "--for=condition=Ready", f"sandboxclaim/{CLAIM}", "--timeout=60s")
    claim_seconds = time.monotonic() - started
    status = json.loads(e2e.kubectl("-n", NS, "get", "sandboxclaim", CLAIM, "-o", "json"))["status"]
    print(f"claim bound ({status['launchType']}) {claim_seconds:.2f} s after apply")
    yield Sandbox(
        e2e=e2e,
        secret=secret,
        token=token,
        pod=status["podName"],
        api_ip=api_ip,
        upstream_pod_ip=upstream_pod_ip,
        ready_seconds=ready_seconds,
        claim_seconds=claim_seconds,
    )
    e2e.kubectl("delete", "namespace", NS, UPSTREAM_NS, "--wait=false", check=False)


def test_warm_pods_ready_and_claim_bound(sandbox: Sandbox) -> None:
    e2e = sandbox.e2e
    assert all(0 <= s <= 60 for s in sandbox.ready_seconds), sandbox.ready_seconds
    assert sandbox.claim_seconds < 15, sandbox.claim_seconds
    pod = json.loads(e2e.kubectl("-n", NS, "get", "pod", sandbox.pod, "-o", "json"))
    assert pod["metadata"]["labels"]["berth.dev/claim"] == CLAIM
    inits = {s["name"]: s for s in pod["status"]["initContainerStatuses"]}
    assert inits["egress-init"]["state"]["terminated"]["exitCode"] == 0
    assert inits["executor-install"]["state"]["terminated"]["exitCode"] == 0
    running = {s["name"]: s for s in pod["status"]["containerStatuses"]}
    assert running["sandbox"]["ready"] and running["auth-proxy"]["ready"], running
    # The pool refills: two warm Pods again besides the claimed one.
    deadline = time.monotonic() + 90
    while len([p for p in pods(e2e.cp, NS, f"berth.dev/pool={POOL}") if _is_ready(p)]) < 2:
        assert time.monotonic() < deadline, e2e.kubectl("-n", NS, "get", "pods")
        time.sleep(1)


def _is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in pod.get("status", {}).get("conditions", [])
    )


def test_sandbox_runs_non_root_with_read_only_root_and_writable_workspace(
    sandbox: Sandbox,
) -> None:
    assert sandbox.exec("id", "-u").strip() == "1000"
    out = sandbox.sh("touch /probe 2>&1; echo rc=$?", check=False)
    assert "Read-only file system" in out and "rc=1" in out, out
    assert sandbox.sh("echo hi > /work/f && cat /work/f").strip() == "hi"
    caps = sandbox.sh("grep -E '^Cap(Eff|Prm)' /proc/self/status")
    assert all(line.split()[1] == "0000000000000000" for line in caps.splitlines()), caps


def test_injected_header_reaches_the_upstream(sandbox: Sandbox) -> None:
    out = sandbox.exec("curl", "-sS", "--max-time", "20", f"https://{API_HOST}/v1/echo")
    body = json.loads(out)
    assert body["hasKey"] and body["path"] == "/v1/echo", body
    assert body["keySha256"] == hashlib.sha256(sandbox.secret.encode()).hexdigest()
    log = sandbox.e2e.kubectl("-n", UPSTREAM_NS, "logs", "api")
    assert f"X-Api-Key={sandbox.secret}" in log


def test_secret_is_nowhere_the_sandbox_can_read(sandbox: Sandbox) -> None:
    sandbox.exec("curl", "-sS", "--max-time", "20", "-o", "/work/resp", f"https://{API_HOST}/x")
    n = len(sandbox.secret)
    result = json.loads(sandbox.exec("python3", "-c", FINDER, SECRET_PREFIX, str(n)))
    want = hashlib.sha256(sandbox.secret.encode()).hexdigest()
    assert result["scanned"] > 1000, result["scanned"]
    assert [w for w, h in result["found"] if h == want] == []
    # No ServiceAccount token is mounted, and the API server is refused by the proxy.
    out = sandbox.sh("ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1; echo rc=$?")
    assert "No such file" in out, out
    out = sandbox.exec(
        "curl", "-sk", "--max-time", "20", "-w", "\n%{http_code}", "https://10.96.0.1/api"
    )
    assert out.rstrip().endswith("403") and "denyCidrs" in out, out
    assert sandbox.secret not in out
    # Every container but the proxy: no Secret volume, no Secret in env.
    pod = json.loads(sandbox.e2e.kubectl("-n", NS, "get", "pod", sandbox.pod, "-o", "json"))
    secret_vols = {v["name"] for v in pod["spec"]["volumes"] if "secret" in v}
    box = next(c for c in pod["spec"]["containers"] if c["name"] == "sandbox")
    assert not secret_vols & {m["name"] for m in box["volumeMounts"]}
    assert "secretKeyRef" not in json.dumps(box)


def test_host_outside_the_allow_list_gets_403_naming_the_rule(sandbox: Sandbox) -> None:
    out = sandbox.exec(
        "curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}",
        "--resolve", f"evil.example:443:{sandbox.upstream_pod_ip}", "https://evil.example/steal",
    )  # fmt: skip
    assert out.rstrip().endswith("403"), out
    assert 'host \\"evil.example\\" is not allowed' in out and "allow.hosts" in out, out


def test_raw_socket_to_a_denied_address_is_intercepted(sandbox: Sandbox) -> None:
    """A program ignoring every proxy setting still lands on the proxy: a raw TCP
    connection straight to the upstream Pod's IP (not allowed) is closed without reaching
    it, and the metadata address gets the proxy's 403."""
    script = (
        "import socket, sys\n"
        "s = socket.create_connection((sys.argv[1], 8443), timeout=10)\n"
        "s.sendall(b'\\x00not-http-not-tls\\n')\n"
        "try:\n    data = s.recv(100)\nexcept OSError as e:\n    data = repr(e).encode()\n"
        "print(repr(data))\n"
    )
    before = sandbox.e2e.kubectl("-n", UPSTREAM_NS, "logs", "api").count("\n")
    out = sandbox.exec("python3", "-c", script, sandbox.upstream_pod_ip)
    assert out.strip() in ("b''", "b'ConnectionResetError(104, \\'Connection reset by peer\\')'"), (
        out
    )
    proxy_log = sandbox.e2e.kubectl("-n", NS, "logs", sandbox.pod, "-c", "auth-proxy")
    assert sandbox.upstream_pod_ip in proxy_log and '"decision":"deny"' in proxy_log, proxy_log
    after = sandbox.e2e.kubectl("-n", UPSTREAM_NS, "logs", "api").count("\n")
    assert after == before
    out = sandbox.exec(
        "curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}", "http://169.254.169.254/latest"
    )
    assert out.rstrip().endswith("403"), out


def test_executor_runs_commands_through_the_proxy(sandbox: Sandbox) -> None:
    """The executor in the bound Pod answers the claim's token (once the kubelet has
    refreshed the downwardAPI file) and its commands' egress goes through the proxy."""
    headers = {"Authorization": f"Bearer {sandbox.token}", "Accept": "application/json"}
    body = {"command": f"curl -sS --max-time 20 https://{API_HOST}/exec", "timeoutSeconds": 30}
    with port_forward(sandbox.e2e.cp, NS, f"pod/{sandbox.pod}", 8790) as url:
        deadline = time.monotonic() + 120
        while True:
            r = httpx.post(f"{url}/v1/exec", json=body, headers=headers, timeout=40)
            if r.status_code != 401 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["exitCode"] == 0, result
        answer = json.loads(result["output"])
        assert answer["keySha256"] == hashlib.sha256(sandbox.secret.encode()).hexdigest()
        r = httpx.post(f"{url}/v1/exec", json=body, headers={"Authorization": "Bearer no"})
        assert r.status_code == 401


def _bare(pod: dict[str, Any], namespace: str) -> dict[str, Any]:
    spec = dict(pod["spec"])
    spec.pop("nodeName", None)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "psa-probe", "namespace": namespace},
        "spec": spec,
    }


def test_pod_security_only_netinit_is_outside_restricted(sandbox: Sandbox) -> None:
    """`baseline` refuses the rendered Pod because of egress-init alone; `restricted`
    (warn) names only egress-init: every other container fits `restricted`."""
    e2e = sandbox.e2e
    pod = json.loads(e2e.kubectl("-n", NS, "get", "pod", sandbox.pod, "-o", "json"))
    res = e2e.cp.kubectl(
        "create", "--dry-run=server", "-f", "-", check=False, input=json.dumps(_bare(pod, NS))
    )
    assert res.returncode == 0, res.stderr
    warning = res.stderr
    assert 'would violate PodSecurity "restricted:latest"' in warning, warning
    assert 'container "egress-init"' in warning, warning
    for other in ("sandbox", "auth-proxy", "executor-install"):
        assert f'"{other}"' not in warning, warning
    e2e.kubectl("create", "namespace", "sandboxes-baseline")
    try:
        e2e.kubectl(
            "label", "namespace", "sandboxes-baseline",
            "pod-security.kubernetes.io/enforce=baseline",
        )  # fmt: skip
        res = e2e.cp.kubectl(
            "create", "--dry-run=server", "-f", "-", check=False,
            input=json.dumps(_bare(pod, "sandboxes-baseline")),
        )  # fmt: skip
        assert res.returncode != 0, res.stdout
        assert 'violates PodSecurity "baseline:latest"' in res.stderr, res.stderr
        assert 'container "egress-init"' in res.stderr and "NET_ADMIN" in res.stderr
        for other in ("sandbox", "auth-proxy", "executor-install"):
            assert f'"{other}"' not in res.stderr, res.stderr
    finally:
        e2e.kubectl("delete", "namespace", "sandboxes-baseline", "--wait=false", check=False)


def test_cold_claim_starts_a_pod_of_its_own(sandbox: Sandbox) -> None:
    """With no warm Pod left (replicas 0), a claim starts a cold Pod; claim to bound is then
    a real Pod start (init containers, image from the node's cache, probes)."""
    e2e = sandbox.e2e
    e2e.kubectl("-n", NS, "scale", f"sandboxpool/{POOL}", "--replicas=0")
    deadline = time.monotonic() + 90
    while pods(e2e.cp, NS, f"berth.dev/pool={POOL}"):
        assert time.monotonic() < deadline, e2e.kubectl("-n", NS, "get", "pods")
        time.sleep(0.5)
    claim = {
        "apiVersion": "berth.dev/v1alpha1",
        "kind": "SandboxClaim",
        "metadata": {"name": "cold", "namespace": NS},
        "spec": {"poolRef": {"name": POOL}, "executorTokenSHA256": "0" * 64},
    }
    started = time.monotonic()
    e2e.kubectl("apply", "-f", "-", input=_docs(claim))
    e2e.kubectl("-n", NS, "wait", "--for=condition=Ready", "sandboxclaim/cold", "--timeout=90s")
    seconds = time.monotonic() - started
    status = json.loads(e2e.kubectl("-n", NS, "get", "sandboxclaim", "cold", "-o", "json"))
    print(f"cold claim bound {seconds:.2f} s after apply")
    assert status["status"]["launchType"] == "cold", status
    assert seconds < 60, seconds


# --- the managed NetworkPolicy, enforced on the node by kube-router -----------------------

UDP_ECHO = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {ECHO_PORT}))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"echo:" + data, peer)
"""

# Runs in a Pod: "answer" if the UDP echo answered, "no answer" if nothing came back.
UDP_PROBE = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for _ in range(2):
    s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
    try:
        print("answer" if s.recvfrom(2048)[0] == b"echo:ping" else "bad answer")
        break
    except socket.timeout:
        pass
else:
    print("no answer")
"""

# Runs in a Pod: whether a TCP connection to ip:port opens.
TCP_PROBE = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5).close()
    print("connected")
except OSError as e:
    print("refused" if isinstance(e, ConnectionRefusedError) else "failed " + repr(e))
"""


def _probe_pod(e2e: E2E, name: str, namespace: str, labels: dict[str, str], script: str) -> Any:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "probe",
                    "image": e2e.image("berth-test-curl"),
                    "command": ["python3", "-u", "-c", script],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 1000,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                }
            ],
        },
    }


@dataclass
class Probes:
    echo_ip: str  # a UDP echo Pod in the upstream namespace (no policy selects it)
    echo_service_ip: str
    outsider: str  # a plain Pod in the sandboxes namespace
    runtime: str  # labelled as a server Pod of the allowed AgentDeployment
    other_sandbox: str  # the same labels, but a sandbox of another pool


@pytest.fixture(scope="module")
def probes(sandbox: Sandbox) -> Probes:
    e2e = sandbox.e2e
    idle = "import time\nwhile True: time.sleep(3600)"
    runtime_labels = {
        "berth.dev/agentdeployment": ALLOWED_DEPLOYMENT,
        "app.kubernetes.io/component": "server",
    }
    docs = [
        _probe_pod(e2e, "echo", UPSTREAM_NS, {"app": "echo"}, UDP_ECHO),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "echo", "namespace": UPSTREAM_NS},
            "spec": {
                "selector": {"app": "echo"},
                "ports": [{"protocol": "UDP", "port": ECHO_PORT, "targetPort": ECHO_PORT}],
            },
        },
        _probe_pod(e2e, "outsider", NS, {"app": "outsider"}, idle),
        _probe_pod(e2e, "runtime", NS, runtime_labels, idle),
        _probe_pod(
            e2e, "other-sandbox", NS, {**runtime_labels, "berth.dev/from-pool": "other"}, idle
        ),
    ]
    e2e.kubectl("apply", "-f", "-", input=_docs(*docs))
    for ns, name in (
        (UPSTREAM_NS, "echo"),
        (NS, "outsider"),
        (NS, "runtime"),
        (NS, "other-sandbox"),
    ):
        e2e.kubectl("-n", ns, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s")
    echo = json.loads(e2e.kubectl("-n", UPSTREAM_NS, "get", "pod", "echo", "-o", "json"))
    svc = json.loads(e2e.kubectl("-n", UPSTREAM_NS, "get", "svc", "echo", "-o", "json"))
    return Probes(
        echo_ip=echo["status"]["podIP"],
        echo_service_ip=svc["spec"]["clusterIP"],
        outsider="outsider",
        runtime="runtime",
        other_sandbox="other-sandbox",
    )


def _in_pod(e2e: E2E, pod: str, script: str, *args: str) -> str:
    return e2e.kubectl("-n", NS, "exec", pod, "--", "python3", "-c", script, *args).strip()


def test_policy_engine_runs_on_the_node(sandbox: Sandbox) -> None:
    """kube-router programs the pool's policy into the node's iptables."""
    rules = sandbox.e2e.node.exec("iptables", "-S")
    assert "KUBE-ROUTER-FORWARD" in rules
    assert "KUBE-NWPLCY-" in rules and "KUBE-POD-FW-" in rules, rules


def test_udp_bypassing_the_proxy_reaches_neither_a_pod_nor_a_service(
    sandbox: Sandbox, probes: Probes
) -> None:
    """UDP is not redirected to the proxy; the NetworkPolicy stops it. The same probe from a
    Pod no policy selects gets its answer, so the silence is the policy's doing."""
    e2e, port = sandbox.e2e, str(ECHO_PORT)
    assert _in_pod(e2e, probes.outsider, UDP_PROBE, probes.echo_ip, port) == "answer"
    assert _in_pod(e2e, probes.outsider, UDP_PROBE, probes.echo_service_ip, port) == "answer"
    assert sandbox.exec("python3", "-c", UDP_PROBE, probes.echo_ip, port).strip() == "no answer"
    out = sandbox.exec("python3", "-c", UDP_PROBE, probes.echo_service_ip, port)
    assert out.strip() == "no answer"
    # ... nor the metadata address, nor a denied port of the allowed upstream Pod.
    for ip, p in (("169.254.169.254", "53"), (sandbox.upstream_pod_ip, port)):
        assert sandbox.exec("python3", "-c", UDP_PROBE, ip, p).strip() == "no answer"


def test_only_the_allowed_runtime_pods_reach_the_executor(sandbox: Sandbox, probes: Probes) -> None:
    """Ingress to the executor port: the allowed AgentDeployment's runtime Pods only; not a
    plain Pod, and not another pool's sandbox even with the same labels."""
    e2e = sandbox.e2e
    pod = json.loads(e2e.kubectl("-n", NS, "get", "pod", sandbox.pod, "-o", "json"))
    ip, port = pod["status"]["podIP"], "8790"
    assert _in_pod(e2e, probes.runtime, TCP_PROBE, ip, port) == "connected"
    assert _in_pod(e2e, probes.outsider, TCP_PROBE, ip, port) != "connected"
    assert _in_pod(e2e, probes.other_sandbox, TCP_PROBE, ip, port) != "connected"
