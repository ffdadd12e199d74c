"""deepagents' `SandboxBackendProtocol` over one in-sandbox executor (HTTP, Bearer token).

The executor (auth_proxy/cmd/berth-executor) implements every file operation natively, so
nothing here needs Python or coreutils inside the sandbox image: only the executor's own
`/bin/sh` for `execute`. Errors the model can act on (missing file, ambiguous edit, bad
path) come back in deepagents' result types with the same wording as its own backends;
failures of the sandbox itself (unreachable, bad token, 5xx) raise `ExecutorError`, so a
run fails loudly instead of feeding an infrastructure fault to the model as tool output.

Right after binding, the executor may still hold the previous (empty) token hash: it reads
a downwardAPI file that kubelet refreshes only on its sync period (up to about a minute
after the adoption patch). A backend made with `token_grace` therefore retries 401 answers
with a short backoff until that many seconds have passed; the first answer that is not a
401 ends the grace window for good, so a wrong token later fails at once.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from typing import Any

import httpx
from deepagents.backends.protocol import (
    FILE_NOT_FOUND,
    INVALID_PATH,
    IS_DIRECTORY,
    PERMISSION_DENIED,
    DeleteResult,
    EditResult,
    ExecuteResponse,
    FileData,
    FileDownloadResponse,
    FileInfo,
    FileUploadResponse,
    GlobResult,
    GrepMatch,
    GrepResult,
    LsResult,
    ReadResult,
    SandboxBackendProtocol,
    WriteResult,
)
from deepagents.backends.utils import EMPTY_OLD_STRING_ERROR, _get_backend_read_file_type

DEFAULT_COMMAND_TIMEOUT = 120
"""The executor's own default (`timeoutSeconds` absent or 0)."""
HTTP_MARGIN_SECONDS = 30.0
"""Extra time the HTTP read waits beyond a command's timeout (the executor kills at it)."""
FILE_OP_TIMEOUT = 60.0
TOKEN_RETRY_FIRST = 0.1
TOKEN_RETRY_MAX = 1.0
"""Backoff bounds (seconds) between retries of a 401 inside the token grace window."""


class ExecutorError(RuntimeError):
    """The sandbox's executor failed (not the command or the file operation)."""


class ExecutorUnreachable(ExecutorError):
    """No connection to the executor: the sandbox is gone, a fresh one may be leased."""


class _Reply:
    """Status, decoded JSON (or raw bytes) and the `detail` of an executor response."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        self.content = response.content
        self.detail = ""
        self.data: Any = None
        if "json" in response.headers.get("content-type", ""):
            try:
                self.data = response.json()
            except ValueError:
                self.data = None
        if self.status >= 400:
            if isinstance(self.data, Mapping) and "detail" in self.data:
                self.detail = str(self.data["detail"])
            else:
                self.detail = response.text.strip()[:500] or f"HTTP {self.status}"


def _failure(reply: _Reply, what: str) -> ExecutorError:
    return ExecutorError(f"sandbox executor: {what}: HTTP {reply.status}: {reply.detail}")


def _check_infra(reply: _Reply, what: str) -> None:
    """Raise for answers no model can act on: bad token and server errors."""
    if reply.status == 401 or reply.status >= 500:
        raise _failure(reply, what)


def _file_error(reply: _Reply) -> str:
    """A `FileOperationError` for upload/download answers, else the executor's detail."""
    detail = reply.detail.lower()
    if reply.status == 404:
        return FILE_NOT_FOUND
    if reply.status == 403 or "permission denied" in detail:
        return PERMISSION_DENIED
    if "directory" in detail:
        return IS_DIRECTORY
    if reply.status == 400:
        return INVALID_PATH
    return reply.detail


def _file_info(item: Mapping[str, Any]) -> FileInfo:
    info: FileInfo = {"path": str(item["path"])}
    if "isDir" in item:
        info["is_dir"] = bool(item["isDir"])
    if item.get("size") is not None:
        info["size"] = int(item["size"])
    if item.get("modifiedAt"):
        info["modified_at"] = str(item["modifiedAt"])
    return info


def _exec_body(command: str, timeout: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command}
    if timeout is not None:
        if timeout < 0:
            raise ValueError(f"timeout must be non-negative, got {timeout}")
        body["timeoutSeconds"] = timeout
    return body


def _exec_http_timeout(timeout: int | None) -> float:
    return float(timeout or DEFAULT_COMMAND_TIMEOUT) + HTTP_MARGIN_SECONDS


def _exec_result(reply: _Reply, timeout: int | None) -> ExecuteResponse:
    _check_infra(reply, "exec")
    if reply.status >= 400:
        # A request the executor refused (e.g. a timeout over its maximum): nothing ran.
        return ExecuteResponse(output=f"Error: {reply.detail}")
    if not isinstance(reply.data, Mapping):
        raise ExecutorError(f"sandbox executor: exec: not a JSON object: {reply.content[:200]!r}")
    data = reply.data
    output = str(data.get("output", ""))
    exit_code = data.get("exitCode")
    if data.get("timedOut"):
        seconds = timeout or DEFAULT_COMMAND_TIMEOUT
        note = f"Error: Command timed out after {seconds} seconds."
        if timeout is None:
            note += " For long-running commands, re-run using the timeout parameter."
        output = f"{output.rstrip()}\n{note}" if output.strip() else note
    return ExecuteResponse(
        output=output,
        exit_code=int(exit_code) if exit_code is not None else None,
        truncated=bool(data.get("truncated", False)),
    )


def _read_body(file_path: str, offset: int, limit: int) -> dict[str, Any]:
    return {"path": file_path, "offset": int(offset), "limit": int(limit)}


def _binary_read(reply: _Reply, file_path: str) -> ReadResult:
    _check_infra(reply, "read")
    if reply.status == 404:
        return ReadResult(error=f"File '{file_path}' not found")
    if reply.status >= 400:
        return ReadResult(error=f"Error reading file '{file_path}': {reply.detail}")
    encoded = base64.standard_b64encode(reply.content).decode("ascii")
    return ReadResult(file_data=FileData(content=encoded, encoding="base64"))


def _read_result(reply: _Reply, file_path: str, limit: int) -> ReadResult:
    _check_infra(reply, "read")
    if reply.status == 404:
        return ReadResult(error=f"File '{file_path}' not found")
    if reply.status >= 400:
        return ReadResult(error=reply.detail)
    data = reply.data if isinstance(reply.data, Mapping) else {}
    content = str(data.get("content", ""))
    if data.get("encoding") == "base64":  # not UTF-8: the whole file, like FilesystemBackend
        return ReadResult(file_data=FileData(content=content, encoding="base64"))
    start = data.get("startLine")
    if start is None:
        # An empty file (the middleware shows its reminder) or a zero-line window.
        return ReadResult(
            file_data=FileData(content=content, encoding="utf-8"),
            no_lines_requested=limit <= 0 and content == "",
        )
    return ReadResult(
        file_data=FileData(content=content, encoding="utf-8"),
        total_lines=data.get("totalLines"),
        start_line=int(start),
        end_line=int(data["endLine"]),
        next_offset=data.get("nextOffset"),
    )


def _ls_result(reply: _Reply, path: str) -> LsResult:
    _check_infra(reply, "ls")
    if reply.status == 404:
        return LsResult(error=f"Path '{path}': path_not_found")
    if reply.status >= 400:
        kind = "not_a_directory" if "directory" in reply.detail.lower() else reply.detail
        return LsResult(error=f"Path '{path}': {kind}")
    return LsResult(entries=[_file_info(item) for item in reply.data or ()])


def _write_result(reply: _Reply, file_path: str) -> WriteResult:
    _check_infra(reply, "write")
    if reply.status >= 400:
        return WriteResult(error=f"Error writing file '{file_path}': {reply.detail}")
    return WriteResult(path=file_path)


def _edit_result(reply: _Reply, file_path: str) -> EditResult:
    _check_infra(reply, "edit")
    if reply.status == 404:
        return EditResult(error=f"Error: File '{file_path}' not found")
    if reply.status >= 400:
        detail = reply.detail
        return EditResult(error=detail if detail.startswith("Error") else f"Error: {detail}")
    data = reply.data if isinstance(reply.data, Mapping) else {}
    return EditResult(path=file_path, occurrences=int(data.get("occurrences", 1)))


def _delete_result(reply: _Reply, file_path: str) -> DeleteResult:
    _check_infra(reply, "delete")
    if reply.status == 404:
        return DeleteResult(error=f"Error: '{file_path}' not found")
    if reply.status >= 400:
        return DeleteResult(error=f"Error deleting '{file_path}': {reply.detail}")
    return DeleteResult(path=file_path)


def _glob_result(reply: _Reply, path: str) -> GlobResult:
    _check_infra(reply, "glob")
    if reply.status >= 400:
        return GlobResult(error=f"Error globbing path '{path}': {reply.detail}")
    return GlobResult(matches=[_file_info(item) for item in reply.data or ()])


def _grep_body(pattern: str, path: str, glob: str | None, max_count: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"pattern": pattern, "path": path}
    if glob:
        body["glob"] = glob
    if max_count is not None:
        body["maxCount"] = max_count + 1  # one more tells "exactly at the cap" from "capped"
    return body


def _grep_result(reply: _Reply, path: str, max_count: int | None) -> GrepResult:
    _check_infra(reply, "grep")
    if reply.status >= 400:
        return GrepResult(error=f"Error searching path '{path}': {reply.detail}")
    matches: list[GrepMatch] = [
        {"path": str(m["path"]), "line": int(m["line"]), "text": str(m["text"])}
        for m in reply.data or ()
    ]
    if max_count is not None and len(matches) > max_count:
        return GrepResult(matches=matches[:max_count], truncated=True)
    return GrepResult(matches=matches)


def _is_text(file_path: str) -> bool:
    return _get_backend_read_file_type(file_path) == "text"


class ExecutorBackend(SandboxBackendProtocol):
    """One sandbox, addressed by its executor's URL and the claim's token."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        sandbox_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        token_grace: float = 0.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._grace_until = time.monotonic() + token_grace if token_grace > 0 else None
        self._backoff = TOKEN_RETRY_FIRST
        self._id = sandbox_id or self.url
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    @property
    def id(self) -> str:
        return self._id

    # -- transport -------------------------------------------------------------------------
    def _sync(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.url, headers=self._headers, transport=self._transport
            )
        return self._client

    def _async(self) -> httpx.AsyncClient:
        if self._aclient is None:
            self._aclient = httpx.AsyncClient(
                base_url=self.url, headers=self._headers, transport=self._async_transport
            )
        return self._aclient

    @property
    def in_token_grace(self) -> bool:
        """Whether a 401 would still be retried (freshly bound, no accepted call yet)."""
        return self._grace_until is not None

    def _grace_delay(self, reply: _Reply) -> float | None:
        """How long to wait before retrying this answer, or None to return it as is."""
        if self._grace_until is None:
            return None
        left = self._grace_until - time.monotonic()
        if reply.status != 401 or left <= 0:
            self._grace_until = None  # the token was accepted (or the wait is over)
            return None
        delay = min(self._backoff, left)
        self._backoff = min(self._backoff * 2, TOKEN_RETRY_MAX)
        return delay

    def _call(self, method: str, path: str, seconds: float = FILE_OP_TIMEOUT, **kw: Any) -> _Reply:
        while True:
            reply = self._call_once(method, path, seconds, **kw)
            delay = self._grace_delay(reply)
            if delay is None:
                return reply
            time.sleep(delay)

    async def _acall(
        self, method: str, path: str, seconds: float = FILE_OP_TIMEOUT, **kw: Any
    ) -> _Reply:
        while True:
            reply = await self._acall_once(method, path, seconds, **kw)
            delay = self._grace_delay(reply)
            if delay is None:
                return reply
            await asyncio.sleep(delay)

    def _call_once(self, method: str, path: str, seconds: float, **kw: Any) -> _Reply:
        try:
            return _Reply(self._sync().request(method, path, timeout=seconds, **kw))
        except httpx.ConnectError as e:
            raise ExecutorUnreachable(f"sandbox executor {self.url} unreachable: {e}") from e
        except httpx.HTTPError as e:
            raise ExecutorError(f"sandbox executor {self.url}: {type(e).__name__}: {e}") from e

    async def _acall_once(self, method: str, path: str, seconds: float, **kw: Any) -> _Reply:
        try:
            return _Reply(await self._async().request(method, path, timeout=seconds, **kw))
        except httpx.ConnectError as e:
            raise ExecutorUnreachable(f"sandbox executor {self.url} unreachable: {e}") from e
        except httpx.HTTPError as e:
            raise ExecutorError(f"sandbox executor {self.url}: {type(e).__name__}: {e}") from e

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        self.close()
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

    async def healthy(self) -> bool:
        """`GET /healthz` (no token) answers 200."""
        try:
            return (await self._async().get("/healthz", timeout=5.0)).status_code == 200
        except httpx.HTTPError:
            return False

    # -- execute ---------------------------------------------------------------------------
    def execute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:
        body = _exec_body(command, timeout)
        reply = self._call("POST", "/v1/exec", _exec_http_timeout(timeout), json=body)
        return _exec_result(reply, timeout)

    async def aexecute(self, command: str, *, timeout: int | None = None) -> ExecuteResponse:  # noqa: ASYNC109
        body = _exec_body(command, timeout)
        reply = await self._acall("POST", "/v1/exec", _exec_http_timeout(timeout), json=body)
        return _exec_result(reply, timeout)

    # -- files -----------------------------------------------------------------------------
    def ls(self, path: str) -> LsResult:
        return _ls_result(self._call("GET", "/v1/ls", params={"path": path}), path)

    async def als(self, path: str) -> LsResult:
        return _ls_result(await self._acall("GET", "/v1/ls", params={"path": path}), path)

    def read(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        if not _is_text(file_path):
            return _binary_read(
                self._call("GET", "/v1/files", params={"path": file_path}), file_path
            )
        reply = self._call("POST", "/v1/read", json=_read_body(file_path, offset, limit))
        return _read_result(reply, file_path, limit)

    async def aread(self, file_path: str, offset: int = 0, limit: int = 2000) -> ReadResult:
        if not _is_text(file_path):
            reply = await self._acall("GET", "/v1/files", params={"path": file_path})
            return _binary_read(reply, file_path)
        reply = await self._acall("POST", "/v1/read", json=_read_body(file_path, offset, limit))
        return _read_result(reply, file_path, limit)

    def write(self, file_path: str, content: str) -> WriteResult:
        body = {"path": file_path, "content": content}
        return _write_result(self._call("POST", "/v1/write", json=body), file_path)

    async def awrite(self, file_path: str, content: str) -> WriteResult:
        body = {"path": file_path, "content": content}
        return _write_result(await self._acall("POST", "/v1/write", json=body), file_path)

    def edit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        if not old_string:
            return EditResult(error=EMPTY_OLD_STRING_ERROR)
        body = {"path": file_path, "old": old_string, "new": new_string, "replaceAll": replace_all}
        return _edit_result(self._call("POST", "/v1/edit", json=body), file_path)

    async def aedit(
        self,
        file_path: str,
        old_string: str,
        new_string: str,
        replace_all: bool = False,
    ) -> EditResult:
        if not old_string:
            return EditResult(error=EMPTY_OLD_STRING_ERROR)
        body = {"path": file_path, "old": old_string, "new": new_string, "replaceAll": replace_all}
        return _edit_result(await self._acall("POST", "/v1/edit", json=body), file_path)

    def delete(self, file_path: str) -> DeleteResult:
        reply = self._call("DELETE", "/v1/files", params={"path": file_path})
        return _delete_result(reply, file_path)

    async def adelete(self, file_path: str) -> DeleteResult:
        reply = await self._acall("DELETE", "/v1/files", params={"path": file_path})
        return _delete_result(reply, file_path)

    def glob(self, pattern: str, path: str | None = None) -> GlobResult:
        root = path or "/"
        body = {"pattern": pattern, "path": root}
        return _glob_result(self._call("POST", "/v1/glob", json=body), root)

    async def aglob(self, pattern: str, path: str | None = None) -> GlobResult:
        root = path or "/"
        body = {"pattern": pattern, "path": root}
        return _glob_result(await self._acall("POST", "/v1/glob", json=body), root)

    def grep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        root = path or "/"
        body = _grep_body(pattern, root, glob, max_count)
        return _grep_result(self._call("POST", "/v1/grep", json=body), root, max_count)

    async def agrep(
        self,
        pattern: str,
        path: str | None = None,
        glob: str | None = None,
        *,
        max_count: int | None = None,
    ) -> GrepResult:
        root = path or "/"
        body = _grep_body(pattern, root, glob, max_count)
        return _grep_result(await self._acall("POST", "/v1/grep", json=body), root, max_count)

    def upload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        out: list[FileUploadResponse] = []
        for path, content in files:
            reply = self._call("PUT", "/v1/files", params={"path": path}, content=content)
            out.append(_upload_response(reply, path))
        return out

    async def aupload_files(self, files: list[tuple[str, bytes]]) -> list[FileUploadResponse]:
        out: list[FileUploadResponse] = []
        for path, content in files:
            reply = await self._acall("PUT", "/v1/files", params={"path": path}, content=content)
            out.append(_upload_response(reply, path))
        return out

    def download_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        return [
            _download_response(self._call("GET", "/v1/files", params={"path": p}), p) for p in paths
        ]

    async def adownload_files(self, paths: list[str]) -> list[FileDownloadResponse]:
        out: list[FileDownloadResponse] = []
        for path in paths:
            reply = await self._acall("GET", "/v1/files", params={"path": path})
            out.append(_download_response(reply, path))
        return out


def _upload_response(reply: _Reply, path: str) -> FileUploadResponse:
    _check_infra(reply, "upload")
    return FileUploadResponse(path=path, error=_file_error(reply) if reply.status >= 400 else None)


def _download_response(reply: _Reply, path: str) -> FileDownloadResponse:
    _check_infra(reply, "download")
    if reply.status >= 400:
        return FileDownloadResponse(path=path, error=_file_error(reply))
    return FileDownloadResponse(path=path, content=reply.content)
