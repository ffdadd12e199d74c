"""`berth`: from an agent folder to a running deployment.

\b
    berth dev                 serve the folder locally (embedded Postgres, hot reload)
    berth build -t TAG        build a runtime image with the folder's code and dependencies
    berth deploy              build, push, apply, wait for Ready, print the URL
    berth status | logs | threads | delete

Shell completion: `berth completion bash|zsh|fish` prints the script to source.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from berth_cli.project import ProjectError

console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def package_version() -> str:
    try:
        return version("berth")
    except PackageNotFoundError:
        return "0+unknown"


def versions_text() -> str:
    """`berth --version`: the command, the runtime and the operator it deploys."""
    from berth_cli.images import runtime_image_hint

    v = package_version()
    lines = [
        f"berth {v}",
        f"runtime {v} (berth-runtime; LangGraph Agent Server API; image {runtime_image_hint()})",
        f"operator {v} (berth-operator; CRDs berth.dev/v1alpha1)",
    ]
    return "\n".join(lines)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    click.echo(versions_text())
    ctx.exit()


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/] {message}", markup=True, highlight=False)
    raise SystemExit(code)


def load(config: Path | None) -> Any:
    from berth_cli.load import load_project

    try:
        return load_project(config)
    except ProjectError as e:
        fail(str(e))


@click.group(help=__doc__)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the versions of berth, the runtime and the operator.",
)
def cli() -> None:
    pass


CONFIG_OPTION = click.option(
    "--config",
    "-c",
    type=click.Path(path_type=Path),
    default=None,
    help="langgraph.json, or the project folder (default: the current folder).",
)


@cli.command()
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=2024, show_default=True, type=int, help="Port to bind.")
@click.option("--no-reload", is_flag=True, help="Do not restart the server when files change.")
@click.option("--no-redis", is_flag=True, help="Do not start redis-server even if installed.")
def dev(config: Path | None, host: str, port: int, no_reload: bool, no_redis: bool) -> None:
    """Serve the project locally: embedded Postgres in .berth/dev, hot reload."""
    from berth_cli.dev import DevOptions, run_dev
    from berth_cli.pgembed import PostgresError

    project = load(config)
    options = DevOptions(host=host, port=port, reload=not no_reload, redis=not no_redis)
    try:
        code = run_dev(project, options, console)
    except PostgresError as e:
        fail(str(e), 1)
    raise SystemExit(code)


SHELLS = ("bash", "zsh", "fish")


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(berth completion bash)"."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    if cls is None:  # pragma: no cover - click ships all three
        fail(f"no completion for {shell}")
        return
    comp = cls(cli, {}, "berth", "_BERTH_COMPLETE")
    click.echo(comp.source())


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="berth")


if __name__ == "__main__":
    main()
