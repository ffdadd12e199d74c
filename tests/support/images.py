"""Build, export, list and push Berth's container images without a Docker daemon.

`make images` runs `python -m tests.support.images build`: the bases of
tests.support.image_recipes are made by hack/images/*.sh (mmdebstrap + buildah), every
image is built from its Dockerfile with `buildah bud` (host network for pip, Go modules and
apt), tagged `localhost/<name>:<12 hex of its inputs>` and `:dev`, exported as a
docker-archive into ${BERTH_CACHE:-~/.cache/berth}/images/ (what `ctr images import`
takes) and listed in .berth/images.json. An unchanged tree is a cache hit: the tag exists
in buildah's storage and the archive exists.

The e2e tier uses build_images(), start_registry() and push().
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.image_hash import collect_files, short_tag, tree_digest
from tests.support.image_recipes import BASES, IMAGES, BaseRecipe, ImageRecipe

REPO = Path(__file__).resolve().parents[2]
INDEX = REPO / ".berth" / "images.json"
REGISTRY_HOST = "localhost"
BUILD_CA = "/run/berth-build-ca.crt"
# Bump when the build machinery changes in a way that changes what it produces.
RECIPE_VERSION = "1"


def cache_dir() -> Path:
    root = os.environ.get("BERTH_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "berth"
    )
    return Path(root) / "images"


@dataclass(frozen=True)
class ImageInfo:
    """One built image as .berth/images.json lists it."""

    name: str
    ref: str
    tag: str
    dev_ref: str
    archive: str
    size_bytes: int  # the docker-archive file
    image_size_bytes: int  # uncompressed image, as `buildah images --json` reports it
    image_id: str  # the config digest, which a registry push preserves
    user: str  # the image config's User

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = asdict(self)
        del data["name"]
        return data


def log(message: str) -> None:
    print(f">> {message}", flush=True)


def human(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def run(
    cmd: Sequence[str], *, log_to: Path | None = None, env: Mapping[str, str] | None = None
) -> str:
    """Run a command; on failure raise with its output (or the tail of its log file)."""
    if log_to is None:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            output = proc.stdout[-4000:] + proc.stderr[-4000:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
        return proc.stdout
    log_to.parent.mkdir(parents=True, exist_ok=True)
    with log_to.open("w") as out:
        logged = subprocess.run(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )
    if logged.returncode != 0:
        tail = log_to.read_text(errors="replace")[-6000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({logged.returncode}); log {log_to}:\n{tail}")
    return ""


# --- tags ---------------------------------------------------------------------------------


def host_go_version() -> str:
    goroot = host_goroot()
    return run([str(Path(goroot) / "bin" / "go"), "env", "GOVERSION"]).strip()


def host_goroot() -> str:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    return run([go, "env", "GOROOT"]).strip()


def compute_tags(root: Path = REPO, go_version: str | None = None) -> dict[str, str]:
    """The tag of every base and image for the tree at `root`, without building anything."""
    tags: dict[str, str] = {}
    for base in BASES:
        extra = [f"recipe {RECIPE_VERSION}", f"base {base.name}"]
        extra += [f"needs {n}={tags[n]}" for n in base.needs]
        if base.uses_host_go:
            extra.append(f"go {go_version or host_go_version()}")
        files = collect_files(root, (*base.inputs, "hack/images/debootstrap-tar.sh"))
        tags[base.name] = short_tag(tree_digest(root, files, extra))
    for image in IMAGES:
        extra = [f"recipe {RECIPE_VERSION}", f"image {image.name}", f"target {image.target}"]
        extra += [f"arg {arg}={base}:{tags[base]}" for arg, base in sorted(image.bases.items())]
        files = collect_files(root, image.inputs)
        tags[image.name] = short_tag(tree_digest(root, files, extra))
    return tags


def local_ref(name: str, tag: str) -> str:
    return f"{REGISTRY_HOST}/{name}:{tag}"


# --- buildah storage ----------------------------------------------------------------------


def image_exists(ref: str) -> bool:
    proc = subprocess.run(
        ["buildah", "inspect", "--type", "image", ref], capture_output=True, check=False
    )
    return proc.returncode == 0


def inspect_image(ref: str) -> dict[str, object]:
    data = json.loads(run(["buildah", "inspect", "--type", "image", ref]))
    assert isinstance(data, dict)
    return data


def image_user(ref: str) -> str:
    config = inspect_image(ref).get("OCIv1", {})
    assert isinstance(config, dict)
    user = config.get("config", {}).get("User", "")
    return str(user or "")


def image_size_and_id(ref: str) -> tuple[int, str]:
    """The uncompressed image size (config plus layers, as its manifest in buildah's
    storage lists them; `skopeo inspect --raw containers-storage:REF`) and its image ID."""
    manifest = json.loads(run(["skopeo", "inspect", "--raw", f"containers-storage:{ref}"]))
    size = int(manifest["config"]["size"]) + sum(int(layer["size"]) for layer in manifest["layers"])
    return size, str(manifest["config"]["digest"])


# --- network settings for RUN steps ---------------------------------------------------------


def host_ca_bundle() -> str | None:
    """The CA bundle the host's pip uses (it may trust an intercepting proxy), if any."""
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return value
    for conf in (
        Path("/etc/pip.conf"),
        Path.home() / ".config/pip/pip.conf",
        Path.home() / ".pip/pip.conf",
    ):
        parser = configparser.ConfigParser()
        with contextlib.suppress(configparser.Error, OSError):
            parser.read(conf)
            cert = parser.get("global", "cert", fallback="")
            if cert and Path(cert).is_file():
                return cert
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    return str(system) if system.is_file() else None


def network_args(recipe: ImageRecipe) -> list[str]:
    """Build arguments and mounts that let RUN steps reach the package registries the host
    reaches, read from the host's environment and tool configuration (never committed)."""
    args: list[str] = []
    ca = host_ca_bundle() if recipe.network else None
    if ca:
        args += ["--volume", f"{ca}:{BUILD_CA}:ro"]
    if "pip" in recipe.network:
        for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
            if os.environ.get(var):
                args += ["--build-arg", f"{var}={os.environ[var]}"]
        if ca:
            args += ["--build-arg", f"PIP_CERT={BUILD_CA}"]
    if "go" in recipe.network:
        go = shutil.which("go") or str(Path(host_goroot()) / "bin" / "go")
        names = ["GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS"]
        values = json.loads(run([go, "env", "-json", *names]))
        for var in names:
            if values.get(var):
                args += ["--build-arg", f"{var}={values[var]}"]
        if ca and recipe.name != "berth-pause":
            args += ["--build-arg", f"SSL_CERT_FILE={BUILD_CA}"]
    return args


# --- building -----------------------------------------------------------------------------


def ensure_base(base: BaseRecipe, tags: Mapping[str, str]) -> str:
    ref = local_ref(base.name, tags[base.name])
    if image_exists(ref):
        return ref
    log(f"{base.name}: cold build of the base {ref} ({base.script})")
    t0 = time.monotonic()
    argv = ["bash", str(REPO / base.script), ref]
    argv += [local_ref(n, tags[n]) for n in base.needs]
    if base.uses_host_go:
        argv.append(host_goroot())
    run(argv, log_to=cache_dir() / "logs" / f"{base.name}.log")
    remove_older_tags(base.name, keep={ref})
    size, _ = image_size_and_id(ref)
    log(f"{base.name}: built in {time.monotonic() - t0:.0f}s ({human(size)})")
    return ref


def stage_context(recipe: ImageRecipe, dest: Path) -> None:
    """Copy exactly the hashed inputs into `dest`: what is built is what the tag names, even
    while the working tree changes, and no cache or bytecode reaches an image."""
    if dest.exists():
        shutil.rmtree(dest)
    for rel in collect_files(REPO, recipe.inputs):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)


def export_archive(ref: str, archive: Path) -> None:
    tmp = archive.with_name(archive.name + ".tmp")
    tmp.unlink(missing_ok=True)
    run(["skopeo", "copy", "--quiet", f"containers-storage:{ref}", f"docker-archive:{tmp}:{ref}"])
    tmp.rename(archive)


def remove_older_tags(name: str, keep: set[str]) -> None:
    """Untag earlier builds of `name` so buildah's storage does not grow with every edit
    (the layer cache of `buildah bud --layers` stays)."""
    rows = json.loads(run(["buildah", "images", "--json"]) or "[]")
    prefix = f"{REGISTRY_HOST}/{name}:"
    for row in rows:
        for ref in row.get("names") or []:
            if ref.startswith(prefix) and ref not in keep:
                subprocess.run(["buildah", "rmi", ref], capture_output=True, check=False)


def build_image(
    recipe: ImageRecipe, tags: Mapping[str, str], base_refs: Mapping[str, str]
) -> ImageInfo:
    tag = tags[recipe.name]
    ref = local_ref(recipe.name, tag)
    dev = local_ref(recipe.name, "dev")
    archive = cache_dir() / f"{recipe.name}-{tag}.tar"
    if image_exists(ref) and archive.is_file():
        log(f"{recipe.name}: cached {ref}")
    else:
        t0 = time.monotonic()
        if image_exists(ref):
            log(f"{recipe.name}: {ref} is built; exporting its archive")
        else:
            target = f", target {recipe.target}" if recipe.target else ""
            log(f"{recipe.name}: cold build of {ref} ({recipe.dockerfile}{target})")
            stage = cache_dir() / "context" / recipe.name
            stage_context(recipe, stage)
            argv = [
                "buildah", "bud", "--layers", "--network", "host", "--format", "docker",
                "--file", str(stage / recipe.dockerfile), "--tag", ref,
            ]  # fmt: skip
            for arg, base in sorted(recipe.bases.items()):
                argv += ["--build-arg", f"{arg}={base_refs[base]}"]
            if recipe.target:
                argv += ["--target", recipe.target]
            argv += network_args(recipe)
            argv.append(str(stage / recipe.context))
            run(argv, log_to=cache_dir() / "logs" / f"{recipe.name}.log")
            log(f"{recipe.name}: built in {time.monotonic() - t0:.0f}s")
        t1 = time.monotonic()
        export_archive(ref, archive)
        log(f"{recipe.name}: exported {archive} in {time.monotonic() - t1:.0f}s")
        for old in archive.parent.glob(f"{recipe.name}-*.tar"):
            if old != archive and old.name[len(recipe.name) + 1 : -4].isalnum():
                old.unlink()
    run(["buildah", "tag", ref, dev])
    remove_older_tags(recipe.name, keep={ref, dev})
    size, image_id = image_size_and_id(ref)
    return ImageInfo(
        name=recipe.name,
        ref=ref,
        tag=tag,
        dev_ref=dev,
        archive=str(archive),
        size_bytes=archive.stat().st_size,
        image_size_bytes=size,
        image_id=image_id,
        user=image_user(ref),
    )


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    path = cache_dir() / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_index(images: Mapping[str, ImageInfo], index: Path = INDEX) -> None:
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = index.with_name(index.name + ".tmp")
    tmp.write_text(json.dumps({n: i.to_json() for n, i in images.items()}, indent=2) + "\n")
    tmp.rename(index)


def read_index(index: Path = INDEX) -> dict[str, ImageInfo]:
    data = json.loads(index.read_text())
    return {name: ImageInfo(name=name, **fields) for name, fields in data.items()}


def build_images(names: Sequence[str] | None = None) -> dict[str, ImageInfo]:
    """Build (or reuse) the images, export their archives and write .berth/images.json.

    `names` limits the build to some images (the index then lists only those built so far
    in this call merged with the ones already indexed)."""
    wanted = [i for i in IMAGES if names is None or i.name in names]
    unknown = set(names or ()) - {i.name for i in IMAGES}
    if unknown:
        raise ValueError(f"unknown images: {sorted(unknown)}")
    t0 = time.monotonic()
    with build_lock():
        tags = compute_tags()
        needed = {b for i in wanted for b in i.bases.values()}
        base_refs: dict[str, str] = {}
        for base in BASES:
            if base.name in needed or any(base.name in b.needs for b in BASES if b.name in needed):
                base_refs[base.name] = ensure_base(base, tags)
        built = {i.name: build_image(i, tags, base_refs) for i in wanted}
        images: dict[str, ImageInfo] = {}
        if names is not None and INDEX.is_file():
            with contextlib.suppress(ValueError, TypeError, KeyError):
                images.update(read_index())
        images.update(built)
        write_index(images)
    log(f"images ready in {time.monotonic() - t0:.0f}s; index {INDEX}")
    return images


# --- registry -------------------------------------------------------------------------------


@dataclass
class Registry:
    """A `crane registry serve` process; .stop() ends it."""

    address: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def crane_binary() -> str:
    out = run(["bash", str(REPO / "hack/images/build-crane.sh")])
    return out.strip().splitlines()[-1]


def start_registry(address: str, disk: Path | None = None) -> Registry:
    """Serve an OCI registry at `address` (host:port) with crane; blobs in memory unless
    `disk` names a folder. Returns once it answers /v2/."""
    argv = [crane_binary(), "registry", "serve", "--address", address]
    if disk is not None:
        argv += ["--disk", str(disk)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"crane registry serve exited ({process.returncode}): {err}")
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
            return Registry(address, process)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"crane registry did not listen on {address} within 30s")


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0].strip("[]") if ":" in registry else registry
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def push(
    images: Mapping[str, ImageInfo], registry: str, insecure: bool | None = None
) -> dict[str, str]:
    """Push every image to `registry` (host:port[/path]) as <registry>/<name>:<tag>.

    TLS is verified unless `insecure` is true, or is None and the registry is on loopback.
    Returns name -> pushed manifest digest."""
    if insecure is None:
        insecure = is_loopback(registry.split("/", 1)[0])
    digests: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, info in images.items():
            dest = f"{registry}/{name}:{info.tag}"
            digest_file = Path(tmp) / f"{name}.digest"
            t0 = time.monotonic()
            argv = ["skopeo", "copy", "--quiet", "--digestfile", str(digest_file)]
            if insecure:
                argv.append("--dest-tls-verify=false")
            run([*argv, f"containers-storage:{info.ref}", f"docker://{dest}"])
            digests[name] = digest_file.read_text().strip()
            log(f"pushed {dest} ({digests[name]}) in {time.monotonic() - t0:.1f}s")
    return digests


# --- chart values ----------------------------------------------------------------------------

# The chart's value for each image Berth deploys, and which image of `make images` it takes.
CHART_IMAGES = {
    "runtime": "berth-runtime",
    "sandboxAgent": "berth-sandbox-agent",
    "netinit": "berth-sandbox-netinit",
    # Debian-built images honouring the official images' environment contract.
    "postgres": "berth-test-postgres",
    "redis": "berth-test-redis",
}


def chart_values(images: Mapping[str, ImageInfo], registry: str) -> dict[str, Any]:
    """Helm values that point every image of the chart at `registry` with one value
    (`global.imageRegistry`), plus each image's repository and source-hash tag."""

    def ref(name: str) -> dict[str, str]:
        return {"repository": name, "tag": images[name].tag}

    return {
        "global": {"imageRegistry": registry},
        "image": ref("berth-operator"),
        "images": {key: ref(name) for key, name in CHART_IMAGES.items()},
    }


# --- command line ----------------------------------------------------------------------------


def print_list(images: Mapping[str, ImageInfo]) -> None:
    width = max(len(i.ref) for i in images.values())
    print(f"{'IMAGE':22} {'REF':{width}} {'SIZE':>10} {'ARCHIVE':>10}  USER")
    for name, info in sorted(images.items()):
        print(
            f"{name:22} {info.ref:{width}} {human(info.image_size_bytes):>10} "
            f"{human(info.size_bytes):>10}  {info.user or 'root'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.images", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (cached) and export the images")
    build.add_argument("names", nargs="*", help="only these images")
    sub.add_parser("list", help="print each built image with its ref and size")
    sub.add_parser("tags", help="print the tag each image would get for the current tree")
    push_cmd = sub.add_parser("push", help="push every built image to REGISTRY")
    push_cmd.add_argument("--registry", required=True, help="host:port[/path]")
    push_cmd.add_argument("--insecure", action="store_true", help="skip TLS verification")
    values_cmd = sub.add_parser("values", help="print Helm values for the images in REGISTRY")
    values_cmd.add_argument("--registry", required=True, help="host:port[/path]")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            images = build_images(args.names or None)
            print_list(images)
        elif args.command == "list":
            if not INDEX.is_file():
                print(f"no index at {INDEX}: run `make images`", file=sys.stderr)
                return 1
            print_list(read_index())
        elif args.command == "tags":
            for name, tag in compute_tags().items():
                print(f"{name} {local_ref(name, tag)}")
        elif args.command == "values":
            if not INDEX.is_file():
                print(f"no index at {INDEX}: run `make images`", file=sys.stderr)
                return 1
            print(yaml.safe_dump(chart_values(read_index(), args.registry), sort_keys=False))
        else:
            images = read_index() if INDEX.is_file() else build_images()
            push(images, args.registry, insecure=True if args.insecure else None)
    except RuntimeError as err:
        print(f"images: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
