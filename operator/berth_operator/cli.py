"""`berth-operator`: run the Berth operator against the current kubeconfig (in-cluster in a Pod)."""

from __future__ import annotations

import argparse
import logging
import random
import sys

from berth_operator.handlers.options import Options
from berth_operator.render import images


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="berth-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="reconcile Berth custom resources until stopped")
    scope = run.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch this namespace (repeatable)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    run.add_argument(
        "--liveness", metavar="URL", help="serve liveness, e.g. http://0.0.0.0:8080/healthz"
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics at http://0.0.0.0:PORT/metrics (default: off)",
    )
    run.add_argument("--peering", default="berth", help="peering object name (default: berth)")
    run.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority; the highest live replica acts, others pause (default: random)",
    )
    run.add_argument(
        "--standalone", action="store_true", help="no peering (only one replica may run)"
    )
    run.add_argument("--resync-seconds", type=float, default=60.0, help="periodic full reconcile")
    run.add_argument("--workers", type=int, default=16, help="concurrent reconcile passes")
    run.add_argument("--peering-lifetime", type=int, default=60, help=argparse.SUPPRESS)
    defaults = run.add_argument_group(
        "image defaults", "used where a spec names no image (the chart sets them from its values)"
    )
    for flag, default, what in (
        ("--runtime-image", images.RUNTIME_IMAGE, "AgentDeployment spec.image"),
        ("--postgres-image", images.POSTGRES_IMAGE, "spec.postgres.bundled.image"),
        ("--redis-image", images.REDIS_IMAGE, "spec.redis.bundled.image"),
        ("--sandbox-agent-image", images.SANDBOX_AGENT_IMAGE, "SandboxPool authProxy.image"),
        ("--netinit-image", images.NETINIT_IMAGE, "SandboxPool authProxy.netinitImage"),
    ):
        defaults.add_argument(flag, default=default, metavar="IMAGE", help=f"{what} ({default})")
    defaults.add_argument(
        "--image-pull-policy",
        choices=["Always", "IfNotPresent", "Never"],
        default=images.PULL_POLICY,
        help=f"for containers whose spec sets none ({images.PULL_POLICY})",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    run.add_argument("-q", "--quiet", action="store_true", help="warnings only")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    priority = args.priority
    if priority is None:
        priority = random.SystemRandom().randint(1, 2**31 - 1)
    return Options(
        namespaces=tuple(args.namespaces or ()),
        all_namespaces=bool(args.all_namespaces),
        liveness=args.liveness,
        metrics_port=args.metrics_port,
        peering_name=args.peering,
        priority=priority,
        standalone=bool(args.standalone),
        resync_seconds=args.resync_seconds,
        workers=args.workers,
        peering_lifetime=args.peering_lifetime,
        images=images.ImageDefaults(
            runtime=args.runtime_image,
            sandbox_agent=args.sandbox_agent_image,
            netinit=args.netinit_image,
            postgres=args.postgres_image,
            redis=args.redis_image,
            pull_policy=args.image_pull_policy,
        ),
    )


def run(options: Options, *, verbose: bool = False, quiet: bool = False) -> None:
    import kopf

    from berth_operator.handlers.agentdeployment import Operator
    from berth_operator.handlers.sandboxes import Sandboxes

    kopf.configure(verbose=verbose, quiet=quiet, log_format=kopf.LogFormat.PLAIN)
    logging.getLogger("berth").setLevel(logging.WARNING if quiet else logging.INFO)
    if not verbose:  # per-object "Handler ... succeeded" lines: one per child event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if options.metrics_port is not None:
        from berth_operator import metrics

        metrics.serve(options.metrics_port)
    registry = kopf.OperatorRegistry()
    Operator(options).register(registry)
    Sandboxes(options).register(registry)
    logging.getLogger("berth").info(
        "berth-operator: %s, peering %s priority %d, image defaults %s",
        "all namespaces" if options.all_namespaces else f"namespaces {list(options.namespaces)}",
        "off" if options.standalone else repr(options.peering_name),
        options.priority,
        options.images,
    )
    kopf.run(
        registry=registry,
        clusterwide=options.all_namespaces,
        namespaces=list(options.namespaces),
        liveness_endpoint=options.liveness,
        standalone=options.standalone,
        priority=options.priority,
        peering_name=options.peering_name,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        run(options_from(args), verbose=args.verbose, quiet=args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
