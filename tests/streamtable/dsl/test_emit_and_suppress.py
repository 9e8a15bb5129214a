"""Emit-final (``EmitStrategy.on_window_close()``) and ``KTable.suppress`` through the
TopologyTestDriver: what is emitted and when, bad arguments, the buffer restored from its
changelog after a restart, and ``close_idle_after`` closing windows on the wall clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING
from streamtable.testing import TestOutputTopic

pytestmark = pytest.mark.unit

SECOND = timedelta(seconds=1)
TEN_S = st.TimeWindows.of_size_and_grace(10 * SECOND, 2 * SECOND)
UNBOUNDED = st.BufferConfig.unbounded()


def w(key: str, start: int, size: int = 10_000) -> st.Windowed:
    return st.Windowed(key, st.Window(start, start + size))


def windowed_counts(
    emit: st.EmitStrategy | None = None,
) -> tuple[st.StreamsBuilder, st.KTable]:
    b = st.StreamsBuilder()
    windowed = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()
    stream = windowed.windowed_by(TEN_S)
    if emit is not None:
        stream = stream.emit_strategy(emit)
    return b, stream.count(store="counts")


@contextmanager
def run(b: st.StreamsBuilder, **config: Any) -> Iterator[st.TopologyTestDriver]:
    with st.TopologyTestDriver(b.build(), config=config, start_time=0) as driver:
        yield driver


Records = list[tuple[Any, Any, int]]
_readers: WeakKeyDictionary[st.TopologyTestDriver, TestOutputTopic] = WeakKeyDictionary()


def pipe(driver: st.TopologyTestDriver, records: list[tuple[str, int]]) -> Records:
    source = driver.input_topic("trades")
    out = _readers.get(driver) or _readers.setdefault(driver, driver.output_topic("out"))
    emitted: Records = []
    for key, ts in records:
        source.pipe(key, {"n": 1}, ts)
        emitted += [(k, v, t) for k, v, t, _ in out.read_records()]
    return emitted


# -- emit-final ------------------------------------------------------------------------------
def test_on_window_close_emits_each_window_once_when_it_closes() -> None:
    b, counts = windowed_counts(st.EmitStrategy.on_window_close())
    counts.to_stream().to("out")
    with run(b) as driver:
        # Nothing while windows are open; [0, 10 s) closes at stream time 12 s.
        assert pipe(driver, [("a", 1_000), ("b", 3_000), ("a", 9_000), ("a", 11_999)]) == []
        assert pipe(driver, [("b", 12_000)]) == [(w("a", 0), 2, 9_000), (w("b", 0), 1, 3_000)]
        # Late for [0, 10 s): dropped and counted; nothing emitted again.
        assert pipe(driver, [("a", 500), ("c", 15_000)]) == []
        assert driver.dropped_records() == {"late": 1}
        # A jump far past the retention still emits [10 s, 20 s) (see window_emit_final).
        assert pipe(driver, [("c", 100_000)]) == [
            (w("a", 10_000), 1, 11_999),
            (w("b", 10_000), 1, 12_000),
            (w("c", 10_000), 1, 15_000),
        ]
        assert list(driver.window_store("counts").fetch("c", 0, 200_000)) == [(100_000, 1)]


def test_on_window_update_is_the_default_and_emit_strategy_returns_a_new_stream() -> None:
    b = st.StreamsBuilder()
    stream = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()
    windowed = stream.windowed_by(TEN_S)
    final = windowed.emit_strategy(st.EmitStrategy.on_window_close())
    assert final is not windowed
    windowed.emit_strategy(st.EmitStrategy.on_window_update()).count().to_stream().to("out")
    with run(b) as driver:
        assert pipe(driver, [("a", 1_000), ("a", 2_000)]) == [
            (w("a", 0), 1, 1_000),
            (w("a", 0), 2, 2_000),
        ]
    with pytest.raises(TypeError, match=r"EmitStrategy\.on_window_close"):
        windowed.emit_strategy("on_window_close")  # type: ignore[arg-type]


# -- suppress(until_window_closes) ------------------------------------------------------------
def test_until_window_closes_emits_final_results_in_window_end_then_key_order() -> None:
    b, counts = windowed_counts()
    counts.map_values(lambda n: n * 10).suppress(
        st.Suppressed.until_window_closes(UNBOUNDED)
    ).to_stream().to("out")
    with run(b) as driver:
        assert pipe(driver, [("b", 1_000), ("a", 2_000), ("b", 9_000), ("a", 11_000)]) == []
        assert pipe(driver, [("x", 12_000)]) == [(w("a", 0), 10, 2_000), (w("b", 0), 20, 9_000)]
        assert pipe(driver, [("x", 21_999)]) == []
        assert pipe(driver, [("x", 22_000)]) == [
            (w("a", 10_000), 10, 11_000),
            (w("x", 10_000), 10, 12_000),
        ]


def test_until_window_closes_never_emits_a_tombstone() -> None:
    b, counts = windowed_counts()
    counts.filter(lambda k, n: n < 2).suppress(
        st.Suppressed.until_window_closes(UNBOUNDED)
    ).to_stream().to("out")
    with run(b) as driver:
        # a's window goes 1 -> filtered out (a tombstone): its final result is no row at all.
        assert pipe(driver, [("a", 1_000), ("a", 2_000), ("b", 3_000), ("x", 12_000)]) == [
            (w("b", 0), 1, 3_000)
        ]


# -- suppress(until_time_limit) ---------------------------------------------------------------
def counts_limited(config: st.BufferConfig, limit: timedelta = 5 * SECOND) -> st.StreamsBuilder:
    b = st.StreamsBuilder()
    counts = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key().count()
    counts.suppress(st.Suppressed.until_time_limit(limit, config)).to_stream().to("out")
    return b


def test_until_time_limit_emits_the_latest_value_a_limit_after_the_first_held_back() -> None:
    with run(counts_limited(UNBOUNDED)) as driver:
        assert pipe(driver, [("a", 1_000), ("a", 4_000), ("b", 5_000)]) == []
        # a was first held back at 1 s: due at 6 s, with its latest value and timestamp.
        assert pipe(driver, [("c", 6_000)]) == [("a", 2, 4_000)]
        assert pipe(driver, [("c", 10_000)]) == [("b", 1, 5_000)]
        # c was first held back at 6 s; its third record (11 s) makes it due.
        assert pipe(driver, [("c", 11_000)]) == [("c", 3, 11_000)]


def test_a_bounded_buffer_emits_its_oldest_entries_early_when_full() -> None:
    with run(counts_limited(st.BufferConfig.max_records(2))) as driver:
        assert pipe(driver, [("a", 1_000), ("b", 1_500), ("a", 1_800)]) == []
        assert pipe(driver, [("c", 2_000)]) == [("a", 2, 1_800)]


def test_a_strict_bounded_buffer_fails_the_record_that_does_not_fit() -> None:
    config = st.BufferConfig.max_records(1).shut_down_when_full()
    with run(counts_limited(config)) as driver:
        pipe(driver, [("a", 1_000)])
        with pytest.raises(st.errors.ProcessingError, match="buffer is full"):
            pipe(driver, [("b", 1_500)])
        # b was taken back out of the buffer: it is never emitted; a is, when due.
        assert pipe(driver, [("a", 6_000)]) == [("a", 2, 6_000)]
        assert pipe(driver, [("c", 30_000)]) == []


def test_a_join_reads_what_the_suppressed_table_last_emitted() -> None:
    b = st.StreamsBuilder()
    counts = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key().count()
    limited = counts.suppress(st.Suppressed.until_time_limit(5 * SECOND, UNBOUNDED))
    right = b.table("right", key_serde=STRING, value_serde=JSON)
    right.join(limited, lambda r, n: {"r": r, "n": n}).to_stream().to("joined")
    with run(b) as driver:
        source = driver.input_topic("trades")
        source.pipe("a", {"n": 1}, 1_000)
        source.pipe("a", {"n": 1}, 7_000)  # a=2 emitted (held back since 1 s)
        source.pipe("a", {"n": 1}, 8_000)  # a=3 held back
        joined = driver.output_topic("joined")
        driver.input_topic("right").pipe("a", "x", 8_500)
        assert joined.read_key_values() == [("a", {"r": "x", "n": 2})]
        driver.input_topic("right").pipe("b", "y", 8_600)  # b: never counted, no row
        assert joined.read_key_values() == []


def bad(value: Any) -> Any:
    """``value``, passed where its type is wrong (the point of the test)."""
    return value


# -- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: st.Suppressed.until_window_closes(st.BufferConfig.max_records(5)), ValueError,
         "strict"),
        (lambda: st.Suppressed.until_window_closes(bad("unbounded")), TypeError, "BufferConfig"),
        (lambda: st.Suppressed.until_window_closes(UNBOUNDED, close_idle_after=bad(0)), TypeError,
         "close_idle_after must be a datetime.timedelta"),
        (lambda: st.Suppressed.until_window_closes(UNBOUNDED, close_idle_after=timedelta(0)),
         ValueError, "close_idle_after must be > 0"),
        (lambda: st.Suppressed.until_time_limit(bad(5), UNBOUNDED), TypeError, "timedelta"),
        (lambda: st.Suppressed.until_time_limit(-SECOND, UNBOUNDED), ValueError, "negative"),
        (lambda: st.Suppressed.until_time_limit(SECOND, bad(None)), TypeError, "BufferConfig"),
        (lambda: st.BufferConfig.max_records(-1), ValueError, "max_records"),
        (lambda: st.BufferConfig.max_bytes(True), TypeError, "max_bytes must be an int"),
        (lambda: st.BufferConfig.unbounded().with_max_records(bad(1.5)), TypeError, "int"),
        (lambda: st.Suppressed.until_window_closes(UNBOUNDED).with_name(""), ValueError, "name"),
    ],
)  # fmt: skip
def test_bad_arguments_are_refused_with_a_clear_error(
    make: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        make()


def test_strict_configs_are_accepted_by_until_window_closes() -> None:
    strict = st.BufferConfig.max_bytes(1_000).shutdown_when_full()
    assert strict.is_strict
    assert strict == st.BufferConfig.max_bytes(1_000).shut_down_when_full()
    assert st.Suppressed.until_window_closes(strict).buffer_config == strict
    assert st.BufferConfig.max_records(3).with_no_bound() == UNBOUNDED


def test_until_window_closes_needs_a_windowed_table() -> None:
    b = st.StreamsBuilder()
    counts = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key().count()
    with pytest.raises(st.TopologyError, match="only defined for windowed computations"):
        counts.suppress(st.Suppressed.until_window_closes(UNBOUNDED))
    with pytest.raises(TypeError, match=r"Suppressed\.until_window_closes"):
        counts.suppress(UNBOUNDED)  # type: ignore[arg-type]


def test_a_join_of_windowed_tables_is_final_once_the_largest_grace_has_passed() -> None:
    """As Kafka Streams (GraphGraceSearchUtil): the suppression of a join waits for the
    largest grace of its parents (5 s here, not the other side's 1 s)."""
    b = st.StreamsBuilder()
    sides = []
    for topic, grace in (("a", 1), ("b", 5)):
        windows = st.TimeWindows.of_size_and_grace(10 * SECOND, grace * SECOND)
        grouped = b.stream(topic, key_serde=STRING, value_serde=JSON).group_by_key()
        sides.append(grouped.windowed_by(windows).count(store=f"{topic}-counts"))
    joined = sides[0].join(sides[1], lambda x, y: [x, y])
    joined.suppress(st.Suppressed.until_window_closes(UNBOUNDED)).to_stream().to("out")
    with run(b) as driver:
        out = driver.output_topic("out")
        # Join results, which move the suppression's stream time: k in [0, 10 s), then x in
        # [10 s, 20 s) at 14.999 s (past 10 s + 1 s, not 10 s + 5 s) and at 15 s.
        driver.input_topic("a").pipe("k", {"n": 1}, 1_000)
        driver.input_topic("b").pipe("k", {"n": 1}, 2_000)
        driver.input_topic("b").pipe("x", {"n": 1}, 11_000)
        driver.input_topic("a").pipe("x", {"n": 1}, 14_999)
        assert out.read_records() == []
        driver.input_topic("b").pipe("x", {"n": 1}, 15_000)
        assert [(k, v) for k, v, _, _ in out.read_records()] == [(w("k", 0), [1, 1])]


def test_a_named_suppression_names_its_buffer_store() -> None:
    b, counts = windowed_counts()
    counts.suppress(st.Suppressed.until_window_closes(UNBOUNDED).with_name("final"))
    topology = b.build()
    assert "final-store" in topology.stores
    assert topology.stores["final-store"].changelog_topic("app") == "app-final-store-changelog"
    logged_off = st.Suppressed.until_window_closes(UNBOUNDED.with_logging_disabled())
    b2, counts2 = windowed_counts()
    counts2.suppress(logged_off.with_name("quiet"))
    assert b2.build().stores["quiet-store"].changelog_topic("app") is None
