"""Berth's images, built here without a Docker daemon (`make images`), checked for real:
size budgets, non-root users, entrypoints under a read-only root filesystem (runc), tags
that follow the sources, a push to a local OCI registry (crane) read back, and the test
Postgres and Redis images serving their clients the way the operator configures them.

Sizes are the uncompressed image size: config plus layers as listed by the image's
manifest in buildah's storage (`skopeo inspect --raw containers-storage:REF`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.support import oci_bundle
from tests.support.image_hash import collect_files, tree_digest
from tests.support.image_recipes import BASES, IMAGE_BY_NAME, IMAGES
from tests.support.images import (
    REPO,
    ImageInfo,
    build_images,
    compute_tags,
    inspect_image,
    push,
    start_registry,
)

pytestmark = pytest.mark.e2e

ROOT_USERS = {"", "root", "0", "0:0", "root:root"}


@pytest.fixture(scope="module")
def images() -> dict[str, ImageInfo]:
    return build_images()


@pytest.fixture
def runc_state(tmp_path: Path) -> Path:
    state = tmp_path / "runc-state"
    state.mkdir()
    return state


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def entrypoint(ref: str) -> list[str]:
    config = inspect_image(ref)["OCIv1"]
    assert isinstance(config, dict)
    return [str(a) for a in config["config"].get("Entrypoint") or []]


def test_index_lists_every_image_with_its_archive(images: dict[str, ImageInfo]) -> None:
    index = json.loads((REPO / ".berth" / "images.json").read_text())
    assert set(index) == {i.name for i in IMAGES}
    for name, entry in index.items():
        assert entry["ref"] == f"localhost/{name}:{entry['tag']}"
        assert len(entry["tag"]) == 12
        archive = Path(entry["archive"])
        assert archive.is_absolute() and archive.is_file(), archive
        assert archive.stat().st_size == entry["size_bytes"]
        # A docker-archive that keeps the tag: what `ctr -n k8s.io images import` reads.
        listing = subprocess.run(
            ["tar", "-xOf", str(archive), "manifest.json"], capture_output=True, check=True
        ).stdout
        assert json.loads(listing)[0]["RepoTags"] == [entry["ref"]]


@pytest.mark.parametrize("name", [i.name for i in IMAGES if i.budget_bytes])
def test_size_budget(images: dict[str, ImageInfo], name: str) -> None:
    budget = IMAGE_BY_NAME[name].budget_bytes
    assert budget is not None
    size = images[name].image_size_bytes
    assert size <= budget, f"{name} is {size / 1e6:.1f} MB, budget {budget / 1e6:.0f} MB"


@pytest.mark.parametrize("name", [i.name for i in IMAGES if i.non_root])
def test_image_user_is_not_root(images: dict[str, ImageInfo], name: str) -> None:
    user = images[name].user
    assert user not in ROOT_USERS and not user.startswith("0:"), f"{name} runs as {user!r}"


@pytest.mark.parametrize("name", [i.name for i in IMAGES if i.help_args])
def test_entrypoint_runs_on_read_only_root(
    images: dict[str, ImageInfo], name: str, tmp_path: Path, runc_state: Path
) -> None:
    """The entrypoint answers --help (or -h/--version) as the image's user with the root
    filesystem read-only and nothing else writable: it writes nothing to its own image."""
    recipe = IMAGE_BY_NAME[name]
    ref = images[name].ref
    bundle = oci_bundle.unpack(ref, tmp_path)
    config = oci_bundle.configure(
        bundle, args=[*entrypoint(ref), *recipe.help_args], read_only=True
    )
    if recipe.non_root:
        assert config["process"]["user"]["uid"] != 0
    result = oci_bundle.run_once(bundle, runc_state)
    assert result.returncode == 0, result.output
    assert result.output.strip(), "printed nothing"


SERVER_IMPORTS = {
    "berth-runtime": "import berth_runtime.cli, berth_runtime.app",
    "berth-operator": (
        "import kopf, berth_operator.cli, berth_operator.handlers.agentdeployment, "
        "berth_operator.handlers.sandboxes"
    ),
}


@pytest.mark.parametrize("name", sorted(SERVER_IMPORTS))
def test_server_modules_import_on_read_only_root(
    images: dict[str, ImageInfo], name: str, tmp_path: Path, runc_state: Path
) -> None:
    """What the server imports when it starts loads as the image's user from a read-only
    root (the images keep bytecode for exactly these modules; nothing is written)."""
    bundle = oci_bundle.unpack(images[name].ref, tmp_path)
    code = f"import time; t = time.monotonic(); {SERVER_IMPORTS[name]}; print(time.monotonic() - t)"
    config = oci_bundle.configure(bundle, args=["python", "-c", code], read_only=True)
    assert config["process"]["user"]["uid"] == 10001
    result = oci_bundle.run_once(bundle, runc_state)
    assert result.returncode == 0, result.output
    assert float(result.output.strip().splitlines()[-1]) < 30


def copy_inputs(dest: Path) -> None:
    files = set()
    for recipe in IMAGES:
        files.update(collect_files(REPO, recipe.inputs))
    for base in BASES:
        files.update(collect_files(REPO, (*base.inputs, "hack/images/debootstrap-tar.sh")))
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)


def test_tags_follow_the_sources(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    copy_inputs(tree)
    before = compute_tags(tree, go_version="go1.26.0")
    assert compute_tags(tree, go_version="go1.26.0") == before, "same tree, same tags"
    assert len(set(before.values())) == len(before)

    # Bytecode and caches never count.
    cache = tree / "runtime_image/berth_runtime/__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "cli.cpython-311.pyc").write_bytes(b"junk")
    assert compute_tags(tree, go_version="go1.26.0") == before

    # A runtime source file: the runtime changes, the operator and sandbox do not.
    cli = tree / "runtime_image/berth_runtime/cli.py"
    cli.write_text(cli.read_text() + "\n# changed\n")
    after = compute_tags(tree, go_version="go1.26.0")
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"berth-runtime"}

    # A base script: every image on that base changes.
    script = tree / "hack/images/base-python.sh"
    script.write_text(script.read_text() + "\n# changed\n")
    again = compute_tags(tree, go_version="go1.26.0")
    changed = {n for n in after if after[n] != again[n]}
    assert changed == {"berth-base-python", "berth-runtime", "berth-operator"}

    # The host's Go toolchain is copied into the Go base: a new Go rebuilds Go images.
    newer_go = compute_tags(tree, go_version="go1.26.9")
    changed = {n for n in again if again[n] != newer_go[n]}
    assert changed == {
        "berth-base-go",
        "berth-base-static",
        "berth-sandbox-agent",
        "berth-sandbox-netinit",
        "berth-pause",
    }


def test_tree_digest_covers_content_name_and_mode(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("one")
    first = tree_digest(tmp_path, ["a"])
    (tmp_path / "a").write_text("two")
    assert tree_digest(tmp_path, ["a"]) != first
    second = tree_digest(tmp_path, ["a"])
    (tmp_path / "a").chmod(0o755)
    assert tree_digest(tmp_path, ["a"]) != second
    (tmp_path / "a").rename(tmp_path / "b")
    assert tree_digest(tmp_path, ["b"]) not in {first, second}
    with pytest.raises(FileNotFoundError):
        collect_files(tmp_path, ["missing"])


@pytest.fixture
def registry() -> Iterator[str]:
    address = f"127.0.0.1:{free_port()}"
    handle = start_registry(address)
    try:
        yield address
    finally:
        handle.stop()


def test_push_to_a_loopback_registry_and_read_it_back(
    images: dict[str, ImageInfo], registry: str
) -> None:
    pushed = push(images, registry)
    assert set(pushed) == set(images)
    for name, info in images.items():
        remote = f"docker://{registry}/{name}:{info.tag}"
        inspected = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", remote],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert inspected["Digest"] == pushed[name]
        raw = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", remote],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        # The config blob (the image ID) travels unchanged: the same image, not a rebuild.
        assert raw["config"]["digest"] == info.image_id
    # And through the registry's own HTTP API.
    info = images["berth-sandbox-agent"]
    request = urllib.request.Request(
        f"http://{registry}/v2/berth-sandbox-agent/manifests/{info.tag}",
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
            "application/vnd.oci.image.manifest.v1+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Docker-Content-Digest"] == pushed["berth-sandbox-agent"]


def wait_for(check: object, what: str, timeout: float, output: oci_bundle.Running) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if output.process.poll() is not None:
            pytest.fail(f"{what}: container exited {output.process.returncode}:\n{output.output()}")
        try:
            assert callable(check)
            check()
            return
        except Exception as err:  # still starting
            last = err
            time.sleep(0.3)
    pytest.fail(f"{what} not ready in {timeout}s ({last}):\n{output.output()}")


def test_postgres_image_honours_the_official_contract(
    images: dict[str, ImageInfo], tmp_path: Path, runc_state: Path
) -> None:
    """Started as the operator starts postgres:16 (same env, PGDATA below a root-owned
    volume mounted at /var/lib/postgresql/data), it initialises the database, drops to uid
    999, answers pg_isready as the operator's probe asks and serves SQL."""
    ref = images["berth-test-postgres"].ref
    volume = tmp_path / "volume"
    volume.mkdir()
    os.chmod(volume, 0o755)
    port = free_port()
    bundle = oci_bundle.unpack(ref, tmp_path)
    oci_bundle.configure(
        bundle,
        args=[*entrypoint(ref), "postgres", "-p", str(port)],
        env={
            "POSTGRES_USER": "berth",
            "POSTGRES_DB": "berth",
            "POSTGRES_PASSWORD": "s3cret",
            "PGDATA": "/var/lib/postgresql/data/pgdata",
        },
        read_only=False,
        host_network=True,
        binds={"/var/lib/postgresql/data": volume},
    )
    dsn = f"host=127.0.0.1 port={port} user=berth password=s3cret dbname=berth connect_timeout=2"
    with oci_bundle.running(bundle, runc_state) as pg:

        def answers() -> None:
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT 1")

        wait_for(answers, "postgres", 90, pg)
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_user, current_database(), version()").fetchone()
            assert row is not None
            assert row[:2] == ("berth", "berth")
            assert "PostgreSQL 15" in row[2]
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, doc jsonb)")
            conn.execute("""INSERT INTO t VALUES (1, '{"a": 2}')""")
            doc = conn.execute("SELECT doc->>'a' FROM t WHERE id = 1").fetchone()
            assert doc == ("2",)
        probe = pg.exec(
            ["pg_isready", "-U", "berth", "-d", "berth", "-h", "127.0.0.1", "-p", str(port)]
        )
        assert probe.returncode == 0, probe.output
        assert pg.uid() == 999
        assert (volume / "pgdata").stat().st_uid == 999
        assert "PostgreSQL init process complete" in pg.output()


def test_redis_image_answers_ping_with_the_operators_arguments(
    images: dict[str, ImageInfo], tmp_path: Path, runc_state: Path
) -> None:
    """The operator passes only arguments (no command) to redis:7; the test image takes them
    the same way, runs as uid 999 in /data and answers PING behind the password."""
    ref = images["berth-test-redis"].ref
    port = free_port()
    bundle = oci_bundle.unpack(ref, tmp_path)
    args = ["--requirepass", "s3cret", "--save", "", "--appendonly", "no", "--port", str(port)]
    config = oci_bundle.configure(
        bundle,
        args=[*entrypoint(ref), *args],
        read_only=False,
        host_network=True,
    )
    assert config["process"]["cwd"] == "/data"
    with oci_bundle.running(bundle, runc_state) as rd:
        client = redis.Redis(host="127.0.0.1", port=port, password="s3cret", socket_timeout=2)
        wait_for(client.ping, "redis", 30, rd)
        assert client.ping() is True
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, password="wrong", socket_timeout=2).ping()
        assert rd.uid() == 999
        client.close()
