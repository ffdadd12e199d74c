"""Image defaults and stuck images against the local control plane.

- An AgentDeployment without ``spec.image`` is admitted and runs the operator's
  configured runtime image (``--runtime-image``); its spec stays as written.
- A child Pod stuck on its image stalls the owner with the kubelet's reason.

kwok plays the kubelet here and only ever reports containers as running: it cannot show
a waiting reason. So the stuck Pods are kept off the kwok nodes (a nodeSelector no node
matches) and their status is written the way the kubelet writes it, through the Pod's
``status`` subresource. What is real: the API server, the Deployment controller, the
operator listing the Pods by label selector with its own credentials, its decision, and
its writes. A real kubelet failing a real pull is the e2e tier's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.operator_harness import (
    AGD,
    OperatorProcess,
    agent,
    apply,
    berth_crds,
    condition,
    delete_all,
    delete_all_agentdeployments,
    external_secrets,
    get,
    resource_versions,
    start_operator,
    wait_ready,
    wait_until,
)
from tests.cluster.sandbox_harness import POOL, pool, sandbox_crds

pytestmark = pytest.mark.cluster
__all__ = ["berth_crds", "sandbox_crds"]

RUNTIME = "127.0.0.1:5000/berth-dev/berth-runtime:cluster-test"
AGENT = "127.0.0.1:5000/berth-dev/berth-sandbox-agent:cluster-test"
NOWHERE = {"berth.dev/test-no-such-node": "true"}
BAD = "registry.invalid/team/agent:nope"


@pytest.fixture
def configured_operator(
    berth_crds: None, sandbox_crds: None, kube_env: dict[str, str], kubectl: Kubectl, namespace: str
) -> Iterator[OperatorProcess]:
    """The operator with image defaults as the chart passes them (`images.*` values)."""
    op = start_operator(
        kube_env,
        namespace,
        f"--runtime-image={RUNTIME}",
        f"--sandbox-agent-image={AGENT}",
        "--image-pull-policy=Never",
    )
    try:
        yield op
    finally:
        delete_all(kubectl, namespace, POOL)
        delete_all_agentdeployments(kubectl, namespace)
        op.stop()


def _pods(kubectl: Kubectl, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(kubectl, namespace, "pods", "-l", selector)["items"]
    return items


def _kubelet_reports(
    kubectl: Kubectl, namespace: str, pod: dict[str, Any], container: str, reason: str
) -> None:
    """Write a waiting container status exactly as the kubelet does for a failing pull."""
    spec = pod["spec"]
    init = any(c["name"] == container for c in spec.get("initContainers") or ())
    image = next(
        c["image"]
        for c in [*(spec.get("initContainers") or ()), *spec["containers"]]
        if c["name"] == container
    )
    message = {
        "ImagePullBackOff": f'Back-off pulling image "{image}"',
        "ErrImagePull": f'failed to pull and unpack image "{image}": not found',
    }[reason]
    entry = {
        "name": container,
        "image": image,
        "imageID": "",
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": reason, "message": message}},
    }
    key = "initContainerStatuses" if init else "containerStatuses"
    kubectl(
        "patch",
        "pod",
        pod["metadata"]["name"],
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Pending", key: [entry]}}),
    )


def test_an_agent_deployment_without_image_runs_the_configured_runtime(
    configured_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    body = agent("plain")
    del body["spec"]["image"]
    apply(kubectl, namespace, body)  # admitted: spec.image is optional
    wait_ready(kubectl, namespace, "plain")
    (c,) = get(kubectl, namespace, "deployment", "plain-server")["spec"]["template"]["spec"][
        "containers"
    ]
    assert (c["image"], c["imagePullPolicy"]) == (RUNTIME, "Never")
    spec = get(kubectl, namespace, AGD, "plain")["spec"]
    assert "image" not in spec and "imagePullPolicy" not in spec  # the spec is the user's

    kubectl(
        "patch", AGD, "plain", "-n", namespace, "--type=merge", "-p", '{"spec":{"image":"x:1"}}'
    )
    wait_until(
        lambda: (
            get(kubectl, namespace, "deployment", "plain-server")["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            == "x:1"
        ),
        30,
        "the explicit image to win",
    )


def test_a_pod_stuck_on_its_image_stalls_the_agent_deployment(
    configured_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    external_secrets(kubectl, namespace)
    apply(kubectl, namespace, agent("stuck", image=BAD, pod={"nodeSelector": NOWHERE}))
    selector = "berth.dev/agentdeployment=stuck,app.kubernetes.io/component=server"
    wait_until(lambda: bool(_pods(kubectl, namespace, selector)), 30, "a server Pod")
    wait_until(
        lambda: (
            condition(get(kubectl, namespace, AGD, "stuck"), "Ready").get("reason")
            == "PodsNotReady"
        ),
        30,
        "PodsNotReady while the Pod is only Pending",
    )
    assert condition(get(kubectl, namespace, AGD, "stuck"), "Stalled")["status"] == "False"

    (pod,) = _pods(kubectl, namespace, selector)
    _kubelet_reports(kubectl, namespace, pod, "runtime", "ImagePullBackOff")
    wait_until(
        lambda: condition(get(kubectl, namespace, AGD, "stuck"), "Stalled").get("status") == "True",
        30,
        "Stalled after the kubelet's ImagePullBackOff",
    )
    body = get(kubectl, namespace, AGD, "stuck")
    stalled, ready = condition(body, "Stalled"), condition(body, "Ready")
    assert stalled["reason"] == "ImagePullBackOff" and ready["status"] == "False"
    assert ready["reason"] == "ImagePullBackOff"
    assert condition(body, "Reconciling")["status"] == "False"
    assert condition(body, "ServerReady")["reason"] == "ImagePullBackOff"
    assert "'runtime'" in stalled["message"] and f"'{BAD}'" in stalled["message"]
    events = get(kubectl, namespace, "events", "--field-selector", "involvedObject.name=stuck")
    assert any(e.get("reason") == "ImagePullBackOff" for e in events["items"])

    # Nothing changes: passes every 3 s write nothing (the Pods are read, not written).
    before = resource_versions(kubectl, namespace)
    time.sleep(8)
    assert resource_versions(kubectl, namespace) == before

    # The fix: a new image. The old Pod, still backing off, no longer counts.
    kubectl(
        "patch", AGD, "stuck", "-n", namespace, "--type=merge", "-p", '{"spec":{"image":"ok:2"}}'
    )
    wait_until(
        lambda: (
            condition(get(kubectl, namespace, AGD, "stuck"), "Stalled").get("status") == "False"
        ),
        30,
        "the stall to clear once the spec is fixed",
    )
    assert condition(get(kubectl, namespace, AGD, "stuck"), "Reconciling")["status"] == "True"


def test_a_warm_pod_stuck_on_the_proxy_image_stalls_the_pool(
    configured_operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    stuck = {"image": "ghcr.io/berth-dev/sandbox-python:3.12", "nodeSelector": NOWHERE}
    apply(kubectl, namespace, pool("img", replicas=1, max_size=2, template=stuck))
    selector = "berth.dev/pool=img"
    wait_until(lambda: bool(_pods(kubectl, namespace, selector)), 30, "a warm Pod")
    (pod,) = _pods(kubectl, namespace, selector)
    containers = {c["name"]: c for c in pod["spec"]["initContainers"]}
    assert containers["executor-install"]["image"] == AGENT  # the configured default
    assert containers["executor-install"]["imagePullPolicy"] == "Never"

    _kubelet_reports(kubectl, namespace, pod, "executor-install", "ErrImagePull")
    wait_until(
        lambda: condition(get(kubectl, namespace, POOL, "img"), "Stalled").get("status") == "True",
        30,
        "the pool Stalled after the kubelet's ErrImagePull",
    )
    body = get(kubectl, namespace, POOL, "img")
    stalled = condition(body, "Stalled")
    assert stalled["reason"] == "ErrImagePull"
    assert "'executor-install'" in stalled["message"] and f"'{AGENT}'" in stalled["message"]
    assert condition(body, "Ready")["status"] == "False"
    version = body["metadata"]["resourceVersion"]
    time.sleep(5)
    assert get(kubectl, namespace, POOL, "img")["metadata"]["resourceVersion"] == version
