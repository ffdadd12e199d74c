"""Configuration: `langgraph.json` plus environment variables, parsed into plain values.

Pure functions only; the CLI and the app read files and the environment and hand them here,
so parsing rules are unit-testable without a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Re-exported: raised by everything that reads configuration.
from berth_runtime.config_error import ConfigError as ConfigError


@dataclass(frozen=True)
class GraphSpec:
    """Where a graph lives: `./path.py:obj` resolved against the config file's folder."""

    graph_id: str
    path: Path
    attr: str


@dataclass(frozen=True)
class StoreTTL:
    default_ttl: float | None = None
    refresh_on_read: bool = True
    sweep_interval_minutes: float | None = None


@dataclass(frozen=True)
class CheckpointerTTL:
    strategy: str = "delete"
    default_ttl: float | None = None
    sweep_interval_minutes: float = 5.0


@dataclass(frozen=True)
class WebhookPolicy:
    """`webhooks.url` in langgraph.json: which URLs a run's `webhook` may point at."""

    require_https: bool = False
    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    max_url_length: int = 4096
    disable_loopback: bool = True
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BerthConfig:
    """What `langgraph.json` declares."""

    base_dir: Path
    graphs: tuple[GraphSpec, ...]
    env: dict[str, str] = field(default_factory=dict)
    dependencies: tuple[Path, ...] = ()
    store_index: dict[str, Any] | None = None
    store_ttl: StoreTTL | None = None
    checkpointer_ttl: CheckpointerTTL | None = None
    webhooks: WebhookPolicy = field(default_factory=WebhookPolicy)
    auth: GraphSpec | None = None
    http_cors: Mapping[str, Any] | None = None  # `http.cors`, checked by berth_runtime.cors
    sandbox: Mapping[str, Any] | None = None  # checked by berth_runtime.sandbox.settings
    # `agent_auth`, checked with the environment (client secrets) by berth_runtime.agent_auth
    agent_auth: Mapping[str, Any] | None = None


def parse_env_file(text: str) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional quotes and `export`."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key.strip()] = value
    return out


def parse_graph_ref(graph_id: str, ref: Any, base_dir: Path) -> GraphSpec:
    """Turn `"./agent.py:graph"` (or `{"path": ...}`) into a GraphSpec."""
    if isinstance(ref, dict):
        ref = ref.get("path")
    if not isinstance(ref, str) or ":" not in ref:
        raise ConfigError(f"graph {graph_id!r}: expected './file.py:object', got {ref!r}")
    path_part, _, attr = ref.rpartition(":")
    if not path_part or not attr:
        raise ConfigError(f"graph {graph_id!r}: expected './file.py:object', got {ref!r}")
    if not path_part.endswith(".py"):
        raise ConfigError(f"graph {graph_id!r}: only Python files are supported, got {ref!r}")
    return GraphSpec(graph_id, (base_dir / path_part).resolve(), attr)


def _number(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{what} must be a number, got {value!r}")
    return float(value)


# `provider:model` strings LangChain's `init_embeddings` knows, plus Berth's own local models.
EMBED_PROVIDERS = frozenset(
    {
        "azure_ai",
        "azure_openai",
        "bedrock",
        "cohere",
        "google_genai",
        "google_vertexai",
        "huggingface",
        "mistralai",
        "ollama",
        "openai",
    }
)
BERTH_EMBEDDINGS = frozenset({"wordllama"})


def embed_kind(embed: str) -> str:
    """What `store.index.embed` names: `berth`, `provider`, `file` or `module`."""
    left, sep, right = embed.rpartition(":")
    if not sep or not left or not right:
        raise ConfigError(
            f"store.index.embed must be 'provider:model', './file.py:function' or "
            f"'package.module:function', got {embed!r}"
        )
    if left == "berth":
        if right not in BERTH_EMBEDDINGS:
            raise ConfigError(
                f"store.index.embed: unknown Berth model {right!r} "
                f"(known: {', '.join(sorted('berth:' + m for m in BERTH_EMBEDDINGS))})"
            )
        return "berth"
    if left.endswith(".py"):
        return "file"
    if left in EMBED_PROVIDERS:
        return "provider"
    if "." in left and all(part.isidentifier() for part in left.split(".")):
        return "module"
    raise ConfigError(
        f"store.index.embed: unknown embeddings provider {left!r} in {embed!r} (known: "
        f"{', '.join(sorted(EMBED_PROVIDERS))}, berth; or './file.py:function', "
        f"'package.module:function')"
    )


def parse_store_index(raw: Any) -> dict[str, Any]:
    """Validate `store.index`: `dims` (positive integer), `embed` (string), `fields` (paths)."""
    if not isinstance(raw, Mapping):
        raise ConfigError("langgraph.json: 'store.index' must be an object")
    dims = raw.get("dims")
    if dims is None:
        raise ConfigError("store.index.dims is required (the embedding size, e.g. 1536)")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
        raise ConfigError(f"store.index.dims must be a positive integer, got {dims!r}")
    if dims > 16000:
        raise ConfigError(f"store.index.dims must be at most 16000 (pgvector), got {dims}")
    embed = raw.get("embed")
    if not isinstance(embed, str) or not embed:
        raise ConfigError(
            "store.index.embed is required: 'provider:model' (e.g. "
            "'openai:text-embedding-3-small'), 'berth:wordllama', './file.py:function' "
            "or 'package.module:function'"
        )
    embed_kind(embed)
    fields = raw.get("fields", ["$"])
    if (
        not isinstance(fields, list)
        or not fields
        or not all(isinstance(f, str) and f for f in fields)
    ):
        raise ConfigError(
            f"store.index.fields must be a non-empty list of field paths, got {fields!r}"
        )
    return {**raw, "dims": dims, "embed": embed, "fields": list(fields)}


def parse_config(
    data: Mapping[str, Any], base_dir: Path, env_file_text: str | None = None
) -> BerthConfig:
    """Validate a decoded `langgraph.json`; `env_file_text` is the `.env` file `env` names."""
    if not isinstance(data, Mapping):
        raise ConfigError("langgraph.json must hold a JSON object")
    graphs_raw = data.get("graphs")
    if not isinstance(graphs_raw, Mapping) or not graphs_raw:
        raise ConfigError("langgraph.json: 'graphs' must be a non-empty object")
    graphs = tuple(parse_graph_ref(str(k), v, base_dir) for k, v in graphs_raw.items())

    env_raw = data.get("env")
    env: dict[str, str] = {}
    if isinstance(env_raw, Mapping):
        env = {str(k): str(v) for k, v in env_raw.items()}
    elif isinstance(env_raw, str):
        env = parse_env_file(env_file_text or "")
    elif env_raw is not None:
        raise ConfigError("langgraph.json: 'env' must be an object or a path to a .env file")

    deps_raw = data.get("dependencies") or []
    if not isinstance(deps_raw, list) or not all(isinstance(d, str) for d in deps_raw):
        raise ConfigError("langgraph.json: 'dependencies' must be a list of strings")
    deps = tuple((base_dir / d).resolve() for d in deps_raw if not _is_package_name(d))

    store_index: dict[str, Any] | None = None
    store_ttl: StoreTTL | None = None
    store_raw = data.get("store")
    store_raw = {} if store_raw is None else store_raw
    if not isinstance(store_raw, Mapping):
        raise ConfigError("langgraph.json: 'store' must be an object")
    if store_raw.get("index") is not None:
        store_index = parse_store_index(store_raw["index"])
    ttl_raw = store_raw.get("ttl")
    if ttl_raw is not None:
        if not isinstance(ttl_raw, Mapping):
            raise ConfigError("langgraph.json: 'store.ttl' must be an object")
        store_ttl = StoreTTL(
            default_ttl=_number(ttl_raw.get("default_ttl"), "store.ttl.default_ttl"),
            refresh_on_read=bool(ttl_raw.get("refresh_on_read", True)),
            sweep_interval_minutes=_number(
                ttl_raw.get("sweep_interval_minutes"), "store.ttl.sweep_interval_minutes"
            ),
        )

    cp_ttl: CheckpointerTTL | None = None
    cp_raw = data.get("checkpointer")
    cp_raw = {} if cp_raw is None else cp_raw
    if not isinstance(cp_raw, Mapping):
        raise ConfigError("langgraph.json: 'checkpointer' must be an object")
    cp_ttl_raw = cp_raw.get("ttl")
    if cp_ttl_raw is not None:
        if not isinstance(cp_ttl_raw, Mapping):
            raise ConfigError("langgraph.json: 'checkpointer.ttl' must be an object")
        strategy = cp_ttl_raw.get("strategy", "delete")
        if strategy not in ("delete", "keep_latest"):
            raise ConfigError("checkpointer.ttl.strategy must be 'delete' or 'keep_latest'")
        cp_ttl = CheckpointerTTL(
            strategy=str(strategy),
            default_ttl=_number(cp_ttl_raw.get("default_ttl"), "checkpointer.ttl.default_ttl"),
            sweep_interval_minutes=_number(
                cp_ttl_raw.get("sweep_interval_minutes"), "checkpointer.ttl.sweep_interval_minutes"
            )
            or 5.0,
        )
    webhooks = parse_webhooks(data.get("webhooks"))
    auth: GraphSpec | None = None
    auth_raw = data.get("auth")
    if auth_raw is not None:
        if not isinstance(auth_raw, Mapping) or not isinstance(auth_raw.get("path"), str):
            raise ConfigError("langgraph.json: 'auth' must be an object with a 'path'")
        auth = parse_graph_ref("auth", auth_raw["path"], base_dir)
    http_raw = {} if data.get("http") is None else data["http"]
    if not isinstance(http_raw, Mapping):
        raise ConfigError("langgraph.json: 'http' must be an object")
    return BerthConfig(
        base_dir,
        graphs,
        env,
        deps,
        store_index,
        store_ttl,
        cp_ttl,
        webhooks,
        auth,
        http_cors=http_raw.get("cors"),
        sandbox=_sandbox(data.get("sandbox")),
        agent_auth=_agent_auth(data.get("agent_auth")),
    )


def _agent_auth(raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError("langgraph.json: 'agent_auth' must be an object")
    return dict(raw)


def _sandbox(raw: Any) -> Mapping[str, Any] | None:
    """Check the `sandbox` object now, so a typo stops start-up, not the first tool call."""
    if raw is None:
        return None
    from berth_runtime.sandbox.settings import parse_sandbox  # not at import: it needs us

    parse_sandbox(raw)
    return dict(raw)


def parse_webhooks(raw: Any) -> WebhookPolicy:
    if raw is None:
        return WebhookPolicy()
    if not isinstance(raw, Mapping):
        raise ConfigError("langgraph.json: 'webhooks' must be an object")
    url = raw.get("url") or {}
    headers = raw.get("headers") or {}
    if not isinstance(url, Mapping) or not isinstance(headers, Mapping):
        raise ConfigError("langgraph.json: 'webhooks.url' and 'webhooks.headers' must be objects")
    domains = url.get("allowed_domains") or []
    ports = url.get("allowed_ports") or []
    if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
        raise ConfigError("webhooks.url.allowed_domains must be a list of strings")
    if not isinstance(ports, list) or not all(isinstance(p, int) for p in ports):
        raise ConfigError("webhooks.url.allowed_ports must be a list of integers")
    return WebhookPolicy(
        require_https=bool(url.get("require_https", False)),
        allowed_domains=tuple(d.lower() for d in domains),
        allowed_ports=tuple(ports),
        max_url_length=int(url.get("max_url_length", 4096)),
        disable_loopback=bool(url.get("disable_loopback", True)),
        headers=tuple((str(k), str(v)) for k, v in headers.items()),
    )


def _is_package_name(dep: str) -> bool:
    """`"."` and `"./src"` are paths; `"langchain-openai"` is a pip requirement we skip."""
    return not (dep.startswith(".") or dep.startswith("/"))


def load_config(path: Path) -> BerthConfig:
    """Read and parse a langgraph.json file (the only I/O in this module)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON: {e}") from e
    base = path.resolve().parent
    env_text = None
    if isinstance(data, dict) and isinstance(data.get("env"), str):
        env_path = base / data["env"]
        env_text = env_path.read_text() if env_path.exists() else ""
    return parse_config(data, base, env_text)


@dataclass(frozen=True)
class Settings:
    """Process settings from environment variables (names as the Agent Server uses them)."""

    database_uri: str
    redis_uri: str | None = None
    n_jobs_per_worker: int = 10
    bg_job_timeout_secs: float = 86400.0
    bg_job_max_retries: int = 3
    shutdown_grace_secs: float = 180.0
    port: int = 8000
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 10.0
    reaper_interval_seconds: float = 15.0
    # How often every process looks for running runs whose worker died (its liveness lock is
    # free) or whose lease lapsed, and re-queues them (queue/liveness.py).
    liveness_seconds: float = 0.5
    # Off behind a transaction-pooling PgBouncer, where session-level locks do not work.
    liveness_lock: bool = True
    poll_seconds: float = 1.0
    stream_ttl_seconds: int = 120
    sse_heartbeat_seconds: float = 5.0
    # Whitespace before the JSON body of /wait and /join while the run goes (proxies cut
    # idle connections); 5 s like the Agent Server.
    wait_heartbeat_seconds: float = 5.0
    pool_max_size: int = 20
    cron_interval_seconds: float = 5.0
    db_wait_seconds: float = 60.0
    max_request_bytes: int = 32 * 1024 * 1024
    pool_timeout_seconds: float = 30.0
    max_pending_runs: int = 0
    max_streams_per_client: int = 0


def _env_num(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from e
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, got {env.get(name)!r}")


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Read Settings from an environment mapping; raise ConfigError with the variable's name."""
    db = env.get("DATABASE_URI") or env.get("POSTGRES_URI")
    if not db:
        raise ConfigError("DATABASE_URI is required (a postgres:// URI)")
    lease = _env_num(env, "BERTH_LEASE_SECONDS", 30.0, 0.1)
    heartbeat = _env_num(env, "BERTH_HEARTBEAT_SECONDS", min(10.0, lease / 3), 0.05)
    if heartbeat >= lease:
        raise ConfigError("BERTH_HEARTBEAT_SECONDS must be smaller than BERTH_LEASE_SECONDS")
    return Settings(
        database_uri=db,
        redis_uri=env.get("REDIS_URI") or None,
        n_jobs_per_worker=int(_env_num(env, "N_JOBS_PER_WORKER", 10)),
        bg_job_timeout_secs=_env_num(env, "BG_JOB_TIMEOUT_SECS", 86400.0, 0.1),
        bg_job_max_retries=int(_env_num(env, "BG_JOB_MAX_RETRIES", 3, 1)),
        shutdown_grace_secs=min(_env_num(env, "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS", 180.0), 3600.0),
        port=int(_env_num(env, "PORT", 8000, 0)),
        lease_seconds=lease,
        heartbeat_seconds=heartbeat,
        reaper_interval_seconds=_env_num(env, "BERTH_REAPER_INTERVAL_SECONDS", 15.0, 0.05),
        liveness_seconds=_env_num(env, "BERTH_LIVENESS_SECONDS", 0.5, 0.05),
        liveness_lock=_env_bool(env, "BERTH_WORKER_LIVENESS_LOCK", True),
        poll_seconds=_env_num(env, "BERTH_POLL_SECONDS", 1.0, 0.01),
        stream_ttl_seconds=int(_env_num(env, "RESUMABLE_STREAM_TTL_SECONDS", 120, 1)),
        sse_heartbeat_seconds=_env_num(env, "BERTH_SSE_HEARTBEAT_SECONDS", 5.0, 0.1),
        wait_heartbeat_seconds=_env_num(env, "BERTH_WAIT_HEARTBEAT_SECONDS", 5.0, 0.1),
        pool_max_size=int(_env_num(env, "LANGGRAPH_POSTGRES_POOL_MAX_SIZE", 20, 2)),
        cron_interval_seconds=_env_num(env, "CRON_SCHEDULER_SLEEP_TIME", 5.0, 0.05),
        db_wait_seconds=_env_num(env, "BERTH_DB_WAIT_SECONDS", 60.0),
        max_request_bytes=int(_env_num(env, "BERTH_MAX_REQUEST_BYTES", 32 * 1024 * 1024, 1024)),
        pool_timeout_seconds=_env_num(env, "BERTH_DB_POOL_TIMEOUT_SECONDS", 30.0, 0.1),
        max_pending_runs=int(_env_num(env, "BERTH_MAX_PENDING_RUNS", 0, 0)),
        max_streams_per_client=int(_env_num(env, "BERTH_MAX_STREAMS_PER_CLIENT", 0, 0)),
    )
