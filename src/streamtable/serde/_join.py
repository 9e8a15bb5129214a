"""The serdes of a stream-stream join's stores.

- :class:`ValueListSerde`: the records of one key and timestamp in a join window store (Kafka
  Streams keeps duplicates under a sequence number; we keep them as one list per window key,
  in arrival order): ``count | (length | bytes)*``.
- :class:`TimestampedKeyAndSideSerde`: the key of the shared store of not-yet-joined records,
  byte-compatible with Kafka Streams' ``TimestampedKeyAndJoinSideSerializer``: ``8-byte
  big-endian timestamp | side (1 left, 0 right) | key bytes``, so the store iterates by time,
  then right before left, then key bytes.
- :class:`SidedValueListSerde`: that store's values, a list of ``(is_left, value)``, each
  value with its side's serde.
"""

from __future__ import annotations

import struct
from typing import Any

from streamtable.errors import SerializationError
from streamtable.serde._context import Serde, bind

_COUNT = struct.Struct(">i")
_TS_SIDE = struct.Struct(">q?")


def _pack(parts: list[bytes]) -> bytes:
    out = [_COUNT.pack(len(parts))]
    for part in parts:
        out.append(_COUNT.pack(len(part)))
        out.append(part)
    return b"".join(out)


def _unpack(data: bytes) -> list[bytes]:
    try:
        (count,) = _COUNT.unpack_from(data)
        at, parts = _COUNT.size, []
        for _ in range(count):
            (size,) = _COUNT.unpack_from(data, at)
            at += _COUNT.size
            parts.append(data[at : at + size])
            at += size
    except struct.error as exc:
        raise SerializationError(f"truncated value list: {exc}") from exc
    if at != len(data):
        raise SerializationError("a value list has trailing bytes")
    return parts


class ValueListSerde:
    """A list of values, each with ``inner``."""

    __slots__ = ("inner",)

    def __init__(self, inner: Serde[Any]) -> None:
        self.inner = inner

    def bind(self, topic: str, is_key: bool) -> ValueListSerde:
        inner = bind(self.inner, topic, is_key)
        return self if inner is self.inner else ValueListSerde(inner)

    def serialize(self, values: list[Any]) -> bytes:
        return _pack([self.inner.serialize(v) for v in values])

    def deserialize(self, data: bytes) -> list[Any]:
        return [self.inner.deserialize(part) for part in _unpack(data)]


class SidedValueListSerde:
    """A list of ``(is_left, value)``: left values with ``left``, right values with ``right``."""

    __slots__ = ("left", "right")

    def __init__(self, left: Serde[Any], right: Serde[Any]) -> None:
        self.left = left
        self.right = right

    def bind(self, topic: str, is_key: bool) -> SidedValueListSerde:
        left, right = bind(self.left, topic, is_key), bind(self.right, topic, is_key)
        if left is self.left and right is self.right:
            return self
        return SidedValueListSerde(left, right)

    def serialize(self, values: list[tuple[bool, Any]]) -> bytes:
        return _pack(
            [
                (b"\x01" + self.left.serialize(v))
                if is_left
                else (b"\x00" + self.right.serialize(v))
                for is_left, v in values
            ]
        )

    def deserialize(self, data: bytes) -> list[tuple[bool, Any]]:
        out = []
        for part in _unpack(data):
            is_left = part[:1] == b"\x01"
            out.append((is_left, (self.left if is_left else self.right).deserialize(part[1:])))
        return out


class TimestampedKeyAndSideSerde:
    """``(timestamp, is_left, key)`` as Kafka Streams' ``TimestampedKeyAndJoinSide``."""

    __slots__ = ("inner",)

    def __init__(self, inner: Serde[Any]) -> None:
        self.inner = inner

    def bind(self, topic: str, is_key: bool) -> TimestampedKeyAndSideSerde:
        inner = bind(self.inner, topic, is_key)
        return self if inner is self.inner else TimestampedKeyAndSideSerde(inner)

    def serialize(self, value: tuple[int, bool, Any]) -> bytes:
        timestamp, is_left, key = value
        return _TS_SIDE.pack(timestamp, is_left) + self.inner.serialize(key)

    def deserialize(self, data: bytes) -> tuple[int, bool, Any]:
        if len(data) < _TS_SIDE.size:
            raise SerializationError(f"a join-side key needs {_TS_SIDE.size} bytes at least")
        timestamp, is_left = _TS_SIDE.unpack_from(data)
        return timestamp, is_left, self.inner.deserialize(data[_TS_SIDE.size :])
