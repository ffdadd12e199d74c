"""What the chaos soak checks at the end, from Postgres: every run and every step execution.

Two side tables survive every kill, because they are written by Postgres itself:

- `soak_step`: one row per execution of a step (tests/soak/graph/soak_graph.py inserts it on
  a connection of its own before the step does anything);
- `soak_ckpt`: one row per (run key, step) each time a checkpoint row holding that step's
  result is written, by a trigger on LangGraph's `checkpoints` table. The graph sets the
  primitive channel `s<k>` to the run's key, and primitives live in the checkpoint row.

A step executed at time t "past a checkpoint" means a checkpoint holding the result of that
step or of a later step of the same run had been written before t: the runtime ran a step
again that its durable state already had.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

STEPS = ["s1", "s2", "s3", "s4"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS soak_step (
    key text NOT NULL, step text NOT NULL, pid integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX IF NOT EXISTS soak_step_key ON soak_step (key, step);
CREATE TABLE IF NOT EXISTS soak_ckpt (
    key text NOT NULL, step text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE INDEX IF NOT EXISTS soak_ckpt_key ON soak_ckpt (key, step, at);
CREATE OR REPLACE FUNCTION soak_log_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s text;
    k text;
BEGIN
    FOREACH s IN ARRAY ARRAY['s1', 's2', 's3', 's4'] LOOP
        k := NEW.checkpoint -> 'channel_values' ->> s;
        IF k IS NOT NULL THEN
            INSERT INTO soak_ckpt (key, step) VALUES (k, s);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS soak_log_checkpoint ON checkpoints;
CREATE TRIGGER soak_log_checkpoint AFTER INSERT OR UPDATE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION soak_log_checkpoint();
"""


def install(database_uri: str) -> None:
    """Side tables and the checkpoint trigger (after the runtime's migrations)."""
    with psycopg.connect(database_uri, autocommit=True) as conn:
        conn.execute(SCHEMA)


def expected_trail(key: str) -> list[str]:
    return [f"{key}:{s}" for s in STEPS]


@dataclass
class Intended:
    """A run a client created and the server acknowledged (or that the database shows)."""

    key: str
    run_id: str
    thread_id: str
    stateful: bool
    # What the client saw when it joined (None: it never got an answer).
    observed: list[str] | None = None
    # What it streamed was not on the way to the final values.
    stream_mismatch: bool = False
    # What `join` answered when it was not the run's final values (an error, or too early).
    join_answer: str | None = None


@dataclass
class Report:
    runs: int = 0
    ok: int = 0
    lost: int = 0
    failed: int = 0
    wrong: int = 0
    steps_reexecuted: int = 0
    past_checkpoint: int = 0
    threads_wrong: int = 0
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"runs={self.runs} ok={self.ok} lost={self.lost} failed={self.failed} "
            f"wrong={self.wrong} steps_reexecuted={self.steps_reexecuted} "
            f"past_checkpoint={self.past_checkpoint}"
        )

    @property
    def clean(self) -> bool:
        return self.lost == self.failed == self.wrong == self.past_checkpoint == 0


def check(
    database_uri: str,
    intended: list[Intended],
    thread_expected: dict[str, list[str]],
    thread_values: dict[str, Any],
) -> Report:
    """Every intended run, every step execution, every stateful thread's final state."""
    rep = Report(runs=len(intended))
    with psycopg.connect(database_uri, autocommit=True, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT run_id::text AS run_id, status, result, metadata ->> 'soak_key' AS key"
            " FROM run WHERE metadata ? 'soak_key'"
        ).fetchall()
        executions = conn.execute(
            "SELECT key, step, count(*) AS n FROM soak_step GROUP BY key, step"
        ).fetchall()
        rep.past_checkpoint = conn.execute(
            "SELECT count(*) AS n FROM soak_step e WHERE EXISTS ("
            " SELECT 1 FROM soak_ckpt c"
            " WHERE c.key = e.key AND c.step >= e.step AND c.at < e.at)"
        ).fetchone()["n"]  # type: ignore[index]
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    ran: dict[str, dict[str, int]] = {}
    for ex in executions:
        ran.setdefault(ex["key"], {})[ex["step"]] = ex["n"]
        rep.steps_reexecuted += ex["n"] - 1
    for it in intended:
        found = by_key.get(it.key, [])
        if len(found) != 1 or found[0]["status"] in ("pending", "running"):
            rep.lost += 1
            rep.details.append(f"lost {it.key} run {it.run_id}: {[r['status'] for r in found]}")
            continue
        row = found[0]
        if row["status"] != "success":
            rep.failed += 1
            err = (row["result"] or {}).get("__error__")
            rep.details.append(f"failed {it.key} run {it.run_id}: {row['status']} {err}")
            continue
        trail = (row["result"] or {}).get("trail") or []
        mine = [t for t in trail if t.startswith(it.key + ":")]
        good = mine == expected_trail(it.key) and (it.stateful or trail == mine)
        if (it.observed is not None and it.observed != trail) or it.stream_mismatch:
            good = False
        if it.join_answer is not None:  # a run that succeeded, but its join said otherwise
            good = False
            rep.details.append(f"join of {it.key} run {it.run_id} answered {it.join_answer}")
        if set(ran.get(it.key, {})) != set(STEPS):
            good = False
        if not good:
            rep.wrong += 1
            rep.details.append(f"wrong {it.key} run {it.run_id}: {trail} observed {it.observed}")
            continue
        rep.ok += 1
    for tid, expected in thread_expected.items():
        values = thread_values.get(tid)
        trail = (values or {}).get("trail")
        if trail is None and not expected:
            continue  # created, but no run of it was acknowledged: no state yet is right
        if trail != expected:
            rep.threads_wrong += 1
            rep.details.append(f"thread {tid}: {trail} != {expected}")
    # A thread whose state is off counts as a wrong final state even if each run looked right.
    rep.wrong += rep.threads_wrong
    return rep
