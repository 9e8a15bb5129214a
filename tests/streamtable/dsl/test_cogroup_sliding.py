"""Sliding windows in a cogroup: ``CogroupedKStream.windowed_by(SlidingWindows).aggregate(...)``
(Kafka Streams' ``SlidingWindowedCogroupedKStreamImpl``) through the driver: a hand-computed
case with both inputs, out-of-order and late records, and the store's contents; the store
Kafka Streams makes (window size = the time difference, retention 2 * difference + grace);
the grace a suppression waits for; argument errors. The differential test against Kafka
Streams is ``tests/differential/test_windowed_cogroup_against_kafka_streams.py``
(``cogroup_sliding``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import streamtable as st
from tests.streamtable.dsl.test_cogroup_windowed import cogrouped

pytestmark = pytest.mark.unit

MS = timedelta(milliseconds=1)
SLIDING = st.SlidingWindows.of_time_difference_and_grace(10 * MS, 5 * MS)


def sw(key: str, start: int) -> st.Windowed:
    """The sliding window ``[start, start + 10]`` (both ends inclusive) of ``key``."""
    return st.Windowed(key, st.Window(start, start + 10))


def reader(driver: st.TopologyTestDriver) -> Callable[[], list[tuple[Any, Any, int]]]:
    """What ``out`` has received since the last call."""
    out = driver.output_topic("out")
    return lambda: [(k, v, ts) for k, v, ts, _ in out.read_records()]


def test_each_input_slides_its_records_through_the_shared_windows() -> None:
    """Buys add, sells subtract; each input's node has its own stream time (close time =
    stream time - 5 ms grace), so a sell at 14 is late while a buy at 14 is not."""
    b = st.StreamsBuilder()
    windowed = cogrouped(b).windowed_by(SLIDING)
    assert isinstance(windowed, st.SlidingWindowedCogroupedKStream)
    windowed.aggregate(lambda: 0, store="net").to_stream().to("out")
    with st.TopologyTestDriver(b.build(), config={"cache_max_bytes": 0}, start_time=0) as d:
        buys, sells = d.input_topic("buys"), d.input_topic("sells")
        emitted = reader(d)
        buys.pipe("a", 1, 12)  # its left window [2, 12]
        assert emitted() == [(sw("a", 2), 1, 12)]
        # 12's right window [13, 23] (new: from the initializer), 15's left window [5, 15]
        # (seeded with [2, 12]'s aggregate: 12 is in both)
        sells.pipe("a", 10, 15)
        assert emitted() == [(sw("a", 13), -10, 15), (sw("a", 5), -9, 15)]
        # out of order, before the time difference: updates [2, 12] and [5, 15], creates its
        # right window [9, 19] (a copy of [5, 15] before 8: the records after 8) and goes
        # into [0, 10] (every record before 10 does)
        buys.pipe("a", 100, 8)
        assert emitted() == [
            (sw("a", 2), 101, 12),
            (sw("a", 5), 91, 15),
            (sw("a", 9), -9, 15),
            (sw("a", 0), 100, 8),
        ]
        sells.pipe("a", 1000, 30)  # [20, 30]; 15's right window [16, 26] would be empty
        assert emitted() == [(sw("a", 20), -1000, 30)]
        sells.pipe("a", 10_000, 14)  # late for the sells: 14 + 10 < 30 - 5
        assert emitted() == []
        assert d.dropped_records() == {"late": 1}
        # not for the buys (stream time 12): updates the windows holding 14, latest start
        # first, then its left window [4, 14] (seeded with [2, 12]) and its right one [15, 25]
        buys.pipe("a", 10_000, 14)
        assert emitted() == [
            (sw("a", 13), 9_990, 15),
            (sw("a", 9), 9_991, 15),
            (sw("a", 5), 10_091, 15),
            (sw("a", 4), 10_101, 14),
            (sw("a", 15), -10, 15),
        ]
        assert d.dropped_records() == {"late": 1}
        stored = {w.window.start_ms: v for w, v in d.window_store("net").all()}
        assert stored == {
            0: 100,  # 8
            2: 101,  # 8, 12
            4: 10_101,  # 8, 12, 14
            5: 10_091,  # 8, 12, 14, 15
            9: 9_991,  # 12, 14, 15
            13: 9_990,  # 14, 15
            15: -10,  # 15
            20: -1_000,  # 30
        }
        assert list(d.window_store("net").fetch("a", 9, 15)) == [
            (9, 9_991), (13, 9_990), (15, -10)
        ]  # fmt: skip


def test_the_store_and_the_keys_are_those_kafka_streams_makes() -> None:
    b = st.StreamsBuilder()
    windowed = cogrouped(b).windowed_by(SLIDING)
    windowed.aggregate(lambda: 0, store="net").to_stream().to("out")
    windowed.aggregate(lambda: 0, store="kept", retention=timedelta(minutes=1))
    topology = b.build()
    net, kept = topology.stores["net"], topology.stores["kept"]
    assert (net.store_type, net.window_size_ms, net.retention_ms) == ("window", 10, 25)
    assert (kept.window_size_ms, kept.retention_ms) == (10, 60_000)
    with st.TopologyTestDriver(topology, start_time=0) as d:
        d.input_topic("buys").pipe("a", 1, 12)
        out = d.output_topic("out", key_serde=st.serde.BYTES)
        # key bytes + the 8-byte window start, as Kafka Streams' TimeWindowedSerde
        assert [k for k, *_ in out.read_records()] == [b"a" + (2).to_bytes(8, "big")]


def test_a_suppression_waits_for_the_sliding_grace() -> None:
    b = st.StreamsBuilder()
    table = cogrouped(b).windowed_by(SLIDING).aggregate(lambda: 0, store="net")
    held = st.Suppressed.until_window_closes(st.BufferConfig.unbounded())
    table.suppress(held).to_stream().to("out")
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        emitted = reader(d)
        d.input_topic("buys").pipe("a", 1, 10)
        d.input_topic("sells").pipe("a", 3, 14)
        assert emitted() == []  # [0, 10] closes at 10 + 5 ms grace
        d.input_topic("sells").pipe("a", 3, 15)
        assert emitted() == [(sw("a", 0), 1, 10)]


def test_arguments_are_checked() -> None:
    b = st.StreamsBuilder()
    cogroup = cogrouped(b)
    windowed = cogroup.windowed_by(SLIDING)
    with pytest.raises(TypeError, match=r"takes st\.TimeWindows .*st\.SlidingWindows"):
        cogroup.windowed_by(st.JoinWindows.of_time_difference_and_grace(MS, MS))  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="initializer must be callable"):
        windowed.aggregate(0)  # type: ignore[arg-type]
    with pytest.raises(
        st.TopologyError, match=r"store 'net'.*2 \* time_difference=20 ms, grace=5 ms.*got 24 ms"
    ):
        windowed.aggregate(lambda: 0, store="net", retention=24 * MS)
    windowed.aggregate(lambda: 0, store="least", retention=25 * MS)
