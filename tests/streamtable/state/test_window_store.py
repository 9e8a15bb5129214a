"""The window stores' segment layer, over both engines: windows live in time segments, reads
never return an expired window, writes to an expired segment are dropped, expired segments
are deleted from the engine, and the store's stream time survives a reopen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from streamtable.serde import STRING, TimeWindowedSerde
from streamtable.state import (
    BytesStore,
    MeteredStore,
    SegmentedWindowBytesStore,
    changelogging,
    open_engine,
    segments_of,
)
from streamtable.state._changelog import ChangeLoggingBytesStore
from streamtable.topology import build_store
from streamtable.topology._nodes import StoreSpec
from streamtable.windowing import Window, Windowed

pytestmark = pytest.mark.unit

MINUTE = 60_000
KEYS = TimeWindowedSerde(STRING, MINUTE)


def wk(key: str, start: int) -> bytes:
    return KEYS.serialize(Windowed(key, Window(start, start + MINUTE)))


@pytest.fixture(params=["memory", "rocksdb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BytesStore]:
    opened = open_engine(request.param == "rocksdb", tmp_path / "w")
    yield opened
    opened.close()


def keys_of(store: SegmentedWindowBytesStore) -> list[tuple[str, int]]:
    found = (KEYS.deserialize(k) for k, _ in store.range(None, None))
    return [(w.key, w.window.start_ms) for w in found]


def test_segments_span_half_the_retention_at_least_a_minute(engine: BytesStore) -> None:
    assert SegmentedWindowBytesStore(engine, 10 * MINUTE).segment_interval_ms == 5 * MINUTE
    assert SegmentedWindowBytesStore(engine, 1_000).segment_interval_ms == MINUTE
    with pytest.raises(ValueError, match="retention_ms must be > 0"):
        SegmentedWindowBytesStore(engine, 0)


def test_reads_hide_windows_past_the_retention_exactly(engine: BytesStore) -> None:
    store = SegmentedWindowBytesStore(engine, 10 * MINUTE)  # segments of 5 minutes
    store.write_batch([(wk("a", 0), b"1", 5), (wk("b", MINUTE), b"2", 6)])
    store.put(wk("a", 10 * MINUTE), b"3", 7)  # stream time 10 min: window 0 expired
    assert store.stream_time == 10 * MINUTE
    assert store.get(wk("a", 0)) is None
    assert store.get(wk("b", MINUTE)) == (6).to_bytes(8, "big") + b"2"
    assert store.get_many([wk("a", 0), wk("a", 10 * MINUTE)])[0] is None
    assert keys_of(store) == [("a", 10 * MINUTE), ("b", MINUTE)]  # key order, across segments
    lo, hi = wk("a", 0), wk("a", 20 * MINUTE)
    assert [KEYS.deserialize(k).key for k, _ in store.range(lo, hi)] == ["a"]


def test_expired_segments_are_deleted_and_writes_to_them_dropped(engine: BytesStore) -> None:
    store = SegmentedWindowBytesStore(engine, 2 * MINUTE)  # segments of 1 minute
    store.write_batch([(wk(k, 0), b"x", 1) for k in "abc"])
    assert engine.approximate_num_entries() == 3
    store.put(wk("d", 4 * MINUTE), b"y", 2)  # segment 0 is below the first live one (2)
    assert engine.approximate_num_entries() == 1
    store.put(wk("e", MINUTE), b"z", 3)  # its segment has expired: dropped
    assert store.expired_writes == 1
    assert keys_of(store) == [("d", 4 * MINUTE)]
    store.put(wk("d", 4 * MINUTE), None, 4)  # a delete
    assert keys_of(store) == []


def test_a_batch_moves_stream_time_before_it_writes(engine: BytesStore) -> None:
    """As Kafka Streams' restore: an old window in the same batch as a much newer one is
    not written at all."""
    store = SegmentedWindowBytesStore(engine, 2 * MINUTE)
    store.write_batch([(wk("old", 0), b"1", 1), (wk("new", 10 * MINUTE), b"2", 2)])
    assert store.expired_writes == 1
    assert engine.approximate_num_entries() == 1


def test_stream_time_survives_a_reopen(tmp_path: Path) -> None:
    first = SegmentedWindowBytesStore(open_engine(True, tmp_path / "w"), 10 * MINUTE)
    first.write_batch([(wk("a", 0), b"1", 1), (wk("a", 3 * MINUTE), b"2", 2)])
    first.put(wk("a", 12 * MINUTE), b"3", 3)  # window 0 expired; its segment (0) still live
    first.close()
    again = SegmentedWindowBytesStore(open_engine(True, tmp_path / "w"), 10 * MINUTE)
    try:
        assert again.stream_time == 12 * MINUTE
        assert again.get(wk("a", 0)) is None
        assert keys_of(again) == [("a", 3 * MINUTE), ("a", 12 * MINUTE)]
        assert again.approximate_num_entries() == 3  # the stream time's own key not counted
    finally:
        again.close()


def test_an_empty_store_reads_nothing(engine: BytesStore) -> None:
    store = SegmentedWindowBytesStore(engine, MINUTE)
    assert list(store.range(None, None)) == []
    store.write_batch([])
    store.flush()
    assert store.stream_time == -1


def test_entries_timed_in_read_live_segments_without_the_exact_expiry(engine: BytesStore) -> None:
    """What session emit-final reads (as Kafka Streams' time-ordered ``fetchSessions``): every
    entry of a segment not yet deleted whose time is in the range, expired exactly or not."""
    store = SegmentedWindowBytesStore(engine, 10 * MINUTE)  # segments of 5 minutes
    store.write_batch([(wk("a", 0), b"1", 5), (wk("b", MINUTE), b"2", 6)])
    store.put(wk("c", 11 * MINUTE), b"3", 7)  # stream time 11 min: 0 and 1 min expired exactly
    assert keys_of(store) == [("c", 11 * MINUTE)]
    found = store.entries_timed_in(0, 11 * MINUTE)
    assert sorted(KEYS.deserialize(k).key for k, _ in found) == ["a", "b", "c"]
    assert [KEYS.deserialize(k).key for k, _ in store.entries_timed_in(MINUTE, 2**63 - 1)] == [
        "b",
        "c",
    ]
    assert store.get(wk("a", 0)) is None
    assert store.get_in_live_segment(wk("a", 0)) == (5).to_bytes(8, "big") + b"1"
    store.put(wk("c", 16 * MINUTE), b"4", 8)  # segment 0 (0-5 min) is deleted now
    assert store.get_in_live_segment(wk("a", 0)) is None
    assert store.entries_timed_in(0, 5 * MINUTE - 1) == []


def test_segments_of_finds_the_segment_layer_under_any_stack(engine: BytesStore) -> None:
    spec = StoreSpec("s", STRING, STRING, store_type="session", retention_ms=MINUTE)
    serde_store, top = build_store(spec, engine, "app", 0, None, None, metered=True)
    assert isinstance(top, MeteredStore)
    assert segments_of(top) is serde_store.engine
    assert isinstance(serde_store.engine, SegmentedWindowBytesStore)
    with pytest.raises(TypeError, match="is not a window or session store"):
        segments_of(object())


class _Writer:
    def send_changelog(self, *args: object) -> None:
        pass


def test_the_changelog_layer_is_found_under_a_logged_stack_only(engine: BytesStore) -> None:
    spec = StoreSpec("s", STRING, STRING, store_type="session", retention_ms=MINUTE)
    serde_store, top = build_store(spec, engine, "app", 0, cast(Any, _Writer()), None, metered=True)
    layer = changelogging(top)
    assert isinstance(layer, ChangeLoggingBytesStore)
    assert layer is serde_store.inner
    assert segments_of(top) is layer.engine  # through the changelog layer
    assert changelogging(segments_of(top)) is None
    assert changelogging(object()) is None
