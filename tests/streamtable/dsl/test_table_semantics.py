"""Kafka Streams' table semantics, one behaviour per test, through the TopologyTestDriver."""

from __future__ import annotations

from typing import Any

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING
from tests.streamtable import topologies as topo

pytestmark = pytest.mark.unit


def pos(
    client: str, exchange: str = "NASDAQ", amount: int = 1, ticker: str = "AAPL"
) -> dict[str, Any]:
    return {"client": client, "exchange": exchange, "amount": amount, "ticker": ticker}


def test_tombstone_retracts_from_old_group() -> None:
    with st.TopologyTestDriver(topo.seed(), start_time=0) as d:
        d.input_topic("positions").pipe("p1", pos("c1"))
        d.input_topic("positions").pipe("p1", None)
        assert d.output_topic("seed-out").read_key_values() == [("c1", ["p1"]), ("c1", None)]
        assert d.key_value_store("us-holders").get("c1") is None


def test_tombstone_for_unknown_or_filtered_key_changes_nothing_downstream() -> None:
    with st.TopologyTestDriver(topo.seed(), start_time=0) as d:
        d.input_topic("positions").pipe("never-seen", None)
        d.input_topic("positions").pipe("p2", pos("c1", exchange="LON"))
        d.input_topic("positions").pipe("p2", None)
        assert d.output_topic("seed-out").read_key_values() == []


def test_same_group_update_is_one_change_with_no_transient_state() -> None:
    with st.TopologyTestDriver(topo.aggregate(), start_time=0) as d:
        d.input_topic("positions").pipe("p1", pos("c1", amount=10))
        d.input_topic("positions").pipe("p1", pos("c1", amount=15))
        assert d.output_topic("aggregate-out").read_key_values() == [
            ("c1", {"count": 1, "total": 10}),
            ("c1", {"count": 1, "total": 15}),  # KIP-904: no {"count": 0, ...} in between
        ]


def test_move_between_groups_subtracts_old_group_first() -> None:
    with st.TopologyTestDriver(topo.aggregate(), start_time=0) as d:
        d.input_topic("positions").pipe("p1", pos("c1", amount=10))
        d.input_topic("positions").pipe("p1", pos("c2", amount=10))
        assert d.output_topic("aggregate-out").read_key_values() == [
            ("c1", {"count": 1, "total": 10}),
            ("c1", None),
            ("c2", {"count": 1, "total": 10}),
        ]


def test_null_grouping_key_drops_the_pair() -> None:
    b = st.StreamsBuilder()
    b.table("t", key_serde=STRING, value_serde=JSON).group_by(
        lambda k, v: (v.get("g"), 1), key_serde=JSON
    ).count(store="counts")
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("t").pipe("a", {"g": None})
        d.input_topic("t").pipe("b", {"g": "x"})
        assert dict(d.key_value_store("counts").all()) == {"x": 1}


def test_reduce_restarts_from_raw_value_after_delete() -> None:
    with st.TopologyTestDriver(topo.seed(), start_time=0) as d:
        src = d.input_topic("positions")
        src.pipe("p1", pos("c1"))
        src.pipe("p1", pos("c1", exchange="LON"))  # leaves the filter: group emptied, deleted
        src.pipe("p2", pos("c1"))
        assert d.key_value_store("us-holders").get("c1") == ["p2"]


def test_count_keeps_an_emptied_group_at_zero() -> None:
    with st.TopologyTestDriver(topo.count(), start_time=0) as d:
        d.input_topic("positions").pipe("p1", pos("c1", ticker="VOD"))
        d.input_topic("positions").pipe("p1", None)
        assert d.key_value_store("ticker-counts").get("VOD") == 0
        assert d.output_topic("count-out").read_key_values() == [("VOD", 1), ("VOD", 0)]


def test_inner_join_appears_changes_and_disappears() -> None:
    with st.TopologyTestDriver(topo.table_join("inner"), start_time=0) as d:
        d.input_topic("left").pipe("k", 1)
        d.input_topic("right").pipe("k", 2)
        d.input_topic("left").pipe("k", 3)
        d.input_topic("right").pipe("k", None)
        assert d.output_topic("join-out").read_key_values() == [
            ("k", {"l": 1, "r": 2}),
            ("k", {"l": 3, "r": 2}),
            ("k", None),
        ]


def test_fk_join_follows_foreign_key_change_and_drops_stale_answers() -> None:
    with st.TopologyTestDriver(topo.fk_join(left=False), start_time=0) as d:
        d.input_topic("products").pipe("x", {"name": "X"})
        d.input_topic("orders").pipe("o", {"product": "x", "qty": 1})
        d.input_topic("orders").pipe("o", {"product": "y", "qty": 1})  # y does not exist
        d.input_topic("products").pipe("x", {"name": "X2"})  # o no longer points at x
        assert d.output_topic("fk-out").read_key_values() == [
            ("o", {"o": {"product": "x", "qty": 1}, "p": {"name": "X"}}),
            ("o", None),
        ]


def test_stream_global_left_join_uses_selected_key() -> None:
    with st.TopologyTestDriver(topo.stream_global_join(left=True), start_time=0) as d:
        d.input_topic("globals").pipe("g1", {"v": 1})
        d.input_topic("events").pipe("e", {"ref": "g1"})
        d.input_topic("events").pipe("e", {"ref": "missing"})
        assert d.output_topic("sgj-out").read_key_values() == [
            ("e", {"e": {"ref": "g1"}, "g": {"v": 1}}),
            ("e", {"e": {"ref": "missing"}, "g": None}),
        ]


class Counter(st.Processor):
    def init(self, context: st.ProcessorContext) -> None:
        super().init(context)
        self.store = context.get_state_store("counts")
        context.schedule(60_000, st.PunctuationType.WALL_CLOCK_TIME, self.report)

    def process(self, record: st.Record) -> None:
        self.store.put(record.key, (self.store.get(record.key) or 0) + 1, record.timestamp)

    def report(self, timestamp: int) -> None:
        for key, n in list(self.store.all()):
            self.context.forward(st.Record(key, n, timestamp))


def test_custom_processor_with_store_and_wall_clock_punctuator() -> None:
    b = st.StreamsBuilder()
    b.add_state_store("counts", key_serde=STRING, value_serde=JSON)
    b.stream("in", key_serde=STRING, value_serde=JSON).process(Counter, stores=["counts"]).to(
        "out", key_serde=STRING, value_serde=JSON
    )
    with st.TopologyTestDriver(b.build(), start_time=0) as d:
        d.input_topic("in").pipe_many([("a", 1), ("b", 1), ("a", 1)])
        out = d.output_topic("out")
        assert out.read_key_values() == []
        d.advance_wall_clock(59)
        assert out.read_key_values() == []
        d.advance_wall_clock(1)  # a minute has passed
        assert out.read_key_values() == [("a", 2), ("b", 1)]


def test_build_rejects_duplicate_store_names() -> None:
    b = st.StreamsBuilder()
    b.table("a", store="s")
    with pytest.raises(st.TopologyError, match="duplicate store name 's'"):
        b.table("b", store="s")


def test_build_rejects_a_topic_read_twice() -> None:
    b = st.StreamsBuilder()
    b.table("a")
    with pytest.raises(st.TopologyError, match="already read"):
        b.stream("a")


def test_describe_lists_subtopologies_stores_and_internal_topics() -> None:
    text = topo.seed().describe()
    assert "Sub-topology: 0" in text
    assert "Sub-topology: 1" in text
    assert "<application.id>-us-holders-repartition" in text
    assert "us-holders: changelog <application.id>-us-holders-changelog" in text
    assert "positions-store: changelog positions" in text


def test_dsl_objects_are_immutable_and_return_new_objects() -> None:
    b = st.StreamsBuilder()
    table = b.table("a")
    filtered = table.filter(lambda k, v: True)
    assert filtered is not table
    with pytest.raises(AttributeError):
        table.store_name = "x"  # type: ignore[misc]
