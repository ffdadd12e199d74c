"""`berth-runtime [serve|api|worker] --config langgraph.json --host H --port P`.

Roles: `serve` runs the HTTP API and queue workers in one process, `api` only the HTTP API,
`worker` only the queue (it still answers /ok and /info for probes). The socket opens only
after migrations and start-up are done.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from berth_runtime.app import ROLES, create_app
from berth_runtime.config import ConfigError, load_config, settings_from_env
from berth_runtime.telemetry.logs import configure_logging

log = logging.getLogger("berth_runtime")


def parse_args(argv: list[str] | None, env: dict[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth-runtime", description=__doc__)
    parser.add_argument("role", nargs="?", default="serve", choices=ROLES)
    parser.add_argument(
        "--config",
        default=env.get("BERTH_CONFIG") or "./langgraph.json",
        help="path of langgraph.json (env BERTH_CONFIG)",
    )
    parser.add_argument("--host", default=env.get("HOST") or "0.0.0.0")
    parser.add_argument("--port", type=int, default=None, help="default: env PORT or 8000")
    return parser.parse_args(argv)


class _Server(uvicorn.Server):
    """Stops workers from claiming new runs as soon as the shutdown signal arrives."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        app = self.config.loaded_app
        worker = getattr(getattr(getattr(app, "app", app), "state", None), "worker", None)
        if worker is not None:
            try:
                asyncio.get_running_loop().call_soon_threadsafe(worker.stop_claiming)
            except RuntimeError:
                worker.stop_claiming()
        super().handle_exit(sig, frame)


def main(argv: list[str] | None = None) -> None:
    env = dict(os.environ)
    try:
        log_format = configure_logging(env)
    except ValueError as e:
        print(f"berth-runtime: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    args = parse_args(argv, env)
    try:
        settings = settings_from_env(env)
        config = load_config(Path(args.config))
        app = create_app(args.role, settings, config)
    except ConfigError as e:
        print(f"berth-runtime: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    port = args.port if args.port is not None else settings.port
    # Where graphs reach this server's Agent Auth API (langchain-auth's Client(api_url=...)).
    os.environ.setdefault("BERTH_AGENT_AUTH_URL", f"http://127.0.0.1:{port}")
    # JSON logs: uvicorn's loggers go through the root handler instead of their own.
    log_config: dict[str, Any] | None = (
        None if log_format == "json" else uvicorn.config.LOGGING_CONFIG
    )
    server = _Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=port,
            log_level=env.get("LOG_LEVEL", "info").lower(),
            timeout_graceful_shutdown=int(max(1, settings.shutdown_grace_secs)),
            lifespan="on",
            log_config=log_config,
        )
    )
    server.run()
    if not server.started:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
