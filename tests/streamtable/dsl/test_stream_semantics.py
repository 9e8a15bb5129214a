"""KStream operations through the TopologyTestDriver."""

from __future__ import annotations

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING

pytestmark = pytest.mark.unit


def test_map_flat_map_filter_and_to() -> None:
    b = st.StreamsBuilder()
    (
        b.stream("in", key_serde=STRING, value_serde=JSON)
        .filter_not(lambda k, v: v < 0)
        .flat_map(lambda k, v: [(f"{k}{i}", v * i) for i in range(1, 3)])
        .map(lambda k, v: (k.upper(), v + 1))
        .map_values(str)
        .to("out", key_serde=STRING, value_serde=STRING)
    )
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("in").pipe_many([("a", 5), ("b", -1)])
        assert d.output_topic("out").read_key_values() == [("A1", "6"), ("A2", "11")]


def test_grouped_stream_count_reduce_aggregate_repartition_after_key_change() -> None:
    b = st.StreamsBuilder()
    words = b.stream("in", key_serde=STRING, value_serde=STRING).flat_map_values(str.split)
    grouped = words.group_by(lambda k, w: w, key_serde=STRING)
    grouped.count(store="counts")
    grouped.reduce(lambda agg, w: agg + w, store="concat")
    grouped.aggregate(list, lambda k, w, agg: [*agg, len(w)], store="lengths")
    topology = b.build()
    # one repartition topic per aggregation, as Kafka Streams without optimization
    assert len(topology.subtopologies) == 4
    with st.TopologyTestDriver(topology, start_time=0) as d:
        d.input_topic("in").pipe_many([("x", "a bb a"), ("y", "bb")])
        assert dict(d.key_value_store("counts").all()) == {"a": 2, "bb": 2}
        assert dict(d.key_value_store("concat").all()) == {"a": "aa", "bb": "bbbb"}
        assert dict(d.key_value_store("lengths").all()) == {"a": [1, 1], "bb": [2, 2]}


def test_to_table_upserts_and_deletes() -> None:
    b = st.StreamsBuilder()
    b.stream("in", key_serde=STRING, value_serde=JSON).to_table(store="latest")
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("in").pipe_many([("a", 1), ("b", 2), ("a", 3), ("b", None)])
        assert dict(d.key_value_store("latest").all()) == {"a": 3}


def test_stream_table_join_sees_table_state_at_record_time() -> None:
    b = st.StreamsBuilder()
    table = b.table("t", key_serde=STRING, value_serde=JSON)
    b.stream("s", key_serde=STRING, value_serde=JSON).join(table, lambda e, r: [e, r]).to(
        "out", value_serde=JSON
    )
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("s").pipe("k", 1)  # no row yet: inner join drops it
        d.input_topic("t").pipe("k", "r1")
        d.input_topic("s").pipe("k", 2)
        d.input_topic("t").pipe("k", "r2")  # table updates alone emit nothing
        assert d.output_topic("out").read_key_values() == [("k", [2, "r1"])]


class EveryTenSeconds(st.Processor):
    def init(self, context: st.ProcessorContext) -> None:
        super().init(context)
        context.schedule(10_000, st.PunctuationType.STREAM_TIME, self.tick)

    def process(self, record: st.Record) -> None:
        pass

    def tick(self, timestamp: int) -> None:
        self.context.forward(st.Record("tick", timestamp, timestamp))


def test_stream_time_punctuator_fires_on_record_timestamps_not_wall_clock() -> None:
    b = st.StreamsBuilder()
    b.stream("in", key_serde=STRING, value_serde=JSON).process(EveryTenSeconds).to(
        "out", key_serde=STRING, value_serde=JSON
    )
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.advance_wall_clock(3600)
        out = d.output_topic("out")
        assert out.read_key_values() == []
        d.input_topic("in").pipe("a", 0, timestamp=5_000)
        d.input_topic("in").pipe("a", 0, timestamp=10_000)
        d.input_topic("in").pipe("a", 0, timestamp=35_000)  # one call, no catch-up burst
        assert out.read_key_values() == [("tick", 10_000), ("tick", 35_000)]
