"""JSON encoding of graph values (LangChain messages, interrupts, Sends) for the wire and jsonb."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel


def _default(obj: Any) -> Any:
    # Interrupt is a dataclass with extra fields; the wire shape is {value, id}.
    name = type(obj).__name__
    if name == "Interrupt" and hasattr(obj, "value") and hasattr(obj, "id"):
        return {"value": obj.value, "id": obj.id}
    if name == "Send" and hasattr(obj, "node") and hasattr(obj, "arg"):
        return {"node": obj.node, "arg": obj.arg}
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if hasattr(obj, "to_json") and callable(obj.to_json) and name != "Command":
        try:
            data = obj.to_json()
        except Exception:
            data = None
        if isinstance(data, Mapping):
            return data.get("kwargs", data)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, datetime.datetime | datetime.date):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, bytes):
        return obj.decode(errors="replace")
    if isinstance(obj, Exception):
        return {"error": type(obj).__name__, "message": str(obj)}
    if hasattr(obj, "_asdict"):
        return obj._asdict()
    return repr(obj)


_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps_bytes(obj: Any) -> bytes:
    """Encode anything a graph can produce; unknown objects become their repr."""
    return orjson.dumps(obj, default=_default, option=_OPTS)


def dumps(obj: Any) -> str:
    return dumps_bytes(obj).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def to_jsonable(obj: Any) -> Any:
    """Round-trip through JSON: plain dicts/lists/scalars only."""
    return orjson.loads(dumps_bytes(obj))
