"""The oracle: each client's final US position ids, from hand-made events and from the bench's
generated input (there checked against streamtable's own seed topology in the test driver)."""

from __future__ import annotations

import orjson
import pytest
from bench.datagen import DataSettings, generate
from bench.oracle import apply_output, expected_holders, verdict
from bench.runner import seed_topology

import streamtable as st

pytestmark = pytest.mark.unit


def pos(client: str, exchange: str = "NYSE", amount: int = 1) -> bytes:
    return orjson.dumps({"client": client, "exchange": exchange, "amount": amount})


def test_us_positions_are_grouped_by_client_and_sorted() -> None:
    events = [("p2", pos("c1")), ("p1", pos("c1", "NASDAQ")), ("p3", pos("c2"))]
    assert expected_holders(events) == {"c1": ["p1", "p2"], "c2": ["p3"]}


def test_a_position_that_moves_to_another_client_leaves_its_old_client() -> None:
    events = [("p1", pos("c1")), ("p2", pos("c1")), ("p1", pos("c2"))]
    assert expected_holders(events) == {"c1": ["p2"], "c2": ["p1"]}


def test_a_closed_position_leaves_and_an_emptied_client_is_absent() -> None:
    events = [("p1", pos("c1")), ("p2", pos("c2")), ("p1", None)]
    assert expected_holders(events) == {"c2": ["p2"]}


def test_a_reopened_position_counts_again() -> None:
    events = [("p1", pos("c1")), ("p1", None), ("p1", pos("c3", "NASDAQ"))]
    assert expected_holders(events) == {"c3": ["p1"]}


def test_non_us_positions_and_moves_off_the_us_venues_do_not_count() -> None:
    events = [
        ("p1", pos("c1", "LSE")),
        ("p2", pos("c1")),
        ("p2", pos("c1", "XETRA")),  # moved to another exchange: leaves
        ("p3", pos("c2", "TSE")),
        ("p3", pos("c2", "NYSE")),  # moved onto a US venue: joins
        ("p4", None),  # a tombstone for a position never seen
    ]
    assert expected_holders(events) == {"c2": ["p3"]}


def test_an_amount_update_changes_nothing() -> None:
    events = [("p1", pos("c1", amount=5)), ("p1", pos("c1", amount=7))]
    assert expected_holders(events) == {"c1": ["p1"]}


def test_output_records_fold_to_the_last_value_per_key() -> None:
    holders: dict[str, list[str]] = {}
    apply_output(holders, b"c1", b'["p1"]')
    apply_output(holders, b"c2", b'["p2"]')
    apply_output(holders, b"c1", b'["p1", "p3"]')
    apply_output(holders, b"c2", None)  # a tombstone
    apply_output(holders, b"c3", b'["p4"]')
    apply_output(holders, b"c3", b"[]")  # an empty set counts as none
    assert holders == {"c1": ["p1", "p3"]}
    with pytest.raises(ValueError, match="without a key"):
        apply_output(holders, None, b"[]")


def test_verdict_names_what_differs() -> None:
    expected = {"c1": ["p1"], "c2": ["p2"], "c3": ["p3"]}
    assert verdict(expected, dict(expected)) is None
    wrong = verdict(expected, {"c1": ["p1"], "c2": ["p2", "p9"], "c4": ["p4"]})
    assert wrong is not None
    assert wrong.startswith("1 missing / 1 unexpected / 1 different of 3 expected clients")
    assert "c3 expected ['p3'], absent" in wrong
    extra = verdict(expected, {**expected, "c4": ["p4"]})
    assert extra is not None
    assert "c4 expected absent, got ['p4']" in extra
    assert "c2 expected ['p2'], got []" in (verdict(expected, {**expected, "c2": []}) or "")


def test_the_oracle_agrees_with_streamtables_seed_topology_on_generated_input() -> None:
    data = DataSettings(records=3_000, positions=300, clients=30)
    events = list(generate(data))
    with st.TopologyTestDriver(seed_topology("positions", "out"), start_time=0) as driver:
        source = driver.input_topic("positions")
        for key, raw in events:
            source.pipe(key, None if raw is None else orjson.loads(raw))
        written = driver.output_topic("out").read_key_values_to_dict()
    expected = expected_holders(events)
    assert len(expected) == 30  # every client holds a US position at this size
    assert verdict(expected, written) is None
