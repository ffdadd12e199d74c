"""The sandbox backend against the real Go executor, alone and under a deep agent on Berth.

The executor (auth_proxy/cmd/berth-executor) is built from source and serves on loopback
with a per-test-module token, exactly as in a sandbox Pod minus the Pod. The deep agent
runs in `berth-runtime serve` (real Postgres and Redis); its tool results are read back
with langgraph-sdk from the thread state, and the files from the disk the executor wrote.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from berth_runtime.sandbox.backend import ExecutorBackend, ExecutorError
from berth_runtime.sandbox.provider import SandboxProvider, resolver_for
from berth_runtime.sandbox.resolvers import ScopeKey
from berth_runtime.sandbox.scoped import ScopedSandboxBackend
from berth_runtime.sandbox.settings import SandboxSettings, with_env
from deepagents.backends.protocol import SandboxBackendProtocol
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.integration.runtime.conftest import REPO, RuntimeProcess, launch
from tests.support.sandbox_executor import Executor, running_executor
from tests.support.servers import Server

pytestmark = pytest.mark.integration

SANDBOX_CONFIG = REPO / "tests" / "integration" / "graphs" / "sandbox" / "langgraph.json"


@pytest.fixture(scope="module")
def executor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Executor]:
    with running_executor(tmp_path_factory.mktemp("executor")) as ex:
        yield ex


@pytest.fixture
async def backend(executor: Executor) -> AsyncIterator[ExecutorBackend]:
    b = ExecutorBackend(executor.url, executor.token, sandbox_id="test-sandbox")
    yield b
    await b.aclose()


@pytest.fixture(scope="module")
def sandbox_server(
    module_db: str, redis: Server, tmp_path_factory: pytest.TempPathFactory, executor: Executor
) -> Iterator[RuntimeProcess]:
    env = {"BERTH_SANDBOX_URL": executor.url, "BERTH_SANDBOX_TOKEN": executor.token}
    rp = launch(
        "serve",
        module_db,
        redis.uri,
        tmp_path_factory.mktemp("runtime"),
        extra_env=env,
        config=SANDBOX_CONFIG,
    )
    yield rp
    rp.terminate()


@pytest.fixture
async def sandbox_client(sandbox_server: RuntimeProcess) -> AsyncIterator[LangGraphClient]:
    c = get_client(url=sandbox_server.url)
    yield c
    await c.aclose()


# -- the backend alone -----------------------------------------------------------------------


async def test_is_a_sandbox_backend_with_an_id(backend: ExecutorBackend) -> None:
    assert isinstance(backend, SandboxBackendProtocol)
    assert backend.id == "test-sandbox"
    assert await backend.healthy()


async def test_execute_output_exit_code_and_stderr(
    backend: ExecutorBackend, tmp_path: Path
) -> None:
    r = await backend.aexecute(f"cd {tmp_path} && echo out && echo err >&2 && exit 7")
    assert r.exit_code == 7 and not r.truncated
    assert "out" in r.output and "err" in r.output
    ok = backend.execute("printf '%s' \"$((40+2))\"")  # the sync API over its own client
    assert (ok.output, ok.exit_code) == ("42", 0)


async def test_execute_timeout_kills_and_says_so(backend: ExecutorBackend) -> None:
    r = await backend.aexecute("echo started; sleep 30", timeout=1)
    assert r.exit_code == 124
    assert "started" in r.output and "timed out after 1 seconds" in r.output


async def test_refused_command_is_an_error_result_not_a_run(backend: ExecutorBackend) -> None:
    r = await backend.aexecute("echo never", timeout=4000)  # over the executor's maximum
    assert r.exit_code is None and r.output.startswith("Error: ") and "never" not in r.output


async def test_write_read_edit_roundtrip(backend: ExecutorBackend, tmp_path: Path) -> None:
    fp = tmp_path / "deep" / "er" / "a.txt"  # parents are created
    f = str(fp)
    assert (await backend.awrite(f, "l1\nl2\nl3\nl4\nl5\n")).path == f
    page = await backend.aread(f, offset=1, limit=2)
    assert page.error is None and page.file_data is not None
    # deepagents' own backends keep the window's line terminators ("l2\nl3\n"); this
    # executor joins lines with "\n". The model sees the same numbered lines either way.
    assert page.file_data["content"].rstrip("\n") == "l2\nl3"
    assert (page.start_line, page.end_line, page.next_offset, page.total_lines) == (2, 3, 3, 5)
    whole = await backend.aread(f)
    assert whole.file_data is not None and whole.next_offset is None
    assert whole.file_data["content"].rstrip("\n") == "l1\nl2\nl3\nl4\nl5"
    edited = await backend.aedit(f, "l3", "three")
    assert (edited.path, edited.occurrences, edited.error) == (f, 1, None)
    assert fp.read_text() == "l1\nl2\nthree\nl4\nl5\n"


async def test_read_edge_cases(backend: ExecutorBackend, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.txt")
    assert (await backend.aread(missing)).error == f"File '{missing}' not found"
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    r = await backend.aread(str(empty))
    assert r.error is None and r.file_data is not None and r.file_data["content"] == ""
    assert r.start_line is None
    short = tmp_path / "short.txt"
    short.write_text("one\ntwo\n")
    assert (await backend.aread(str(short), limit=0)).no_lines_requested
    past = await backend.aread(str(short), offset=10)
    assert past.error is not None and past.file_data is None
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("café\n".encode("latin-1"))
    not_utf8 = await backend.aread(str(latin))
    assert not_utf8.file_data == {
        "content": base64.standard_b64encode(latin.read_bytes()).decode(),
        "encoding": "base64",
    }
    png = tmp_path / "pixel.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    binary = await backend.aread(str(png))
    assert binary.file_data == {
        "content": base64.standard_b64encode(png.read_bytes()).decode(),
        "encoding": "base64",
    }


async def test_edit_errors_are_the_models_to_fix(backend: ExecutorBackend, tmp_path: Path) -> None:
    f = tmp_path / "dup.txt"
    f.write_text("x = 1\nx = 1\n")
    ambiguous = await backend.aedit(str(f), "x = 1", "x = 2")
    assert ambiguous.error is not None and "appears 2 times" in ambiguous.error
    assert (await backend.aedit(str(f), "x = 1", "x = 2", replace_all=True)).occurrences == 2
    assert f.read_text() == "x = 2\nx = 2\n"
    absent = await backend.aedit(str(f), "nowhere", "y")
    assert absent.error is not None and absent.error.startswith("Error: String not found")
    assert (await backend.aedit(str(f), "", "y")).error is not None
    gone = str(tmp_path / "gone.txt")
    assert (await backend.aedit(gone, "a", "b")).error == f"Error: File '{gone}' not found"


async def test_ls_glob_grep(backend: ExecutorBackend, tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "m.py").write_text("import os\nvalue = 'a.c'\n")
    (tmp_path / "src" / "top.py").write_text("abc\n")
    (tmp_path / "notes.md").write_text("a.c twice a.c\n")
    listing = await backend.als(str(tmp_path))
    assert listing.error is None and listing.entries is not None
    by_path = {e["path"]: e for e in listing.entries}
    assert by_path[str(tmp_path / "src")]["is_dir"] is True
    assert by_path[str(tmp_path / "notes.md")]["size"] == len("a.c twice a.c\n")
    missing = str(tmp_path / "nope")
    assert (await backend.als(missing)).error == f"Path '{missing}': path_not_found"
    not_dir = await backend.als(str(tmp_path / "notes.md"))
    assert not_dir.error is not None and "not_a_directory" in not_dir.error

    found = await backend.aglob("*.py", str(tmp_path))  # basename at any depth
    assert found.matches is not None
    assert sorted(m["path"] for m in found.matches) == [
        str(tmp_path / "src" / "pkg" / "m.py"),
        str(tmp_path / "src" / "top.py"),
    ]

    hits = await backend.agrep("a.c", str(tmp_path))  # literal, not a regex: not "abc"
    assert hits.matches is not None
    assert sorted((m["path"], m["line"]) for m in hits.matches) == [
        (str(tmp_path / "notes.md"), 1),
        (str(tmp_path / "src" / "pkg" / "m.py"), 2),
    ]
    only_py = await backend.agrep("a.c", str(tmp_path), glob="*.py")
    assert only_py.matches is not None and len(only_py.matches) == 1
    capped = await backend.agrep("a.c", str(tmp_path), max_count=1)
    assert capped.matches is not None and len(capped.matches) == 1 and capped.truncated


async def test_upload_download_delete(backend: ExecutorBackend, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 4
    bp = tmp_path / "b.txt"
    a, b = str(tmp_path / "up" / "a.bin"), str(bp)
    up = await backend.aupload_files([(a, blob), (b, b"hello")])
    assert [(r.path, r.error) for r in up] == [(a, None), (b, None)]
    down = await backend.adownload_files([a, str(tmp_path / "nope"), str(tmp_path)])
    assert down[0].content == blob and down[0].error is None
    assert down[1].error == "file_not_found" and down[2].error == "is_directory"
    assert backend.download_files([b])[0].content == b"hello"
    assert (await backend.adelete(b)).path == b
    assert not bp.exists()
    assert (await backend.adelete(b)).error == f"Error: '{b}' not found"


async def test_relative_path_is_rejected_not_guessed(backend: ExecutorBackend) -> None:
    assert (await backend.awrite("relative.txt", "x")).error is not None
    assert (await backend.aupload_files([("relative.bin", b"x")]))[0].error == "invalid_path"


async def test_wrong_token_is_an_infrastructure_error(executor: Executor) -> None:
    bad = ExecutorBackend(executor.url, "not-the-token")
    try:
        with pytest.raises(ExecutorError, match="401"):
            await bad.aexecute("true")
        with pytest.raises(ExecutorError, match="401"):
            await bad.als("/")
    finally:
        await bad.aclose()


async def test_scoped_backend_sync_and_async_calls_share_one_lease(
    executor: Executor, tmp_path: Path
) -> None:
    env = {"BERTH_SANDBOX_URL": executor.url, "BERTH_SANDBOX_TOKEN": executor.token}
    settings = with_env(SandboxSettings(), env)
    provider = SandboxProvider(settings, resolver_for(settings))
    scoped = ScopedSandboxBackend(provider, {"configurable": {"thread_id": "t-sync"}})
    try:
        assert (await scoped.aexecute(f"echo a > {tmp_path}/f.txt")).exit_code == 0
        # From a worker thread (a graph run with `invoke`): sent to the provider's loop.
        r = await asyncio.to_thread(scoped.execute, f"cat {tmp_path}/f.txt")
        assert (r.output.strip(), r.exit_code) == ("a", 0)
        # On the loop itself (deepagents' sync helpers): straight to the leased executor.
        listing = scoped.ls(str(tmp_path))
        assert listing.entries is not None
        assert [e["path"] for e in listing.entries] == [f"{tmp_path}/f.txt"]
        assert provider.leased() == {ScopeKey("thread", "t-sync"): f"static:{executor.url}"}
        assert scoped.id == f"static:{executor.url}"
    finally:
        await provider.aclose()


# -- a deep agent served by Berth --------------------------------------------------------------


def _tool_messages(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in values["messages"] if m["type"] == "tool"]


@pytest.mark.parametrize("graph_id", ["deep", "deep_factory"])
async def test_deep_agent_runs_tools_in_the_sandbox(
    sandbox_client: LangGraphClient, tmp_path: Path, graph_id: str
) -> None:
    workdir = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    workdir.mkdir()
    notes = workdir / "notes.txt"
    thread = await sandbox_client.threads.create()
    result = await sandbox_client.runs.wait(
        thread["thread_id"],
        graph_id,
        input={"messages": [{"role": "human", "content": f"workdir: {workdir}"}]},
    )
    assert isinstance(result, dict) and "__error__" not in result, result

    state = await sandbox_client.threads.get_state(thread["thread_id"])
    values = state["values"]
    assert isinstance(values, dict)
    assert values["messages"][-1]["content"] == "All sandbox steps done."
    tools = _tool_messages(values)
    by_call = {m["tool_call_id"]: m for m in tools}
    names = [m["name"] for m in tools]
    assert names[:4] == ["write_file", "edit_file", "execute", "read_file"]
    assert sorted(names[4:7]) == ["glob", "grep", "ls"]
    assert names[7:] == ["read_file", "edit_file", "execute"]

    # The file the agent wrote and edited is on the executor's disk.
    assert notes.read_text() == "alpha\ngamma\n"
    assert str(notes) in by_call["call_0_0"]["content"]
    assert "Successfully replaced 1 instance" in by_call["call_1_0"]["content"]
    executed = by_call["call_2_0"]["content"]
    # stdout and stderr interleave as they arrive: check each, not their order.
    assert "alpha\ngamma\n" in executed and "sum=42" in executed and "oops" in executed
    assert "[Command succeeded with exit code 0]" in executed
    assert by_call["call_2_0"]["artifact"] == {"truncated": False, "exit_code": 0}
    read = by_call["call_3_0"]["content"]
    assert "alpha" in read and "gamma" in read and "beta" not in read
    assert str(notes) in by_call["call_4_0"]["content"]  # ls
    assert str(notes) in by_call["call_4_1"]["content"]  # glob
    assert "gamma" in by_call["call_4_2"]["content"]  # grep
    # Errors reach the model as tool results, worded like deepagents' own backends.
    assert f"File '{workdir}/missing.txt' not found" in by_call["call_5_0"]["content"]
    assert "String not found in file" in by_call["call_6_0"]["content"]
    failed = by_call["call_7_0"]
    assert (
        "failing" in failed["content"] and "[Command failed with exit code 3]" in failed["content"]
    )
    assert failed["artifact"]["exit_code"] == 3


# -- bad configuration -------------------------------------------------------------------------


async def test_run_without_a_configured_sandbox_fails_with_what_to_set(
    sandbox_client: LangGraphClient, sandbox_server: RuntimeProcess, tmp_path: Path
) -> None:
    thread = await sandbox_client.threads.create()
    run = await sandbox_client.runs.create(
        thread["thread_id"],
        "deep_unconfigured",
        input={"messages": [{"role": "human", "content": f"workdir: {tmp_path}"}]},
    )
    await sandbox_client.runs.join(thread["thread_id"], run["run_id"])
    done = await sandbox_client.runs.get(thread["thread_id"], run["run_id"])
    assert done["status"] == "error"
    state = await sandbox_client.threads.get_state(thread["thread_id"])
    assert state["values"]["messages"][-1]["tool_calls"][0]["name"] == "write_file"
    assert not (tmp_path / "notes.txt").exists()
    log = sandbox_server.log()
    assert "SandboxUnavailable" in log and "no sandbox configured" in log
