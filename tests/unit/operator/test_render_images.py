"""Image defaults: what the operator renders when a spec names no image, and that an
explicit image always wins untouched."""

from __future__ import annotations

from typing import Any

from berth_operator.api.agentdeployment import AgentDeploymentSpec, parse_spec
from berth_operator.cli import build_parser, options_from
from berth_operator.render import images as img
from berth_operator.render.desired import Observed, render
from berth_operator.render.images import ImageDefaults
from berth_operator.render.meta import APPLIED_HASH
from berth_operator.render.sandbox.pod import template_hash, warm_pod

from tests.unit.operator.factories import PASSWORDS, find, spec, subject
from tests.unit.operator.sandbox_factories import pool_spec, pool_subject

LOCAL = ImageDefaults(
    runtime="127.0.0.1:5000/berth-dev/berth-runtime:dev",
    sandbox_agent="127.0.0.1:5000/berth-dev/berth-sandbox-agent:dev",
    netinit="127.0.0.1:5000/berth-dev/berth-sandbox-netinit:dev",
    postgres="127.0.0.1:5000/berth-test-postgres:dev",
    redis="127.0.0.1:5000/berth-test-redis:dev",
    pull_policy="Never",
)
BARE = {"graphs": {"inline": {"graphs": {"agent": "/app/agent.py:graph"}}}}


def _bare(**fields: Any) -> AgentDeploymentSpec:
    return parse_spec({**BARE, **fields})


def _containers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pod = obj["spec"]["template"]["spec"] if obj["kind"] != "Pod" else obj["spec"]
    every = [*pod.get("initContainers", ()), *pod["containers"]]
    return {c["name"]: c for c in every}


def _agd_images(s: AgentDeploymentSpec, images: ImageDefaults) -> dict[str, tuple[str, str]]:
    d = render(subject(), s, Observed(), PASSWORDS, images)
    out = {}
    for kind, name, container in (
        ("Deployment", "demo-server", "runtime"),
        ("StatefulSet", "demo-postgres", "postgres"),
        ("Deployment", "demo-redis", "redis"),
    ):
        c = _containers(find(d, kind, name))[container]
        out[container] = (c["image"], c["imagePullPolicy"])
    return out


def test_built_in_defaults_are_the_official_images() -> None:
    d = ImageDefaults()
    assert d.runtime == f"ghcr.io/berth-dev/berth-runtime:{img.VERSION}"
    assert d.sandbox_agent == f"ghcr.io/berth-dev/berth-sandbox-agent:{img.VERSION}"
    assert d.netinit == f"ghcr.io/berth-dev/berth-sandbox-netinit:{img.VERSION}"
    assert (d.postgres, d.redis, d.pull_policy) == ("postgres:16", "redis:7", "IfNotPresent")


def test_an_agent_deployment_without_images_gets_the_configured_ones() -> None:
    bare = _bare()
    assert bare.image is None and bare.postgres.bundled is not None
    assert _agd_images(bare, ImageDefaults()) == {
        "runtime": (img.RUNTIME_IMAGE, "IfNotPresent"),
        "postgres": ("postgres:16", "IfNotPresent"),
        "redis": ("redis:7", "IfNotPresent"),
    }
    assert _agd_images(bare, LOCAL) == {
        "runtime": (LOCAL.runtime, "Never"),
        "postgres": (LOCAL.postgres, "Never"),
        "redis": (LOCAL.redis, "Never"),
    }


def test_explicit_images_win_untouched_whatever_the_defaults() -> None:
    s = _bare(
        image="registry.example.com/support-agent:1.4",
        imagePullPolicy="Always",
        postgres={"bundled": {"image": "postgres:17.2"}},
        redis={"bundled": {"image": "valkey/valkey:8"}},
    )
    for defaults in (ImageDefaults(), LOCAL):
        got = _agd_images(s, defaults)
        assert got["runtime"] == ("registry.example.com/support-agent:1.4", "Always")
        assert got["postgres"][0] == "postgres:17.2"
        assert got["redis"][0] == "valkey/valkey:8"
    assert s.image == "registry.example.com/support-agent:1.4"  # the spec is not rewritten


def test_a_new_default_re_applies_only_the_children_that_use_it() -> None:
    """The applied hash carries the resolved image: an operator upgrade rolls the Pods
    of specs that left the image out, and of no others."""

    def hashes(s: AgentDeploymentSpec, images: ImageDefaults) -> dict[str, str]:
        d = render(subject(), s, Observed(), PASSWORDS, images)
        return {
            f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["annotations"][APPLIED_HASH]
            for o in d.objects
        }

    moved = ImageDefaults(runtime="ghcr.io/berth-dev/berth-runtime:0.2.0")
    before, after = hashes(_bare(), ImageDefaults()), hashes(_bare(), moved)
    assert {k for k in before if before[k] != after[k]} == {"Deployment/demo-server"}
    pinned = spec()  # names its image
    assert hashes(pinned, ImageDefaults()) == hashes(pinned, moved)


def test_sandbox_pool_proxy_images_default_to_the_configured_ones() -> None:
    for defaults in (ImageDefaults(), LOCAL):
        c = _containers(warm_pod(pool_subject(), pool_spec(), "py-a", images=defaults))
        assert c["auth-proxy"]["image"] == defaults.sandbox_agent
        assert c["executor-install"]["image"] == defaults.sandbox_agent
        assert c["egress-init"]["image"] == defaults.netinit
        for name in ("auth-proxy", "executor-install", "egress-init"):
            assert c[name]["imagePullPolicy"] == defaults.pull_policy
        assert c["sandbox"]["image"] == "python:3.12-slim"  # the user's, never defaulted


def test_sandbox_pool_explicit_proxy_images_win() -> None:
    s = pool_spec(
        authProxy={
            "image": "me/agent:9",
            "netinitImage": "me/netinit:9",
            "imagePullPolicy": "Always",
        }
    )
    c = _containers(warm_pod(pool_subject(), s, "py-a", images=LOCAL))
    assert (c["auth-proxy"]["image"], c["egress-init"]["image"]) == ("me/agent:9", "me/netinit:9")
    assert c["executor-install"]["imagePullPolicy"] == "Always"


def test_template_hash_follows_the_resolved_images() -> None:
    """A new default makes warm Pods stale (the update strategy replaces them); a spec
    naming all three keeps one hash whatever the operator's defaults."""
    assert template_hash(pool_spec(), ImageDefaults()) != template_hash(pool_spec(), LOCAL)
    pinned = pool_spec(
        authProxy={
            "image": img.SANDBOX_AGENT_IMAGE,
            "netinitImage": img.NETINIT_IMAGE,
            "imagePullPolicy": "IfNotPresent",
        }
    )
    assert template_hash(pinned, ImageDefaults()) == template_hash(pinned, LOCAL)
    # Before the defaults moved out of the schema, the API server wrote them into every
    # spec; such a pool keeps its hash, so an operator upgrade does not recreate its Pods.
    assert template_hash(pinned, LOCAL) == template_hash(pool_spec(), ImageDefaults())


def test_cli_flags_become_the_image_defaults() -> None:
    parse = build_parser().parse_args
    assert options_from(parse(["run", "-A"])).images == ImageDefaults()
    argv = ["run", "-A"]
    for flag, value in (
        ("--runtime-image", LOCAL.runtime),
        ("--postgres-image", LOCAL.postgres),
        ("--redis-image", LOCAL.redis),
        ("--sandbox-agent-image", LOCAL.sandbox_agent),
        ("--netinit-image", LOCAL.netinit),
        ("--image-pull-policy", LOCAL.pull_policy),
    ):
        argv.append(f"{flag}={value}")
    assert options_from(parse(argv)).images == LOCAL
