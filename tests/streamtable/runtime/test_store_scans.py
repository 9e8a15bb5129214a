"""Scans over several partitions' stores with record caches: ``range_entries`` (what the query
server pages by) against a plain dict, for any mix of flushed and dirty writes and deletes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from streamtable.query._stored import entries_for_json
from streamtable.runtime._views import CompositeStoreView
from streamtable.serde import JSON, STRING
from streamtable.state import MemoryBytesStore, RocksDBBytesStore, SerdeStore
from streamtable.state._caching import CacheBudget, CachingStore
from streamtable.topology import StoreSpec, partition_for

pytestmark = pytest.mark.unit

PARTITIONS = 3
KEYS = hs.text(alphabet="abcé", min_size=1, max_size=4)
WRITES = hs.lists(
    hs.tuples(KEYS, hs.none() | hs.integers(0, 9), hs.booleans()),  # key, value, flush after
    max_size=40,
)


def view_over(stores: dict[int, Any]) -> CompositeStoreView:
    return CompositeStoreView(
        "s", STRING, lambda: (stores, PARTITIONS), lambda: None, threading.RLock()
    )


@settings(max_examples=150, deadline=None)
@given(WRITES, hs.one_of(hs.none(), hs.integers(1, 12)), KEYS, KEYS)
def test_range_entries_equal_a_dict(
    writes: list[tuple[str, int | None, bool]], limit: int | None, lo: str, hi: str
) -> None:
    budget = CacheBudget(1 << 20)
    caches = {
        p: CachingStore(SerdeStore("s", MemoryBytesStore(), STRING, JSON), budget)
        for p in range(PARTITIONS)
    }
    model: dict[str, int] = {}
    for key, value, flush in writes:
        cache = caches[partition_for(key.encode(), PARTITIONS)]
        if value is None:
            cache.delete(key)
            model.pop(key, None)
        else:
            cache.put(key, {"v": value}, 1)
            model[key] = value
        if flush:
            cache.flush()
    lo, hi = min(lo, hi), max(lo, hi)
    expected = sorted(
        (k.encode(), k, {"v": v})
        for k, v in model.items()
        if lo.encode() <= k.encode() <= hi.encode()
    )
    got = list(view_over(dict(caches)).range_entries(lo, hi, limit))
    assert got == (expected if limit is None else expected[:limit])


def test_range_entries_read_rocksdb_within_bounds(tmp_path: Path) -> None:
    store = SerdeStore("s", RocksDBBytesStore(tmp_path / "s"), STRING, JSON)
    store.put_all([(f"k{i:03d}", i, 1) for i in range(100)])
    got = list(store.range_entries("k010", "k019"))
    assert [k for _, k, _ in got] == [f"k{i:03d}" for i in range(10, 20)]
    assert [kb for kb, _, _ in got] == [f"k{i:03d}".encode() for i in range(10, 20)]
    assert [v for _, _, v in store.range_entries("k098", None)] == [98, 99]
    assert len(list(store.range_entries(None, None, 7))) == 7


def test_query_serves_stored_json_text_and_decodes_dirty_entries(tmp_path: Path) -> None:
    budget = CacheBudget(1 << 20)
    inner = SerdeStore("s", RocksDBBytesStore(tmp_path / "s"), STRING, JSON)
    inner.restore_batch([(b"a", b'{"x": [1, 2]}', 1), (b"b", b'"text"', 1)])  # producer bytes
    cache = CachingStore(inner, budget)
    cache.put("c", {"y": None}, 2)  # dirty: not in the engine yet
    raw = view_over({0: cache}).raw_range()
    entries = list(entries_for_json(raw, StoreSpec("s", STRING, JSON)))
    assert [k for _, k, _ in entries] == ["a", "b", "c"]
    body = orjson.dumps([v for _, _, v in entries])
    assert body == b'[{"x": [1, 2]},"text",{"y":null}]'
    decoded = [v for _, _, v in view_over({0: cache}).range_entries()]
    assert orjson.loads(body) == decoded
