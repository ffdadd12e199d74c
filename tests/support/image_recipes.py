"""What each image of `make images` is built from: base scripts, Dockerfiles, inputs.

Bases stand in for the official images no registry here serves (python:3.11-slim,
debian:bookworm-slim, golang:1.26, distroless static); they are made by the scripts in
hack/images/ and passed to the project's own Dockerfiles as build arguments, so a plain
`docker build` with the official bases keeps working elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MB = 1_000_000
HACK = "hack/images"
COMMON_SCRIPTS = (f"{HACK}/debootstrap-tar.sh",)


@dataclass(frozen=True)
class BaseRecipe:
    """A base image made by a script: `bash <script> REF [arguments]`."""

    name: str
    script: str
    inputs: tuple[str, ...]
    # Other bases whose refs the script takes as arguments, in order.
    needs: tuple[str, ...] = ()
    # The host's Go toolchain is copied in: its version is part of the tag.
    uses_host_go: bool = False


@dataclass(frozen=True)
class ImageRecipe:
    """An image built with `buildah bud` from a Dockerfile of the project."""

    name: str
    dockerfile: str
    context: str
    inputs: tuple[str, ...]
    # Dockerfile ARG -> base recipe name.
    bases: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    # Package registries the RUN steps reach: "pip", "go" (or none: Debian's archive only).
    network: tuple[str, ...] = ()
    # Uncompressed image size budget in bytes (checked by tests/e2e/test_images.py).
    budget_bytes: int | None = None
    # Arguments after the entrypoint that make it print help and exit 0 (read-only check).
    help_args: tuple[str, ...] = ()
    # The image must run as a non-root user (the netinit and datastore images drop or need root).
    non_root: bool = True


BASES: tuple[BaseRecipe, ...] = (
    BaseRecipe("berth-base-debian", f"{HACK}/base-debian.sh", (f"{HACK}/base-debian.sh",)),
    BaseRecipe("berth-base-python", f"{HACK}/base-python.sh", (f"{HACK}/base-python.sh",)),
    BaseRecipe("berth-base-go", f"{HACK}/base-go.sh", (f"{HACK}/base-go.sh",), uses_host_go=True),
    BaseRecipe(
        "berth-base-static",
        f"{HACK}/base-static.sh",
        (f"{HACK}/base-static.sh",),
        needs=("berth-base-go",),
    ),
)

AUTH_PROXY_BASES = {
    "GO_IMAGE": "berth-base-go",
    "DEBIAN_IMAGE": "berth-base-debian",
    "STATIC_IMAGE": "berth-base-static",
}

IMAGES: tuple[ImageRecipe, ...] = (
    ImageRecipe(
        "berth-runtime",
        dockerfile="runtime_image/Dockerfile",
        context=".",
        inputs=(
            "runtime_image/Dockerfile",
            "pyproject.toml",
            "README.md",
            "operator/berth_operator",
            "runtime_image/berth_runtime",
            "cli/berth_cli",
            "LICENSE",
            "examples/agent",
        ),
        bases={"PYTHON_IMAGE": "berth-base-python"},
        network=("pip",),
        # 374 MB before the local embedding model of semantic store search (berth:wordllama:
        # its weights 33 MB, numpy 73 MB, tokenizers 12 MB); 496 MB with it.
        budget_bytes=520 * MB,
        help_args=("--help",),
    ),
    ImageRecipe(
        "berth-operator",
        dockerfile="operator/Dockerfile",
        context=".",
        inputs=(
            "operator/Dockerfile",
            "pyproject.toml",
            "README.md",
            "operator/berth_operator",
            "runtime_image/berth_runtime/__init__.py",
            "LICENSE",
        ),
        bases={"PYTHON_IMAGE": "berth-base-python"},
        network=("pip",),
        budget_bytes=250 * MB,
        help_args=("--help",),
    ),
    ImageRecipe(
        "berth-sandbox-agent",
        dockerfile="auth_proxy/Dockerfile",
        context="auth_proxy",
        inputs=("auth_proxy",),
        bases=AUTH_PROXY_BASES,
        network=("go",),
        budget_bytes=30 * MB,
        help_args=("-h",),
    ),
    ImageRecipe(
        "berth-sandbox-netinit",
        dockerfile="auth_proxy/Dockerfile",
        context="auth_proxy",
        inputs=("auth_proxy",),
        bases=AUTH_PROXY_BASES,
        target="netinit",
        network=("go",),
        help_args=("-h",),
        non_root=False,  # writes iptables rules in the Pod's network namespace
    ),
    ImageRecipe(
        "berth-pause",
        dockerfile=f"{HACK}/pause/Dockerfile",
        context=f"{HACK}/pause",
        inputs=(f"{HACK}/pause",),
        bases={"GO_IMAGE": "berth-base-go"},
        network=("go",),
        help_args=("--version",),
    ),
    ImageRecipe(
        "berth-test-postgres",
        dockerfile=f"{HACK}/postgres/Dockerfile",
        context=f"{HACK}/postgres",
        inputs=(f"{HACK}/postgres",),
        bases={"DEBIAN_IMAGE": "berth-base-debian"},
        non_root=False,  # like postgres:16: starts as root, prepares PGDATA, drops to uid 999
    ),
    ImageRecipe(
        "berth-test-redis",
        dockerfile=f"{HACK}/redis/Dockerfile",
        context=f"{HACK}/redis",
        inputs=(f"{HACK}/redis",),
        bases={"DEBIAN_IMAGE": "berth-base-debian"},
        non_root=False,  # like redis:7: starts as root, chowns /data, drops to uid 999
    ),
    ImageRecipe(
        "berth-test-curl",
        dockerfile=f"{HACK}/curl/Dockerfile",
        context=f"{HACK}/curl",
        inputs=(f"{HACK}/curl",),
        bases={"DEBIAN_IMAGE": "berth-base-debian"},
    ),
)

BASE_BY_NAME = {b.name: b for b in BASES}
IMAGE_BY_NAME = {i.name: i for i in IMAGES}
