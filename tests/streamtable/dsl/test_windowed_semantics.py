"""Tumbling and hopping windowed aggregations through the TopologyTestDriver, with Kafka
Streams' rules: a record updates every window holding its timestamp that has not closed (end +
grace after the stream time), each update is emitted (through the record cache), late records
are dropped and counted, and the window store keeps windows for its retention."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import BYTES, INT, JSON, STRING, TimeWindowedSerde

pytestmark = pytest.mark.unit

SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)


def w(key: Any, start: int, size: int = 60_000) -> st.Windowed:
    return st.Windowed(key, st.Window(start, start + size))


def grouped() -> tuple[st.StreamsBuilder, st.KGroupedStream]:
    b = st.StreamsBuilder()
    return b, b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()


@contextmanager
def run(builder: st.StreamsBuilder, **config: Any) -> Iterator[st.TopologyTestDriver]:
    with st.TopologyTestDriver(builder.build(), config=config, start_time=0) as driver:
        yield driver


def test_tumbling_count_emits_every_update_and_drops_late_records() -> None:
    b, trades = grouped()
    windows = st.TimeWindows.of_size_and_grace(MINUTE, 10 * SECOND)
    trades.windowed_by(windows).count(store="counts").to_stream().to("out")
    with run(b) as d:
        source = d.input_topic("trades")
        for key, ts in [("c1", 1_000), ("c1", 2_000), ("c2", 61_000), ("c1", 59_000)]:
            source.pipe(key, {"qty": 1}, ts)  # 59 s: out of order, within the grace
        source.pipe("c1", {"qty": 1}, 75_000)  # stream time 75 s: window 0 closed at 70 s
        source.pipe("c1", {"qty": 1}, 5_000)  # late for window [0, 60 s)
        assert d.output_topic("out").read_records() == [
            (w("c1", 0), 1, 1_000, None),
            (w("c1", 0), 2, 2_000, None),
            (w("c2", 60_000), 1, 61_000, None),
            (w("c1", 0), 3, 59_000, None),  # the latest record timestamp of the window
            (w("c1", 60_000), 1, 75_000, None),
        ]
        assert d.dropped_records() == {"late": 1}
        assert list(d.window_store("counts").fetch("c1", 0, 120_000)) == [(0, 3), (60_000, 1)]


def test_a_late_record_still_counts_in_the_hopping_windows_still_open() -> None:
    b, trades = grouped()
    windows = st.TimeWindows.of_size_with_no_grace(3 * SECOND).advance_by(SECOND)
    trades.windowed_by(windows).count(store="counts")
    with run(b) as d:
        source = d.input_topic("trades")
        source.pipe("k", 1, 5_500)  # windows starting 3, 4, 5 s
        source.pipe("k", 1, 3_200)  # windows 1, 2, 3 s: [1 s, 4 s) and [2 s, 5 s) closed
        assert d.dropped_records() == {"late": 2}
        got = dict(d.window_store("counts").fetch("k", 0, 10_000))
        assert got == {3_000: 2, 4_000: 1, 5_000: 1}


def test_hopping_reduce_and_aggregate_update_each_window_of_a_record() -> None:
    b, trades = grouped()
    windows = st.TimeWindows.of_size_with_no_grace(2 * MINUTE).advance_by(MINUTE)
    hopping = trades.windowed_by(windows)
    hopping.reduce(lambda agg, v: {"qty": agg["qty"] + v["qty"]}, store="sums")
    hopping.aggregate(list, lambda k, v, agg: [*agg, v["qty"]], store="lists")
    with run(b) as d:
        source = d.input_topic("trades")
        source.pipe("c1", {"qty": 2}, 30_000)
        source.pipe("c1", {"qty": 5}, 90_000)
        source.pipe("c2", {"qty": 7}, 100_000)
        sums = d.window_store("sums")
        assert list(sums.fetch("c1", 0, 200_000)) == [(0, {"qty": 7}), (60_000, {"qty": 5})]
        assert list(d.window_store("lists").all()) == [
            (w("c1", 0, 120_000), [2, 5]),
            (w("c1", 60_000, 120_000), [5]),
            (w("c2", 0, 120_000), [7]),
            (w("c2", 60_000, 120_000), [7]),
        ]


@pytest.mark.parametrize("cached", [True, False])
def test_a_record_the_aggregator_fails_on_counts_in_none_of_its_windows(cached: bool) -> None:
    """With a record cache, the record's windows are read, then written, in one go: an
    aggregator that fails on one of them (the runtime sends the record to the dead-letter topic)
    leaves all as they were. Without one, each window is written and forwarded as it is
    aggregated, as in Kafka Streams, so the windows before the failing one have it."""

    def add(key: str, value: dict[str, int], agg: list[int]) -> list[int]:
        if value["qty"] < 0 and not agg:
            raise ValueError("no negative first quantity")
        return [*agg, value["qty"]]

    b, trades = grouped()
    windows = st.TimeWindows.of_size_with_no_grace(2 * MINUTE).advance_by(MINUTE)
    trades.windowed_by(windows).aggregate(list, add, store="lists")
    with run(b, cache_max_bytes=10**6 if cached else 0) as d:
        source = d.input_topic("trades")
        source.pipe("c1", {"qty": 2}, 30_000)  # window 0
        with pytest.raises(ValueError, match="no negative first quantity"):
            source.pipe("c1", {"qty": -1}, 90_000)  # windows 0 (has 2) and 60 s (empty: fails)
        expected = [(w("c1", 0, 120_000), [2] if cached else [2, -1])]
        assert list(d.window_store("lists").all()) == expected


def test_null_keys_and_values_are_dropped_and_counted() -> None:
    b, trades = grouped()
    trades.windowed_by(st.TimeWindows.of_size_with_no_grace(MINUTE)).count(store="counts")
    with run(b) as d:
        source = d.input_topic("trades")
        source.pipe(None, {"qty": 1}, 1_000)
        source.pipe("c1", None, 1_000)
        source.pipe("c1", {"qty": 1}, 1_000)
        assert d.dropped_records() == {"null_key": 1, "null_value": 1}
        assert list(d.window_store("counts").all()) == [(w("c1", 0), 1)]


def test_the_store_reads_by_key_and_time_range() -> None:
    b, trades = grouped()
    windows = st.TimeWindows.of_size_with_no_grace(MINUTE)
    trades.windowed_by(windows).count(store="counts", retention=timedelta(hours=1))
    with run(b) as d:
        source = d.input_topic("trades")
        for key, ts in [("a", 1_000), ("ab", 2_000), ("a", 61_000), ("a", 125_000), ("b", 130_000)]:
            source.pipe(key, {}, ts)
        store = d.window_store("counts")
        assert store.name == "counts"
        # "ab" sorts among "a"'s windows by its bytes: not one of them
        assert list(store.fetch("a", 0, 300_000)) == [(0, 1), (60_000, 1), (120_000, 1)]
        assert list(store.fetch("a", 60_000, 120_000)) == [(60_000, 1), (120_000, 1)]
        assert list(store.fetch("a", 60_001, 119_999)) == []
        assert list(store.fetch("a", 100, 0)) == []
        assert list(store.fetch("zz", 0, 300_000)) == []
        assert list(store.fetch_all(0, 60_000)) == [
            (w("a", 0), 1),
            (w("a", 60_000), 1),
            (w("ab", 0), 1),
        ]
        assert list(store.fetch_all(120_000, 120_000)) == [
            (w("a", 120_000), 1),
            (w("b", 120_000), 1),
        ]
        assert len(list(store.all())) == 5
        with pytest.raises(TypeError, match="time_from must be milliseconds"):
            store.fetch("a", "0", 10)  # type: ignore[arg-type]


def test_windows_expire_after_the_retention_in_stream_time() -> None:
    """The store's stream time is its latest window start; a window starting at or before
    that minus the retention is gone (default retention: size + grace)."""
    b, trades = grouped()
    windows = st.TimeWindows.of_size_and_grace(MINUTE, 30 * SECOND)
    trades.windowed_by(windows).count(store="counts")  # retention 90 s
    with run(b) as d:
        source = d.input_topic("trades")
        source.pipe("a", {}, 10_000)
        source.pipe("b", {}, 70_000)  # latest start 60 s: window 0 still kept
        assert [k.window.start_ms for k, _ in d.window_store("counts").all()] == [0, 60_000]
        source.pipe("b", {}, 150_000)  # latest start 120 s: 0 <= 120 s - 90 s
        assert list(d.window_store("counts").all()) == [(w("b", 60_000), 1), (w("b", 120_000), 1)]
        assert list(d.window_store("counts").fetch("a", 0, 200_000)) == []


def test_retention_below_size_plus_grace_is_refused() -> None:
    _, trades = grouped()
    windowed = trades.windowed_by(st.TimeWindows.of_size_and_grace(MINUTE, 10 * SECOND))
    with pytest.raises(st.TopologyError, match=r"store 'c'.*retention: got 60000 ms"):
        windowed.count(store="c", retention=MINUTE)
    with pytest.raises(TypeError, match=r"retention must be a datetime\.timedelta"):
        windowed.count(store="c", retention=70_000)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"windowed_by takes st\.TimeWindows"):
        trades.windowed_by(MINUTE)  # type: ignore[call-overload]


def test_changes_flow_downstream_and_out_with_the_windowed_key_layout() -> None:
    b, trades = grouped()
    counts = trades.windowed_by(st.TimeWindows.of_size_with_no_grace(MINUTE)).count()
    busy = counts.filter(lambda key, n: n >= 2).map_values(lambda n: n * 10, value_serde=INT)
    busy.to_stream().to("busy")
    with run(b) as d:
        source = d.input_topic("trades")
        for ts in (1_000, 2_000, 3_000):
            source.pipe("c1", {}, ts)
        raw = d.output_topic("busy", key_serde=BYTES, value_serde=INT).read_key_values()
        start = (0).to_bytes(8, "big")
        assert raw == [(b"c1" + start, None), (b"c1" + start, 20), (b"c1" + start, 30)]
        windowed = TimeWindowedSerde(STRING, 60_000)
        assert windowed.deserialize(raw[1][0]) == w("c1", 0)


def test_without_a_cache_each_update_is_forwarded_at_once_with_old_values() -> None:
    """Re-grouping the windowed table needs old values: each update retracts the previous."""
    b, trades = grouped()
    counts = trades.windowed_by(st.TimeWindows.of_size_with_no_grace(MINUTE)).count()
    per_window = counts.group_by(lambda key, n: (key.window.start_ms, n), key_serde=JSON)
    per_window.reduce(lambda a, v: a + v, lambda a, v: a - v, store="totals")
    for cache in (0, 1 << 20):
        with run(b, cache_max_bytes=cache) as d:
            source = d.input_topic("trades")
            for key, ts in [("a", 1_000), ("b", 2_000), ("a", 3_000), ("a", 61_000)]:
                source.pipe(key, {}, ts)
            assert dict(d.key_value_store("totals").all()) == {0: 3, 60_000: 1}


def test_a_window_store_is_read_as_one() -> None:
    b, trades = grouped()
    trades.windowed_by(st.TimeWindows.of_size_with_no_grace(MINUTE)).count(store="counts")
    trades.count(store="totals")
    with run(b) as d:
        with pytest.raises(st.TopologyError, match="'counts' is a window store: read it with"):
            d.key_value_store("counts")
        with pytest.raises(st.TopologyError, match="'totals' is a key_value store"):
            d.window_store("totals")
        with pytest.raises(st.StoreNotFound):
            d.window_store("nope")


def test_the_changelog_holds_windowed_keys_and_its_config_expires() -> None:
    b, trades = grouped()
    windows = st.TimeWindows.of_size_with_no_grace(MINUTE)
    trades.windowed_by(windows).count(store="counts", retention=timedelta(hours=2))
    topology = b.build()
    spec = topology.stores["counts"]
    assert (spec.store_type, spec.retention_ms, spec.window_size_ms) == (
        "window",
        7_200_000,
        60_000,
    )
    assert spec.changelog_config() == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(7_200_000 + 86_400_000),
    }
    with st.TopologyTestDriver(topology, start_time=0) as d:
        d.input_topic("trades").pipe("c1", {}, 61_000)
        changelog = d.output_topic(
            "test-driver-counts-changelog", key_serde=BYTES, value_serde=BYTES
        )
        [(key, _, ts, _)] = changelog.read_records()
        assert (key, ts) == (b"c1" + (60_000).to_bytes(8, "big"), 61_000)
