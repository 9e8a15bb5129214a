"""Differential tests: the same random inputs through our TopologyTestDriver and Java Kafka
Streams 4.4.0's (bench/reference DifferentialRunner); outputs are compared record by record
(which input caused them, topic, key, value, timestamp) and final stores entry by entry."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

import streamtable as st
from tests.streamtable.topologies import TOPOLOGIES

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 40
SEED = 20261124

OUTPUTS = {
    "seed": ["seed-out"],
    "aggregate": ["aggregate-out"],
    "count": ["count-out"],
    "join_inner": ["join-out"],
    "join_left": ["join-out"],
    "join_outer": ["join-out"],
    "fk_join": ["fk-out"],
    "fk_left_join": ["fk-out"],
    "stream_table_join": ["stj-out"],
    "stream_table_left_join": ["stj-out"],
    "stream_global_join": ["sgj-out"],
    "stream_global_left_join": ["sgj-out"],
    "cogroup": ["cog-out"],
    "cogroup_rekeyed": ["cog-out"],
}


def _position(rng: random.Random) -> dict[str, Any]:
    return {
        "client": rng.choice(["c0", "c1", "c2"]),
        "ticker": rng.choice(["AAPL", "VOD", "FB"]),
        "exchange": rng.choice(["NASDAQ", "NYSE", "LON"]),
        "amount": rng.randint(1, 100),
    }


def _maybe(rng: random.Random, make: Callable[[], Any], none_rate: float = 0.25) -> Any:
    return None if rng.random() < none_rate else make()


def _order(rng: random.Random) -> dict[str, Any]:
    return {"product": rng.choice([None, "x", "y", "z"]), "qty": rng.randint(1, 5)}


def _event(rng: random.Random) -> dict[str, Any]:
    return {"ref": rng.choice([None, "k0", "k1", "k2"]), "n": rng.randint(0, 9)}


def generate(topology: str, rng: random.Random) -> list[dict[str, Any]]:
    """A random input sequence for one topology: upserts, tombstones, null references."""
    records = []
    ts = 1000
    for _ in range(rng.randint(1, 30)):
        ts = max(0, ts + rng.choice([0, 1000, 1000, 1000, -500]))  # ties and out-of-order too
        key: str | None
        if topology in ("seed", "aggregate", "count"):
            topic, key = "positions", f"p{rng.randint(0, 5)}"
            value = _maybe(rng, lambda: _position(rng))
        elif topology.startswith("join_"):
            topic, key = rng.choice(["left", "right"]), f"k{rng.randint(0, 3)}"
            value = _maybe(rng, lambda: rng.randint(0, 9))
        elif topology.startswith("fk_") and rng.random() < 0.6:
            topic, key = "orders", f"o{rng.randint(0, 3)}"
            value = _maybe(rng, lambda: _order(rng))
        elif topology.startswith("fk_"):
            topic, key = "products", rng.choice(["x", "y", "z"])
            value = _maybe(rng, lambda: {"name": rng.choice("AB")})
        elif topology.startswith("cogroup"):
            topic, key = rng.choice(["buys", "sells"]), rng.choice([None, "k0", "k1", "k2"])
            value = _maybe(rng, lambda: {"n": rng.randint(1, 9), "to": f"k{rng.randint(0, 2)}"})
        elif rng.random() < 0.5:
            topic, key = "events", rng.choice([None, "k0", "k1", "k2"])
            value = _maybe(rng, lambda: _event(rng), 0.1)
        else:
            topic = "right" if "table" in topology else "globals"
            key = f"k{rng.randint(0, 2)}"
            value = _maybe(rng, lambda: {"v": rng.randint(0, 9)})
        records.append({"topic": topic, "key": key, "value": value, "ts": ts})
    return records


def run_python(topology: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    outputs = []
    with st.TopologyTestDriver(TOPOLOGIES[topology](), start_time=0) as driver:
        readers = [driver.output_topic(t) for t in OUTPUTS[topology]]
        inputs: dict[str, Any] = {}
        for i, rec in enumerate(records):
            topic = rec["topic"]
            if topic not in inputs:
                inputs[topic] = driver.input_topic(topic)
            inputs[topic].pipe(rec["key"], rec["value"], rec["ts"])
            for reader in readers:
                for key, value, ts, _ in reader.read_records():
                    outputs.append(
                        {"after": i, "topic": reader.topic, "key": key, "value": value, "ts": ts}
                    )
        stores = {
            name: [[k, v] for k, v in driver.key_value_store(name).all()]
            for name in driver.store_names
            if not name.startswith("KTABLE-")
        }
    return {"outputs": outputs, "stores": stores}


def test_python_and_java_kafka_streams_agree_record_for_record(
    java_runner: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
) -> None:
    rng = random.Random(SEED)
    cases: list[dict[str, Any]] = [
        {"case": f"{name}-{i}", "topology": name, "records": generate(name, rng)}
        for name in TOPOLOGIES
        for i in range(CASES_PER_TOPOLOGY)
    ]
    results = {r["case"]: r for r in java_runner(cases)}
    mismatches = []
    for case in cases:
        java = results[case["case"]]
        assert "fatal" not in java, java
        errors = [o for o in java["outputs"] if "error" in o]
        assert not errors, f"{case['case']}: the Java runner rejected an input: {errors[0]}"
        ours = run_python(case["topology"], case["records"])
        java_stores = {k: v for k, v in java["stores"].items() if k in ours["stores"]}
        if ours["outputs"] != java["outputs"] or ours["stores"] != java_stores:
            mismatches.append((case, ours, java))
    if mismatches:
        case, ours, java = mismatches[0]
        detail = json.dumps({"case": case, "python": ours, "java": java}, indent=1)
        pytest.fail(f"{len(mismatches)}/{len(cases)} cases differ; first:\n{detail[:6000]}")
