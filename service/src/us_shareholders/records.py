"""The service's input records, validated where they enter.

A record that is not JSON, lacks a field or has a field of the wrong type raises
:class:`~streamtable.SerializationError` in the serde, so the runtime sends it to the
dead-letter topic with the reason, and the table keeps the previous value of that key. The
reasons name fields and types, never values: they are logged.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from streamtable.errors import SerializationError

_NUMBER = (int, float)
_WEEK_RE = re.compile(r"\d{4}-W\d{2}")


def _object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SerializationError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _field(obj: dict[str, Any], name: str, types: type | tuple[type, ...], what: str) -> Any:
    if name not in obj:
        raise SerializationError(f"{what} lacks field {name!r}")
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, types):
        kind = types.__name__ if isinstance(types, type) else "number"
        # The type found, never the value: this message is logged (personal data).
        found = "null" if value is None else type(value).__name__
        raise SerializationError(f"{what} field {name!r} must be a {kind}, got {found}")
    return value


class PositionSerde:
    """``{"id", "client", "ticker", "exchange", "amount"}``; client must not be empty."""

    def deserialize(self, data: bytes) -> dict[str, Any]:
        obj = _object(data, "position")
        position = {
            "id": _field(obj, "id", str, "position"),
            "client": _field(obj, "client", str, "position"),
            "ticker": _field(obj, "ticker", str, "position"),
            "exchange": _field(obj, "exchange", str, "position"),
            "amount": _field(obj, "amount", _NUMBER, "position"),
        }
        if not position["client"].strip():
            raise SerializationError("position field 'client' must not be empty")
        return position

    def serialize(self, value: dict[str, Any]) -> bytes:
        return orjson.dumps(value)


class ClientSerde:
    """``{"name", "email", "unsubscribed"}``; email may be null (the client is skipped)."""

    def deserialize(self, data: bytes) -> dict[str, Any]:
        obj = _object(data, "client")
        email = obj.get("email")
        if email is not None and not isinstance(email, str):
            raise SerializationError("client field 'email' must be a string")
        name = obj.get("name")
        if name is not None and not isinstance(name, str):
            raise SerializationError("client field 'name' must be a string")
        unsubscribed = obj.get("unsubscribed", False)
        if not isinstance(unsubscribed, bool):
            raise SerializationError("client field 'unsubscribed' must be true or false")
        return {"name": name, "email": email or None, "unsubscribed": unsubscribed}

    def serialize(self, value: dict[str, Any]) -> bytes:
        return orjson.dumps(value)


class InstrumentSerde:
    """``{"name"}``: the company name of a ticker."""

    def deserialize(self, data: bytes) -> dict[str, Any]:
        obj = _object(data, "instrument")
        return {"name": _field(obj, "name", str, "instrument")}

    def serialize(self, value: dict[str, Any]) -> bytes:
        return orjson.dumps(value)


class DigestRequestSerde:
    """``{"week": "YYYY-Www", "requested_at"}``: a ``POST /digests/run`` (the requests topic)."""

    def deserialize(self, data: bytes) -> dict[str, Any]:
        obj = _object(data, "digest request")
        week = _field(obj, "week", str, "digest request")
        if _WEEK_RE.fullmatch(week) is None:
            raise SerializationError("digest request field 'week' must be YYYY-Www")
        return {"week": week, "requested_at": obj.get("requested_at")}

    def serialize(self, value: dict[str, Any]) -> bytes:
        return orjson.dumps(value)


POSITION = PositionSerde()
CLIENT = ClientSerde()
INSTRUMENT = InstrumentSerde()
DIGEST_REQUEST = DigestRequestSerde()
