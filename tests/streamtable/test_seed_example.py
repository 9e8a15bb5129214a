"""The seed's own example, as documentation that runs (DESIGN.md section 3's topology)."""

from __future__ import annotations

import pytest

import streamtable as st

pytestmark = pytest.mark.unit

US_EXCHANGES = {"NASDAQ", "NYSE"}
POSITIONS = [
    ("1", "client1", "AAPL", "NASDAQ"),
    ("2", "client1", "VOD", "LON"),
    ("3", "client1", "FB", "NASDAQ"),
    ("4", "client2", "AAPL", "NASDAQ"),
    ("5", "client3", "VOD", "LON"),
]


def seed_topology() -> st.Topology:
    builder = st.StreamsBuilder()
    positions = builder.table(
        "share-holders",
        key_serde=st.serde.STRING,
        value_serde=st.serde.JSON,
        store="share-holder-store",
    )
    (
        positions.filter(lambda key, pos: pos["exchange"] in US_EXCHANGES)
        .group_by(lambda key, pos: (pos["client"], frozenset({key})))
        .reduce(
            adder=lambda agg, v: agg | v,
            subtractor=lambda agg, v: (agg - v) or None,
            store="us-share-holders",
        )
    )
    return builder.build()


def test_seed_positions_give_client1_and_client2_and_closing_4_removes_client2() -> None:
    with st.TopologyTestDriver(seed_topology(), start_time=0) as driver:
        topic = driver.input_topic("share-holders")
        for pid, client, ticker, exchange in POSITIONS:
            topic.pipe(
                pid,
                {"id": pid, "client": client, "ticker": ticker, "exchange": exchange, "amount": 1},
            )
        holders = driver.key_value_store("us-share-holders")
        assert dict(holders.all()) == {
            "client1": frozenset({"1", "3"}),
            "client2": frozenset({"4"}),
        }

        topic.pipe("4", None)  # position 4 closed

        assert dict(holders.all()) == {"client1": frozenset({"1", "3"})}
        assert holders.get("client2") is None
