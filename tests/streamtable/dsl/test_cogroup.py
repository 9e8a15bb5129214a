"""Cogroup: several grouped streams aggregated into one table through one shared store, each
with its own aggregator (Kafka Streams' ``CogroupedKStream``). Behaviour through the driver,
the graph it builds, and argument errors. The differential test against Kafka Streams is
``tests/differential/test_against_kafka_streams.py`` (topologies ``cogroup*``)."""

from __future__ import annotations

from typing import Any

import pytest

import streamtable as st
from streamtable.errors import TopologyError
from streamtable.serde import JSON, STRING
from tests.streamtable.topologies import cogroup

pytestmark = pytest.mark.unit


def buy(k: Any, v: Any, agg: Any) -> Any:
    return agg + v


def sell(k: Any, v: Any, agg: Any) -> Any:
    return agg - v


def net(b: st.StreamsBuilder) -> st.KTable:
    buys = b.stream("buys", key_serde=STRING, value_serde=JSON)
    sells = b.stream("sells", key_serde=STRING, value_serde=JSON)
    return (
        buys.group_by_key().cogroup(buy).cogroup(sells.group_by_key(), sell)
        .aggregate(lambda: 0, store="net", value_serde=JSON)
    )  # fmt: skip


def test_each_input_applies_its_own_aggregator_to_the_shared_aggregate() -> None:
    b = st.StreamsBuilder()
    net(b).to_stream().to("out")
    with st.TopologyTestDriver(b.build(), start_time=0) as driver:
        buys, sells = driver.input_topic("buys"), driver.input_topic("sells")
        buys.pipe("a", 10, 1_000)
        sells.pipe("a", 3, 2_000)
        sells.pipe("b", 4, 1_500)
        buys.pipe("a", None, 3_000)  # dropped, as by KGroupedStream.aggregate
        buys.pipe(None, 5, 3_000)  # dropped
        out = driver.output_topic("out").read_records()
        assert [(k, v, ts) for k, v, ts, _ in out] == [("a", 10, 1_000), ("a", 7, 2_000),
                                                      ("b", -4, 1_500)]  # fmt: skip
        assert dict(driver.key_value_store("net").all()) == {"a": 7, "b": -4}


def test_a_cogrouped_table_sends_old_values_to_a_regrouping_downstream() -> None:
    """Re-grouping the table needs each change's old value (to subtract it): it comes through
    the merge node from whichever input changed the key."""
    b = st.StreamsBuilder()
    totals = net(b).group_by(lambda k, v: ("all", v), key_serde=STRING, value_serde=JSON)
    totals.reduce(lambda a, v: a + v, lambda a, v: a - v, store="sum")
    with st.TopologyTestDriver(b.build(), start_time=0) as driver:
        driver.input_topic("buys").pipe("a", 10, 1_000)
        driver.input_topic("sells").pipe("a", 4, 2_000)
        driver.input_topic("buys").pipe("b", 1, 2_500)
        assert dict(driver.key_value_store("sum").all()) == {"all": 7}


def test_a_rekeyed_input_is_repartitioned_into_the_shared_stores_task() -> None:
    topology = cogroup(rekeyed=True)
    assert "cog-store-0-repartition" in topology.describe()
    with st.TopologyTestDriver(topology, start_time=0) as driver:
        driver.input_topic("buys").pipe("x", {"n": 3, "to": "k1"}, 1_000)
        driver.input_topic("sells").pipe("k1", {"n": 1, "to": "k0"}, 2_000)
        assert dict(driver.key_value_store("cog-store").all()) == {
            "k1": {"b": 3, "s": 1, "last": "s"}
        }


def test_the_inputs_form_one_task_and_must_be_co_partitioned() -> None:
    """One sub-topology (one store, one task per partition) whose inputs the runtime checks
    for equal partition counts at start (CoPartitioningError), as for joins."""
    b = st.StreamsBuilder()
    net(b).to_stream().to("out")
    (sub,) = b.build().subtopologies
    assert ("buys", "sells") in sub.copartition_groups


def test_bad_arguments_get_clear_errors() -> None:
    b = st.StreamsBuilder()
    grouped = b.stream("buys", key_serde=STRING, value_serde=JSON).group_by_key()
    with pytest.raises(TypeError, match="aggregator must be callable"):
        grouped.cogroup("not a function")  # type: ignore[arg-type]
    started = grouped.cogroup(buy)
    with pytest.raises(TopologyError, match="only once"):
        started.cogroup(grouped, sell)
    other = st.StreamsBuilder().stream("sells", key_serde=STRING, value_serde=JSON)
    with pytest.raises(TopologyError, match="one StreamsBuilder"):
        started.cogroup(other.group_by_key(), sell)
    with pytest.raises(TypeError, match="initializer must be callable"):
        started.aggregate(0)  # type: ignore[arg-type]
