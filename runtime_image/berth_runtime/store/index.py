"""The pgvector index behind `store.index`, set up and checked when the runtime starts.

LangGraph's `AsyncPostgresStore` does the indexing and the ranking; Berth adds what a server
needs around it:
- start-up checks: the `vector` extension exists, the embeddings give `dims`-sized vectors,
  and an existing index has the same `dims` (else the process stops with a message);
- a trigger that drops an item's vectors whenever its value is written, so a re-put with
  other fields or `index: false` leaves no stale vectors behind;
- re-indexing when `embed` or `fields` change between starts (see `reindex`);
- `offset` on semantic searches (the library sizes its candidate set without it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, cast

import psycopg
from langgraph.store.base import Op, Result, SearchOp
from langgraph.store.base.embed import get_text_at_path, tokenize_path
from langgraph.store.postgres.aio import AsyncPostgresStore
from psycopg.rows import DictRow, dict_row

from berth_runtime.config import embed_kind
from berth_runtime.store.embeddings import CheckedEmbeddings, EmbeddingDimensionError

log = logging.getLogger(__name__)

REINDEX_BATCH = 256

_TRIGGER_SQL = """
CREATE OR REPLACE FUNCTION berth_store_vectors_reset() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM store_vectors WHERE prefix = OLD.prefix AND key = OLD.key;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER berth_store_vectors_reset BEFORE UPDATE OF value ON store
    FOR EACH ROW EXECUTE FUNCTION berth_store_vectors_reset();
CREATE TABLE IF NOT EXISTS berth_store_index (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    embed text NOT NULL,
    fields jsonb NOT NULL,
    dims integer NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


class StoreIndexError(RuntimeError):
    """`store.index` cannot be served by this database; the message says what to fix."""


class BerthStore(AsyncPostgresStore):
    """AsyncPostgresStore whose semantic searches honour `offset` at any depth."""

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        shifted: dict[int, int] = {}
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp) and op.query and op.offset and self.index_config:
                shifted[i] = op.offset
                ops[i] = op._replace(limit=op.limit + op.offset, offset=0)
        results = await super().abatch(ops)
        for i, offset in shifted.items():
            results[i] = cast(list[Any], results[i])[offset:]
        return results


def store_index_config(index: dict[str, Any], embeddings: CheckedEmbeddings) -> dict[str, Any]:
    """The `index=` argument of AsyncPostgresStore: langgraph.json's keys, our embeddings."""
    return {**index, "embed": embeddings}


async def setup_store_index(
    database_uri: str, index: dict[str, Any], embeddings: CheckedEmbeddings
) -> int:
    """Check and set up the vector index; returns how many items were (re-)embedded."""
    dims = int(index["dims"])
    async with await psycopg.AsyncConnection.connect(
        database_uri, autocommit=True, prepare_threshold=0, row_factory=dict_row
    ) as conn:
        cur = await conn.execute(
            "SELECT installed_version FROM pg_available_extensions WHERE name = 'vector'"
        )
        if await cur.fetchone() is None:
            raise StoreIndexError(
                "store.index is set in langgraph.json, but this Postgres has no pgvector "
                "extension ('vector'): install pgvector on the database server (Debian: "
                "postgresql-NN-pgvector; image: pgvector/pgvector) or remove store.index"
            )
        if embed_kind(embeddings.name) != "provider":
            # Local models and functions are probed now; a hosted provider is not called
            # at start-up (its first vector is checked the same way when an item is put).
            try:
                await embeddings.aembed_query("berth store.index dimension check")
            except EmbeddingDimensionError as e:
                raise StoreIndexError(str(e)) from None
        cur = await conn.execute(
            "SELECT atttypmod FROM pg_attribute"
            " WHERE attrelid = to_regclass('store_vectors') AND attname = 'embedding'"
        )
        row = await cur.fetchone()
        if row is not None and int(row["atttypmod"]) > 0 and int(row["atttypmod"]) != dims:
            raise StoreIndexError(
                f"store.index.dims is {dims}, but the store's existing vector index in "
                f"Postgres holds {row['atttypmod']}-dimension vectors; keep dims at "
                f"{row['atttypmod']}, or drop the table store_vectors (and its rows in "
                "vector_migrations) so it is rebuilt and every item re-embedded"
            )
        store = AsyncPostgresStore(
            cast(Any, conn), index=cast(Any, store_index_config(index, embeddings))
        )
        try:
            await store.setup()
            await conn.execute(_TRIGGER_SQL.encode(), prepare=False)
        except psycopg.Error as e:
            raise StoreIndexError(f"setting up the store's vector index failed: {e}") from e
        await _iterative_scans(conn)
        return await reindex(conn, index, embeddings)


async def _iterative_scans(conn: psycopg.AsyncConnection[DictRow]) -> None:
    """Let HNSW scans go on past `ef_search` candidates when filters drop most of them."""
    try:
        cur = await conn.execute("SELECT current_database() AS db")
        row = await cur.fetchone()
        db = psycopg.sql.Identifier(str(row["db"] if row else ""))
        await conn.execute(
            psycopg.sql.SQL("ALTER DATABASE {} SET hnsw.iterative_scan = relaxed_order").format(db)
        )
    except psycopg.Error as e:
        log.warning("could not turn on hnsw.iterative_scan (filtered searches may miss): %s", e)


async def reindex(
    conn: psycopg.AsyncConnection[DictRow], index: dict[str, Any], embeddings: CheckedEmbeddings
) -> int:
    """Bring the stored vectors in line with `embed` and `fields`.

    - First start with an index: every item without vectors is embedded.
    - `embed` or `fields` changed since the last start: every item that has vectors is
      embedded again with the new settings (an item put with `index: false` has none and
      stays out; one put with its own `index` fields is re-embedded with the new `fields`).
    - Nothing changed: nothing is done.
    """
    fields = list(index.get("fields") or ["$"])
    cur = await conn.execute("SELECT embed, fields FROM berth_store_index")
    row = await cur.fetchone()
    if row is not None and row["embed"] == embeddings.name and list(row["fields"]) == fields:
        return 0
    has_vectors = (
        "EXISTS (SELECT 1 FROM store_vectors v WHERE v.prefix = s.prefix AND v.key = s.key)"
    )
    condition = f"NOT {has_vectors}" if row is None else has_vectors
    if row is not None:
        log.info(
            "store.index changed (embed %s -> %s, fields %s -> %s): re-embedding items",
            row["embed"],
            embeddings.name,
            row["fields"],
            fields,
        )
    paths = [(f, tokenize_path(f)) for f in fields]
    done = 0
    after: tuple[str, str] = ("", "")
    while True:
        cur = await conn.execute(
            f"SELECT s.prefix, s.key, s.value FROM store s WHERE (s.prefix, s.key) > (%s, %s)"
            f" AND {condition} ORDER BY s.prefix, s.key LIMIT %s",
            (*after, REINDEX_BATCH),
        )
        rows = await cur.fetchall()
        if not rows:
            break
        after = (rows[-1]["prefix"], rows[-1]["key"])
        requests: list[tuple[str, str, str, str]] = []
        for item in rows:
            for path, tokens in paths:
                texts = get_text_at_path(item["value"], tokens)
                for i, text in enumerate(texts):
                    name = f"{path}.{i}" if len(texts) > 1 else path
                    requests.append((item["prefix"], item["key"], name, text))
        vectors = await embeddings.aembed_documents([r[3] for r in requests])
        async with conn.transaction():
            await conn.execute(
                "DELETE FROM store_vectors v USING unnest(%s::text[], %s::text[]) AS d(p, k)"
                " WHERE v.prefix = d.p AND v.key = d.k",
                ([r["prefix"] for r in rows], [r["key"] for r in rows]),
            )
            if requests:
                await conn.execute(
                    "INSERT INTO store_vectors (prefix, key, field_name, embedding)"
                    " SELECT p, k, f, e::vector"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) AS u(p, k, f, e)",
                    (
                        [r[0] for r in requests],
                        [r[1] for r in requests],
                        [r[2] for r in requests],
                        [json.dumps(v) for v in vectors],
                    ),
                )
        done += len(rows)
    await conn.execute(
        "INSERT INTO berth_store_index (embed, fields, dims) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO UPDATE SET embed = EXCLUDED.embed, fields = EXCLUDED.fields,"
        " dims = EXCLUDED.dims, updated_at = now()",
        (embeddings.name, psycopg.types.json.Jsonb(fields), int(index["dims"])),
    )
    if done:
        log.info("store.index: embedded %d items", done)
    return done
