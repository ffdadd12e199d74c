"""`/a2a/{assistant_id}` and the agent card, driven by the `a2a-sdk` client (A2A 0.3 JSON-RPC)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_data_message, new_text_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    Role,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError
from google.protobuf.json_format import MessageToDict
from langgraph_sdk.client import LangGraphClient

from tests.integration.runtime.conftest import REPO, RuntimeProcess, launch
from tests.support.servers import Server

pytestmark = pytest.mark.integration

OWNERS_CONFIG = REPO / "tests" / "integration" / "graphs" / "with_auth" / "owners.json"


@asynccontextmanager
async def a2a_client(url: str, assistant_id: str, streaming: bool) -> AsyncIterator[Client]:
    async with httpx.AsyncClient(timeout=60) as http:
        factory = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming))
        client = await factory.create_from_url(
            url, resolver_http_kwargs={"params": {"assistant_id": assistant_id}}
        )
        yield client


async def _events(client: Client, request: SendMessageRequest) -> list[StreamResponse]:
    return [ev async for ev in client.send_message(request)]


def _texts(task: Task) -> list[str]:
    return [p.text for a in task.artifacts for p in a.parts if p.text]


async def test_agent_card_per_assistant(server: RuntimeProcess, http: httpx.AsyncClient) -> None:
    r = await http.get("/.well-known/agent-card.json", params={"assistant_id": "agent"})
    assert r.status_code == 200
    card = r.json()
    assert card["protocolVersion"] == "0.3.0" and card["name"] == "agent"
    assert card["url"].endswith(
        f"/a2a/{uuid.uuid5(uuid.UUID('6ba7b821-9dad-11d1-80b4-00c04fd430c8'), 'agent')}"
    )
    assert card["capabilities"]["streaming"] is True
    # bad input: no assistant, an unknown one
    assert (await http.get("/.well-known/agent-card.json")).status_code == 400
    r = await http.get("/.well-known/agent-card.json", params={"assistant_id": "nope"})
    assert r.status_code == 404


async def test_send_get_and_follow_up_in_the_same_context(
    server: RuntimeProcess, client: LangGraphClient
) -> None:
    async with a2a_client(server.url, "agent", streaming=False) as a2a:
        msg = new_text_message("add 2 and 3", role=Role.ROLE_USER)
        [event] = await _events(a2a, SendMessageRequest(message=msg))
        task = event.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert _texts(task) == ["The sum is 5."]
        # contextId is the thread, the task is the run
        run = await client.runs.get(task.context_id, task.id)
        assert run["status"] == "success"

        got = await a2a.get_task(GetTaskRequest(id=task.id))
        assert got.status.state == TaskState.TASK_STATE_COMPLETED and got.id == task.id

        again = new_text_message("and again", role=Role.ROLE_USER, context_id=task.context_id)
        [event2] = await _events(a2a, SendMessageRequest(message=again))
        assert event2.task.context_id == task.context_id and event2.task.id != task.id
        state = await client.threads.get_state(task.context_id)
        humans = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
        assert humans == ["add 2 and 3", "and again"]

        with pytest.raises(TaskNotFoundError):
            await a2a.get_task(GetTaskRequest(id=str(uuid.uuid4())))
        with pytest.raises(TaskNotCancelableError):
            await a2a.cancel_task(CancelTaskRequest(id=task.id))


async def test_stream_yields_task_working_artifact_and_final_status(
    server: RuntimeProcess,
) -> None:
    async with a2a_client(server.url, "factory", streaming=True) as a2a:
        msg = new_data_message({"who": "stream"}, role=Role.ROLE_USER)
        events = await _events(a2a, SendMessageRequest(message=msg))
    kinds = [ev.WhichOneof("payload") for ev in events]
    assert kinds == ["task", "status_update", "artifact_update", "status_update"], kinds
    assert events[1].status_update.status.state == TaskState.TASK_STATE_WORKING
    data = MessageToDict(events[2].artifact_update.artifact)["parts"][-1]["data"]
    assert data == {"greeting": "hello from langgraph.json", "who": "stream"}
    assert events[3].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert events[3].status_update.task_id == events[0].task.id


async def test_cancel_a_running_task(server: RuntimeProcess, client: LangGraphClient) -> None:
    slow = await client.assistants.create("steps", config={"configurable": {"sleep": 2}})
    async with a2a_client(server.url, slow["assistant_id"], streaming=False) as a2a:
        msg = new_data_message({"done": []}, role=Role.ROLE_USER)
        config = SendMessageConfiguration(return_immediately=True)
        [event] = await _events(a2a, SendMessageRequest(message=msg, configuration=config))
        assert event.task.status.state == TaskState.TASK_STATE_SUBMITTED
        cancelled = await a2a.cancel_task(CancelTaskRequest(id=event.task.id))
        assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
        run = await client.runs.get(event.task.context_id, event.task.id)
        assert run["status"] == "interrupted"


async def test_bad_json_rpc_gets_errors_not_500(http: httpx.AsyncClient) -> None:
    url = "/a2a/agent"
    r = await http.post(url, content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700
    r = await http.post(url, json=[1, 2])
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600
    r = await http.post(url, json={"jsonrpc": "2.0", "id": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == -32600

    async def rpc(method: str, params: object) -> dict[str, object]:
        r = await http.post(
            url, json={"jsonrpc": "2.0", "id": "x", "method": method, "params": params}
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        assert body["id"] == "x"
        return body

    assert (await rpc("no/such", {}))["error"]["code"] == -32601  # type: ignore[index]
    assert (await rpc("message/send", "text"))["error"]["code"] == -32602  # type: ignore[index]
    assert (await rpc("message/send", {"message": {}}))["error"]["code"] == -32602  # type: ignore[index]
    no_parts = {"message": {"messageId": "m", "role": "user", "parts": []}}
    assert (await rpc("message/send", no_parts))["error"]["code"] == -32602  # type: ignore[index]
    bad_ctx = {
        "message": {
            "messageId": "m",
            "role": "user",
            "parts": [{"kind": "text", "text": "hi"}],
            "contextId": "not-a-uuid",
        }
    }
    assert (await rpc("message/send", bad_ctx))["error"]["code"] == -32602  # type: ignore[index]
    assert (await rpc("tasks/get", {}))["error"]["code"] == -32602  # type: ignore[index]
    assert (await rpc("tasks/get", {"id": "zzz"}))["error"]["code"] == -32001  # type: ignore[index]
    assert (await rpc("tasks/cancel", {"id": str(uuid.uuid4())}))["error"]["code"] == -32001  # type: ignore[index]
    assert (await rpc("tasks/resubscribe", {"id": "x"}))["error"]["code"] == -32004  # type: ignore[index]

    r = await http.post(
        "/a2a/no-such-assistant", json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get"}
    )
    assert r.status_code == 404


async def test_a2a_applies_auth(database_uri: str, redis: Server, tmp_path: Path) -> None:
    server = launch("serve", database_uri, redis.uri, tmp_path, config=OWNERS_CONFIG)
    alice_h = {"Authorization": "Bearer token-alice"}
    bob_h = {"Authorization": "Bearer token-bob"}
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            r = await http.get("/.well-known/agent-card.json", params={"assistant_id": "factory"})
            assert r.status_code == 401
            r = await http.post("/assistants", json={"graph_id": "factory"}, headers=alice_h)
            aid = r.json()["assistant_id"]
            # bob cannot even see alice's assistant
            r = await http.get(
                "/.well-known/agent-card.json", params={"assistant_id": aid}, headers=bob_h
            )
            assert r.status_code == 404

            async def rpc(headers: dict[str, str], method: str, params: Any) -> Any:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                return (await http.post(f"/a2a/{aid}", json=body, headers=headers)).json()

            part = {"kind": "data", "data": {"who": "alice"}}
            msg = {"messageId": "m1", "role": "user", "parts": [part]}
            task = (await rpc(alice_h, "message/send", {"message": msg}))["result"]
            assert task["status"]["state"] == "completed"
            thread = await http.get(f"/threads/{task['contextId']}", headers=alice_h)
            assert thread.json()["metadata"]["owner"] == "alice"
            assert (await http.post(f"/a2a/{aid}", json={}, headers=bob_h)).status_code == 404
    finally:
        server.terminate()
