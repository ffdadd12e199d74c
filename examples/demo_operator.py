"""The operator half of `make demo`: deploy the example agent on a local control plane.

Installs the CRDs, runs `berth-operator` locally against the control plane, applies
examples/agentdeployment.yaml, waits for `Ready`, shows what the operator made, then
keeps a warm SandboxPool (examples/sandboxpool.yaml), binds a SandboxClaim to one of its
Pods and shows that only the auth-proxy container mounts a Secret, and stops the operator.
kwok fake nodes make the Pods Ready (nothing really runs there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "examples" / "agentdeployment.yaml"
SANDBOXES = ROOT / "examples" / "sandboxpool.yaml"
NAMESPACE = "berth-demo"


def _kubectl(env: dict[str, str], *args: str, input: str | None = None) -> str:
    result = subprocess.run(
        [str(BIN / "kubectl"), *args], env=env, input=input, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def _say(msg: str) -> None:
    print(f">> {msg}", flush=True)


def _database_volume(env: dict[str, str], name: str) -> None:
    """A hostPath volume for the bundled Postgres (this control plane has no provisioner)."""
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{NAMESPACE}-{name}-postgres"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"{tempfile.gettempdir()}/{NAMESPACE}-{name}-postgres"},
            "claimRef": {"namespace": NAMESPACE, "name": f"{name}-postgres-data"},
        },
    }
    _kubectl(env, "apply", "-f", "-", input=yaml.safe_dump(pv))


def _wait_for_log(log: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"the operator exited:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    raise TimeoutError(f"operator not started after {timeout}s:\n{log.read_text(errors='replace')}")


def _sandbox_demo(env: dict[str, str]) -> None:
    """A warm sandbox pool and a claim bound to one of its Pods (examples/sandboxpool.yaml)."""
    docs = list(yaml.safe_load_all(SANDBOXES.read_text()))
    pool = next(d for d in docs if d["kind"] == "SandboxPool")["metadata"]["name"]
    claim = next(d for d in docs if d["kind"] == "SandboxClaim")["metadata"]["name"]
    docs = [next(d for d in docs if d["kind"] == k) for k in ("SandboxPool", "SandboxClaim")]
    ns = ["-n", NAMESPACE]
    # The key the auth proxy injects; only the proxy container ever mounts it.
    secret = _kubectl(
        env,
        *ns,
        "create",
        "secret",
        "generic",
        "openai-key",
        "--from-literal=api-key=sk-demo-not-a-real-key",
        "--dry-run=client",
        "-o",
        "yaml",
    )
    _kubectl(env, *ns, "apply", "-f", "-", input=secret)
    pool_doc, claim_doc = (yaml.safe_dump(d) for d in docs)
    _say(f"kubectl apply  SandboxPool/{pool} from {SANDBOXES.relative_to(ROOT)}")
    print(_kubectl(env, *ns, "apply", "-f", "-", input=pool_doc), end="")
    _kubectl(env, *ns, "wait", "--for=condition=Ready", f"sandboxpool/{pool}", "--timeout=120s")
    _say(f"SandboxPool/{pool} Ready (warm Pods up); now kubectl apply SandboxClaim/{claim}")
    t0 = time.monotonic()
    print(_kubectl(env, *ns, "apply", "-f", "-", input=claim_doc), end="")
    _kubectl(env, *ns, "wait", "--for=condition=Ready", f"sandboxclaim/{claim}", "--timeout=120s")
    took = time.monotonic() - t0
    _say("kubectl get sandboxpools,sandboxclaims")
    print(_kubectl(env, *ns, "get", "sandboxpools,sandboxclaims", "-o", "wide"), end="")
    status = json.loads(_kubectl(env, *ns, "get", f"sandboxclaim/{claim}", "-o", "json"))["status"]
    _say(
        f"claim {claim} bound to {status['podName']} ({status['launchType']} start); "
        f"apply + wait took {took:.2f}s, most of it two kubectl starts "
        "(bench/claim_latency.py measures the binding itself)"
    )
    pod = json.loads(_kubectl(env, *ns, "get", f"pod/{status['podName']}", "-o", "json"))
    secret_volumes = {v["name"] for v in pod["spec"]["volumes"] if "secret" in v}
    _say("volumes each container mounts (Secrets marked *)")
    for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        mounts = [
            m["name"] + ("*" if m["name"] in secret_volumes else "")
            for m in c.get("volumeMounts", [])
        ]
        print(f"   {c['name']:<18} {', '.join(mounts) or '-'}")


def run_operator_demo(kubeconfig: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    name = yaml.safe_load(EXAMPLE.read_text())["metadata"]["name"]

    _say("installing the CRDs (crds/, generated from the pydantic models)")
    _kubectl(env, "apply", "--server-side", "-f", str(ROOT / "crds"))
    _kubectl(env, "wait", "--for=condition=Established", "crd/agentdeployments.berth.dev")
    namespace = _kubectl(env, "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml")
    _kubectl(env, "apply", "-f", "-", input=namespace)
    _database_volume(env, name)

    log = Path(tempfile.mkstemp(prefix="berth-operator-demo-", suffix=".log")[1])
    _say(f"starting: berth-operator run --namespace {NAMESPACE}  (log: {log})")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "berth-operator"), "run", "--namespace", NAMESPACE],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_log(log, "Initial authentication has finished", proc, 60)
        _say(f"kubectl apply -f {EXAMPLE.relative_to(ROOT)}")
        print(_kubectl(env, "apply", "-n", NAMESPACE, "-f", str(EXAMPLE)), end="")
        t0 = time.monotonic()
        _say(f"kubectl wait --for=condition=Ready agentdeployment/{name}")
        _kubectl(
            env,
            "wait",
            "--for=condition=Ready",
            f"agentdeployment/{name}",
            "-n",
            NAMESPACE,
            "--timeout=180s",
        )
        _say(f"Ready after {time.monotonic() - t0:.1f}s")
        _say("kubectl get agentdeployments")
        print(_kubectl(env, "get", "agentdeployments", "-n", NAMESPACE, "-o", "wide"), end="")
        _say("conditions")
        print(
            _kubectl(
                env,
                "get",
                f"agentdeployment/{name}",
                "-n",
                NAMESPACE,
                "-o",
                'jsonpath={range .status.conditions[*]}{.type}={.status} ({.reason}){"\\n"}{end}',
            ),
            end="",
        )
        _say("objects the operator made (label berth.dev/agentdeployment)")
        print(
            _kubectl(
                env,
                "get",
                "deployments,statefulsets,services,configmaps,secrets,serviceaccounts,"
                "poddisruptionbudgets,horizontalpodautoscalers,persistentvolumeclaims,pods",
                "-n",
                NAMESPACE,
                "-l",
                f"berth.dev/agentdeployment={name}",
            ),
            end="",
        )
        _sandbox_demo(env)
    finally:
        _say("stopping the operator")
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    run_operator_demo(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".berth" / "kubeconfig")
