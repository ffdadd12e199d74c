"""Run a locally built image with runc, without a container engine: the image is copied out
of buildah's storage into an OCI layout (skopeo), unpacked into a bundle (umoci), its
config.json adjusted (read-only root, host network, mounts, arguments) and run by runc.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What containerd (and Docker) grant a container by default; umoci's generated config.json
# has only three, which is not what a Pod's process gets.
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]


def unpack(ref: str, workdir: Path) -> Path:
    """Unpack image `ref` from buildah's storage into a runc bundle under `workdir`."""
    layout = workdir / "layout"
    bundle = workdir / "bundle"
    subprocess.run(
        ["skopeo", "copy", "--quiet", f"containers-storage:{ref}", f"oci:{layout}:image"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:image", str(bundle)],
        check=True,
        capture_output=True,
    )
    return bundle


def load_config(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    return data


def configure(
    bundle: Path,
    *,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    read_only: bool = True,
    host_network: bool = False,
    binds: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """Rewrite the bundle's config.json like a Pod's container: `args` replace the image's
    entrypoint + cmd, `env` is added to the image's, the default capability set of
    containerd applies (effective for root only: a non-root user's exec drops them)."""
    config = load_config(bundle)
    process = config["process"]
    process["terminal"] = False
    if args is not None:
        process["args"] = list(args)
    if env:
        process["env"] = [*process.get("env", []), *(f"{k}={v}" for k, v in env.items())]
    process["capabilities"] = {
        "bounding": list(DEFAULT_CAPABILITIES),
        "effective": list(DEFAULT_CAPABILITIES),
        "permitted": list(DEFAULT_CAPABILITIES),
    }
    config["root"]["readonly"] = read_only
    if host_network:
        namespaces = config["linux"]["namespaces"]
        config["linux"]["namespaces"] = [n for n in namespaces if n["type"] != "network"]
    for target, source in (binds or {}).items():
        config["mounts"].append(
            {
                "destination": target,
                "type": "bind",
                "source": str(source),
                "options": ["rbind", "rw"],
            }
        )
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return config


@dataclass
class Completed:
    returncode: int
    output: str


def run_once(bundle: Path, state: Path, timeout: float = 120) -> Completed:
    """Run the bundle's process in the foreground and return its exit code and output."""
    cid = f"berth-test-{uuid.uuid4().hex[:12]}"
    try:
        proc = subprocess.run(
            ["runc", "--root", str(state), "run", "--bundle", str(bundle), cid],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Completed(proc.returncode, proc.stdout + proc.stderr)
    finally:
        subprocess.run(
            ["runc", "--root", str(state), "delete", "--force", cid],
            capture_output=True,
            check=False,
        )


@dataclass
class Running:
    cid: str
    state: Path
    process: subprocess.Popen[bytes]
    log: Path

    def pid(self) -> int:
        out = subprocess.run(
            ["runc", "--root", str(self.state), "state", self.cid],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return int(json.loads(out)["pid"])

    def uid(self) -> int:
        """The real uid of the container's first process (after any privilege drop)."""
        for line in Path(f"/proc/{self.pid()}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[1])
        raise RuntimeError("no Uid line")

    def exec(self, args: Sequence[str]) -> Completed:
        proc = subprocess.run(
            ["runc", "--root", str(self.state), "exec", self.cid, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Completed(proc.returncode, proc.stdout + proc.stderr)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running(bundle: Path, state: Path) -> Iterator[Running]:
    """Run the bundle in the background; on exit stop it (SIGTERM, then SIGKILL) and delete it."""
    cid = f"berth-test-{uuid.uuid4().hex[:12]}"
    log = bundle.parent / f"{cid}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["runc", "--root", str(state), "run", "--bundle", str(bundle), cid],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
    try:
        yield Running(cid, state, process, log)
    finally:
        kill = ["runc", "--root", str(state), "kill", cid]
        subprocess.run([*kill, "TERM"], capture_output=True, check=False)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            subprocess.run([*kill, "KILL"], capture_output=True, check=False)
            process.wait(timeout=20)
        subprocess.run(
            ["runc", "--root", str(state), "delete", "--force", cid],
            capture_output=True,
            check=False,
        )
