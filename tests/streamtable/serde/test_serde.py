from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as s

import streamtable as st
from streamtable.serde import DEFAULT, INT, JSON, LONG, STRING

pytestmark = pytest.mark.unit

scalars = s.none() | s.booleans() | s.integers(-(2**60), 2**60) | s.text() | s.binary()
hashable = s.recursive(
    scalars, lambda inner: s.tuples(inner, inner) | s.frozensets(inner), max_leaves=6
)
values = s.recursive(
    hashable,
    lambda inner: (
        s.lists(inner, max_size=4)
        | s.dictionaries(s.text(), inner, max_size=4)
        | s.dictionaries(hashable, inner, max_size=3)
        | s.sets(hashable, max_size=4)
    ),
    max_leaves=12,
)


@given(values)
def test_default_serde_round_trips_python_builtins(value: Any) -> None:
    assert DEFAULT.deserialize(DEFAULT.serialize(value)) == value
    assert type(DEFAULT.deserialize(DEFAULT.serialize(value))) is type(value)


def test_default_serde_encodes_equal_sets_to_equal_bytes() -> None:
    assert DEFAULT.serialize(frozenset({"b", "a", "c"})) == DEFAULT.serialize(
        frozenset({"c", "a", "b"})
    )


def test_int_serde_matches_java_integer_serializer() -> None:
    assert INT.serialize(1) == b"\x00\x00\x00\x01"
    assert INT.serialize(-1) == b"\xff\xff\xff\xff"
    assert LONG.deserialize(LONG.serialize(2**40)) == 2**40


def test_bad_input_raises_serialization_error() -> None:
    with pytest.raises(st.SerializationError, match="not JSON"):
        JSON.deserialize(b"{nope")
    with pytest.raises(st.SerializationError, match="UTF-8"):
        STRING.deserialize(b"\xff")
    with pytest.raises(st.SerializationError):
        INT.deserialize(b"\x00")


def test_exported_names_are_exactly_the_public_api() -> None:
    runtime = {"AppState", "StateRestoreListener", "StreamsApp", "StreamsConfig"}
    assert set(st.__all__) - runtime == {
        "BufferConfig", "CogroupedKStream", "ConfigError", "CoPartitioningError", "EmitStrategy",
        "GlobalKTable",
        "JoinWindows", "KGroupedStream", "KGroupedTable",
        "KStream", "KTable", "Processor", "ProcessorContext", "PunctuationType",
        "ReadOnlyKeyValueStore", "ReadOnlySessionStore", "ReadOnlyWindowStore", "Record",
        "SerializationError", "SessionWindow", "SessionWindowedCogroupedKStream",
        "SessionWindowedKStream", "SessionWindows", "SlidingWindowedCogroupedKStream",
        "SlidingWindows",
        "StoreNotFound", "StoreNotReady", "StreamJoined", "StreamTableError", "StreamsBuilder",
        "Suppressed",
        "TimeWindowedCogroupedKStream", "TimeWindowedKStream", "TimeWindows", "Topology",
        "TopologyError", "TopologyTestDriver",
        "Window", "Windowed", "errors", "serde",
    }  # fmt: skip
    for name in st.__all__:
        assert getattr(st, name) is not None
