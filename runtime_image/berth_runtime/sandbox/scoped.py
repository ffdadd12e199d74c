"""The backend a graph hands to `create_deep_agent`: it finds the run's sandbox per call.

    from berth_runtime.sandbox import sandbox_backend
    graph = create_deep_agent(model=..., backend=sandbox_backend())

Like deepagents' `StateBackend`, one instance serves every run: each call reads the
current run's config (thread and assistant ids) and goes to that scope's sandbox, leased
from the process-wide provider on first use. The graph never sees Kubernetes; whether the
sandbox is a claimed Pod or a local executor is the deployment's choice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from deepagents.backends.protocol import (
    DeleteResult,
    EditResult,
    ExecuteResponse,
    FileDownloadResponse,
    FileUploadResponse,
    GlobResult,
    GrepResult,
    LsResult,
    ReadResult,
    SandboxBackendProtocol,
    WriteResult,
)
from langgraph.config import get_config

from berth_runtime.sandbox.backend import ExecutorBackend, ExecutorUnreachable
from berth_runtime.sandbox.provider import SandboxProvider, get_provider
from berth_runtime.sandbox.resolvers import SandboxUnavailable, ScopeKey

T = TypeVar("T")
Op = Callable[[ExecutorBackend], Awaitable[T]]


class ScopedSandboxBackend(SandboxBackendProtocol):
    """`SandboxBackendProtocol` for the current run's sandbox (thread or assistant scope)."""

    def __init__(
        self,
        provider: SandboxProvider | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._provider = provider
        self._config = config

    def _resolve(self) -> tuple[SandboxProvider, ScopeKey]:
        provider = self._provider or get_provider()
        config: Mapping[str, Any]
        if self._config is not None:
            config = self._config
        else:
            try:
                config = get_config()
            except RuntimeError:
                raise SandboxUnavailable(
                    "the sandbox backend was called outside a run; use it from a graph's "
                    "tools or nodes, or bind a config with current_backend(config)"
                ) from None
        return provider, provider.key_for(config)

    @property
    def id(self) -> str:
        try:
            provider, key = self._resolve()
        except SandboxUnavailable:
            return "berth-sandbox"
        return provider.leased().get(key, f"berth-sandbox:{key.scope}:{key.value}")

    async def _run(self, op: Op[T], provider: SandboxProvider, key: ScopeKey) -> T:
        """Run `op` on the scope's executor; one retry on a fresh lease if it vanished."""
        for attempt in range(2):
            async with provider.use(key) as backend:
                try:
                    return await op(backend)
                except ExecutorUnreachable:
                    if attempt:
                        raise
                    stale = backend
            await provider.discard(key, stale)
        raise AssertionError("unreachable")

    async def _async(self, op: Op[T]) -> T:
        provider, key = self._resolve()
        return await self._run(op, provider, key)

    def _sync(self, op: Op[T], direct: Callable[[ExecutorBackend], T]) -> T:
        """Sync call: sent to the provider's loop, or, when made on that loop (deepagents
        calls a few helpers synchronously from async tools), straight to the leased
        executor, blocking the loop for one request."""
        provider, key = self._resolve()  # in the caller's thread: the run's config lives there
        if provider.on_loop_thread():
            backend = provider.backend_for(key)
            if backend is None:
                raise RuntimeError(
                    "the sandbox backend's sync API was called on the event loop before the "
                    "sandbox was leased; use its async methods (ainvoke/astream)"
                )
            return direct(backend)
        return provider.run_sync(lambda: self._run(op, provider, key))

    # -- SandboxBackendProtocol ------------------------------------------------------------
    async def aexecute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:  # noqa: ASYNC109
        return await self._async(lambda b: b.aexecute(command, timeout=timeout))

    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        return self._sync(
            lambda b: b.aexecute(command, timeout=timeout),
            lambda b: b.execute(command, timeout=timeout),
        )

    async def als(self, path: str) -> LsResult:
        return await self._async(lambda b: b.als(path))

    def ls(self, path: str) -> LsResult:
        return self._sync(lambda b: b.als(path), lambda b: b.ls(path))

    async def aread(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return await self._async(lambda b: b.aread(file_path, offset, limit))

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        return self._sync(
            lambda b: b.aread(file_path, offset, limit), lambda b: b.read(file_path, offset, limit)
        )

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        return await self._async(lambda b: b.awrite(file_path, content))

    def write(self, file_path: str, content: str) -> WriteResult:
        return self._sync(
            lambda b: b.awrite(file_path, content), lambda b: b.write(file_path, content)
        )

    async def aedit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        return await self._async(lambda b: b.aedit(file_path, old_string, new_string, replace_all))

    def edit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        return self._sync(
            lambda b: b.aedit(file_path, old_string, new_string, replace_all),
            lambda b: b.edit(file_path, old_string, new_string, replace_all),
        )

    async def adelete(self, file_path: str) -> DeleteResult:
        return await self._async(lambda b: b.adelete(file_path))

    def delete(self, file_path: str) -> DeleteResult:
        return self._sync(lambda b: b.adelete(file_path), lambda b: b.delete(file_path))

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        return await self._async(lambda b: b.aglob(pattern, path))

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        return self._sync(lambda b: b.aglob(pattern, path), lambda b: b.glob(pattern, path))

    async def agrep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        return await self._async(lambda b: b.agrep(pattern, path, glob, max_count=max_count))

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        return self._sync(
            lambda b: b.agrep(pattern, path, glob, max_count=max_count),
            lambda b: b.grep(pattern, path, glob, max_count=max_count),
        )

    async def aupload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return await self._async(lambda b: b.aupload_files(files))

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        return self._sync(lambda b: b.aupload_files(files), lambda b: b.upload_files(files))

    async def adownload_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return await self._async(lambda b: b.adownload_files(paths))

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return self._sync(lambda b: b.adownload_files(paths), lambda b: b.download_files(paths))


def sandbox_backend() -> ScopedSandboxBackend:
    """The backend for `create_deep_agent(backend=...)`: each run gets its scope's sandbox."""
    return ScopedSandboxBackend()


def current_backend(config: Mapping[str, Any]) -> ScopedSandboxBackend:
    """For graph factories: the sandbox of the run whose `config` the factory received.

    Nothing is claimed until the first call, so a factory may build the graph freely
    (Berth also calls factories to read state, where no sandbox must be claimed).
    """
    return ScopedSandboxBackend(config=dict(config))
