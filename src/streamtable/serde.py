"""Serdes: how keys and values become bytes on topics and in stores, and back.

A serde is any object with ``serialize(value) -> bytes`` and ``deserialize(data) -> value``
(the :class:`Serde` protocol). ``None`` never reaches a serde: a ``None`` value is a tombstone on
the wire and a delete in a store, handled by the caller.

Built-in serdes, byte-compatible with Kafka's Java serdes where Java has one:

- ``STRING`` (UTF-8), ``BYTES`` (as is), ``INT`` (4-byte big-endian signed, like Java's
  ``IntegerSerde``), ``LONG`` (8-byte), ``DOUBLE`` (IEEE 754 big-endian);
- ``JSON``: RFC 8259 JSON via orjson (dicts, lists, str, int, float, bool, None);
- ``DEFAULT``: the serde of internal topics and stores when none is given. JSON with tags, so that
  Python builtins that JSON lacks round-trip exactly: ``tuple``, ``set``, ``frozenset``,
  ``bytes`` and dicts with non-string keys. Never pickle: bytes from a topic are data, not code.

Example::

    >>> DEFAULT.deserialize(DEFAULT.serialize({"a": frozenset({1, 2})}))
    {'a': frozenset({1, 2})}
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Protocol, TypeVar, runtime_checkable

import orjson

from streamtable.errors import SerializationError

__all__ = [
    "BYTES",
    "DEFAULT",
    "DOUBLE",
    "INT",
    "JSON",
    "LONG",
    "STRING",
    "BytesSerde",
    "DefaultSerde",
    "DoubleSerde",
    "IntSerde",
    "JsonSerde",
    "LongSerde",
    "Serde",
    "StringSerde",
]

T = TypeVar("T")


@runtime_checkable
class Serde(Protocol[T]):
    """Turns values of one type into bytes and back. ``None`` is never passed in."""

    def serialize(self, value: T) -> bytes: ...

    def deserialize(self, data: bytes) -> T: ...


class StringSerde:
    """UTF-8 text."""

    def serialize(self, value: str) -> bytes:
        if not isinstance(value, str):
            raise SerializationError(f"STRING serde expects str, got {type(value).__name__}")
        return value.encode()

    def deserialize(self, data: bytes) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            # Not str(exc): it quotes the offending bytes.
            at = exc.start
            raise SerializationError(f"not UTF-8 text: invalid byte at position {at}") from None

    def __repr__(self) -> str:
        return "STRING"


class BytesSerde:
    """Raw bytes, unchanged."""

    def serialize(self, value: bytes) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise SerializationError(f"BYTES serde expects bytes, got {type(value).__name__}")
        return bytes(value)

    def deserialize(self, data: bytes) -> bytes:
        return bytes(data)

    def __repr__(self) -> str:
        return "BYTES"


class _StructSerde:
    _format: struct.Struct
    _name: str
    _types: tuple[type, ...]

    def serialize(self, value: Any) -> bytes:
        if isinstance(value, bool) or not isinstance(value, self._types):
            raise SerializationError(f"{self._name} serde cannot encode {type(value).__name__}")
        try:
            return self._format.pack(value)
        except struct.error as exc:
            raise SerializationError(f"{self._name} serde: {exc}") from exc

    def deserialize(self, data: bytes) -> Any:
        if len(data) != self._format.size:
            raise SerializationError(
                f"{self._name} serde expects {self._format.size} bytes, got {len(data)}"
            )
        return self._format.unpack(data)[0]

    def __repr__(self) -> str:
        return self._name


class IntSerde(_StructSerde):
    """32-bit signed big-endian integer (Java ``IntegerSerde``)."""

    _format = struct.Struct(">i")
    _name = "INT"
    _types = (int,)


class LongSerde(_StructSerde):
    """64-bit signed big-endian integer (Java ``LongSerde``)."""

    _format = struct.Struct(">q")
    _name = "LONG"
    _types = (int,)


class DoubleSerde(_StructSerde):
    """IEEE 754 double, big-endian (Java ``DoubleSerde``)."""

    _format = struct.Struct(">d")
    _name = "DOUBLE"
    _types = (int, float)


class JsonSerde:
    """JSON text (UTF-8) via orjson. Values are what ``json`` would give: dict, list, str..."""

    def serialize(self, value: Any) -> bytes:
        try:
            return orjson.dumps(value)
        except TypeError as exc:
            raise SerializationError(f"not JSON-serializable: {exc}") from exc

    def deserialize(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"not JSON: {exc}") from exc

    def __repr__(self) -> str:
        return "JSON"


_SCALARS = (str, int, float, bool, type(None))


def _sort_key(item: Any) -> tuple[str, str]:
    return (type(item).__name__, repr(item))


def _tag(value: Any) -> Any:
    """Turn a Python value into plain JSON, tagging what JSON cannot say."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, list):
        return [_tag(v) for v in value]
    if isinstance(value, dict):
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: _tag(v) for k, v in value.items()}
        return {"$d": [[_tag(k), _tag(v)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"$t": [_tag(v) for v in value]}
    if isinstance(value, frozenset | set):
        # Sorted so equal sets give equal bytes (stable changelogs, dedup by bytes).
        tag = "$f" if isinstance(value, frozenset) else "$s"
        try:
            items = sorted(value)
        except TypeError:
            items = sorted(value, key=_sort_key)
        return {tag: [_tag(v) for v in items]}
    if isinstance(value, bytes | bytearray):
        return {"$b": base64.b64encode(value).decode()}
    raise SerializationError(f"DEFAULT serde cannot encode {type(value).__name__}")


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            ((tag, body),) = value.items()
            if tag == "$t":
                return tuple(_untag(v) for v in body)
            if tag == "$f":
                return frozenset(_untag(v) for v in body)
            if tag == "$s":
                return {_untag(v) for v in body}
            if tag == "$d":
                return {_untag(k): _untag(v) for k, v in body}
            if tag == "$b":
                return base64.b64decode(body)
        return {k: _untag(v) for k, v in value.items()}
    return value


class DefaultSerde:
    """Tagged JSON that round-trips str/int/float/bool/None/list/dict/tuple/set/frozenset/bytes."""

    def serialize(self, value: Any) -> bytes:
        if type(value) is str or type(value) is int:
            return orjson.dumps(value)
        return orjson.dumps(_tag(value))

    def deserialize(self, data: bytes) -> Any:
        try:
            return _untag(orjson.loads(data))
        except orjson.JSONDecodeError as exc:  # its message gives a position, not the data
            raise SerializationError(f"not a DEFAULT-serde payload: {exc}") from exc
        except (ValueError, TypeError) as exc:  # from _untag: may quote the data
            raise SerializationError(
                f"not a DEFAULT-serde payload: malformed tag ({type(exc).__name__})"
            ) from None

    def __repr__(self) -> str:
        return "DEFAULT"


STRING = StringSerde()
BYTES = BytesSerde()
INT = IntSerde()
LONG = LongSerde()
DOUBLE = DoubleSerde()
JSON = JsonSerde()
DEFAULT = DefaultSerde()
