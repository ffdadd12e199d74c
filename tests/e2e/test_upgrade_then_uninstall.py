"""Day two on the real node, last in the tier (it uninstalls): a new runtime image tag rolls
the example's Deployments while a run is going, and no run is lost; then deleting the
AgentDeployment and `helm uninstall` keep the Postgres volume (with its data) and the
CRDs, as docs/operator.md and the chart's README promise."""

from __future__ import annotations

import asyncio
import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from langgraph_sdk import get_client

from tests.e2e.access import pods, port_forward
from tests.e2e.conftest import E2E, OPERATOR_NS, RELEASE, ROOT
from tests.e2e.pipeline_runs import repeated_steps, step_records
from tests.support import images, node

pytestmark = pytest.mark.e2e

EXAMPLE = "berth.dev/agentdeployment=example"


def retag(e2e: E2E, name: str, new_tag: str) -> str:
    """The same image under a new tag in the node's registry, as a release would push."""
    source = e2e.image(name)
    target = f"{node.REGISTRY}/{name}:{new_tag}"
    images.run(
        ["skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{source}", f"docker://{target}"]
    )  # fmt: skip
    return target


def has_image(e2e: E2E, namespace: str, deployment: str, image: str) -> bool:
    out = e2e.kubectl(
        "-n", namespace, "get", "deployment", deployment,
        "-o", "jsonpath={.spec.template.spec.containers[0].image}",
    )  # fmt: skip
    return out.strip() == image


def test_new_runtime_tag_rolls_without_losing_a_run(e2e: E2E, example: str, tmp_path: Path) -> None:
    new_tag = f"{e2e.images['berth-runtime'].tag}-upgrade"
    new_ref = retag(e2e, "berth-runtime", new_tag)
    steps = 15

    async def start(url: str) -> tuple[str, str]:
        client = get_client(url=url)
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(
            thread_id, "pipeline", input={"steps": steps, "seconds": 1.0}
        )
        return thread_id, run["run_id"]

    with port_forward(e2e.cp, example, "svc/example", 8000) as url:
        thread_id, run_id = asyncio.run(start(url))

    values = json.loads(json.dumps(e2e.values))
    values["images"]["runtime"]["tag"] = new_tag
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    e2e.helm(
        "upgrade", RELEASE, str(ROOT / "charts" / "berth"), "--namespace", OPERATOR_NS,
        "-f", str(values_file), "--wait", "--timeout", "180s",
    )  # fmt: skip
    e2e.values = values
    # The new operator renders the new default image into both Deployments, which roll.
    for component in ("server", "worker"):
        deployment = f"example-{component}"
        node.wait_for(
            functools.partial(has_image, e2e, example, deployment, new_ref),
            120,
            f"{deployment} to get {new_ref}",
        )
        e2e.kubectl(
            "-n", example, "rollout", "status", f"deployment/{deployment}", "--timeout=300s"
        )  # fmt: skip
        selector = f"{EXAMPLE},app.kubernetes.io/component={component}"
        running = {p["spec"]["containers"][0]["image"] for p in pods(e2e.cp, example, selector)}
        assert running == {new_ref}, running

    async def finish(url: str) -> dict[str, Any]:
        client = get_client(url=url)
        final = await client.runs.join(thread_id, run_id)
        question: dict[str, Any] = {"messages": [{"role": "user", "content": "What is 6 * 7?"}]}
        after = await client.runs.wait(None, "agent", input=question)
        return {
            "final": final,
            "run": await client.runs.get(thread_id, run_id),
            "records": await step_records(client, thread_id),
            "after": after,
        }

    with port_forward(e2e.cp, example, "svc/example", 8000) as url:
        got = asyncio.run(finish(url))
    # The old worker drained: the run that was going finished once, no step repeated.
    assert got["run"]["status"] == "success", got["run"]
    assert got["final"]["done"] == list(range(1, steps + 1))
    assert repeated_steps(got["records"]) == [], got["records"]
    # And the new Pods answer.
    assert "42" in got["after"]["messages"][-1]["content"], got["after"]


def test_delete_and_uninstall_keep_the_volume_and_the_crds(e2e: E2E, example: str) -> None:
    claims = json.loads(e2e.kubectl("-n", example, "get", "pvc", "-o", "json"))["items"]
    assert claims, "the bundled Postgres has a PersistentVolumeClaim"
    e2e.kubectl("-n", example, "delete", "agentdeployment", "example", "--timeout=180s")
    # Its Pods go with it (the garbage collector follows the owner references).
    node.wait_for(lambda: not pods(e2e.cp, example, EXAMPLE), 180, "the example's Pods to go")
    for claim in claims:
        name = claim["metadata"]["name"]
        kept = json.loads(e2e.kubectl("-n", example, "get", "pvc", name, "-o", "json"))
        assert kept["status"]["phase"] == "Bound", kept["status"]
        volume = json.loads(e2e.kubectl("get", "pv", kept["spec"]["volumeName"], "-o", "json"))
        # Postgres' own files, written by the container, are still on the node's disk.
        data = Path(volume["spec"]["hostPath"]["path"])
        assert list(data.rglob("PG_VERSION")), f"no Postgres data in {data}"

    e2e.helm("uninstall", RELEASE, "--namespace", OPERATOR_NS, "--wait", "--timeout", "120s")
    assert not pods(e2e.cp, OPERATOR_NS, "app.kubernetes.io/name=berth-operator")
    crds = e2e.kubectl("get", "crd", "-o", "name")
    for kind in ("agentdeployments", "agentcrons", "sandboxpools", "sandboxclaims"):
        assert f"{kind}.berth.dev" in crds, crds
