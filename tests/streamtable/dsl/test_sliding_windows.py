"""Sliding windows (``st.SlidingWindows``) through the TopologyTestDriver: arguments refused by
name, retention checked as Kafka Streams does (at least 2 * time difference + grace), and worked
examples of the windows a record creates and updates, late records, emit-final and suppress.
(``tests/differential/test_sliding_against_kafka_streams.py`` compares with Kafka Streams.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING

pytestmark = pytest.mark.unit

MS = timedelta(milliseconds=1)
SECOND = timedelta(seconds=1)


def w(key: Any, start: int, diff: int = 10) -> st.Windowed:
    return st.Windowed(key, st.Window(start, start + diff))


class Counted:
    """A driver of a sliding-window count of ``in`` into ``out`` (caches off)."""

    def __init__(self, driver: st.TopologyTestDriver) -> None:
        self.driver = driver
        self.out = driver.output_topic("out")

    def pipe(self, *stamps: int, key: str = "a") -> list[Any]:
        """Pipe a record at each of ``stamps``; what came out meanwhile."""
        for ts in stamps:
            self.driver.input_topic("in").pipe(key, {}, ts)
        return [(k, v, ts) for k, v, ts, _ in self.out.read_records()]


@contextmanager
def counted(
    windows: st.SlidingWindows, emit: st.EmitStrategy | None = None, suppress: bool = False
) -> Iterator[Counted]:
    b = st.StreamsBuilder()
    grouped = b.stream("in", key_serde=STRING, value_serde=JSON).group_by_key()
    windowed = grouped.windowed_by(windows)
    counts = (windowed.emit_strategy(emit) if emit else windowed).count(store="counts")
    if suppress:
        counts = counts.suppress(st.Suppressed.until_window_closes(st.BufferConfig.unbounded()))
    counts.to_stream().to("out")
    with st.TopologyTestDriver(b.build(), config={"cache_max_bytes": 0}, start_time=0) as d:
        yield Counted(d)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: st.SlidingWindows.of_time_difference_with_no_grace(timedelta(0)),
            ValueError,
            r"time difference of sliding windows must be > 0 ms \(time_difference: got 0 ms\)",
        ),
        (
            lambda: st.SlidingWindows.of_time_difference_and_grace(-SECOND, SECOND),
            ValueError,
            r"time_difference: got -1000 ms",
        ),
        (
            lambda: st.SlidingWindows.of_time_difference_and_grace(SECOND, -SECOND),
            ValueError,
            r"grace must not be negative \(grace: got -1000 ms\)",
        ),
        (
            lambda: st.SlidingWindows.of_time_difference_with_no_grace(1000),  # type: ignore[arg-type]
            TypeError,
            r"time_difference must be a datetime\.timedelta, got int",
        ),
        (
            lambda: st.SlidingWindows.of_time_difference_and_grace(SECOND, 5),  # type: ignore[arg-type]
            TypeError,
            r"grace must be a datetime\.timedelta, got int",
        ),
    ],
)
def test_bad_arguments_are_refused_by_name(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


def test_windows_hold_their_settings_and_default_retention() -> None:
    windows = st.SlidingWindows.of_time_difference_with_no_grace(10 * SECOND)
    assert (windows.time_difference_ms, windows.grace_ms, windows.size_ms) == (10_000, 0, 10_000)
    graced = st.SlidingWindows.of_time_difference_and_grace(10 * SECOND, 3 * SECOND)
    assert graced.default_retention_ms == 23_000
    assert graced == st.SlidingWindows(10_000, 3_000)


def test_retention_below_twice_the_difference_plus_grace_is_refused() -> None:
    b = st.StreamsBuilder()
    grouped = b.stream("in", key_serde=STRING, value_serde=JSON).group_by_key()
    windowed = grouped.windowed_by(st.SlidingWindows.of_time_difference_and_grace(SECOND, SECOND))
    assert isinstance(windowed, st.TimeWindowedKStream)
    with pytest.raises(st.TopologyError, match=r"store 'c'.*2 \* the time difference.*2999 ms"):
        windowed.count(store="c", retention=2999 * MS)
    windowed.count(store="ok", retention=3 * SECOND)  # the least allowed
    with pytest.raises(TypeError, match=r"retention must be a datetime\.timedelta"):
        windowed.count(store="c", retention=3000)  # type: ignore[arg-type]


def test_records_create_left_and_right_windows_and_late_ones_are_dropped() -> None:
    windows = st.SlidingWindows.of_time_difference_and_grace(10 * MS, 5 * MS)
    with counted(windows) as c:
        assert c.pipe(5) == [(w("a", 0), 1, 5)]  # early: the window [0, 10]
        assert c.pipe(20) == [(w("a", 10), 1, 20)]  # 5 is not in [10, 20]
        # 12: updates [10, 20]; creates 5's right window [6, 16] and its own right window
        # [13, 23] (a copy of [10, 20] before 12); its left window [2, 12] has closed (close
        # time 20 - 5 = 15): dropped once.
        assert c.pipe(12) == [(w("a", 10), 2, 20), (w("a", 6), 1, 12), (w("a", 13), 1, 20)]
        assert c.driver.dropped_records()["late"] == 1
        # 30: 20's right window [21, 31], and its own left window seeded with [13, 23]'s count
        assert c.pipe(30) == [(w("a", 21), 1, 30), (w("a", 20), 2, 30)]
        assert c.pipe(3) == []  # 3 + 10 < 30 - 5: late for every window
        assert c.driver.dropped_records()["late"] == 2
        stored = {k.window.start_ms: n for k, n in c.driver.window_store("counts").all()}
        assert stored == {0: 1, 6: 1, 10: 2, 13: 1, 20: 2, 21: 1}


def test_on_window_close_emits_each_window_once_after_its_end_passes_the_close_time() -> None:
    windows = st.SlidingWindows.of_time_difference_and_grace(10 * MS, 2 * MS)
    with counted(windows, st.EmitStrategy.on_window_close()) as c:
        assert c.pipe(10) == []
        # close time 13: windows starting up to 13 - 10 - 1 = 2 have closed (ends inclusive)
        assert c.pipe(15) == [(w("a", 0), 1, 10)]
        assert c.pipe(22) == [(w("a", 5), 2, 15)]  # close time 20: starts 3..9
        # close time 28: starts 10..17: 15's right window, 22's left, 15's second right one
        assert c.pipe(30) == [(w("a", 11), 1, 15), (w("a", 12), 2, 22), (w("a", 16), 1, 22)]
        assert c.pipe(30) == []  # the close time has not moved


def test_suppress_until_window_closes_emits_once_the_window_end_is_reached() -> None:
    """As Kafka Streams: the suppression buffer closes a window when its end is not after
    stream time - grace, so with no grace a record's left window (ending at the record) is
    emitted by the record itself."""
    windows = st.SlidingWindows.of_time_difference_with_no_grace(10 * MS)
    with counted(windows, suppress=True) as c:
        assert c.pipe(10) == [(w("a", 0), 1, 10)]
        assert c.pipe(15) == [(w("a", 5), 2, 15)]
        assert c.pipe(30) == [(w("a", 11), 1, 15), (w("a", 20), 1, 30)]


def test_reduce_and_aggregate_sum_per_window() -> None:
    b = st.StreamsBuilder()
    grouped = b.stream("in", key_serde=STRING, value_serde=JSON).group_by_key()
    windowed = grouped.windowed_by(st.SlidingWindows.of_time_difference_with_no_grace(10 * MS))
    kept = 100 * MS  # the default (2 * 10 ms) would expire [0, 10] once [20, 30] exists
    windowed.reduce(lambda agg, v: agg + v, store="sums", retention=kept)
    windowed.aggregate(list, lambda k, v, agg: [*agg, v], store="lists", retention=kept)
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        for ts, amount in ((10, 1), (15, 2), (18, 4), (30, 8)):
            d.input_topic("in").pipe("a", amount, ts)
        sums = {k.window.start_ms: v for k, v in d.window_store("sums").all()}
        # left windows [t - 10, t]; right windows [t + 1, t + 11] of 10 and 15 (not of 18:
        # no later record within 10 ms of it)
        assert sums == {0: 1, 5: 3, 8: 7, 11: 6, 16: 4, 20: 8}
        lists = {k.window.start_ms: v for k, v in d.window_store("lists").all()}
        assert lists == {0: [1], 5: [1, 2], 8: [1, 2, 4], 11: [2, 4], 16: [4], 20: [8]}
