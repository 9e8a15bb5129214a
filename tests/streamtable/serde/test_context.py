"""Serde context: contextual serdes see the topic (real names for internal topics and store
changelogs), key or value, and headers at sources and sinks; plain serdes stay unwrapped; the
query layer parses keys through the serde's own ``parse_key`` hook."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

import streamtable as st
from streamtable.query._codec import parse_key, prefix_bytes
from streamtable.serde import DEFAULT, STRING, BoundSerde, SerdeContext, bind
from streamtable.testing import TopologyTestDriver

pytestmark = pytest.mark.unit


class Recording:
    """A contextual serde (DEFAULT's bytes) that records every context it is called with."""

    uses_context: ClassVar[bool] = True

    def __init__(self, seen: list[tuple[str, str, bool, Any]]) -> None:
        self.seen = seen

    def serialize(self, value: Any, ctx: SerdeContext | None = None) -> bytes:
        assert ctx is not None
        self.seen.append(("ser", ctx.topic, ctx.is_key, ctx.headers))
        return DEFAULT.serialize(value)

    def deserialize(self, data: bytes, ctx: SerdeContext | None = None) -> Any:
        assert ctx is not None
        self.seen.append(("de", ctx.topic, ctx.is_key, ctx.headers))
        return DEFAULT.deserialize(data)

    def parse_key(self, text: str) -> Any:
        return text.upper()


def totals_topology(serde: Recording) -> st.Topology:
    b = st.StreamsBuilder()
    table = b.table("positions", key_serde=serde, value_serde=serde, store="positions")
    grouped = table.group_by(
        lambda k, v: (v["client"], v["amount"]), key_serde=serde, value_serde=serde
    )
    totals = grouped.aggregate(
        lambda: 0, lambda k, v, a: a + v, lambda k, v, a: a - v, store="totals", value_serde=serde
    )
    totals.to_stream().to("totals-out", key_serde=serde, value_serde=serde)
    return b.build()


def topics_seen(seen: list[tuple[str, str, bool, Any]], op: str) -> set[tuple[str, bool]]:
    return {(topic, is_key) for o, topic, is_key, _ in seen if o == op}


def test_contextual_serdes_see_source_sink_changelog_and_repartition_topics() -> None:
    seen: list[tuple[str, str, bool, Any]] = []
    serde = Recording(seen)
    with TopologyTestDriver(totals_topology(serde), config={"application_id": "ctx"}) as driver:
        driver.input_topic("positions").pipe("p1", {"client": "c1", "amount": 5})
        out = driver.output_topic("totals-out").read_key_values()
        assert out == [("c1", 5)]
        assert driver.key_value_store("totals").get("c1") == 5

    written = topics_seen(seen, "ser")
    read = topics_seen(seen, "de")
    # The input topic (the table source's store reuses it as changelog), the repartition topic,
    # the aggregate's changelog topic and the output topic, each as key and as value.
    for topic in ("positions", "ctx-totals-repartition", "ctx-totals-changelog", "totals-out"):
        assert (topic, True) in written, topic
        assert (topic, False) in written, topic
    assert ("positions", True) in read
    assert ("ctx-totals-repartition", False) in read
    assert {t for t, _ in written | read} <= {
        "positions",
        "ctx-totals-repartition",
        "ctx-totals-changelog",
        "totals-out",
    }


def test_headers_reach_contextual_serdes_at_sources_and_sinks() -> None:
    seen: list[tuple[str, str, bool, Any]] = []
    serde = Recording(seen)
    b = st.StreamsBuilder()
    b.stream("in", key_serde=serde, value_serde=serde).to("out", key_serde=serde, value_serde=serde)
    headers: list[tuple[str, bytes | None]] = [("trace", b"t-1")]
    with TopologyTestDriver(b.build(), config={"application_id": "hdr"}) as driver:
        driver.input_topic("in").pipe("k", "v", headers=headers)
        seen.clear()  # what the test's own input topic did
        driver.input_topic("in").pipe("k", "v", headers=headers)
    by_step = {(op, topic, is_key): h for op, topic, is_key, h in seen}
    assert by_step[("de", "in", True)] == headers
    assert by_step[("de", "in", False)] == headers
    assert by_step[("ser", "out", True)] == headers
    assert by_step[("ser", "out", False)] == headers


def test_plain_serdes_are_not_wrapped_and_a_plain_topology_is_left_as_it_is() -> None:
    assert bind(STRING, "t", True) is STRING
    assert bind(DEFAULT, "t", False) is DEFAULT
    b = st.StreamsBuilder()
    b.table("positions", store="positions").group_by(lambda k, v: (v, 1)).count(store="n")
    topology = b.build()
    assert topology.bind_serdes("app") is topology


def test_a_contextual_serde_is_bound_once_to_its_topic_and_side() -> None:
    serde = Recording([])
    bound = bind(serde, "t", True)
    assert isinstance(bound, BoundSerde)
    assert bound.context == SerdeContext("t", True)
    assert bind(bound, "u", False).context == SerdeContext("u", False)  # re-binds the inner one
    assert bound.deserialize(bound.serialize(("a", 1))) == ("a", 1)


def test_query_layer_parses_keys_with_the_serdes_own_hook() -> None:
    assert parse_key("abc", bind(Recording([]), "t", True)).value == "ABC"
    assert parse_key("abc", STRING).value == "abc"
    assert parse_key('{"$t": [1, 2]}', DEFAULT).value == (1, 2)
    assert parse_key("12", st.serde.INT).value == 12

    class NoTextKeys:
        def serialize(self, value: Any) -> bytes:
            return b""

        def deserialize(self, data: bytes) -> Any:
            return None

    refused = parse_key("x", NoTextKeys())
    assert not refused.is_ok
    assert "cannot be parsed from text" in (refused.message or "")
    assert prefix_bytes("ab", STRING).value == b"ab"
    assert not prefix_bytes("ab", NoTextKeys()).is_ok


def test_registry_serdes_refuse_bad_bytes_without_quoting_them_and_need_a_topic() -> None:
    from streamtable.serde_registry import avro_serde, registry_client

    # Nothing here reaches the registry: the framing is checked first, and the client is lazy.
    with registry_client("http://127.0.0.1:9/apis/ccompat/v7") as client:
        serde = avro_serde(client, '"string"')
        bound = bind(serde, "positions", False)
        with pytest.raises(st.SerializationError) as refused:
            bound.deserialize(b"secret-value")
        assert "positions value" in str(refused.value)
        assert "secret" not in str(refused.value)
        with pytest.raises(st.SerializationError, match="needs its topic"):
            serde.serialize("x")
        assert bound.parse_key("c1") == "c1"
