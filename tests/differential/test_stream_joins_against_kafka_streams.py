"""Differential tests of the windowed stream-stream joins: inner, left and outer, symmetric and
asymmetric windows, with and without a repartitioned side, on seeded random inputs over both
sides with several keys, ties, duplicates, records out of order within the grace and late
records past it, null values and (where nothing is re-keyed) null keys, through our
TopologyTestDriver and Java Kafka Streams' (bench/reference DifferentialRunner,
StreamJoinTopologies.java). Compared: every output record (which input caused it, key, value,
timestamp) and the number of records Kafka Streams counts as dropped (null keys or values on
inner sides, and writes to expired window store segments).

Kafka Streams scans its store of unjoined records at most once per second of wall-clock time
(``__emit.interval.ms.kstreams.outer.join.spurious.results.fix__``, 1000 by default), and the
test driver's wall clock stands still, so by default it emits left/outer results only on the
first scan; ours scans whenever a record may have closed a window (a documented difference).
The cases set that interval to 0."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING
from tests.differential.compare import JavaRunner, first_difference, java_results
from tests.streamtable.topologies import STREAM_JOIN_SHAPES, STREAM_JOIN_TOPOLOGIES

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 60
SEED = 20261212
KEYS = ("k0", "k1", "k2", "k3")
EMIT_INTERVAL = "__emit.interval.ms.kstreams.outer.join.spurious.results.fix__"


def _next_timestamp(rng: random.Random, stream_time: int) -> int:
    """In order (ties, small steps, gaps that close windows), out of order within a few seconds,
    or late by up to 20 s. Mostly multiples of 500 ms, so records fall on window bounds."""
    roll = rng.random()
    jitter = rng.randint(1, 499) if rng.random() < 0.15 else 0
    if roll < 0.55:
        ts = stream_time + rng.choice([0, 0, 500, 1_000, 2_000, 3_000, 6_000, 15_000]) + jitter
    elif roll < 0.85:
        ts = stream_time - 500 * rng.randint(1, 8) + jitter
    else:
        ts = stream_time - 500 * rng.randint(8, 40) + jitter
    return max(0, ts)


def generate(rng: random.Random, null_keys: bool) -> list[dict[str, Any]]:
    """Records on both sides, keyed by a few keys; values ``{"n": i, "to": key}`` (``to``: the
    key a re-keyed topology moves the left record to), some null; some null keys."""
    records = []
    stream_time = rng.choice([0, 2_000, 60_000])
    previous: dict[str, Any] | None = None
    for i in range(rng.randint(1, 40)):
        if previous is not None and rng.random() < 0.08:
            records.append(dict(previous))  # an exact duplicate (same key, timestamp, side)
            continue
        ts = _next_timestamp(rng, stream_time)
        stream_time = max(stream_time, ts)
        roll = rng.random()
        key = None if null_keys and roll < 0.04 else rng.choice(KEYS)
        value = None if 0.04 <= roll < 0.09 else {"n": i, "to": rng.choice(KEYS)}
        previous = {"topic": rng.choice(["left", "right"]), "key": key, "value": value, "ts": ts}
        records.append(previous)
    return records


def run_python(topology: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the Java runner prints for a case, from our TopologyTestDriver."""
    outputs = []
    with st.TopologyTestDriver(STREAM_JOIN_TOPOLOGIES[topology](), start_time=0) as driver:
        inputs = {name: driver.input_topic(name) for name in ("left", "right")}
        reader = driver.output_topic("ssj-out", key_serde=STRING, value_serde=JSON)
        for i, rec in enumerate(records):
            inputs[rec["topic"]].pipe(rec["key"], rec["value"], rec["ts"])
            for key, value, ts, _ in reader.read_records():
                record = {"key": key, "value": value, "ts": ts}
                outputs.append({"after": i, "topic": "ssj-out", **record})
        dropped = sum(driver.dropped_records().values())
    return {"outputs": outputs, "stores": {}, "dropped_records": dropped}


def _cases() -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    return [
        {
            "case": f"{name}-{i}",
            "topology": name,
            "records": generate(rng, null_keys=not shape.rekey_left),
            "config": {EMIT_INTERVAL: 0},
        }
        for name, shape in STREAM_JOIN_SHAPES.items()
        for i in range(CASES_PER_TOPOLOGY)
    ]


def test_stream_stream_joins_agree_with_kafka_streams(java_runner: JavaRunner) -> None:
    cases = _cases()
    results = java_results(java_runner, cases)
    mismatches = []
    for case in cases:
        java = results[case["case"]]
        ours = run_python(case["topology"], case["records"])
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
    if mismatches:
        per_topology = dict.fromkeys(STREAM_JOIN_SHAPES, 0)
        for case, _ in mismatches:
            per_topology[case["topology"]] += 1
        case, first = mismatches[0]
        detail = json.dumps({"case": case, "first difference": first}, indent=1)
        pytest.fail(
            f"{len(mismatches)}/{len(cases)} cases differ {per_topology}; first:\n{detail[:6000]}"
        )


def test_the_generated_inputs_exercise_the_join() -> None:
    """The inputs hold what they are meant to: both sides, ties, exact duplicates, records out of
    order and records late for a 5 s window with 2 s grace, null values and null keys."""
    rng = random.Random(SEED)
    seen = dict.fromkeys(("left", "right", "tie", "duplicate", "out_of_order", "late"), 0)
    seen |= {"null_value": 0, "null_key": 0}
    for _ in range(CASES_PER_TOPOLOGY):
        stream_time, last = -1, None
        for rec in generate(rng, null_keys=True):
            ts = rec["ts"]
            seen[rec["topic"]] += 1
            seen["duplicate"] += rec == last
            seen["null_value"] += rec["value"] is None
            seen["null_key"] += rec["key"] is None
            if ts == stream_time:
                seen["tie"] += 1
            elif ts < stream_time:
                seen["late" if ts + 5_000 + 2_000 < stream_time else "out_of_order"] += 1
            stream_time, last = max(stream_time, ts), rec
    assert all(n >= 15 for n in seen.values()), seen
