"""Windowed stream-stream joins: DSL argument errors, and the joins' behaviour through the
TopologyTestDriver (eager inner results, left/outer results only at window close, late and null
records, asymmetric windows, repartitioning, store names and changelogs, restore)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import BYTES, JSON, STRING

pytestmark = pytest.mark.unit

S = timedelta(seconds=1)
WINDOWS = st.JoinWindows.of_time_difference_and_grace(5 * S, 2 * S)


def pair(left: Any, right: Any) -> dict[str, Any]:
    return {"l": left, "r": right}


def _streams() -> tuple[st.StreamsBuilder, st.KStream, st.KStream]:
    b = st.StreamsBuilder()
    left = b.stream("left", key_serde=STRING, value_serde=JSON)
    right = b.stream("right", key_serde=STRING, value_serde=JSON)
    return b, left, right


def topology(kind: str, windows: st.JoinWindows = WINDOWS, **kw: Any) -> st.Topology:
    b, left, right = _streams()
    getattr(left, kind)(right, pair, windows, **kw).to("out", value_serde=JSON)
    return b.build()


class Run:
    """A driver over a join topology: ``l``/``r`` pipe, ``out()`` reads (key, value, ts)."""

    def __init__(self, topo: st.Topology, **driver_kw: Any) -> None:
        self.driver = st.TopologyTestDriver(topo, start_time=0, **driver_kw)
        self._left = self.driver.input_topic("left")
        self._right = self.driver.input_topic("right")
        self._out = self.driver.output_topic("out")

    def l(self, key: str | None, value: Any, ts: int) -> list[tuple[Any, Any, int]]:  # noqa: E743
        self._left.pipe(key, value, ts)
        return self.out()

    def r(self, key: str | None, value: Any, ts: int) -> list[tuple[Any, Any, int]]:
        self._right.pipe(key, value, ts)
        return self.out()

    def out(self) -> list[tuple[Any, Any, int]]:
        return [(k, v, ts) for k, v, ts, _ in self._out.read_records()]


# -- DSL argument errors ---------------------------------------------------------------------
def test_join_windows_validate_their_durations() -> None:
    with pytest.raises(TypeError, match=r"time_difference must be a datetime\.timedelta"):
        st.JoinWindows.of_time_difference_without_grace(5000)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"before \+ after\) must not be negative"):
        st.JoinWindows.of_time_difference_and_grace(-S, S)
    with pytest.raises(ValueError, match="grace must not be negative"):
        st.JoinWindows.of_time_difference_and_grace(S, -S)
    with pytest.raises(ValueError, match="must not be negative"):
        WINDOWS.before(-6 * S)
    shifted = WINDOWS.before(-S).after(3 * S)  # a window wholly after the record: allowed
    assert (shifted.before_ms, shifted.after_ms, shifted.size_ms) == (-1000, 3000, 2000)
    assert shifted.retention_ms == 4000


def test_stream_join_arguments_are_checked_with_clear_messages() -> None:
    b, left, right = _streams()
    with pytest.raises(TypeError, match=r"needs st\.JoinWindows"):
        left.join(right, pair, st.TimeWindows.of_size_with_no_grace(S))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="joiner must be callable"):
        left.left_join(right, "pair", WINDOWS)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="other must be a KStream"):
        left.outer_join("right", pair, WINDOWS)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"takes \(other_stream, joiner, join_windows"):
        left.join(right, pair)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"stream_joined must be st\.StreamJoined"):
        left.join(right, pair, WINDOWS, stream_joined="s")  # type: ignore[call-overload]
    with pytest.raises(st.TopologyError, match=r"before \+ after \+ grace > 0"):
        left.join(right, pair, st.JoinWindows.of_time_difference_without_grace(0 * S))
    other = st.StreamsBuilder().stream("right")
    with pytest.raises(st.TopologyError, match="different StreamsBuilders"):
        left.join(other, pair, WINDOWS)
    table = b.table("t")
    with pytest.raises(TypeError, match="stream_joined is for joins of two KStreams"):
        left.join(table, pair, stream_joined=st.StreamJoined())  # type: ignore[call-overload]


# -- behaviour -------------------------------------------------------------------------------
def test_inner_join_emits_each_pair_at_once_with_the_later_timestamp() -> None:
    run = Run(topology("join"))
    assert run.l("a", 1, 10_000) == []
    assert run.r("a", 2, 14_000) == [("a", pair(1, 2), 14_000)]
    assert run.r("a", 3, 8_000) == [("a", pair(1, 3), 10_000)]  # out of order, in the window
    assert run.l("a", 4, 9_000) == [("a", pair(4, 3), 9_000), ("a", pair(4, 2), 14_000)]
    assert run.r("b", 5, 9_000) == []  # another key
    assert run.r("a", 6, 16_000) == []  # both left records are more than 5 s before
    assert run.l("a", 7, 16_000) == [("a", pair(7, 2), 16_000), ("a", pair(7, 6), 16_000)]


def test_left_join_waits_for_the_window_to_close_and_never_emits_spuriously() -> None:
    run = Run(topology("left_join"))
    assert run.l("a", 1, 10_000) == []
    assert run.r("a", 2, 14_000) == [("a", pair(1, 2), 14_000)]
    assert run.l("b", 3, 10_000) == []  # no partner yet: waits
    assert run.l("c", 4, 15_000) == []
    assert run.r("x", 0, 17_000) == []  # b's window ends at 15 s, + 2 s grace: still open
    # stream time past 17 s closes b's window: emitted with None, at its own timestamp
    assert run.r("x", 0, 17_001) == [("b", pair(3, None), 10_000)]
    assert run.r("c", 5, 19_000) == [("c", pair(4, 5), 19_000)]  # c found a partner in time
    assert run.r("x", 0, 40_000) == []  # so c is never emitted alone; right-only: never


def test_outer_join_emits_both_sides_unjoined_records_oldest_first() -> None:
    run = Run(topology("outer_join"))
    assert run.r("a", 1, 10_000) == []
    assert run.l("b", 2, 10_000) == []
    assert run.l("a", 3, 11_000) == [("a", pair(3, 1), 11_000)]
    assert run.r("c", 4, 10_000) == []
    # at one timestamp, right-side records come before left-side ones (Kafka Streams' order)
    assert run.l("z", 9, 30_000) == [("c", pair(None, 4), 10_000), ("b", pair(2, None), 10_000)]


def test_asymmetric_windows_look_before_and_after_as_configured() -> None:
    windows = st.JoinWindows.of_time_difference_without_grace(0 * S).before(S).after(4 * S)
    run = Run(topology("join", windows))
    assert run.l("a", 1, 10_000) == []
    assert run.r("a", 2, 14_000) == [("a", pair(1, 2), 14_000)]  # 4 s after the left one
    assert run.r("a", 3, 8_000) == []  # 2 s before: outside
    assert run.r("a", 4, 9_000) == [("a", pair(1, 4), 10_000)]  # 1 s before: inside


def test_late_records_still_join_but_their_expired_writes_are_dropped_and_counted() -> None:
    run = Run(topology("left_join"))
    run.l("a", 1, 200_000)
    # 7 s + 5 s past its window: its window store segment (60 s) has expired
    assert run.l("b", 2, 100_000) == [("b", pair(2, None), 100_000)]  # closed: emitted at once
    assert run.driver.dropped_records() == {"late": 1}
    assert run.r("b", 3, 100_000) == []  # the late left record was never stored
    left_store = run.driver.window_store("KSTREAM-JOINTHIS-0000000004-store")
    assert list(left_store.fetch("b", 0, 10**6)) == []


def test_null_keys_and_values_do_not_join_but_outer_sides_emit_a_null_key_at_once() -> None:
    run = Run(topology("left_join"))
    assert run.l("a", None, 1_000) == []
    assert run.r("a", None, 1_000) == []
    assert run.r(None, 1, 1_000) == []
    assert run.l(None, 2, 1_000) == [(None, pair(2, None), 1_000)]
    assert run.driver.dropped_records() == {"null_value": 2, "null_key": 1}


def test_duplicates_are_all_kept_and_joined() -> None:
    run = Run(topology("join"))
    run.l("a", 1, 5_000)
    run.l("a", 1, 5_000)
    assert run.r("a", 2, 5_000) == [("a", pair(1, 2), 5_000)] * 2
    store = run.driver.window_store("KSTREAM-JOINTHIS-0000000004-store")
    assert list(store.fetch("a", 0, 10_000)) == [(5_000, [1, 1])]


def test_a_rekeyed_side_is_repartitioned_and_co_partitioned_with_the_other() -> None:
    b, left, right = _streams()
    rekeyed = left.select_key(lambda k, v: v["to"], key_serde=STRING)
    rekeyed.join(right, pair, WINDOWS).to("out", value_serde=JSON)
    topo = b.build()
    assert "-repartition" in topo.describe()
    (sub,) = [s for s in topo.subtopologies if len(s.copartition_groups) == 1]
    assert any(t.endswith("-repartition") for t in sub.copartition_groups[0])
    run = Run(topo)
    assert run.l("x", {"to": "a"}, 1_000) == []
    assert run.r("a", 2, 2_000) == [("a", pair({"to": "a"}, 2), 2_000)]


def test_stores_are_named_as_kafka_streams_names_them_and_changelogged() -> None:
    joined = st.StreamJoined.with_(STRING, JSON, JSON).with_store_name("pay")
    topo = topology("outer_join", stream_joined=joined)
    assert topo.store_names() == [
        "pay-outer-other-join-store",
        "pay-outer-shared-join-store",
        "pay-outer-this-join-store",
    ]
    this = topo.stores["pay-outer-this-join-store"]
    assert (this.store_type, this.retention_ms, this.cached) == ("window", 12_000, False)
    assert this.changelog_config()["cleanup.policy"] == "compact,delete"
    assert topo.stores["pay-outer-shared-join-store"].changelog_config() == {
        "cleanup.policy": "compact"
    }
    unlogged = topology("join", stream_joined=st.StreamJoined().with_logging_disabled())
    assert all(spec.changelog_topic("app") is None for spec in unlogged.stores.values())
    assert topology("left_join").store_names() == [
        "KSTREAM-JOINTHIS-0000000004-store",
        "KSTREAM-OUTEROTHER-0000000005-store",
        "KSTREAM-OUTERSHARED-0000000004-store",
    ]


def _restore(source: st.TopologyTestDriver, target: st.TopologyTestDriver) -> None:
    """Replay ``source``'s changelogs into ``target``'s stores, as a restore does."""
    for name in source.store_names:
        topic = f"test-driver-{name}-changelog"
        records = source.output_topic(topic, key_serde=BYTES, value_serde=BYTES).read_records()
        target._stores[name].restore_batch([(k, v, ts) for k, v, ts, _ in records])


def test_join_stores_restore_from_their_changelogs_and_waiting_records_still_emit() -> None:
    topo = topology("left_join")
    first = Run(topo)
    first.l("a", 1, 10_000)
    first.r("a", 2, 11_000)  # joined
    first.l("b", 3, 12_000)  # waits for its window to close
    first.driver.close()
    second = Run(topo)
    _restore(first.driver, second.driver)
    # the restored right store still joins a's left records; b's record is still waiting
    assert second.l("a", 4, 13_000) == [("a", pair(4, 2), 13_000)]
    assert second.r("z", 0, 19_000) == []  # b's window is open until 12 + 5 + 2 s
    assert second.r("z", 0, 19_001) == [("b", pair(3, None), 12_000)]
    assert second.r("z", 0, 40_000) == []  # a's records all found partners
