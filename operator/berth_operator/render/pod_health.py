"""Pods that cannot start until someone fixes the spec: a wrong image, a missing Secret.

The kubelet keeps retrying such a container forever, so its workload never finishes
rolling out; without this the owner would report ``Progressing`` until the rollout's
deadline. ``stuck_container`` reads the waiting reasons the kubelet writes into a Pod's
``status.initContainerStatuses`` and ``status.containerStatuses`` and names the first
container that is stuck, so the owner becomes ``Stalled`` with that reason at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
INVALID_IMAGE_NAME = "InvalidImageName"
ERR_IMAGE_NEVER_PULL = "ErrImageNeverPull"
CREATE_CONTAINER_CONFIG_ERROR = "CreateContainerConfigError"

STUCK_REASONS = frozenset(
    {
        ERR_IMAGE_PULL,
        IMAGE_PULL_BACKOFF,
        INVALID_IMAGE_NAME,
        ERR_IMAGE_NEVER_PULL,
        CREATE_CONTAINER_CONFIG_ERROR,
    }
)
"""Waiting reasons (kubelet ``images.Err*``, ``kuberuntime`` config errors) that retries
alone do not cure. CrashLoopBackOff is not one: a runtime may crash while its database
starts, and its readiness already tells that story."""

_PULL_FAMILY = frozenset({ERR_IMAGE_PULL, IMAGE_PULL_BACKOFF})
"""The kubelet alternates between these two for one failing pull."""


@dataclass(frozen=True)
class StuckContainer:
    """The first container found that cannot start, and why (kubelet words)."""

    pod: str
    container: str
    image: str
    reason: str
    detail: str

    def message(self, what: str) -> str:
        """A condition message naming the workload, the container and the image."""
        text = f"{what}: container {self.container!r} (image {self.image!r}) is {self.reason}"
        return f"{text}: {self.detail}" if self.detail else text


def same_stall(before: str | None, after: str) -> bool:
    """Whether two Stalled reasons are the same problem (no second Event for it)."""
    return before == after or (before in _PULL_FAMILY and after in _PULL_FAMILY)


def _spec_images(pod_spec: Mapping[str, Any]) -> dict[str, str]:
    containers = [*(pod_spec.get("initContainers") or ()), *(pod_spec.get("containers") or ())]
    return {str(c.get("name")): str(c.get("image", "")) for c in containers}


def _statuses(pod: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    st = pod.get("status") or {}
    yield from st.get("initContainerStatuses") or ()
    yield from st.get("containerStatuses") or ()


def stuck_container(
    pods: Sequence[Mapping[str, Any]], template: Mapping[str, Any] | None = None
) -> StuckContainer | None:
    """The first stuck container of the given Pods (by Pod name; init containers first).

    With ``template`` (the workload's current ``spec.template``), a container counts only
    while it runs the image the template asks for: a Pod of an older revision, stuck on
    the image a fix just replaced, is on its way out and says nothing about the fix.
    Pods being deleted are skipped for the same reason.
    """
    wanted = _spec_images((template or {}).get("spec") or {}) if template is not None else None
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name", ""))):
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        in_spec = _spec_images(pod.get("spec") or {})
        for cs in _statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason not in STUCK_REASONS:
                continue
            name = str(cs.get("name", ""))
            image = in_spec.get(name) or str(cs.get("image", ""))
            if wanted is not None and wanted.get(name, image) != image:
                continue
            return StuckContainer(
                pod=str(meta.get("name", "")),
                container=name,
                image=image,
                reason=str(reason),
                detail=str(waiting.get("message") or "").strip(),
            )
    return None


def label_selector(workload: Mapping[str, Any]) -> str | None:
    """``spec.selector.matchLabels`` of a Deployment or StatefulSet as a LIST selector."""
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if not labels:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
