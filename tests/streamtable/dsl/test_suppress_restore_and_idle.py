"""The suppression buffer and emit-final progress restored from their changelogs after a
restart, and ``close_idle_after`` closing windows of an idle partition on the wall clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING
from streamtable.state import record_cache

pytestmark = pytest.mark.unit

SECOND = timedelta(seconds=1)
TEN_S = st.TimeWindows.of_size_and_grace(10 * SECOND, 2 * SECOND)
UNBOUNDED = st.BufferConfig.unbounded()

Emitted = list[tuple[Any, Any, int]]


def w(key: str, start: int) -> st.Windowed:
    return st.Windowed(key, st.Window(start, start + 10_000))


def suppressed_counts(suppressed: st.Suppressed) -> st.Topology:
    b = st.StreamsBuilder()
    windowed = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()
    windowed.windowed_by(TEN_S).count(store="counts").suppress(suppressed).to_stream().to("out")
    return b.build()


def final_counts() -> st.Topology:
    b = st.StreamsBuilder()
    windowed = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()
    final = windowed.windowed_by(TEN_S).emit_strategy(st.EmitStrategy.on_window_close())
    final.count(store="counts").to_stream().to("out")
    return b.build()


def final_session_counts() -> st.Topology:
    b = st.StreamsBuilder()
    grouped = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()
    sessions = st.SessionWindows.of_inactivity_gap_and_grace(3 * SECOND, 2 * SECOND)
    final = grouped.windowed_by(sessions).emit_strategy(st.EmitStrategy.on_window_close())
    final.count(store="counts").to_stream().to("out")
    return b.build()


def limited_counts() -> st.Topology:
    b = st.StreamsBuilder()
    counts = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key().count()
    limit = st.Suppressed.until_time_limit(5 * SECOND, UNBOUNDED)
    counts.suppress(limit).to_stream().to("out")
    return b.build()


def pipe(driver: st.TopologyTestDriver, records: list[tuple[str, int]]) -> Emitted:
    out = driver.output_topic("out")
    out.read_records()  # what earlier calls emitted was read then
    source = driver.input_topic("trades")
    emitted: Emitted = []
    for key, ts in records:
        source.pipe(key, {"n": 1}, ts)
        emitted += [(k, v, t) for k, v, t, _ in out.read_records()]
    return emitted


def restarted(topology: st.Topology, before: st.TopologyTestDriver) -> st.TopologyTestDriver:
    """A new driver whose stores are restored from what ``before`` wrote to their changelogs
    (as the runtime restores a task: the changelog records, written below the record cache)."""
    after = st.TopologyTestDriver(topology, start_time=before.wall_clock_ms)
    for name, spec in topology.stores.items():
        topic = spec.changelog_topic(before.application_id)
        records = before._outputs.get(topic, []) if topic else []
        store = after._stores[name]
        cache = record_cache(store)
        target = cache.inner if cache is not None else store
        target.restore_batch([(k, v, ts) for k, v, ts, _ in records if k is not None])
    before.close()
    return after


FIRST = [("a", 1_000), ("b", 3_000), ("a", 9_000), ("b", 11_000), ("a", 13_000)]
THEN = [("c", 14_000), ("a", 12_500), ("b", 24_000), ("c", 26_000), ("a", 40_000)]


@pytest.mark.parametrize(
    "make",
    [
        lambda: suppressed_counts(st.Suppressed.until_window_closes(UNBOUNDED)),
        final_counts,
        final_session_counts,
        limited_counts,
    ],
    ids=["until_window_closes", "emit_final", "session_emit_final", "until_time_limit"],
)
def test_a_restart_restores_what_was_held_back_and_emits_it_once(
    make: Callable[[], st.Topology],
) -> None:
    with st.TopologyTestDriver(make(), start_time=0) as once:
        expected = pipe(once, FIRST + THEN)
    first = st.TopologyTestDriver(make(), start_time=0)
    emitted = pipe(first, FIRST)
    held_back = [r for r in expected if r not in emitted]
    assert held_back, "the first part must leave results held back across the restart"
    with restarted(make(), first) as second:
        emitted += pipe(second, THEN)
    assert emitted == expected


def test_without_a_changelog_a_restart_loses_what_was_held_back() -> None:
    quiet = st.Suppressed.until_window_closes(UNBOUNDED.with_logging_disabled())
    first = st.TopologyTestDriver(suppressed_counts(quiet), start_time=0)
    assert pipe(first, FIRST) == [(w("a", 0), 2, 9_000), (w("b", 0), 1, 3_000)]
    with restarted(suppressed_counts(quiet), first) as second:
        # a's and b's [10 s, 20 s) windows were held back before the restart: lost.
        assert pipe(second, [("c", 40_000), ("d", 60_000)]) == [(w("c", 40_000), 1, 40_000)]


# -- close_idle_after ---------------------------------------------------------------------
def idle_closing() -> st.Topology:
    until = st.Suppressed.until_window_closes(UNBOUNDED, close_idle_after=30 * SECOND)
    return suppressed_counts(until)


def test_an_idle_partition_closes_its_windows_on_the_wall_clock() -> None:
    with st.TopologyTestDriver(idle_closing(), start_time=0) as driver:
        out = driver.output_topic("out")
        assert pipe(driver, [("a", 1_000), ("b", 11_000)]) == []
        driver.advance_wall_clock(20)  # idle for 20 s: not yet
        assert out.read_records() == []
        driver.advance_wall_clock(15)  # idle for 35 s; windows ending by 33 s close
        assert [r[:3] for r in out.read_records()] == [
            (w("a", 0), 1, 1_000),
            (w("b", 10_000), 1, 11_000),
        ]
        # a record for a window closed by the wall clock is late: dropped and counted
        assert pipe(driver, [("a", 5_000)]) == []
        assert driver.dropped_records() == {"late": 1}
        # stream time moving (at wall 35 s) restarts the idle time
        assert pipe(driver, [("c", 40_000)]) == []
        driver.advance_wall_clock(20)
        assert out.read_records() == []
        driver.advance_wall_clock(15)  # idle 35 s at wall 70 s: windows ending by 68 s
        assert [r[:3] for r in out.read_records()] == [(w("c", 40_000), 1, 40_000)]


def test_an_idle_start_closes_nothing_and_a_backlog_read_afterwards_is_not_late() -> None:
    """Before the first record (an app starting on a backlog it has yet to fetch) nothing is
    held back, so nothing closes: the backlog's old windows are not dropped as late."""
    with st.TopologyTestDriver(idle_closing(), start_time=0) as driver:
        driver.advance_wall_clock(100)  # idle for 100 s with nothing buffered
        assert pipe(driver, [("a", 1_000), ("b", 11_000)]) == []
        assert driver.dropped_records() == {}
        driver.advance_wall_clock(35)  # now they are held back: idle 35 s closes them
        assert [r[:3] for r in driver.output_topic("out").read_records()] == [
            (w("a", 0), 1, 1_000),
            (w("b", 10_000), 1, 11_000),
        ]


def test_the_wall_clock_close_survives_a_restart() -> None:
    first = st.TopologyTestDriver(idle_closing(), start_time=0)
    pipe(first, [("a", 1_000)])
    first.advance_wall_clock(35)
    assert [r[:3] for r in first.output_topic("out").read_records()] == [(w("a", 0), 1, 1_000)]
    with restarted(idle_closing(), first) as second:
        assert pipe(second, [("a", 2_000)]) == []
        assert second.dropped_records() == {"late": 1}
        second.advance_wall_clock(100)
        assert second.output_topic("out").read_records() == []


def sliding_final_counts() -> st.Topology:
    b = st.StreamsBuilder()
    windowed = b.stream("trades", key_serde=STRING, value_serde=JSON).group_by_key()
    sliding = st.SlidingWindows.of_time_difference_and_grace(10 * SECOND, 2 * SECOND)
    final = windowed.windowed_by(sliding).emit_strategy(st.EmitStrategy.on_window_close())
    final.count(store="counts").to_stream().to("out")
    return b.build()


@pytest.mark.parametrize(
    ("make", "window"),
    [(final_counts, w("a", 0)), (sliding_final_counts, st.Windowed("a", st.Window(0, 10_000)))],
    ids=["time_windows", "sliding_windows"],
)
def test_emit_final_logs_its_close_time_only_once_its_windows_are_delivered(
    make: Callable[[], st.Topology], window: st.Windowed
) -> None:
    """Written when the windows were forwarded, the close time reached its changelog while
    the windows themselves were lost in a broker outage, and a restore never emitted them
    (chaos seed 612): it is logged at the commit, after the producer acknowledged them."""
    topology = make()
    log = topology.stores["counts-emit-final"].changelog_topic("test-driver")
    assert log is not None
    with st.TopologyTestDriver(topology, start_time=0) as driver:
        pipe(driver, [("a", 1_000), ("a", 10_000)])
        logged = len(driver._outputs.get(log, []))
        task = driver._tasks[0]
        key, value = STRING.serialize("a"), JSON.serialize({"n": 1})
        task.process("trades", key, value, 30_000, -1, None)  # closes [0, 10 s]: not committed
        assert window in [k for k, _, _, _ in driver.output_topic("out").read_records()]
        assert len(driver._outputs.get(log, [])) == logged
        task.after_delivered()  # the commit, once the producer has acknowledged the output
        assert len(driver._outputs.get(log, [])) == logged + 1


def test_suppress_logs_an_emitted_entry_gone_only_once_it_is_delivered() -> None:
    """As emit-final's close time (chaos seed 612): logged with the emission, the buffer's
    tombstone could reach its changelog while the emitted record was lost, and a restored
    buffer would never emit it. The entry leaves the buffer (and its reads) at once; its
    tombstone is logged at the commit, once the producer acknowledged the result."""
    topology = suppressed_counts(st.Suppressed.until_window_closes(UNBOUNDED))
    buffer = next(name for name in topology.stores if name != "counts")
    log = topology.stores[buffer].changelog_topic("test-driver")
    assert log is not None
    with st.TopologyTestDriver(topology, start_time=0) as driver:
        pipe(driver, [("a", 1_000)])
        logged = list(driver._outputs.get(log, []))
        assert [v is None for _, v, _, _ in logged] == [False]  # a's window, buffered
        task = driver._tasks[0]
        key, value = STRING.serialize("b"), JSON.serialize({"n": 1})
        task.process("trades", key, value, 13_000, -1, None)
        task.flush()  # the count's cache: b's change reaches the buffer, a's window closes
        assert (w("a", 0), 1) in driver.output_topic("out").read_key_values()
        assert driver._stores[buffer].get(STRING.serialize("a") + bytes(8)) is None
        assert all(v is not None for _, v, _, _ in driver._outputs[log][len(logged) :])
        task.after_delivered()  # the commit, once the producer has acknowledged the output
        assert [v for _, v, _, _ in driver._outputs[log][len(logged) :]][-1] is None


def test_a_restored_buffer_emits_what_the_wall_clock_closed_before_the_crash() -> None:
    """The wall-clock close is logged at once; the emitted entries' tombstones only at the
    commit. A crash between them restores both the close and the entries: the next idle
    punctuation emits them (it returned early once the close time had not moved, and they
    waited for stream time)."""
    first = st.TopologyTestDriver(idle_closing(), start_time=0)
    pipe(first, [("a", 1_000)])
    first._wall_ms += 35_000
    first._tasks[0].punctuate_wall_clock()  # closes a's window: emitted, no commit yet
    assert [r[:3] for r in first.output_topic("out").read_records()] == [(w("a", 0), 1, 1_000)]
    with restarted(idle_closing(), first) as second:  # the crash: a's tombstone never logged
        second.advance_wall_clock(35)  # idle again as long
        assert [r[:3] for r in second.output_topic("out").read_records()] == [
            (w("a", 0), 1, 1_000)  # again: at least once
        ]
