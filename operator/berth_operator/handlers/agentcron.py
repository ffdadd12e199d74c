"""kopf handlers of AgentCron: the operator checks only the deploymentRef.

The runtime of the referenced AgentDeployment watches its AgentCrons and writes their
status (docs/agentcron.md); without that deployment nobody would, so the operator reports
``Stalled`` (DeploymentNotFound) and hands over when the deployment appears. Event handlers
only: no finalizer and no annotation is put on the user's AgentCron.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

import kopf

from berth_operator.api.agentcron import PLURAL as CRON_PLURAL
from berth_operator.api.agentdeployment import KIND as AGD_KIND
from berth_operator.api.agentdeployment import PLURAL as AGD_PLURAL
from berth_operator.api.common import API_VERSION, GROUP, VERSION
from berth_operator.k8s.client import Api, ApiError
from berth_operator.k8s.reconcile import now_rfc3339
from berth_operator.render.agentcron_reference import reference_status
from berth_operator.render.names import ChildRef

log = logging.getLogger("berth.operator")


def check_crons(api: Api, namespace: str, crons: list[dict[str, Any]]) -> int:
    """Write the reference status of each AgentCron where it changes; how many were written."""
    written = 0
    exists: dict[str, bool] = {}
    for cron in crons:
        if cron["metadata"].get("deletionTimestamp"):
            continue
        name = ((cron.get("spec") or {}).get("deploymentRef") or {}).get("name")
        if not name:
            continue
        if name not in exists:
            exists[name] = api.get(ChildRef(API_VERSION, AGD_KIND, name), namespace) is not None
        patch = reference_status(cron, exists[name], now_rfc3339())
        if patch is None:
            continue
        try:
            api.patch_status(
                ChildRef(API_VERSION, "AgentCron", cron["metadata"]["name"]), namespace, patch
            )
            written += 1
        except ApiError as e:
            if e.status != 404:
                raise
    return written


def crons_of(api: Api, namespace: str, deployment: str) -> list[dict[str, Any]]:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{CRON_PLURAL}"
    items = api.request("GET", path).get("items") or []
    return [
        c
        for c in items
        if ((c.get("spec") or {}).get("deploymentRef") or {}).get("name") == deployment
    ]


def register(
    registry: kopf.OperatorRegistry, api_of: Callable[[], Api | None], executor: Any
) -> None:
    async def run(fn: Callable[[], int]) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(executor, fn)
        except ApiError as e:
            log.warning("AgentCron reference check failed: %s", e)

    async def cron_event(event: Any, namespace: str | None, **_: Any) -> None:
        api = api_of()
        obj = (event or {}).get("object")
        if api is None or namespace is None or not obj or event.get("type") == "DELETED":
            return
        await run(functools.partial(check_crons, api, namespace, [obj]))

    async def deployment_event(
        name: str | None, namespace: str | None, type: str | None, **_: Any
    ) -> None:
        """Only existence matters: skip MODIFIED (every status patch of a deployment)."""
        api = api_of()
        if api is None or namespace is None or name is None or type == "MODIFIED":
            return

        def recheck() -> int:
            assert api is not None and namespace is not None and name is not None
            return check_crons(api, namespace, crons_of(api, namespace, name))

        await run(recheck)

    kopf.on.event(GROUP, VERSION, CRON_PLURAL, registry=registry, id="agentcron-reference")(
        cron_event
    )
    kopf.on.event(GROUP, VERSION, AGD_PLURAL, registry=registry, id="agentcron-deployments")(
        deployment_event
    )
