"""An agent that reads the user's calendar with an OAuth token it never sees handed around.

`calendar` uses Berth's helper (`berth_runtime.agent_auth.helper.authenticate`): on first use
the run pauses with an interrupt carrying the consent URL; after the user consents, Berth
resumes the run and the helper returns the token. `calendar_lc` does the same with the
official `langchain-auth` client, pointed at Berth (`BERTH_AGENT_AUTH_URL`,
`BERTH_AGENT_AUTH_API_KEY`).
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

import httpx
from berth_runtime.agent_auth.helper import authenticate
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    question: str
    events: list[dict[str, Any]]
    answer: str


async def fetch_events(token: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.get(
            os.environ["CALENDAR_URL"] + "/events", headers={"Authorization": f"Bearer {token}"}
        )
    r.raise_for_status()
    out: dict[str, Any] = r.json()
    return out


def _answer(data: dict[str, Any]) -> dict[str, Any]:
    titles = ", ".join(e["title"] for e in data["events"]) or "nothing"
    return {"events": data["events"], "answer": f"{data['user']} has: {titles}"}


async def read_calendar(state: State) -> dict[str, Any]:
    auth = await authenticate("calendar", ["calendar.read"])
    assert auth.token is not None
    return _answer(await fetch_events(auth.token))


async def read_calendar_lc(state: State, config: RunnableConfig) -> dict[str, Any]:
    from langchain_auth import Client

    client = Client(
        api_url=os.environ["BERTH_AGENT_AUTH_URL"], api_key=os.environ["BERTH_AGENT_AUTH_API_KEY"]
    )
    result = await client.authenticate(
        provider="calendar",
        scopes=["calendar.read"],
        user_id=config["configurable"]["langgraph_auth_user_id"],
    )
    assert result.token is not None
    return _answer(await fetch_events(result.token))


graph = StateGraph(State).add_node(read_calendar).add_edge(START, "read_calendar").compile()
graph_lc = (
    StateGraph(State).add_node(read_calendar_lc).add_edge(START, "read_calendar_lc").compile()
)
