"""The record cache under a budget that forces evictions: what it forwards replays to the table
it holds, each change's old value is what downstream saw last, and the budget holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from streamtable.serde import JSON, STRING
from streamtable.state import MemoryBytesStore, SerdeStore
from streamtable.state._caching import CacheBudget, CachingStore

pytestmark = pytest.mark.unit

WRITES = hs.lists(
    hs.tuples(hs.sampled_from("abcdefghij"), hs.none() | hs.integers(0, 5), hs.booleans()),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(WRITES, hs.integers(300, 3000))
def test_an_evicting_cache_forwards_what_replays_to_its_table(
    writes: list[tuple[str, int | None, bool]], max_bytes: int
) -> None:
    inner = SerdeStore("s", MemoryBytesStore(), STRING, JSON)
    budget = CacheBudget(max_bytes)
    cache = CachingStore(inner, budget)
    downstream: dict[str, Any] = {}

    def listener(key: str, new: Any, old: Any, ts: int) -> None:
        assert old == downstream.get(key), "old is what downstream saw last"
        assert (new, old) != (None, None), "no change from nothing to nothing"
        if new is None:
            downstream.pop(key)
        else:
            downstream[key] = new

    cache.listener = listener
    model: dict[str, Any] = {}
    for key, value, flush in writes:
        if value is None:
            cache.delete(key)
            model.pop(key, None)
        else:
            cache.put(key, [value], 1)
            model[key] = [value]
        assert budget.used <= max_bytes
        assert cache.get(key) == model.get(key)
        if flush:
            cache.flush()
    cache.flush()
    assert downstream == model
    assert dict(inner.all()) == model
    assert budget.used == 0
