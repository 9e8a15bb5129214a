"""The record cache under a budget that forces evictions: what it forwards replays to the table
it holds, each change's old value is what downstream saw last, and the budget holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from streamtable.serde import JSON, STRING
from streamtable.state import MemoryBytesStore, SerdeStore
from streamtable.state._caching import CacheBudget, CachingStore, FlushListener

pytestmark = pytest.mark.unit

WRITES = hs.lists(
    hs.tuples(hs.sampled_from("abcdefghij"), hs.none() | hs.integers(0, 5), hs.booleans()),
    max_size=60,
)


def replaying_to(downstream: dict[Any, Any]) -> FlushListener:
    """A flush listener applying each change to ``downstream``, which checks that its old value
    is what downstream saw last and that it is a change."""

    def listener(key: Any, new: Any, old: Any, ts: int) -> None:
        assert old == downstream.get(key), "old is what downstream saw last"
        assert (new, old) != (None, None), "no change from nothing to nothing"
        if new is None:
            downstream.pop(key)
        else:
            downstream[key] = new

    return listener


@settings(max_examples=200, deadline=None)
@given(WRITES, hs.integers(300, 3000))
def test_an_evicting_cache_forwards_what_replays_to_its_table(
    writes: list[tuple[str, int | None, bool]], max_bytes: int
) -> None:
    inner = SerdeStore("s", MemoryBytesStore(), STRING, JSON)
    budget = CacheBudget(max_bytes)
    cache = CachingStore(inner, budget)
    downstream: dict[str, Any] = {}
    cache.listener = replaying_to(downstream)
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


class WatchedStore(SerdeStore):
    """The store below a cache that, when the cache writes to it, first reads every key
    through the cache, as an interactive query on another thread may at that moment."""

    cache: CachingStore | None = None

    def put_all_serialized(self, entries: Any) -> None:
        if self.cache is not None:  # not while the test fills it
            seen[:] = [(key, self.cache.get(key)) for key in ("a", "b")]
            scans[:] = [dict(self.cache.range())]
        super().put_all_serialized(entries)


seen: list[tuple[str, Any]] = []
scans: list[dict[str, Any]] = []


@pytest.mark.parametrize("how", ["flush", "evict"])
def test_a_read_while_the_cache_writes_below_sees_the_new_values(how: str) -> None:
    """Interactive queries read without waiting for processing: a read between the cache
    dropping its entries and the store below having them must not see the older values."""
    inner = WatchedStore("s", MemoryBytesStore(), STRING, JSON)
    inner.put_all_serialized([(STRING.serialize(k), [0], 1) for k in ("a", "b")])
    budget = CacheBudget(10**6)
    cache = CachingStore(inner, budget)
    inner.cache = cache
    cache.put("a", [1], 2)
    cache.put("b", [2], 2)
    if how == "flush":
        cache.flush()
    else:
        budget.max_bytes = 1  # the next put evicts every entry, itself included
        cache.put("a", [3], 3)
    expected = {"a": [1], "b": [2]} if how == "flush" else {"a": [3], "b": [2]}
    assert dict(seen) == expected
    assert scans == [expected]
    assert dict(inner.all()) == expected


def test_a_key_written_again_keeps_its_size_estimate_until_every_16th_such_write() -> None:
    """The size of a key's entry is estimated at its first write after a flush; writes of keys
    already in the cache keep their estimate, except every 16th of the store's, estimated
    again: a value that grows is caught up with, and the budget still evicts for it."""
    budget = CacheBudget(10**6)
    cache = CachingStore(SerdeStore("s", MemoryBytesStore(), STRING, JSON), budget)
    cache.listener = lambda key, new, old, ts: None
    cache.put("k", [], 0)
    first = budget.used
    for n in range(1, 16):
        cache.put("k", list(range(n * 100)), n)
        assert budget.used == first, "an overwrite keeps the first estimate"
    cache.put("k", list(range(1_600)), 16)  # the 16th overwrite: estimated again
    assert budget.used > first + 8 * 1_500, "a list of 1,600 items is sized as such"
    cache.flush()
    assert budget.used == 0
    budget.max_bytes = 8 * 1_500  # less than the list: its first write after a flush evicts
    cache.put("k", list(range(1_600)), 17)
    assert not cache.has_dirty()
    assert cache.get("k") == list(range(1_600))
