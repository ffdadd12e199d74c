"""Tenant isolation, as a property: with the Agent Server docs' owner policy
(tests/integration/graphs/with_auth/tenant_auth.py), whatever one user does with any id another
user's resources have, the answer is exactly what a never-existing id gets (404, same detail),
lists and counts hold none of it, and the other user's resources are unchanged afterwards.

Every user creates an assistant, a thread with an interrupted run (so a checkpoint), a thread
cron, a stateless cron and a store item. Hypothesis draws sequences of (operation, attacker,
victim) from the table below; a sweep first calls every operation for every ordered pair. The
deliberately leaky variant of the policy (BERTH_TEST_LEAKY_AUTH) must be caught.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.fuzz.conftest import TALLY, TENANTS_CONFIG, fuzz_examples, serve
from tests.integration.runtime.conftest import RuntimeProcess
from tests.support.servers import Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

USERS = ("alice", "bob", "carol")
SCHEDULE = "0 9 1 1 *"  # never fires during the test
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Placeholders of the victim's ids: replaced by fresh random ids for the reference request.
VICTIM_IDS = ("a", "t", "r", "c", "cs", "ck")


@dataclass
class Tenant:
    name: str
    http: httpx.Client
    ids: dict[str, str] = field(default_factory=dict)
    store_key: str = ""

    def every_id(self) -> set[str]:
        return set(self.ids.values())


def client(server: RuntimeProcess, user: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer token-{user}"}, timeout=30
    )


def ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def secret_of(user: str) -> str:
    """The value of the user's store item: found in no answer to another user."""
    return f"secret-value-of-{user}"


def create_tenant(server: RuntimeProcess, user: str) -> Tenant:
    h = client(server, user)
    me = Tenant(user, h, store_key=f"key-of-{user}")
    a = ok(h.post("/assistants", json={"graph_id": "hitl", "name": f"{user}'s"}))
    me.ids["a"] = a["assistant_id"]
    t = ok(h.post("/threads", json={"metadata": {"about": user}}))
    me.ids["t"] = t["thread_id"]
    ok(
        h.post(
            f"/threads/{me.ids['t']}/runs/wait",
            json={"assistant_id": me.ids["a"], "input": {"topic": user}},
        )
    )
    [run] = ok(h.get(f"/threads/{me.ids['t']}/runs"))
    me.ids["r"] = run["run_id"]
    state = ok(h.get(f"/threads/{me.ids['t']}/state"))
    me.ids["ck"] = state["checkpoint"]["checkpoint_id"]
    body = {"assistant_id": me.ids["a"], "schedule": SCHEDULE}
    me.ids["c"] = ok(h.post(f"/threads/{me.ids['t']}/runs/crons", json=body))["cron_id"]
    me.ids["cs"] = ok(h.post("/runs/crons", json=body))["cron_id"]
    item = {"namespace": ["prefs"], "key": me.store_key, "value": {"secret": secret_of(user)}}
    ok(h.put("/store/items", json=item))
    # The attacker's own thread, to aim runs at the victim's assistant from a thread it owns.
    me.ids["own_t"] = ok(h.post("/threads", json={}))["thread_id"]
    assert all(isinstance(v, str) and v for v in me.ids.values()), me.ids
    return me


def snapshot(me: Tenant) -> str:
    """Everything of `me` that another user must not be able to change, seen by `me`."""
    h, i = me.http, me.ids
    answers = [
        h.get(f"/assistants/{i['a']}"),
        h.post(f"/assistants/{i['a']}/versions", json={}),
        h.get(f"/threads/{i['t']}"),
        h.get(f"/threads/{i['t']}/state"),
        h.get(f"/threads/{i['t']}/runs"),
        h.post("/runs/crons/search", json={"limit": 100}),
        h.get("/store/items", params={"namespace": "prefs", "key": me.store_key}),
    ]
    return json.dumps([(r.status_code, r.json()) for r in answers], sort_keys=True)


@dataclass(frozen=True)
class Op:
    """One request of the attacker. `kind` "id": it names the victim's ids and must be answered
    404, as random ids are; "same": answered exactly as random ids are (bulk operations that
    answer 2xx for ids they skip); "list": its answer must hold none of the victim's ids or
    data. Every answer is checked for the victim's other ids and data."""

    name: str
    method: str
    path: str
    body: Any = None
    params: dict[str, str] | None = None
    kind: str = "id"


OPS: tuple[Op, ...] = (
    # assistants
    Op("get assistant", "GET", "/assistants/{a}"),
    Op("update assistant", "PATCH", "/assistants/{a}", {"metadata": {"x": 1}}),
    Op("delete assistant", "DELETE", "/assistants/{a}"),
    Op("assistant graph", "GET", "/assistants/{a}/graph"),
    Op("assistant schemas", "GET", "/assistants/{a}/schemas"),
    Op("assistant subgraphs", "GET", "/assistants/{a}/subgraphs"),
    Op("assistant versions", "POST", "/assistants/{a}/versions", {}),
    Op("assistant set latest", "POST", "/assistants/{a}/latest", {"version": 1}),
    Op("search assistants", "POST", "/assistants/search", {"limit": 100}, kind="list"),
    Op("count assistants", "POST", "/assistants/count", {}, kind="list"),
    Op("stateless run on assistant", "POST", "/runs/wait", {"assistant_id": "{a}"}),
    Op("background run on assistant", "POST", "/runs", {"assistant_id": "{a}"}),
    Op("batch run on assistant", "POST", "/runs/batch", [{"assistant_id": "{a}"}]),
    Op("own thread run on assistant", "POST", "/threads/{own_t}/runs", {"assistant_id": "{a}"}),
    Op("cron on assistant", "POST", "/runs/crons", {"assistant_id": "{a}", "schedule": SCHEDULE}),
    Op(
        "a2a to assistant",
        "POST",
        "/a2a/{a}",
        {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "{r}"}},
    ),
    # threads
    Op("get thread", "GET", "/threads/{t}"),
    Op("update thread", "PATCH", "/threads/{t}", {"metadata": {"owner": "{attacker}"}}),
    Op("delete thread", "DELETE", "/threads/{t}"),
    Op("copy thread", "POST", "/threads/{t}/copy"),
    Op("thread state", "GET", "/threads/{t}/state"),
    Op("update thread state", "POST", "/threads/{t}/state", {"values": {"topic": "pwned"}}),
    Op("thread state at checkpoint", "GET", "/threads/{t}/state/{ck}"),
    Op(
        "thread state by checkpoint",
        "POST",
        "/threads/{t}/state/checkpoint",
        {"checkpoint": {"checkpoint_id": "{ck}"}},
    ),
    Op("thread history", "GET", "/threads/{t}/history"),
    Op("thread history (post)", "POST", "/threads/{t}/history", {"limit": 10}),
    Op("thread stream", "GET", "/threads/{t}/stream"),
    Op("thread storage", "GET", "/threads/{t}/storage"),
    Op("thread v2 events", "POST", "/threads/{t}/stream/events", {"channels": ["lifecycle"]}),
    Op(
        "thread v2 command",
        "POST",
        "/threads/{t}/commands",
        {"id": 1, "method": "state.get", "params": {}},
    ),
    Op("search threads", "POST", "/threads/search", {"limit": 100}, kind="list"),
    Op("count threads", "POST", "/threads/count", {}, kind="list"),
    Op("prune thread", "POST", "/threads/prune", {"thread_ids": ["{t}"]}, kind="same"),
    # runs
    Op("run on thread", "POST", "/threads/{t}/runs", {"assistant_id": "{own_a}"}),
    Op(
        "resume thread",
        "POST",
        "/threads/{t}/runs/wait",
        {"assistant_id": "{own_a}", "command": {"resume": "hijack"}},
    ),
    Op("stream run on thread", "POST", "/threads/{t}/runs/stream", {"assistant_id": "{own_a}"}),
    Op("list runs", "GET", "/threads/{t}/runs"),
    Op("get run", "GET", "/threads/{t}/runs/{r}"),
    Op("delete run", "DELETE", "/threads/{t}/runs/{r}"),
    Op("join run", "GET", "/threads/{t}/runs/{r}/join"),
    Op("join run stream", "GET", "/threads/{t}/runs/{r}/stream"),
    Op("cancel run", "POST", "/threads/{t}/runs/{r}/cancel"),
    Op("cancel runs", "POST", "/runs/cancel", {"thread_id": "{t}", "run_ids": ["{r}"]}),
    Op(
        "cancel thread's runs",
        "POST",
        "/runs/cancel",
        {"thread_id": "{t}", "status": "all"},
        kind="same",
    ),
    Op(
        "thread cron",
        "POST",
        "/threads/{t}/runs/crons",
        {"assistant_id": "{own_a}", "schedule": SCHEDULE},
    ),
    # crons
    Op("get cron", "GET", "/runs/crons/{c}"),
    Op("get stateless cron", "GET", "/runs/crons/{cs}"),
    Op("update cron", "PATCH", "/runs/crons/{c}", {"schedule": "0 10 1 1 *"}),
    Op("delete cron", "DELETE", "/runs/crons/{c}"),
    Op("delete stateless cron", "DELETE", "/runs/crons/{cs}"),
    Op("search crons", "POST", "/runs/crons/search", {"limit": 100}, kind="list"),
    Op("search crons of thread", "POST", "/runs/crons/search", {"thread_id": "{t}"}, kind="list"),
    Op(
        "search crons of assistant",
        "POST",
        "/runs/crons/search",
        {"assistant_id": "{a}"},
        kind="list",
    ),
    Op("count crons", "POST", "/runs/crons/count", {}, kind="list"),
    # store: the victim's namespace and key, as the attacker can name them
    Op(
        "store get",
        "GET",
        "/store/items",
        params={"namespace": "prefs", "key": "{store_key}"},
        kind="list",
    ),
    Op(
        "store get (full namespace)",
        "GET",
        "/store/items",
        params={"namespace": "{victim}.prefs", "key": "{store_key}"},
        kind="list",
    ),
    Op(
        "store search",
        "POST",
        "/store/items/search",
        {"namespace_prefix": [], "limit": 100},
        kind="list",
    ),
    Op(
        "store search victim prefix",
        "POST",
        "/store/items/search",
        {"namespace_prefix": ["{victim}"], "limit": 100},
        kind="list",
    ),
    Op("store namespaces", "POST", "/store/namespaces", {"limit": 100}, kind="list"),
    Op(
        "store put over",
        "PUT",
        "/store/items",
        {"namespace": ["prefs"], "key": "{store_key}", "value": {"secret": "overwritten"}},
        kind="list",
    ),
    Op(
        "store delete",
        "DELETE",
        "/store/items",
        {"namespace": ["prefs"], "key": "{store_key}"},
        kind="list",
    ),
    Op(
        "store delete (full namespace)",
        "DELETE",
        "/store/items",
        {"namespace": ["{victim}", "prefs"], "key": "{store_key}"},
        kind="list",
    ),
)


def fill(template: Any, values: dict[str, str]) -> Any:
    if isinstance(template, str):
        return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
    if isinstance(template, list):
        return [fill(x, values) for x in template]
    if isinstance(template, dict):
        return {k: fill(v, values) for k, v in template.items()}
    return template


def normalized(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, UUID_RE.sub("<id>", r.text)


@dataclass
class Outcome:
    attempts: int = 0
    leaks: list[str] = field(default_factory=list)


def attack(op: Op, attacker: Tenant, victim: Tenant, out: Outcome) -> None:
    values = {**victim.ids, "store_key": victim.store_key, "victim": victim.name}
    values |= {"own_a": attacker.ids["a"], "own_t": attacker.ids["own_t"]}
    values["attacker"] = attacker.name

    def send(vals: dict[str, str]) -> httpx.Response:
        return attacker.http.request(
            op.method,
            fill(op.path, vals),
            json=fill(op.body, vals) if op.body is not None else None,
            params=fill(op.params, vals) if op.params else None,
            timeout=10,
        )

    out.attempts += 1
    label = f"{attacker.name} -> {victim.name}'s {op.name}"
    try:
        foreign = send(values)
    except httpx.ReadTimeout:
        out.leaks.append(f"{label}: the request hung (a stream of the victim's?)")
        return
    # What the victim has and the attacker did not name itself (a 404 may echo the id sent).
    sent = f"{foreign.request.url} {foreign.request.content.decode(errors='replace')}"
    # (The store key is no secret: an attacker may name the same key in its own namespace.)
    secrets = {s for s in victim.every_id() if s not in sent}
    secrets.add(secret_of(victim.name))
    if op.kind in ("id", "same"):
        reference = send({**values, **{k: str(uuid.uuid4()) for k in VICTIM_IDS}})
        if normalized(foreign) != normalized(reference):
            out.leaks.append(
                f"{label}: {foreign.status_code} {foreign.text[:200]!r}, a random id gets "
                f"{reference.status_code} {reference.text[:200]!r}"
            )
        elif op.kind == "id" and foreign.status_code != 404:
            out.leaks.append(f"{label}: {foreign.status_code} for a foreign and a random id")
    seen = [s for s in secrets if s in foreign.text]
    if seen:
        out.leaks.append(f"{label}: answer holds the victim's {seen}: {foreign.text[:300]!r}")


def counts_match(me: Tenant, out: Outcome) -> None:
    """Counts agree with what searches show (each search is checked for foreign ids)."""
    for kind, search, body in (
        ("assistants", "/assistants/search", {"limit": 1000}),
        ("threads", "/threads/search", {"limit": 1000}),
        ("crons", "/runs/crons/search", {"limit": 1000}),
    ):
        shown = len(ok(me.http.post(search, json=body)))
        counted = ok(me.http.post(f"/{kind if kind != 'crons' else 'runs/crons'}/count", json={}))
        out.attempts += 1
        if shown != counted:
            out.leaks.append(f"{me.name}: counts {counted} {kind} but sees {shown}")


def check_unchanged(tenants: list[Tenant], before: dict[str, str], out: Outcome) -> None:
    for t in tenants:
        now = snapshot(t)
        if now != before[t.name]:
            out.leaks.append(f"{t.name}'s resources changed under another user: {now[:400]}")
            before[t.name] = now


@dataclass
class World:
    tenants: list[Tenant]
    before: dict[str, str]


def make_world(server: RuntimeProcess) -> Iterator[World]:
    tenants = [create_tenant(server, u) for u in USERS]
    try:
        yield World(tenants, {t.name: snapshot(t) for t in tenants})
    finally:
        for t in tenants:
            t.http.close()


def sweep(world: World) -> Outcome:
    out = Outcome()
    for attacker in world.tenants:
        for victim in world.tenants:
            if attacker is not victim:
                for op in OPS:
                    attack(op, attacker, victim, out)
        counts_match(attacker, out)
    check_unchanged(world.tenants, world.before, out)
    return out


@pytest.fixture(scope="module")
def world(tenant_server: RuntimeProcess) -> Iterator[World]:
    yield from make_world(tenant_server)


def test_every_operation_on_every_foreign_id_is_not_found(world: World) -> None:
    out = sweep(world)
    TALLY["isolation sweep"]["leak attempts"] += out.attempts
    TALLY["isolation sweep"]["leaks"] += len(out.leaks)
    assert out.attempts >= len(OPS) * len(USERS) * (len(USERS) - 1)
    assert out.leaks == [], "\n".join(out.leaks)


PAIRS = [(a, v) for a in range(len(USERS)) for v in range(len(USERS)) if a != v]


def test_random_sequences_of_foreign_operations_leak_nothing(world: World) -> None:
    out = Outcome()

    @settings(
        max_examples=max(20, 8 * fuzz_examples()),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(st.tuples(st.sampled_from(OPS), st.sampled_from(PAIRS)), max_size=8))
    def run(sequence: list[tuple[Op, tuple[int, int]]]) -> None:
        for op, (a, v) in sequence:
            attack(op, world.tenants[a], world.tenants[v], out)
        check_unchanged(world.tenants, world.before, out)
        assert out.leaks == [], out.leaks

    run()
    TALLY["isolation sequences"]["leak attempts"] += out.attempts
    TALLY["isolation sequences"]["leaks"] += len(out.leaks)
    assert out.attempts > 0


def test_a_policy_that_forgets_resources_is_caught(
    postgres: Server, redis: Server, tmp_path: Path
) -> None:
    """Threads left unfiltered and store namespaces left unprefixed: both are caught."""
    leaky = {"BERTH_TEST_LEAKY_AUTH": "threads,store"}
    server = serve(postgres, redis, tmp_path, "leaky", TENANTS_CONFIG, leaky)
    try:
        for w in make_world(server):
            out = sweep(w)
            TALLY["isolation, leaky policy"]["leak attempts"] += out.attempts
            TALLY["isolation, leaky policy"]["leaks"] += len(out.leaks)
            for kind in ("get thread", "update thread", "delete thread", "store get"):
                assert any(f"'s {kind}:" in s for s in out.leaks), (kind, out.leaks)
            assert any("changed under another user" in s for s in out.leaks), out.leaks
    finally:
        server.terminate()
