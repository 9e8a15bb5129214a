"""Property tests: after EVERY record, each materialized store equals a brute-force
recomputation from the current snapshot of the source tables."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

import streamtable as st
from tests.streamtable import topologies as topo

pytestmark = pytest.mark.unit

EXAMPLES = settings(max_examples=200, deadline=None)

position_keys = s.sampled_from([f"p{i}" for i in range(6)])
positions = s.fixed_dictionaries(
    {
        "client": s.sampled_from(["c0", "c1", "c2"]),
        "ticker": s.sampled_from(["AAPL", "VOD", "FB"]),
        "exchange": s.sampled_from(["NASDAQ", "NYSE", "LON"]),
        "amount": s.integers(min_value=1, max_value=100),
    }
)
position_ops = s.lists(s.tuples(position_keys, s.none() | positions), min_size=1, max_size=40)


def store_dict(driver: st.TopologyTestDriver, name: str) -> dict[Any, Any]:
    return dict(driver.key_value_store(name).all())


def apply(snapshot: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        snapshot.pop(key, None)
    else:
        snapshot[key] = value


@EXAMPLES
@given(position_ops)
def test_seed_reduce_equals_oracle_after_every_record(ops: list[tuple[str, Any]]) -> None:
    snapshot: dict[str, Any] = {}
    with st.TopologyTestDriver(topo.seed(), start_time=0) as driver:
        source = driver.input_topic("positions")
        for key, value in ops:
            source.pipe(key, value)
            apply(snapshot, key, value)
            expected: dict[str, list[str]] = {}
            for pid, pos in snapshot.items():
                if pos["exchange"] in topo.US:
                    expected.setdefault(pos["client"], []).append(pid)
            assert store_dict(driver, "us-holders") == {
                c: sorted(ids) for c, ids in expected.items()
            }
            assert store_dict(driver, "positions-store") == snapshot


@EXAMPLES
@given(position_ops)
def test_aggregate_equals_oracle_and_deletes_empty_groups(ops: list[tuple[str, Any]]) -> None:
    snapshot: dict[str, Any] = {}
    with st.TopologyTestDriver(topo.aggregate(), start_time=0) as driver:
        source = driver.input_topic("positions")
        for key, value in ops:
            source.pipe(key, value)
            apply(snapshot, key, value)
            expected: dict[str, dict[str, int]] = {}
            for pos in snapshot.values():
                agg = expected.setdefault(pos["client"], {"count": 0, "total": 0})
                agg["count"] += 1
                agg["total"] += pos["amount"]
            assert store_dict(driver, "client-totals") == expected


@EXAMPLES
@given(position_ops)
def test_count_keeps_emptied_groups_at_zero(ops: list[tuple[str, Any]]) -> None:
    snapshot: dict[str, Any] = {}
    seen: set[str] = set()
    with st.TopologyTestDriver(topo.count(), start_time=0) as driver:
        source = driver.input_topic("positions")
        for key, value in ops:
            source.pipe(key, value)
            apply(snapshot, key, value)
            if value is not None:
                seen.add(value["ticker"])
            expected = dict.fromkeys(seen, 0)
            for pos in snapshot.values():
                expected[pos["ticker"]] += 1
            assert store_dict(driver, "ticker-counts") == expected


side_keys = s.sampled_from(["k0", "k1", "k2", "k3"])
join_ops = s.lists(
    s.tuples(s.sampled_from(["left", "right"]), side_keys, s.none() | s.integers(0, 9)),
    min_size=1,
    max_size=40,
)


@EXAMPLES
@given(s.sampled_from(["inner", "left", "outer"]), join_ops)
def test_table_joins_equal_oracle(mode: str, ops: list[tuple[str, str, Any]]) -> None:
    tables: dict[str, dict[str, Any]] = {"left": {}, "right": {}}
    with st.TopologyTestDriver(topo.table_join(mode), start_time=0) as driver:
        inputs = {name: driver.input_topic(name) for name in tables}
        for side, key, value in ops:
            inputs[side].pipe(key, value)
            apply(tables[side], key, value)
            left, right = tables["left"], tables["right"]
            if mode == "inner":
                keys = left.keys() & right.keys()
            elif mode == "left":
                keys = set(left)
            else:
                keys = left.keys() | right.keys()
            expected = {k: {"l": left.get(k), "r": right.get(k)} for k in keys}
            assert store_dict(driver, "join-store") == expected


fk_ops = s.lists(
    s.one_of(
        s.tuples(
            s.just("orders"),
            s.sampled_from(["o0", "o1", "o2", "o3"]),
            s.none()
            | s.fixed_dictionaries(
                {"product": s.none() | s.sampled_from(["x", "y", "z"]), "qty": s.integers(1, 5)}
            ),
        ),
        s.tuples(
            s.just("products"),
            s.sampled_from(["x", "y", "z"]),
            s.none() | s.fixed_dictionaries({"name": s.sampled_from(["A", "B"])}),
        ),
    ),
    min_size=1,
    max_size=40,
)


@EXAMPLES
@given(s.booleans(), fk_ops)
def test_foreign_key_joins_equal_oracle(left: bool, ops: list[tuple[str, str, Any]]) -> None:
    tables: dict[str, dict[str, Any]] = {"orders": {}, "products": {}}
    with st.TopologyTestDriver(topo.fk_join(left), start_time=0) as driver:
        inputs = {name: driver.input_topic(name) for name in tables}
        for side, key, value in ops:
            inputs[side].pipe(key, value)
            apply(tables[side], key, value)
            expected = {}
            for order_id, order in tables["orders"].items():
                product = tables["products"].get(order["product"]) if order["product"] else None
                if product is not None or left:
                    expected[order_id] = {"o": order, "p": product}
            assert store_dict(driver, "fk-store") == expected
