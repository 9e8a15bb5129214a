"""The time-windowed key serde writes Kafka Streams' ``TimeWindowedSerializer`` layout: the
inner key's bytes, then the window start as an 8-byte big-endian integer."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import streamtable as st
from streamtable.serde import INT, STRING, SerdeContext, TimeWindowedSerde, bind

pytestmark = pytest.mark.unit


def test_key_bytes_then_the_window_start_big_endian() -> None:
    serde = TimeWindowedSerde(STRING, 60_000)
    key = st.Windowed("c1", st.Window(120_000, 180_000))
    data = serde.serialize(key)
    assert data == b"c1" + (120_000).to_bytes(8, "big")
    assert serde.deserialize(data) == key  # the end comes from the window size
    assert TimeWindowedSerde(INT, 1).serialize(st.Windowed(1, st.Window(0, 1))) == bytes(
        [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    )


def test_bad_keys_and_bytes_raise_serialization_errors() -> None:
    serde = TimeWindowedSerde(STRING, 1000)
    with pytest.raises(st.SerializationError, match="expects a Windowed key, got str"):
        serde.serialize("c1")  # type: ignore[arg-type]
    with pytest.raises(st.SerializationError, match="at least 8 bytes, got 3"):
        serde.deserialize(b"abc")
    with pytest.raises(st.SerializationError, match="negative window start"):
        serde.deserialize(b"k" + (-5).to_bytes(8, "big", signed=True))
    with pytest.raises(ValueError, match="window_size_ms must be > 0"):
        TimeWindowedSerde(STRING, 0)


class TopicTagged:
    """A contextual serde: its bytes name the topic it was bound to."""

    uses_context: ClassVar[bool] = True

    def serialize(self, value: str, ctx: SerdeContext | None = None) -> bytes:
        assert ctx is not None
        return f"{ctx.topic}:{value}".encode()

    def deserialize(self, data: bytes, ctx: SerdeContext | None = None) -> Any:
        assert ctx is not None
        return data.decode().removeprefix(f"{ctx.topic}:")


def test_binding_reaches_the_inner_serde() -> None:
    serde = bind(TimeWindowedSerde(TopicTagged(), 10), "out", True)
    key = st.Windowed("k", st.Window(0, 10))
    assert serde.serialize(key) == b"out:k" + bytes(8)
    assert serde.deserialize(serde.serialize(key)) == key
    plain = TimeWindowedSerde(STRING, 10)
    assert bind(plain, "out", True) is plain
