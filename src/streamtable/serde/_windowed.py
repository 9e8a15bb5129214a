"""The serdes of windowed keys: Kafka Streams' ``TimeWindowedSerializer`` layout (key + start)
and its ``SessionWindowedSerializer`` layout (key + end + start)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from streamtable.errors import SerializationError
from streamtable.serde._context import Serde, bind
from streamtable.windowing import SessionWindow, Window, Windowed

_START = struct.Struct(">q")
WINDOW_START_SIZE = _START.size
"""Bytes of the window start after the key bytes."""


def window_start_of(data: bytes) -> int:
    """The window start of a serialized windowed key (its last 8 bytes)."""
    start: int = _START.unpack_from(data, len(data) - WINDOW_START_SIZE)[0]
    return start


def session_end_of(data: bytes) -> int:
    """The session end of a serialized session-windowed key (the 8 bytes before the start)."""
    end: int = _START.unpack_from(data, len(data) - SESSION_SUFFIX_SIZE)[0]
    return end


SESSION_SUFFIX_SIZE = 2 * WINDOW_START_SIZE
"""Bytes of the session end and start after the key bytes."""


start_bytes: Callable[[int], bytes] = _START.pack
"""A window start as it ends a serialized windowed key (8 bytes, big-endian)."""


class TimeWindowedSerde:
    """A :class:`~streamtable.Windowed` key as ``key bytes + 8-byte big-endian window start``,
    byte-compatible with Kafka Streams' ``TimeWindowedSerializer``/``Deserializer`` for the
    same inner serde. The end is not written: reading gives ``start + window_size_ms``.

    Ordering the bytes orders by key bytes, then by window start, so one key's windows form a
    contiguous range (window stores scan them that way).
    """

    __slots__ = ("inner", "window_size_ms")

    def __init__(self, inner: Serde[Any], window_size_ms: int) -> None:
        if window_size_ms <= 0:
            raise ValueError(f"window_size_ms must be > 0 (got {window_size_ms})")
        self.inner = inner
        self.window_size_ms = window_size_ms

    def bind(self, topic: str, is_key: bool) -> TimeWindowedSerde:
        """The inner serde sees ``topic`` (see :func:`streamtable.serde.bind`)."""
        inner = bind(self.inner, topic, is_key)
        return self if inner is self.inner else TimeWindowedSerde(inner, self.window_size_ms)

    def serialize(self, value: Windowed) -> bytes:
        if not isinstance(value, Windowed):
            raise SerializationError(
                f"a time-windowed serde expects a Windowed key, got {type(value).__name__}"
            )
        return self.inner.serialize(value.key) + _START.pack(value.window.start_ms)

    def deserialize(self, data: bytes) -> Windowed:
        if len(data) < WINDOW_START_SIZE:
            raise SerializationError(
                f"a time-windowed key needs at least {WINDOW_START_SIZE} bytes, got {len(data)}"
            )
        start = window_start_of(data)
        if start < 0:
            raise SerializationError(f"a time-windowed key has a negative window start {start}")
        key = self.inner.deserialize(data[:-WINDOW_START_SIZE])
        return Windowed(key, Window(start, start + self.window_size_ms))

    def __repr__(self) -> str:
        return f"TimeWindowed({self.inner!r}, {self.window_size_ms} ms)"


class SessionWindowedSerde:
    """A :class:`~streamtable.Windowed` key of a :class:`~streamtable.SessionWindow` as ``key
    bytes + 8-byte big-endian end + 8-byte big-endian start``, byte-compatible with Kafka
    Streams' ``SessionWindowedSerializer``/``Deserializer`` for the same inner serde.

    Ordering the bytes orders by key bytes, then by session end, then start: one key's
    sessions form a contiguous range, latest-ending last (session stores scan them that way).
    """

    __slots__ = ("inner",)

    def __init__(self, inner: Serde[Any]) -> None:
        self.inner = inner

    def bind(self, topic: str, is_key: bool) -> SessionWindowedSerde:
        """The inner serde sees ``topic`` (see :func:`streamtable.serde.bind`)."""
        inner = bind(self.inner, topic, is_key)
        return self if inner is self.inner else SessionWindowedSerde(inner)

    def serialize(self, value: Windowed) -> bytes:
        if not isinstance(value, Windowed):
            raise SerializationError(
                f"a session-windowed serde expects a Windowed key, got {type(value).__name__}"
            )
        window = value.window
        return self.inner.serialize(value.key) + session_bytes(window.start_ms, window.end_ms)

    def deserialize(self, data: bytes) -> Windowed:
        if len(data) < SESSION_SUFFIX_SIZE:
            raise SerializationError(
                f"a session-windowed key needs at least {SESSION_SUFFIX_SIZE} bytes, "
                f"got {len(data)}"
            )
        start, end = window_start_of(data), session_end_of(data)
        if not 0 <= start <= end:
            raise SerializationError(f"a session-windowed key has a bad session [{start}, {end}]")
        key = self.inner.deserialize(data[:-SESSION_SUFFIX_SIZE])
        return Windowed(key, SessionWindow(start, end))

    def __repr__(self) -> str:
        return f"SessionWindowed({self.inner!r})"


def session_bytes(start_ms: int, end_ms: int) -> bytes:
    """A session as it ends a serialized session-windowed key: end, then start."""
    return _START.pack(end_ms) + _START.pack(start_ms)
