"""The record cache of a window store (entries keyed by key and window start): whichever way a
window is written and read (a ``Windowed`` key, or key and start), under a budget that forces
evictions, it reads back what was written, forwards ``Windowed`` keys whose changes replay to the
table it holds, scans show its dirty entries over the store, and the budget holds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from streamtable.errors import SerializationError
from streamtable.serde import JSON, STRING, TimeWindowedSerde
from streamtable.state import (
    CacheBudget,
    MemoryBytesStore,
    SegmentedWindowBytesStore,
    SerdeStore,
    WindowCachingStore,
)
from streamtable.windowing import Window, Windowed
from tests.streamtable.state.test_record_cache import replaying_to

pytestmark = pytest.mark.unit

SIZE = 1_000
OPS = hs.lists(
    hs.tuples(
        hs.sampled_from(["a", "b", "c"]),
        hs.sampled_from([0, 1_000, 2_000, 60_000]),
        hs.none() | hs.integers(0, 5),
        hs.sampled_from(["windowed", "window", "windows"]),  # how it is written (see below)
        hs.booleans(),  # flush after
    ),
    max_size=60,
)


def _window_store() -> SerdeStore:
    segments = SegmentedWindowBytesStore(MemoryBytesStore(), retention_ms=10**9)
    return SerdeStore("w", segments, TimeWindowedSerde(STRING, SIZE), JSON)


def _windowed(key: str, start: int) -> Windowed:
    return Windowed(key, Window(start, start + SIZE))


@settings(max_examples=200, deadline=None)
@given(OPS, hs.integers(300, 3000))
def test_a_window_cache_reads_forwards_and_scans_what_was_written(
    ops: list[tuple[str, int, int | None, str, bool]], max_bytes: int
) -> None:
    inner = _window_store()
    budget = CacheBudget(max_bytes)
    cache = WindowCachingStore(inner, budget)
    downstream: dict[Windowed, Any] = {}
    replay = replaying_to(downstream)

    def listener(key: Windowed, new: Any, old: Any, ts: int) -> None:
        assert isinstance(key, Windowed)
        assert key.window.end_ms == key.window.start_ms + SIZE
        replay(key, new, old, ts)

    cache.listener = listener
    model: dict[Windowed, tuple[Any, int]] = {}
    for n, (key, start, value, how, flush) in enumerate(ops):
        windowed = _windowed(key, start)
        new = None if value is None else [value]
        if how == "windowed":  # a Windowed key
            cache.put(windowed, new, n)
        elif how == "window":  # by key and start
            cache.put_window(key, start, new, n)
        else:  # with the same key's window one minute on, in one call
            later = _windowed(key, start + 60_000)
            cache.put_windows(key, [(start, new, n), (start + 60_000, [n], n)])
            model[later] = ([n], n)
        if value is None:
            model.pop(windowed, None)
        else:
            model[windowed] = ([value], n)
        assert budget.used <= max_bytes
        assert cache.get_window_with_timestamp(key, start) == model.get(windowed)
        starts = [start, start + 60_000, 0]
        assert cache.get_windows(key, starts) == [model.get(_windowed(key, s)) for s in starts]
        assert cache.get_with_timestamp(windowed) == model.get(windowed)
        assert cache.get(windowed) == (model[windowed][0] if windowed in model else None)
        assert dict(cache.all()) == {w: v for w, (v, _) in model.items()}
        if flush:
            cache.flush()
    cache.flush()
    assert downstream == {w: v for w, (v, _) in model.items()}
    assert dict(inner.all()) == downstream
    assert budget.used == 0


def test_a_window_is_one_entry_whatever_end_its_windowed_key_claims() -> None:
    """The store keeps a window by key and start (the serde does not write the end), so does
    its cache; reads give the end as start + window size."""
    cache = WindowCachingStore(_window_store(), CacheBudget(10**6))
    flushed: list[tuple[Windowed, Any]] = []
    cache.listener = lambda key, new, old, ts: flushed.append((key, new))
    cache.put(Windowed("a", Window(0, 5)), 1, 0)
    cache.put(Windowed("a", Window(0, SIZE)), 2, 0)
    assert cache.get(Windowed("a", Window(0, 7))) == 2
    cache.flush()
    assert flushed == [(_windowed("a", 0), 2)]


def test_a_window_cache_refuses_a_key_that_is_not_windowed() -> None:
    cache = WindowCachingStore(_window_store(), CacheBudget(10**6))
    with pytest.raises(SerializationError, match="expects a Windowed key, got str"):
        cache.put("a", 1, 0)
    with pytest.raises(SerializationError, match="expects a Windowed key, got tuple"):
        cache.get(("a", 0))


def test_a_window_cache_needs_a_time_windowed_store() -> None:
    store = SerdeStore("kv", MemoryBytesStore(), STRING, JSON)
    with pytest.raises(TypeError, match="store 'kv': a window cache needs a TimeWindowedSerde"):
        WindowCachingStore(store, CacheBudget(10**6))


def test_a_window_cache_writes_and_reads_a_records_windows_in_one_call() -> None:
    """``put_windows``/``get_windows``: what a time-windowed aggregation does per record; a
    window not in the cache is read from the store below (by its serialized key)."""
    inner = _window_store()
    cache = WindowCachingStore(inner, CacheBudget(10**6))
    cache.listener = lambda key, new, old, ts: None
    cache.put_windows("a", [(0, 1, 5), (1_000, 2, 6)])
    cache.flush()  # both below now, nothing in the cache
    cache.put_windows("a", [(2_000, 3, 7)])
    assert cache.get_windows("a", [0, 1_000, 2_000, 3_000]) == [(1, 5), (2, 6), (3, 7), None]
    assert cache.get_windows("b", [0]) == [None]
    assert cache.get_windows("a", []) == []
