"""`SandboxClaim`: one sandbox for one thread or assistant, bound from a `SandboxPool`.

Binding adopts a Ready warm Pod (milliseconds) or, when the pool has none, starts
a cold one, never beyond the pool's ``maxSize``. Deleting the claim deletes its
sandbox; so does expiry (``shutdownTime``, or the pool's ``idleTimeout`` and
``maxLifetime``). ``poolRef``, ``threadId`` and ``assistantId`` are immutable (a claim
names one sandbox); ``lifecycle`` may change, e.g. to move ``shutdownTime``.

``executorTokenSHA256`` lets the claimant choose the executor's token: the runtime derives
it from its own key, so no token Secret is created and the runtime needs no Secret access.
Without it the operator generates a token into Secret ``<claim>-executor`` (hand-made claims).

``deploymentRef`` names the AgentDeployment that claims (the runtime sets it): with
``threadId``, a pool whose proxy rules name an ``oauthProvider`` gets that deployment's
runtime URL and the thread's proxy token, in a Secret mounted into the proxy only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from berth_operator.api.common import BerthModel, Conditions, FreeForm, LocalObjectReference

KIND = "SandboxClaim"
PLURAL = "sandboxclaims"
SINGULAR = "sandboxclaim"
SHORT_NAMES = ["sbc"]
MAX_NAME_LENGTH = 63
"""The claim's name is a label value on its Pod (``berth.dev/claim``)."""

LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LABEL_VALUE_MESSAGE = (
    "must be a valid label value (at most 63 letters, digits, '-', '_' or '.', "
    "starting and ending with a letter or digit): it labels the claim and its Pod"
)

TOKEN_SHA256 = r"^[0-9a-f]{64}$"

# Reasons of the claim's conditions (H1b's handlers and the runtime client use these).
REASON_BOUND = "Bound"
REASON_PENDING = "Pending"  # looking for a Pod / waiting for a cold Pod to be Ready
REASON_POOL_NOT_FOUND = "PoolNotFound"
REASON_POOL_INVALID = "PoolInvalid"
REASON_POOL_EXHAUSTED = "PoolExhausted"
REASON_EXPIRED = "Expired"
REASON_SANDBOX_LOST = "SandboxLost"  # the bound Pod failed or was deleted
REASON_INVALID_SPEC = "InvalidSpec"
REASON_AGENT_AUTH_UNAVAILABLE = "AgentAuthUnavailable"
"""The pool injects thread users' OAuth tokens, but the claim's deployment cannot serve them."""


class PoolRef(LocalObjectReference):
    """The SandboxPool (same namespace) that provides the sandbox."""


class DeploymentRef(LocalObjectReference):
    """The AgentDeployment (same namespace) that claims the sandbox."""


class ClaimLifecycle(BerthModel):
    """When the claim ends and when the ended claim itself goes away."""

    shutdown_time: str | None = Field(
        default=None,
        description="RFC 3339 time at which the sandbox is reclaimed (e.g. 2026-12-03T18:00:00Z).",
        json_schema_extra={"format": "date-time"},
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=31536000,
        description="Delete the claim this long after it finished (Expired or SandboxLost). "
        "Unset: keep it until deleted.",
    )

    @field_validator("shutdown_time")
    @classmethod
    def _rfc3339(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parsed = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                "shutdownTime must be an RFC 3339 time such as 2026-12-03T18:00:00Z"
            ) from None
        if parsed.tzinfo is None:
            raise ValueError("shutdownTime must carry a time zone (e.g. a trailing Z)")
        return v

    @property
    def shutdown_at(self) -> datetime | None:
        if self.shutdown_time is None:
            return None
        return datetime.fromisoformat(self.shutdown_time.replace("Z", "+00:00"))


class SandboxClaimSpec(BerthModel):
    """A request for one sandbox from a pool."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.poolRef == oldSelf.poolRef && "
                    "has(self.threadId) == has(oldSelf.threadId) && "
                    "(!has(self.threadId) || self.threadId == oldSelf.threadId) && "
                    "has(self.assistantId) == has(oldSelf.assistantId) && "
                    "(!has(self.assistantId) || self.assistantId == oldSelf.assistantId)",
                    "message": "poolRef, threadId and assistantId are immutable: delete the "
                    "claim and create a new one",
                },
                {
                    "rule": "has(self.deploymentRef) == has(oldSelf.deploymentRef) && "
                    "(!has(self.deploymentRef) || self.deploymentRef == oldSelf.deploymentRef)",
                    "message": "deploymentRef is immutable: delete the claim and create a new one",
                },
                {
                    "rule": "has(self.executorTokenSHA256) == has(oldSelf.executorTokenSHA256) && "
                    "(!has(self.executorTokenSHA256) || "
                    "self.executorTokenSHA256 == oldSelf.executorTokenSHA256)",
                    "message": "executorTokenSHA256 is immutable: the bound sandbox accepts "
                    "only that token",
                },
            ]
        }
    )

    pool_ref: PoolRef
    thread_id: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_VALUE,
        description="The thread this sandbox belongs to (label berth.dev/thread-id).",
    )
    assistant_id: str | None = Field(
        default=None,
        max_length=63,
        pattern=LABEL_VALUE,
        description="The assistant this sandbox belongs to (label berth.dev/assistant-id).",
    )
    lifecycle: ClaimLifecycle | None = None
    deployment_ref: DeploymentRef | None = Field(
        default=None,
        description="The AgentDeployment that claims (the runtime sets it). With threadId, "
        "a pool whose proxy rules name an oauthProvider gets this deployment's runtime URL "
        "and the thread's proxy token, for the proxy only.",
    )
    executor_token_sha256: str | None = Field(
        default=None,
        alias="executorTokenSHA256",
        max_length=64,
        pattern=TOKEN_SHA256,
        description="Hex sha256 of the executor token the claimant will send (the Pod's "
        "berth.dev/executor-token-sha256). Set: no token Secret is created. Unset: the "
        "operator generates a token into Secret <claim>-executor.",
    )


LaunchType = Literal["warm", "cold"]


class SandboxClaimStatus(BerthModel):
    """What the operator observed; written only by the operator."""

    observed_generation: int | None = None
    conditions: Conditions | None = None
    pod_name: str | None = Field(default=None, description="The sandbox Pod.")
    pod_ip: str | None = Field(default=None, alias="podIP", description="The sandbox Pod's IP.")
    launch_type: LaunchType | None = Field(
        default=None, description="warm: adopted from the pool; cold: started for this claim."
    )
    bound_at: str | None = Field(default=None, json_schema_extra={"format": "date-time"})
    expires_at: str | None = Field(
        default=None,
        description="Earliest of shutdownTime and boundAt + maxLifetime (idleTimeout "
        "not included: it moves).",
        json_schema_extra={"format": "date-time"},
    )
    finished_at: str | None = Field(
        default=None,
        description="When the claim expired or lost its sandbox (ttlSecondsAfterFinished "
        "counts from here).",
        json_schema_extra={"format": "date-time"},
    )
    token_secret_name: str | None = Field(
        default=None, description="Secret holding the executor's bearer token (key 'token')."
    )
    kopf: FreeForm | None = Field(default=None, description="Reserved for the kopf framework.")


def parse_spec(spec: Any) -> SandboxClaimSpec:
    """Validate a spec read from the API (raises pydantic.ValidationError)."""
    return SandboxClaimSpec.model_validate(spec)
