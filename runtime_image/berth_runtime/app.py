"""The ASGI application: migrations, pools, graphs and workers wired up in the lifespan."""

from __future__ import annotations

import gc
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from berth_runtime.agent_auth.config import parse_agent_auth
from berth_runtime.api import assistants, system
from berth_runtime.api.errors import install_error_handlers
from berth_runtime.api.limits import RequestSizeLimit, StreamsPerClient
from berth_runtime.api.openapi import install_openapi
from berth_runtime.bus import Bus
from berth_runtime.config import BerthConfig, Settings
from berth_runtime.context import Runtime
from berth_runtime.cors import cors_options
from berth_runtime.crons.scheduler import scheduler_loop
from berth_runtime.db.checkpointer import PooledPostgresSaver
from berth_runtime.db.migrate import migrate
from berth_runtime.db.pool import open_pool
from berth_runtime.graphs.loader import GraphRegistry
from berth_runtime.queue.worker import Worker
from berth_runtime.sandbox.lifecycle import start_sandboxes, stop_sandboxes
from berth_runtime.store.index import BerthStore, StoreIndexError, setup_store_index
from berth_runtime.telemetry.tracing import setup_tracing, shutdown_tracing

log = logging.getLogger(__name__)

ROLES = ("serve", "api", "worker")


def _store_kwargs(config: BerthConfig, embeddings: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if config.store_index and embeddings is not None:
        kwargs["index"] = {**config.store_index, "embed": embeddings}
    if config.store_ttl is not None:
        ttl: dict[str, Any] = {"refresh_on_read": config.store_ttl.refresh_on_read}
        if config.store_ttl.default_ttl is not None:
            ttl["default_ttl"] = config.store_ttl.default_ttl
        if config.store_ttl.sweep_interval_minutes is not None:
            ttl["sweep_interval_minutes"] = int(config.store_ttl.sweep_interval_minutes)
        kwargs["ttl"] = ttl
    return kwargs


def create_app(role: str, settings: Settings, config: BerthConfig) -> FastAPI:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")

    for key, value in config.env.items():
        os.environ.setdefault(key, value)
    # Checked now, not in the lifespan: incomplete providers or a missing key stop start-up.
    auth_config = parse_agent_auth(config.agent_auth, os.environ)
    sealer = None
    if auth_config is not None:
        from berth_runtime.agent_auth.crypto import sealer_from_env

        sealer = sealer_from_env(os.environ)
    embeddings = None
    if config.store_index:
        from berth_runtime.store.embeddings import load_embeddings

        # Loaded now: a bad `store.index.embed` stops start-up with its message.
        embeddings = load_embeddings(config.store_index, config.base_dir, config.dependencies)

    async def _store_index() -> None:
        if config.store_index and embeddings is not None:
            try:
                embedded = await setup_store_index(
                    settings.database_uri, config.store_index, embeddings
                )
            except StoreIndexError as e:
                log.error("berth-runtime cannot start: %s", e)
                raise
            if embedded:
                log.info("store.index: %d items embedded", embedded)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_tracing(os.environ)
        applied = await migrate(settings.database_uri, settings.db_wait_seconds, _store_index)
        if applied:
            log.info("applied migrations %s", applied)
        # The pool's sessions name this process, so a reaper can tell when the last of them
        # is gone after the process died (queue.sql, reap_lost).
        tag = uuid.uuid4().hex[:8]
        pool = await open_pool(
            settings.database_uri,
            settings.pool_max_size,
            f"berth-{role}",
            f"berth {tag}",
            wait_timeout=settings.pool_timeout_seconds,
        )
        checkpointer = PooledPostgresSaver(pool)
        memory = BerthStore(pool, **_store_kwargs(config, embeddings))
        graphs = GraphRegistry.load(config.graphs, config.dependencies, checkpointer, memory)
        bus = Bus(settings.redis_uri, settings.database_uri, settings.stream_ttl_seconds)
        rt = Runtime(settings, config, pool, checkpointer, memory, graphs, bus, role)
        app.state.rt = rt
        app.state.agent_auth = None
        if auth_config is not None and sealer is not None:
            from berth_runtime.agent_auth.service import AgentAuth, set_service

            app.state.agent_auth = AgentAuth(auth_config, sealer, pool)
            set_service(app.state.agent_auth)
        await assistants.ensure_default_assistants(rt)
        # `api` processes claim nothing and fire no crons, but they too re-queue the runs of
        # dead workers: the more processes look, the sooner a lost run is picked up again.
        worker = Worker(rt, tag) if role in ("serve", "worker") else Worker(rt, tag, slots=0)
        loops = [] if role == "api" else [("berth-crons", scheduler_loop)]
        await worker.start(housekeeping=role != "api", loops=loops)
        app.state.worker = worker
        if role in ("serve", "worker"):
            start_sandboxes(config.sandbox, os.environ)
        if config.store_ttl is not None and config.store_ttl.default_ttl is not None:
            await memory.start_ttl_sweeper()
        log.info("berth-runtime %s ready (graphs: %s)", role, ", ".join(graphs.ids()))
        # Everything loaded so far (LangGraph, LangChain, the graphs) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks it and so
        # no longer stalls every run and stream of the process for tens of milliseconds.
        gc.freeze()
        try:
            yield
        finally:
            await worker.shutdown(settings.shutdown_grace_secs)
            await stop_sandboxes()
            if app.state.agent_auth is not None:
                from berth_runtime.agent_auth.service import set_service

                set_service(None)
                await app.state.agent_auth.close()
            if config.store_ttl is not None and config.store_ttl.default_ttl is not None:
                await memory.stop_ttl_sweeper()
            await bus.close()
            await pool.close()
            shutdown_tracing()

    app = FastAPI(title="Berth agent server", version="0.1.0", lifespan=lifespan)
    app.state.auth = None
    # The HTTP API's modules load only where the API is served: a `worker` (which answers
    # /ok and /info only) starts without importing them (MCP, A2A, ...), so a restarted
    # worker is ready sooner.
    api_served = role in ("serve", "api")
    if api_served:
        from berth_runtime.api import agent_auth
    # Inside the auth middleware (added before it): a stream counts against its user.
    app.add_middleware(StreamsPerClient, limit=settings.max_streams_per_client)
    if config.auth is not None:
        from berth_runtime.auth.loader import load_auth
        from berth_runtime.auth.middleware import AuthMiddleware

        # Loaded now, not in the lifespan: a bad auth module must stop the process at once.
        app.state.auth = load_auth(config.auth, config.dependencies)
        app.add_middleware(
            AuthMiddleware,
            auth=app.state.auth,
            bypass=agent_auth.bypasses_custom_auth if api_served else None,
        )
    # Added last, so outermost: preflights and auth failures get CORS headers too.
    app.add_middleware(CORSMiddleware, **cors_options(config.http_cors, os.environ))
    install_error_handlers(app)
    app.add_middleware(RequestSizeLimit, max_bytes=settings.max_request_bytes)
    install_openapi(app, custom_auth=config.auth is not None)
    app.include_router(system.router)
    if api_served:
        from berth_runtime.api import (
            a2a,
            crons,
            mcp,
            runs,
            storage,
            store,
            stream_v2,
            thread_stream,
            threads,
        )

        for module in (assistants, threads, thread_stream, crons, runs, store):
            app.include_router(module.router)
        # Issue 7: the rest of the Agent Server surface (MCP is mounted below).
        for module in (a2a, stream_v2, storage, agent_auth):
            app.include_router(module.router)
        mcp.install(app)
    return app
