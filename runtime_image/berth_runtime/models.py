"""Request bodies of the Agent Server API, as pydantic models (a bad body answers 422)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

StreamMode = Literal[
    "values",
    "messages",
    "messages-tuple",
    "tasks",
    "checkpoints",
    "updates",
    "events",
    "debug",
    "custom",
]
MultitaskStrategy = Literal["reject", "rollback", "interrupt", "enqueue"]
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
TERMINAL = frozenset({"success", "error", "timeout", "interrupted"})  # a run that is over
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]


def check_config(cls: Any, v: dict[str, Any] | None) -> dict[str, Any] | None:
    """A RunnableConfig's nested parts must have the right shape before anything merges them."""
    if v is None:
        return v
    for key in ("configurable", "metadata"):
        if v.get(key) is not None and not isinstance(v[key], dict):
            raise ValueError(f"config.{key} must be an object")
    if v.get("tags") is not None and not isinstance(v["tags"], list):
        raise ValueError("config.tags must be a list")
    return v


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AssistantCreate(_Body):
    assistant_id: UUID | None = None
    graph_id: str
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None

    _config_shape = field_validator("config", mode="after")(check_config)


class AssistantPatch(_Body):
    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None

    _config_shape = field_validator("config", mode="after")(check_config)


class AssistantSearch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["assistant_id", "created_at", "updated_at", "name", "graph_id"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class AssistantCount(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    graph_id: str | None = None
    name: str | None = None


class AssistantVersionsSearch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class AssistantSetLatest(_Body):
    version: int


class ThreadTTL(_Body):
    strategy: Literal["delete", "keep_latest"] = "delete"
    ttl: float = Field(gt=0, description="minutes from the thread's last update")


class ThreadCreate(_Body):
    thread_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: ThreadTTL | None = None
    graph_id: str | None = None
    supersteps: list[dict[str, Any]] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl: ThreadTTL | None = None


class ThreadSearch(_Body):
    ids: list[UUID] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)
    status: ThreadStatus | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: (
        Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] | None
    ) = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class ThreadPrune(_Body):
    thread_ids: list[UUID]
    strategy: Literal["delete", "keep_latest"] = "delete"


class ThreadCount(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)
    status: ThreadStatus | None = None


class CheckpointConfig(_Body):
    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class ThreadStateUpdate(_Body):
    values: dict[str, Any] | list[Any] | None = None
    checkpoint: CheckpointConfig | None = None
    checkpoint_id: str | None = None
    as_node: str | None = None


class ThreadStateCheckpointRequest(_Body):
    checkpoint: CheckpointConfig
    subgraphs: bool = False


class ThreadHistoryRequest(_Body):
    limit: int = Field(10, ge=1, le=1000)
    before: CheckpointConfig | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointConfig | None = None


class Command(_Body):
    update: dict[str, Any] | list[Any] | None = None
    resume: Any = None
    goto: Any = None


class _RunCreate(_Body):
    assistant_id: str
    input: dict[str, Any] | list[Any] | str | int | float | bool | None = None
    command: Command | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    feedback_keys: list[str] | None = None
    after_seconds: float = Field(0.0, ge=0)
    durability: Literal["sync", "async", "exit"] | None = None
    checkpoint_during: bool | None = None
    on_disconnect: Literal["cancel", "continue"] = "continue"

    @field_validator("stream_mode", mode="after")
    @classmethod
    def _modes_as_list(cls, v: StreamMode | list[StreamMode]) -> list[StreamMode]:
        return [v] if isinstance(v, str) else v

    @field_validator("metadata", "config", mode="before")
    @classmethod
    def _none_is_empty(cls, v: Any) -> Any:
        return {} if v is None else v

    _config_shape = field_validator("config", mode="after")(check_config)

    @model_validator(mode="after")
    def _input_xor_command(self) -> _RunCreate:
        if self.input is not None and self.command is not None:
            raise ValueError("Cannot specify both 'input' and 'command'")
        return self

    def stream_modes(self) -> list[StreamMode]:
        modes = self.stream_mode
        return list(modes) if isinstance(modes, list) else [modes]


class RunCreateStateful(_RunCreate):
    checkpoint: CheckpointConfig | None = None
    checkpoint_id: str | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"


class RunCreateStateless(_RunCreate):
    on_completion: Literal["delete", "keep"] = "delete"


class RunsCancel(_Body):
    status: Literal["pending", "running", "all"] | None = None
    thread_id: UUID | None = None
    run_ids: list[UUID] | None = None


class StorePut(_Body):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    index: Literal[False] | list[str] | None = None
    ttl: float | None = None


class StoreDelete(_Body):
    namespace: list[str] = Field(default_factory=list)
    key: str


class StoreSearch(_Body):
    namespace_prefix: list[str] | None = None
    filter: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreListNamespaces(_Body):
    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = Field(None, ge=1)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class _CronFields(_Body):
    input: dict[str, Any] | list[Any] | str | int | float | bool | None = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None

    _config_shape = field_validator("config", mode="after")(check_config)


class CronCreate(_CronFields):
    assistant_id: str
    schedule: str
    timezone: str | None = None
    end_time: datetime | None = None
    enabled: bool = True
    on_run_completed: Literal["delete", "keep"] = "delete"
    multitask_strategy: MultitaskStrategy = "enqueue"


class CronPatch(_CronFields):
    schedule: str | None = None
    timezone: str | None = None
    end_time: datetime | None = None
    enabled: bool | None = None
    on_run_completed: Literal["delete", "keep"] | None = None


class CronSearch(_Body):
    assistant_id: str | None = None
    thread_id: UUID | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal[
        "cron_id",
        "assistant_id",
        "thread_id",
        "next_run_date",
        "end_time",
        "created_at",
        "updated_at",
    ] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class CronCount(_Body):
    assistant_id: str | None = None
    thread_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
