"""The built-in serdes: STRING, BYTES, INT, LONG, DOUBLE, JSON and DEFAULT (see
:mod:`streamtable.serde`)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from streamtable.errors import SerializationError


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

    def parse_key(self, text: str) -> str:
        return text

    def key_prefix(self, text: str) -> bytes:
        return text.encode()

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

    def parse_key(self, text: str) -> bytes:
        """The UTF-8 bytes of the text."""
        return text.encode()

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

    def parse_key(self, text: str) -> Any:
        return int(text.strip(), 10)

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

    def parse_key(self, text: str) -> Any:
        return float(text)


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

    def parse_key(self, text: str) -> Any:
        return _parse_json_key(self, text)

    def key_prefix(self, text: str) -> bytes:
        return self.serialize(text)[:-1]  # '"abc"' without its closing quote

    def __repr__(self) -> str:
        return "JSON"


def _parse_json_key(serde: JsonSerde | DefaultSerde, text: str) -> Any:
    key = serde.deserialize(text.encode())
    if key is None:
        raise ValueError("a key cannot be null")
    return key


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

    def parse_key(self, text: str) -> Any:
        """JSON, with the tags (``{"$t": [1, 2]}`` is the tuple ``(1, 2)``)."""
        return _parse_json_key(self, text)

    def key_prefix(self, text: str) -> bytes:
        return self.serialize(text)[:-1]

    def __repr__(self) -> str:
        return "DEFAULT"


STRING = StringSerde()
BYTES = BytesSerde()
INT = IntSerde()
LONG = LongSerde()
DOUBLE = DoubleSerde()
JSON = JsonSerde()
DEFAULT = DefaultSerde()
