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
import time
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


def make_plan(project: Any, base_image: str | None) -> Any:
    from berth_cli.build import plan
    from berth_cli.images import ImageNotFound, runtime_base_image
    from berth_cli.load import project_files

    try:
        base = runtime_base_image(base_image, project.root)
    except ImageNotFound as e:
        fail(str(e))
    rels = [str(p.relative_to(project.root)) for p in project_files(project.root)]
    from berth_cli.build import excluded

    read = {rel: (project.root / rel).read_bytes() for rel in rels if not excluded(rel)}
    return plan(project, base, read.keys(), read)


def build_image(
    project: Any, base_image: str | None, builder: str, tags: tuple[str, ...], c: Console
) -> Any:
    """Build unless the image with this content's tag exists; returns (plan, builder)."""
    from berth_cli.build import BuildError, build, image_exists, pick_builder

    p = make_plan(project, base_image)
    try:
        chosen = pick_builder(builder)
        if image_exists(chosen, p.ref) and not tags:
            c.print(f"image {p.ref} is up to date ({chosen})")
            return p, chosen
        c.print(f"building {p.ref} with {chosen} ...")
        t0 = time.monotonic()
        build(project, p, chosen, tags, project.root / ".berth" / "build.log")
        c.print(f"built {p.ref} in {time.monotonic() - t0:.1f} s")
    except BuildError as e:
        fail(str(e), 1)
    return p, chosen


@cli.command(name="build")
@CONFIG_OPTION
@click.option("-t", "--tag", "tags", multiple=True, help="Extra image name(s), e.g. me/agent:1.")
@click.option("--base-image", default=None, help="Berth runtime image to build on.")
@click.option(
    "--builder",
    type=click.Choice(["auto", "docker", "buildah"]),
    default="auto",
    show_default=True,
    help="auto: Docker when its daemon answers, else buildah.",
)
@click.option("--dockerfile", is_flag=True, help="Print the Dockerfile and exit.")
def build_cmd(
    config: Path | None,
    tags: tuple[str, ...],
    base_image: str | None,
    builder: str,
    dockerfile: bool,
) -> None:
    """Build a runtime image with the project's code and dependencies."""
    project = load(config)
    if dockerfile:
        click.echo(make_plan(project, base_image).dockerfile, nl=False)
        return
    p, _ = build_image(project, base_image, builder, tags, console)
    click.echo(p.ref)
    for tag in tags:
        click.echo(tag)


OUTPUT_OPTION = click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json: one JSON document on stdout, for scripts.",
)
NAME_OPTION = click.option("--name", default=None, help="Deployment name (default: the project's).")
NAMESPACE_OPTION = click.option(
    "--namespace", "-n", default=None, help="Default: the kubeconfig context's, else default."
)
CONTEXT_OPTION = click.option("--context", default=None, help="kubeconfig context.")


def cluster_for(context: str | None) -> Any:
    from berth_cli.kube import Cluster, ClusterError

    try:
        return Cluster(context)
    except ClusterError as e:
        fail(str(e), 1)


def out(console_: Console, output: str) -> Console:
    """Progress goes to stderr when stdout carries JSON."""
    return err_console if output == "json" else console_


def project_name(config: Path | None, name: str | None) -> str:
    if name:
        return name
    return str(load(config).name)


@cli.command()
@CONFIG_OPTION
@NAME_OPTION
@NAMESPACE_OPTION
@CONTEXT_OPTION
@click.option("--image", default=None, help="Deploy this image instead of building one.")
@click.option("--registry", default=None, help="Push the built image to host:port[/path].")
@click.option("--insecure-registry", is_flag=True, help="No TLS checks for --registry.")
@click.option("--base-image", default=None, help="Berth runtime image to build on.")
@click.option(
    "--builder", type=click.Choice(["auto", "docker", "buildah"]), default="auto", show_default=True
)
@click.option("--server-replicas", default=1, show_default=True, type=click.IntRange(0, 1000))
@click.option(
    "--workers",
    default=0,
    show_default=True,
    type=click.IntRange(0, 1000),
    help="Worker Pods (0: the server Pods run the graphs).",
)
@click.option("--sandbox-pool", default=None, help="SandboxPool for code execution.")
@click.option("--timeout", default=600, show_default=True, type=int, help="Seconds to wait.")
@click.option("--no-wait", is_flag=True, help="Apply and return without waiting for Ready.")
@click.option("--port-forward", type=int, default=None, help="Then forward this local port.")
@OUTPUT_OPTION
def deploy(
    config: Path | None,
    name: str | None,
    namespace: str | None,
    context: str | None,
    image: str | None,
    registry: str | None,
    insecure_registry: bool,
    base_image: str | None,
    builder: str,
    server_replicas: int,
    workers: int,
    sandbox_pool: str | None,
    timeout: int,
    no_wait: bool,
    port_forward: int | None,
    output: str,
) -> None:
    """Build, push, apply (ConfigMap, Secret from .env, AgentDeployment, AgentCrons), wait."""
    import json as _json

    from berth_cli import build as b
    from berth_cli.deploy import apply_project, failure_report, wait_ready
    from berth_cli.deploy import port_forward as forward
    from berth_cli.kube import ClusterError
    from berth_cli.load import read_env_file
    from berth_cli.manifests import DeployOptions

    c = out(console, output)
    project = load(config)
    cluster = cluster_for(context)
    ns = namespace or cluster.default_namespace
    deploy_name = name or project.name
    c.print(f"[bold]deploy[/] {deploy_name} to namespace {ns} ({project.kind}: {project.root})")
    t0 = time.monotonic()
    if image is None:
        p, chosen = build_image(project, base_image, builder, (), c)
        image = p.ref
        if registry:
            dest = b.registry_ref(registry, p, project)
            insecure = insecure_registry or b.is_loopback(registry)
            if b.pushed(dest, insecure):
                c.print(f"  image     [green]ready[/] {dest} (already in the registry)")
            else:
                try:
                    b.push(chosen, p.ref, dest, insecure)
                except b.BuildError as e:
                    fail(str(e), 1)
                c.print(f"  image     [green]ready[/] pushed {dest}")
            image = dest
        else:
            c.print(f"  image     [green]ready[/] {image} (local: no --registry)")
    else:
        c.print(f"  image     [green]ready[/] {image}")
    options = DeployOptions(
        name=deploy_name, namespace=ns, image=image, server_replicas=server_replicas,
        workers=workers, sandbox_pool=sandbox_pool,
    )  # fmt: skip
    try:
        result = apply_project(cluster, project, read_env_file(project), options, c)
        if not no_wait:
            ad, ok = wait_ready(cluster, deploy_name, ns, timeout, c)
            result.ready = ok
            result.endpoint = ((ad or {}).get("status") or {}).get("endpoint")
            if not ok:
                result.failure = failure_report(cluster, ad, ns, c)
    except (ClusterError, ProjectError) as e:
        fail(str(e), 1)
    if output == "json":
        click.echo(_json.dumps(result.as_json(), indent=2))
    if result.failure is not None:
        raise SystemExit(1)
    if result.ready:
        c.print(f"[green]ready[/] in {time.monotonic() - t0:.1f} s: {result.endpoint} (in-cluster)")
        c.print(f"  local access: kubectl -n {ns} port-forward service/{deploy_name} 8000:8000")
    if port_forward is not None and result.ready:
        raise SystemExit(forward(deploy_name, ns, context, port_forward, c))


@cli.command()
@click.option("--name", default=None, help="One deployment (default: every one).")
@NAMESPACE_OPTION
@CONTEXT_OPTION
@OUTPUT_OPTION
def status(name: str | None, namespace: str | None, context: str | None, output: str) -> None:
    """Show AgentDeployments: ready, components, image, endpoint."""
    import json as _json

    from berth_cli import status as st
    from berth_cli.deploy import phases_table, status_table
    from berth_cli.kube import ClusterError

    cluster = cluster_for(context)
    ns = namespace or cluster.default_namespace
    try:
        if name:
            ad = cluster.get("AgentDeployment", name, ns)
            if ad is None:
                fail(f"no AgentDeployment {name!r} in namespace {ns}", 1)
            ads = [ad]
        else:
            ads = cluster.list_objects("berth.dev/v1alpha1", "AgentDeployment", ns, "")
    except ClusterError as e:
        fail(str(e), 1)
    if output == "json":
        click.echo(_json.dumps([st.summary(ad) for ad in ads], indent=2))
        return
    if not ads:
        console.print(f"no AgentDeployments in namespace {ns}")
        return
    console.print(status_table(ads))
    if name:
        console.print(phases_table(ads[0]))


@cli.command()
@click.argument(
    "component", type=click.Choice(["server", "worker", "postgres", "redis"]), default="server"
)
@CONFIG_OPTION
@NAME_OPTION
@NAMESPACE_OPTION
@CONTEXT_OPTION
@click.option("--follow", "-f", is_flag=True, help="Stream new lines.")
@click.option("--tail", default=100, show_default=True, type=int, help="Lines per Pod.")
def logs(
    component: str,
    config: Path | None,
    name: str | None,
    namespace: str | None,
    context: str | None,
    follow: bool,
    tail: int,
) -> None:
    """Print the logs of a deployment's server, worker, postgres or redis Pods."""
    from berth_cli.kube import ClusterError

    deploy_name = project_name(config, name)
    cluster = cluster_for(context)
    ns = namespace or cluster.default_namespace
    try:
        pods = cluster.pods(deploy_name, ns, component)
        if not pods:
            fail(f"no {component} Pods of {deploy_name!r} in namespace {ns}", 1)
        if follow:
            pod = pods[0]["metadata"]["name"]
            for chunk in cluster.follow(pod, ns, tail):
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
            return
        for pod in pods:
            pod_name = pod["metadata"]["name"]
            if len(pods) > 1:
                console.print(f"[bold]==> {pod_name}[/]")
            click.echo(cluster.log(pod_name, ns, tail=tail), nl=False)
    except ClusterError as e:
        fail(str(e), 1)


@cli.command()
@CONFIG_OPTION
@NAME_OPTION
@NAMESPACE_OPTION
@CONTEXT_OPTION
@click.option("--keep-data", is_flag=True, help="Keep the bundled Postgres volume and password.")
@OUTPUT_OPTION
def delete(
    config: Path | None,
    name: str | None,
    namespace: str | None,
    context: str | None,
    keep_data: bool,
    output: str,
) -> None:
    """Delete what `berth deploy` made (and the Postgres data unless --keep-data)."""
    import json as _json

    from berth_cli.kube import ClusterError

    c = out(console, output)
    deploy_name = project_name(config, name)
    cluster = cluster_for(context)
    ns = namespace or cluster.default_namespace
    deleted: list[str] = []
    try:
        objects = cluster.project_objects(deploy_name, ns)
        order = {"AgentCron": 0, "AgentDeployment": 1, "Secret": 2, "ConfigMap": 3}
        for kind, obj_name in sorted(objects, key=lambda k: order.get(k[0], 9)):
            if cluster.delete(kind, obj_name, ns):
                deleted.append(f"{kind}/{obj_name}")
                c.print(f"  deleted {kind} {obj_name}")
        if not keep_data:
            for kind, obj_name in (
                ("PersistentVolumeClaim", f"{deploy_name}-postgres-data"),
                ("Secret", f"{deploy_name}-credentials"),
            ):
                if cluster.delete(kind, obj_name, ns, api_version="v1"):
                    deleted.append(f"{kind}/{obj_name}")
                    c.print(f"  deleted {kind} {obj_name}")
    except ClusterError as e:
        fail(str(e), 1)
    if output == "json":
        click.echo(_json.dumps({"name": deploy_name, "namespace": ns, "deleted": deleted}))
    elif not deleted:
        c.print(f"nothing to delete: no deployment {deploy_name!r} in namespace {ns}")


LOCAL_DEV_URL = "http://127.0.0.1:2024"


@cli.command()
@click.option(
    "--url",
    default=None,
    help=f"The runtime's API. Default: the deployment through a temporary port-forward when "
    f"--name, --namespace or --context is given, else `berth dev` at {LOCAL_DEV_URL}.",
)
@CONFIG_OPTION
@NAME_OPTION
@NAMESPACE_OPTION
@CONTEXT_OPTION
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@OUTPUT_OPTION
def threads(
    url: str | None,
    config: Path | None,
    name: str | None,
    namespace: str | None,
    context: str | None,
    limit: int,
    output: str,
) -> None:
    """Recent threads with their status and latest run, from the runtime API."""
    if url is not None or not (name or namespace or context):
        _print_threads(url or LOCAL_DEV_URL, limit, output)
        return
    from berth_cli.deploy import temporary_port_forward

    deploy_name = project_name(config, name)
    ns = namespace or cluster_for(context).default_namespace
    try:
        with temporary_port_forward(deploy_name, ns, context) as forwarded:
            _print_threads(forwarded, limit, output, f"{ns}/{deploy_name}")
    except RuntimeError as e:
        fail(str(e), 1)


def _print_threads(url: str, limit: int, output: str, where: str | None = None) -> None:
    import json as _json

    from langgraph_sdk import get_sync_client
    from rich.table import Table

    client = get_sync_client(url=url)
    try:
        found = client.threads.search(limit=limit, sort_by="updated_at", sort_order="desc")
        rows: list[dict[str, Any]] = []
        for t in found:
            runs = client.runs.list(t["thread_id"], limit=1)
            last = runs[0] if runs else None
            rows.append(
                {
                    "thread_id": t["thread_id"],
                    "status": t["status"],
                    "updated_at": str(t["updated_at"]),
                    "last_run": None
                    if last is None
                    else {
                        "run_id": last["run_id"],
                        "assistant_id": last["assistant_id"],
                        "status": last["status"],
                    },
                }
            )
    except Exception as e:  # connection refused, HTTP errors: say which URL
        fail(f"{url}: {type(e).__name__}: {e}", 1)
    if output == "json":
        click.echo(_json.dumps(rows, indent=2))
        return
    table = Table(title=f"threads of {where}" if where else f"threads at {url}")
    for col in ("THREAD", "STATUS", "UPDATED", "LAST RUN", "ASSISTANT", "RUN STATUS"):
        table.add_column(col)
    for r in rows:
        run = r["last_run"] or {}
        table.add_row(
            r["thread_id"], r["status"], r["updated_at"], run.get("run_id", ""),
            run.get("assistant_id", ""), run.get("status", ""),
        )  # fmt: skip
    console.print(table)


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
