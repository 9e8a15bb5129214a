"""The store contract, run over every engine (memory, RocksDB) and every layer stack that
``build_store`` assembles: bare serde, + changelogging, + record cache, + metered. Whatever the
stack, a store reads back what was written (timestamps included), scans in serialized-key order
within inclusive bounds, and a changelogging layer logs exactly the bytes written, so replaying
the changelog rebuilds the engine's contents."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from streamtable.serde import JSON, STRING
from streamtable.state import (
    BytesStore,
    CacheBudget,
    CachingStore,
    ChangeLoggingBytesStore,
    MeteredStore,
    SerdeStore,
    open_engine,
    record_cache,
)
from streamtable.topology import StoreSpec, build_store

pytestmark = pytest.mark.unit

ENGINES = ("memory", "rocksdb")
STACKS = ("serde", "changelog", "cached", "metered")
TOPIC = "app-s-changelog"


class ListWriter:
    """A changelog writer that keeps what it is sent."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, bytes, bytes | None, int]] = []

    def send_changelog(
        self, topic: str, partition: int, key: bytes, value: bytes | None, timestamp: int
    ) -> None:
        self.records.append((topic, partition, key, value, timestamp))


class Stack:
    """One store stack over one engine, and its parts for the assertions."""

    def __init__(self, engine_kind: str, stack: str, directory: Path) -> None:
        self.layers = stack
        self.directory = directory / "s"
        self.engine: BytesStore = open_engine(engine_kind == "rocksdb", self.directory)
        self.writer = ListWriter() if stack != "serde" else None
        budget = CacheBudget(1 << 20) if stack in ("cached", "metered") else None
        spec = StoreSpec("s", STRING, JSON)
        self.serde_store: SerdeStore
        self.serde_store, self.store = build_store(
            spec, self.engine, "app", 3, self.writer, budget, metered=stack == "metered"
        )

    def logged(self) -> list[tuple[str, int, bytes, bytes | None, int]]:
        return [] if self.writer is None else self.writer.records


@pytest.fixture(params=[(e, s) for e in ENGINES for s in STACKS], ids="-".join)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    engine_kind, layers = request.param
    built = Stack(engine_kind, layers, tmp_path)
    yield built
    built.store.close()


def test_the_stack_has_the_layers_asked_for(stack: Stack) -> None:
    layers = stack.layers
    assert isinstance(stack.store, MeteredStore) == (layers == "metered")
    assert (record_cache(stack.store) is not None) == (layers in ("cached", "metered"))
    assert isinstance(stack.serde_store.inner, ChangeLoggingBytesStore) == (layers != "serde")
    assert stack.serde_store.engine is stack.engine


def test_get_put_delete_and_none_deletes(stack: Stack) -> None:
    store = stack.store
    assert store.get("a") is None
    store.put("a", {"n": 1}, 10)
    store.put("b", [1, 2], 11)
    assert store.get("a") == {"n": 1}
    assert store.get_with_timestamp("b") == ([1, 2], 11)
    store.put("a", {"n": 2}, 12)  # overwrite: value and timestamp
    assert store.get_with_timestamp("a") == ({"n": 2}, 12)
    store.delete("a")
    store.put("b", None, 13)  # None deletes too
    store.delete("never-written")
    assert store.get("a") is None
    assert store.get_with_timestamp("b") is None
    store.flush()
    assert list(store.all()) == []


def test_scans_follow_key_bytes_with_inclusive_bounds(stack: Stack) -> None:
    store = stack.store
    keys = ["b", "a", "é", "ab", "z", "B"]  # bytes order: B a ab b z é
    for i, key in enumerate(keys):
        store.put(key, i, i)
    if isinstance(record_cache(store), CachingStore):
        store.flush()
        store.put("aa", 99, 99)  # a dirty entry merges into scans of flushed ones
    expected = sorted([*keys, *(["aa"] if record_cache(store) else [])], key=str.encode)
    assert [k for k, _ in store.all()] == expected
    assert [k for k, _ in store.range()] == expected
    assert [k for k, _ in store.range("a", "b")] == [k for k in expected if "a" <= k <= "b"]
    assert [k for k, _ in store.range("ab", None)] == [k for k in expected if k >= "ab"]
    assert [k for k, _ in store.range(None, "a")] == ["B", "a"]
    assert [k for k, _ in store.range("c", "d")] == []
    assert [k for k, _ in store.range(limit=2)] == expected[:2]
    assert [k for k, _ in store.prefix_scan("a")] == [k for k in expected if k.startswith("a")]
    entries = list(store.range_entries("a", "ab"))
    assert [(kb, k) for kb, k, _ in entries] == [
        (k.encode(), k) for k in expected if "a" <= k <= "ab"
    ]
    assert [kb for kb, _ in store.raw_range("a", "ab")] == [kb for kb, _, _ in entries]


def test_flush_puts_stored_bytes_in_the_engine_and_counts_entries(stack: Stack) -> None:
    store = stack.store
    for i in range(50):
        store.put(f"k{i:02d}", {"i": i}, 1000 + i)
    store.flush()
    assert stack.engine.get(b"k07") == (1007).to_bytes(8, "big") + b'{"i":7}'
    assert store.approximate_num_entries() == 50
    assert stack.serde_store.approximate_num_entries() == 50


def test_close_keeps_what_was_flushed(stack: Stack) -> None:
    stack.store.put("kept", "v", 5)
    stack.store.flush()
    stack.store.close()
    stack.store.close()  # a second close is harmless
    if stack.directory.exists():  # RocksDB: the data outlives the process
        reopened = open_engine(True, stack.directory)
        assert reopened.get(b"kept") == (5).to_bytes(8, "big") + b'"v"'
        reopened.close()


def test_changelog_gets_exactly_the_bytes_written(stack: Stack) -> None:
    store = stack.store
    store.put("a", {"x": 1}, 7)
    store.put("b", "text", 8)
    store.delete("a")
    store.flush()
    if stack.writer is None:
        return
    records = stack.logged()
    assert {r[:2] for r in records} == {(TOPIC, 3)}
    if record_cache(store) is None:  # every write, in order
        assert [r[2:] for r in records] == [
            (b"a", b'{"x":1}', 7),
            (b"b", b'"text"', 8),
            (b"a", None, 0),
        ]
    else:  # the cache collapses writes per key between flushes
        assert sorted(r[2:4] for r in records) == [(b"a", None), (b"b", b'"text"')]


def test_restores_write_the_engine_without_logging(stack: Stack) -> None:
    stack.serde_store.restore_batch([(b"r", b"[1]", 4), (b"gone", None, 5)])
    assert stack.store.get_with_timestamp("r") == ([1], 4)
    assert stack.logged() == []


def test_metered_counts_each_operation() -> None:
    store = build_store(
        StoreSpec("s", STRING, JSON), open_engine(False), "app", 0, None, None, metered=True
    )[1]
    assert isinstance(store, MeteredStore)
    store.put("a", 1, 1)
    store.put("b", 2, 1)
    store.get("a")
    store.get_with_timestamp("b")
    store.get("c")
    store.delete("a")
    list(store.range("a", "z"))
    list(store.all())
    list(store.prefix_scan("b"))
    assert store.operation_counts() == {"get": 3, "put": 2, "delete": 1, "range": 3}
    assert store.get("b") == 2


def test_open_engine_needs_a_directory_for_rocksdb() -> None:
    with pytest.raises(ValueError, match="needs a directory"):
        open_engine(True)


OPS = hs.lists(
    hs.one_of(
        hs.tuples(
            hs.just("put"),
            hs.sampled_from(["a", "ab", "b", "é", "z"]),
            hs.none() | hs.integers(0, 9),
            hs.integers(0, 2**40),
        ),
        hs.tuples(hs.just("delete"), hs.sampled_from(["a", "b", "é"]), hs.none(), hs.just(0)),
        hs.tuples(hs.just("flush"), hs.just(""), hs.none(), hs.just(0)),
    ),
    max_size=30,
)


@pytest.mark.parametrize("engine_kind", ENGINES)
@pytest.mark.parametrize("layers", STACKS)
@settings(max_examples=60, deadline=None)
@given(ops=OPS, lo=hs.sampled_from(["", "a", "b", "zz"]), hi=hs.sampled_from(["a", "b", "zz"]))
def test_a_store_behaves_as_a_dict(
    engine_kind: str, layers: str, ops: list[tuple[str, str, Any, int]], lo: str, hi: str
) -> None:
    model: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory() as directory:
        stack = Stack(engine_kind, layers, Path(directory))
        store = stack.store
        for op, key, value, ts in ops:
            if op == "put":
                store.put(key, value, ts)
                if value is None:
                    model.pop(key, None)
                else:
                    model[key] = (value, ts)
            elif op == "delete":
                store.delete(key)
                model.pop(key, None)
            else:
                store.flush()
        for key in ("a", "ab", "b", "é", "z", "absent"):
            assert store.get_with_timestamp(key) == model.get(key)
        ordered = sorted(model.items(), key=lambda item: item[0].encode())
        assert list(store.all()) == [(k, v) for k, (v, _) in ordered]
        assert list(store.range(lo, hi)) == [(k, v) for k, (v, _) in ordered if lo <= k <= hi]
        store.flush()
        # What the changelog holds, replayed into a fresh engine, is what the engine holds.
        if stack.writer is not None:
            replayed = open_engine(False)
            replayed.write_batch([r[2:] for r in stack.logged()])
            assert list(replayed.range(None, None)) == list(stack.engine.range(None, None))
        store.close()
