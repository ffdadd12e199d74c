"""The chart's images: one `global.imageRegistry` moves every image, per-image overrides,
the values schema, and the operator's flags carrying each default.

The operator's arguments are parsed with the operator's own CLI parser, so the test
fails if the chart passes a flag the operator does not understand.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from berth_operator.api.generate import REPO, helm_binary
from berth_operator.cli import build_parser, options_from
from berth_operator.render.images import ImageDefaults

from tests.support import images

CHART = str(REPO / "charts" / "berth")
LOCAL = ["--set", "global.imageRegistry=127.0.0.1:5000"]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False)


def operator_container(*args: str) -> dict[str, Any]:
    result = helm("template", "berth", CHART, "--namespace", "berth-system", *args)
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    container: dict[str, Any] = deploy["spec"]["template"]["spec"]["containers"][0]
    return container


def images_of(container: dict[str, Any]) -> ImageDefaults:
    """What the operator would run with, parsed from the rendered args by its own CLI."""
    return options_from(build_parser().parse_args(container["args"])).images


def test_defaults_are_the_operators_built_in_images() -> None:
    c = operator_container()
    assert c["image"] == "ghcr.io/berth-dev/berth-operator:0.1.0"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert images_of(c) == ImageDefaults()
    flags = {a.split("=", 1)[0] for a in c["args"]}
    assert {
        "--runtime-image",
        "--postgres-image",
        "--redis-image",
        "--sandbox-agent-image",
        "--netinit-image",
        "--image-pull-policy",
    } <= flags  # every default is explicit in the Pod spec, not left to the binary


def test_one_value_points_every_image_at_a_registry() -> None:
    c = operator_container(*LOCAL)
    assert c["image"] == "127.0.0.1:5000/berth-dev/berth-operator:0.1.0"
    assert images_of(c) == ImageDefaults(
        runtime="127.0.0.1:5000/berth-dev/berth-runtime:0.1.0",
        sandbox_agent="127.0.0.1:5000/berth-dev/berth-sandbox-agent:0.1.0",
        netinit="127.0.0.1:5000/berth-dev/berth-sandbox-netinit:0.1.0",
        postgres="127.0.0.1:5000/postgres:16",
        redis="127.0.0.1:5000/redis:7",
        pull_policy="IfNotPresent",
    )


def test_per_image_overrides_tags_digests_and_a_registry_with_a_path() -> None:
    digest = "sha256:" + "0" * 64
    c = operator_container(
        "--set",
        "global.imageRegistry=mirror.example.com:8443/berth/",
        "--set",
        "image.tag=dev",
        "--set",
        "images.postgres.repository=berth-test-postgres",
        "--set",
        "images.postgres.tag=dev",
        "--set",
        "images.redis.tag=7",  # --set makes this an integer
        "--set",
        "images.runtime.repository=localhost:5000/team/agent",
        "--set",
        f"images.runtime.tag={digest}",
        "--set",
        "images.pullPolicy=Never",
    )
    assert c["image"] == "mirror.example.com:8443/berth/berth-dev/berth-operator:dev"
    got = images_of(c)
    assert got.postgres == "mirror.example.com:8443/berth/berth-test-postgres:dev"
    assert got.redis == "mirror.example.com:8443/berth/redis:7"
    assert got.runtime == f"mirror.example.com:8443/berth/team/agent@{digest}"
    assert got.pull_policy == "Never"
    plain = images_of(operator_container("--set", "images.runtime.repository=my/agent"))
    assert plain.runtime == "my/agent:0.1.0"  # no registry: exactly as written


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        ("global.imageRegistry=http://127.0.0.1:5000", "at '/global/imageRegistry'"),
        ("images.runtime.repository=Agent:1", "at '/images/runtime/repository'"),
        ("images.postgres.repository=true", "got boolean, want string"),
        ("images.redis=redis:7", "at '/images/redis': got string, want object"),
        ("images.netinit.tag=a/b", "at '/images/netinit/tag'"),
        ("images.pullPolicy=Sometimes", "value must be one of 'Always', 'IfNotPresent', 'Never'"),
        ("images.sandboxagent.repository=x", "additional properties 'sandboxagent' not allowed"),
        ("image.repository=", "at '/image/repository'"),
    ],
)
def test_the_schema_refuses_bad_image_values_with_the_path(setting: str, error: str) -> None:
    for command in (["template", "berth"], ["lint", "--strict"]):
        result = helm(*command, CHART, "--set", setting)
        assert result.returncode != 0, command
        assert error in result.stderr + result.stdout, result.stderr + result.stdout


def test_lint_passes_with_a_registry() -> None:
    result = helm("lint", CHART, "--strict", *LOCAL)
    assert result.returncode == 0, result.stdout + result.stderr


def test_notes_list_the_images_in_use() -> None:
    result = helm("install", "berth", CHART, "--dry-run=client", "-n", "berth-system", *LOCAL)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "(registry 127.0.0.1:5000)" in notes
    assert "127.0.0.1:5000/berth-dev/berth-runtime:0.1.0" in notes


def test_values_printed_by_make_helm_values_point_the_chart_at_the_pushed_images(
    tmp_path: Path,
) -> None:
    """`make helm-values REGISTRY=...` output, given to `helm install -f`, runs exactly the
    refs `make push REGISTRY=...` pushed (<registry>/<name>:<source tag>)."""
    names = ["berth-operator", *images.CHART_IMAGES.values()]

    def info(name: str, tag: str) -> images.ImageInfo:
        return images.ImageInfo(name, f"localhost/{name}:{tag}", tag, "", "", 0, 0, "", "")

    built = {n: info(n, f"t{i}") for i, n in enumerate(names)}
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(images.chart_values(built, "reg.example.com:5000/team")))
    c = operator_container("-f", str(values))
    pushed = {n: f"reg.example.com:5000/team/{n}:{built[n].tag}" for n in names}
    assert c["image"] == pushed["berth-operator"]
    assert images_of(c) == ImageDefaults(
        runtime=pushed["berth-runtime"],
        sandbox_agent=pushed["berth-sandbox-agent"],
        netinit=pushed["berth-sandbox-netinit"],
        postgres=pushed["berth-test-postgres"],
        redis=pushed["berth-test-redis"],
        pull_policy="IfNotPresent",
    )
