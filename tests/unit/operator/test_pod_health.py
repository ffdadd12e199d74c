"""stuck_container over Pod statuses shaped exactly as the kubelet writes them.

The fixtures copy what `kubectl get pod -o yaml` shows on a real node (containerd,
kubelet 1.36) for a wrong image name, a missing tag, an unparsable reference, a
missing Secret, and the harmless waiting reasons of a normal start.
"""

from __future__ import annotations

from typing import Any

import pytest
from berth_operator.render.pod_health import label_selector, same_stall, stuck_container

IMAGE = "registry.example.com/team/agent:1.4"

PULL_MESSAGES = {
    "ErrImagePull": (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": '
        f'failed to resolve reference "{IMAGE}": {IMAGE}: not found'
    ),
    "ImagePullBackOff": f'Back-off pulling image "{IMAGE}"',
    "InvalidImageName": (
        'Failed to apply default image tag "Bad:Name": couldn\'t parse image reference '
        '"Bad:Name": invalid reference format: repository name must be lowercase'
    ),
    "ErrImageNeverPull": (f'Container image "{IMAGE}" is not present with pull policy of Never'),
    "CreateContainerConfigError": 'secret "llm-keys" not found',
}


def waiting(name: str, image: str, reason: str, message: str | None = None) -> dict[str, Any]:
    """A containerStatuses entry of a container that has not started."""
    state: dict[str, Any] = {"reason": reason}
    if message is not None:
        state["message"] = message
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "lastState": {},
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": state},
        "volumeMounts": [
            {
                "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                "name": "kube-api-access-x",
                "readOnly": True,
                "recursiveReadOnly": "Disabled",
            }
        ],
    }


def running(name: str, image: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imageID": f"{image}@sha256:" + "a" * 64,
        "containerID": "containerd://" + "b" * 64,
        "lastState": {},
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}},
    }


def pod(
    name: str,
    statuses: list[dict[str, Any]],
    *,
    init: list[dict[str, Any]] | None = None,
    images: dict[str, str] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    """A Pending Pod as the API server returns it once the kubelet has reported."""
    images = images or {s["name"]: s["image"] for s in statuses}
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "team-a",
        "labels": {"berth.dev/agentdeployment": "support"},
        "uid": f"uid-{name}",
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    spec: dict[str, Any] = {"containers": [{"name": n, "image": i} for n, i in images.items()]}
    status: dict[str, Any] = {
        "phase": "Pending",
        "hostIP": "10.0.0.2",
        "podIP": "10.244.0.7",
        "qosClass": "BestEffort",
        "startTime": "2026-01-01T00:00:00Z",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {
                "type": "Ready",
                "status": "False",
                "reason": "ContainersNotReady",
                "message": f"containers with unready status: [{statuses[0]['name']}]",
            },
        ],
        "containerStatuses": statuses,
    }
    if init is not None:
        spec["initContainers"] = [{"name": s["name"], "image": s["image"]} for s in init]
        status["initContainerStatuses"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


@pytest.mark.parametrize("reason", sorted(PULL_MESSAGES))
def test_each_stuck_reason_names_the_container_and_the_image(reason: str) -> None:
    p = pod("support-server-7d9c-abcde", [waiting("runtime", IMAGE, reason, PULL_MESSAGES[reason])])
    stuck = stuck_container([p])
    assert stuck is not None
    assert (stuck.pod, stuck.container, stuck.image, stuck.reason) == (
        "support-server-7d9c-abcde",
        "runtime",
        IMAGE,
        reason,
    )
    msg = stuck.message("Deployment support-server")
    assert msg.startswith(f"Deployment support-server: container 'runtime' (image '{IMAGE}') is ")
    assert reason in msg and PULL_MESSAGES[reason] in msg


@pytest.mark.parametrize(
    "reason", ["ContainerCreating", "PodInitializing", "CrashLoopBackOff", "RunContainerError"]
)
def test_reasons_that_retries_may_cure_are_not_stuck(reason: str) -> None:
    assert stuck_container([pod("p", [waiting("runtime", IMAGE, reason)])]) is None


def test_running_and_unreported_pods_are_not_stuck() -> None:
    assert stuck_container([pod("p", [running("runtime", IMAGE)])]) is None
    fresh = pod("q", [running("runtime", IMAGE)])
    del fresh["status"]["containerStatuses"]  # scheduled, the kubelet has not reported yet
    assert stuck_container([fresh]) is None
    assert stuck_container([]) is None


def test_an_init_container_is_found_and_comes_first() -> None:
    netinit = "ghcr.io/berth-dev/berth-sandbox-netinit:0.1.0"
    p = pod(
        "py-abcde",
        [
            waiting("sandbox", "python:3.12-slim", "PodInitializing"),
            waiting(
                "auth-proxy", "agent:1", "ImagePullBackOff", 'Back-off pulling image "agent:1"'
            ),
        ],
        init=[waiting("egress-init", netinit, "ErrImagePull", "not found")],
    )
    stuck = stuck_container([p])
    assert stuck is not None and stuck.container == "egress-init" and stuck.image == netinit


def test_the_spec_image_is_named_even_when_the_status_shows_a_normalised_one() -> None:
    status = waiting("redis", "docker.io/library/redis:77", "ErrImagePull", "not found")
    stuck = stuck_container([pod("r", [status], images={"redis": "redis:77"})])
    assert stuck is not None and stuck.image == "redis:77"


def test_pods_are_read_in_name_order_and_deleted_ones_skipped() -> None:
    a = pod("a", [waiting("runtime", IMAGE, "ImagePullBackOff", "b1")], deleting=True)
    b = pod("b", [waiting("runtime", IMAGE, "CreateContainerConfigError", "no secret")])
    c = pod("c", [waiting("runtime", IMAGE, "ErrImagePull", "not found")])
    stuck = stuck_container([c, a, b])
    assert stuck is not None and stuck.pod == "b" and stuck.reason == "CreateContainerConfigError"


def test_a_pod_of_an_older_template_does_not_hide_the_fix() -> None:
    """The user fixed the image: the old Pod still backs off until the rollout removes it."""
    old = pod("old", [waiting("runtime", "bad:1", "ImagePullBackOff", 'Back-off "bad:1"')])
    template = {"spec": {"containers": [{"name": "runtime", "image": IMAGE}]}}
    assert stuck_container([old], template) is None
    new = pod("new", [waiting("runtime", IMAGE, "ErrImagePull", "not found")])
    stuck = stuck_container([old, new], template)
    assert stuck is not None and stuck.pod == "new"


def test_the_pull_reasons_are_one_stall() -> None:
    assert same_stall("ErrImagePull", "ImagePullBackOff")
    assert same_stall("ImagePullBackOff", "ErrImagePull")
    assert same_stall("InvalidImageName", "InvalidImageName")
    assert not same_stall(None, "ErrImagePull")
    assert not same_stall("ErrImagePull", "CreateContainerConfigError")


def test_label_selector_of_a_workload() -> None:
    deploy = {"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}
    assert label_selector(deploy) == "a=1,b=2"
    assert label_selector({"spec": {}}) is None
