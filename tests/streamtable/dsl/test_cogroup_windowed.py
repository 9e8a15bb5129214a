"""Windowed cogroups: ``CogroupedKStream.windowed_by(TimeWindows | SessionWindows)
.aggregate(...)`` (Kafka Streams' ``TimeWindowedCogroupedKStream`` and
``SessionWindowedCogroupedKStream``) through the driver, and argument errors. The differential
test against Kafka Streams is
``tests/differential/test_windowed_cogroup_against_kafka_streams.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING
from tests.streamtable.dsl.test_cogroup import buy, sell

pytestmark = pytest.mark.unit

SECOND = timedelta(seconds=1)
TEN_S = st.TimeWindows.of_size_and_grace(10 * SECOND, 2 * SECOND)
SESSIONS = st.SessionWindows.of_inactivity_gap_and_grace(5 * SECOND, 2 * SECOND)


def cogrouped(b: st.StreamsBuilder) -> st.CogroupedKStream:
    buys = b.stream("buys", key_serde=STRING, value_serde=JSON)
    sells = b.stream("sells", key_serde=STRING, value_serde=JSON)
    return buys.group_by_key().cogroup(buy).cogroup(sells.group_by_key(), sell)


def w(key: str, start: int) -> st.Windowed:
    return st.Windowed(key, st.Window(start, start + 10_000))


def s(key: str, start: int, end: int) -> st.Windowed:
    return st.Windowed(key, st.SessionWindow(start, end))


def emitted(driver: st.TopologyTestDriver) -> list[tuple[Any, Any, int]]:
    return [(k, v, ts) for k, v, ts, _ in driver.output_topic("out").read_records()]


def test_each_input_aggregates_its_records_into_the_shared_windows() -> None:
    b = st.StreamsBuilder()
    windowed = cogrouped(b).windowed_by(TEN_S)
    assert isinstance(windowed, st.TimeWindowedCogroupedKStream)
    hour = timedelta(hours=1)  # windows are kept: a record is late only for its input's node
    table = windowed.aggregate(lambda: 0, store="net", value_serde=JSON, retention=hour)
    table.to_stream().to("out")
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        buys, sells = d.input_topic("buys"), d.input_topic("sells")
        buys.pipe("a", 10, 1_000)
        sells.pipe("a", 3, 9_000)
        buys.pipe("a", 5, 11_000)
        sells.pipe("a", 1, 20_000)  # the sells' stream time: 20 s
        sells.pipe("a", 1, 8_000)  # late for the sells: [0, 10 s) closed at 12 s
        buys.pipe("a", 1, 8_000)  # not for the buys: their stream time is 11 s
        assert emitted(d) == [
            (w("a", 0), 10, 1_000),
            (w("a", 0), 7, 9_000),
            (w("a", 10_000), 5, 11_000),
            (w("a", 20_000), -1, 20_000),
            (w("a", 0), 8, 9_000),
        ]
        assert d.dropped_records() == {"late": 1}
        assert list(d.window_store("net").fetch("a", 0, 30_000)) == [
            (0, 8), (10_000, 5), (20_000, -1)
        ]  # fmt: skip


def test_sessions_merge_the_inputs_aggregates_with_the_merger() -> None:
    b = st.StreamsBuilder()
    sessions = cogrouped(b).windowed_by(SESSIONS)
    assert isinstance(sessions, st.SessionWindowedCogroupedKStream)
    table = sessions.aggregate(
        lambda: 0, lambda k, one, two: one + two, store="net", retention=timedelta(hours=1)
    )
    table.to_stream().to("out")
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("buys").pipe("a", 10, 0)
        d.input_topic("buys").pipe("a", 5, 8_000)
        d.input_topic("sells").pipe("a", 3, 4_000)  # bridges [0, 0] and [8 s, 8 s]
        assert emitted(d) == [
            (s("a", 0, 0), 10, 0),
            (s("a", 8_000, 8_000), 5, 8_000),
            (s("a", 0, 0), None, 0),
            (s("a", 8_000, 8_000), None, 8_000),
            (s("a", 0, 8_000), 12, 8_000),
        ]
        assert list(d.session_store("net").fetch("a")) == [(s("a", 0, 8_000), 12)]


def test_a_windowed_cogroup_can_be_suppressed_until_its_windows_close() -> None:
    b = st.StreamsBuilder()
    table = cogrouped(b).windowed_by(TEN_S).aggregate(lambda: 0, store="net")
    held = st.Suppressed.until_window_closes(st.BufferConfig.unbounded())
    table.suppress(held).to_stream().to("out")
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("buys").pipe("a", 10, 1_000)
        d.input_topic("sells").pipe("a", 3, 11_999)
        assert emitted(d) == []
        d.input_topic("sells").pipe("b", 1, 12_000)  # [0, 10 s) closes: 10 s + 2 s grace
        assert emitted(d) == [(w("a", 0), 10, 1_000)]


def test_arguments_are_checked() -> None:
    b = st.StreamsBuilder()
    cogroup = cogrouped(b)
    with pytest.raises(TypeError, match=r"cogroup windowed_by takes st\.TimeWindows"):
        cogroup.windowed_by(10)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="initializer must be callable"):
        cogroup.windowed_by(TEN_S).aggregate(0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="merger must be callable"):
        cogroup.windowed_by(SESSIONS).aggregate(lambda: 0, None)  # type: ignore[arg-type]
    with pytest.raises(st.TopologyError, match=r"store 'net'.*size=10000 ms, grace=2000 ms"):
        cogroup.windowed_by(TEN_S).aggregate(lambda: 0, store="net", retention=SECOND)
    with pytest.raises(st.TopologyError, match=r"store 'n'.*gap=5000 ms, grace=2000 ms"):
        cogroup.windowed_by(SESSIONS).aggregate(lambda: 0, max, store="n", retention=SECOND)
