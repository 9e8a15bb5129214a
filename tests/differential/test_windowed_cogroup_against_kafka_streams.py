"""Differential tests of windowed cogroups: ``buys`` and ``sells`` (each with its own
aggregator) cogrouped per tumbling window, hopping window, sliding window and session
(``CogroupedKStream.windowed_by(...).aggregate(...)``), through our TopologyTestDriver and Java
Kafka Streams' (bench/reference DifferentialRunner, CogroupTopologies.java), on seeded random
inputs with ties, records out of order within the grace and late ones past it, on either input.

Compared: every output record (which input caused it, the windowed key's bytes, key, window or
session, value, timestamp), the final store (a window store's ``all()`` and ``fetch(key)``; a
session store's ``fetch(key)`` and ``find_sessions(key, 20 s, 60 s)``) and the records dropped as
late. Each input has its own stream time (Kafka Streams makes an aggregate node per input), so a
record can be late on one input and not on the other."""

from __future__ import annotations

import random
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import BYTES, JSON, STRING, SessionWindowedSerde, TimeWindowedSerde
from tests.differential.compare import JavaRunner, first_difference, java_results
from tests.differential.test_sessions_against_kafka_streams import _fail_on, _key
from tests.streamtable.topologies import COGROUP_WINDOW_SHAPES, windowed_cogroup

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 60
SEED = 20261214
KEYS = ("k0", "k1", "k2")
FIND = (20_000, 60_000)  # SessionTopologies.FIND_EARLIEST_END / FIND_LATEST_START
LATEST = 2**63 - 1


def _next_timestamp(rng: random.Random, stream_time: int) -> int:
    """In order (ties, steps within and past the windows and gaps), out of order by a few
    seconds (mostly within the grace), or late by up to 30 s."""
    roll = rng.random()
    if roll < 0.55:
        step = rng.choice([0, 0, 500, 1_000, 2_000, 3_000, 4_000, 6_000, 12_000])
        return stream_time + step + (rng.randint(1, 499) if rng.random() < 0.2 else 0)
    if roll < 0.9:
        return max(0, stream_time - 500 * rng.randint(1, 8))
    return max(0, stream_time - 500 * rng.randint(10, 60))


def generate(rng: random.Random) -> list[dict[str, Any]]:
    """Up to 40 buys and sells over a few minutes, keyed by one of three keys."""
    records = []
    stream_time = rng.choice([0, 1_000, 9_500, 60_000])
    for _ in range(rng.randint(1, 40)):
        ts = _next_timestamp(rng, stream_time)
        stream_time = max(stream_time, ts)
        value = {"n": rng.randint(1, 9), "to": rng.choice(KEYS)}
        topic = rng.choice(["buys", "sells"])
        records.append({"topic": topic, "key": rng.choice(KEYS), "value": value, "ts": ts})
    return records


def _store(driver: st.TopologyTestDriver, session: bool) -> dict[str, Any]:
    if session:
        sessions = driver.session_store("cog-store")

        def rows(found: Any) -> list[list[Any]]:
            return [[w.key, w.window.start_ms, w.window.end_ms, v] for w, v in found]

        fetched = [row for k in KEYS for row in rows(sessions.fetch(k))]
        found = [row for k in KEYS for row in rows(sessions.find_sessions(k, *FIND))]
        return {"fetch": fetched, "find": found}
    windows = driver.window_store("cog-store")
    every = [[w.key, w.window.start_ms, w.window.end_ms, v] for w, v in windows.all()]
    fetched = [[k, start, v] for k in KEYS for start, v in windows.fetch(k, 0, LATEST)]
    return {"all": sorted(every, key=lambda r: (r[0], r[1])), "fetch": fetched}


def run_python(
    topology: str, records: list[dict[str, Any]], cache_max_bytes: int | None
) -> dict[str, Any]:
    """What the Java runner prints for a case, from our TopologyTestDriver."""
    shape = COGROUP_WINDOW_SHAPES[topology]
    serde = (
        SessionWindowedSerde(STRING)
        if shape.session
        else TimeWindowedSerde(STRING, shape.size_or_gap_ms)
    )
    config = {} if cache_max_bytes is None else {"cache_max_bytes": cache_max_bytes}
    outputs = []
    with st.TopologyTestDriver(windowed_cogroup(topology), config=config, start_time=0) as driver:
        reader = driver.output_topic("cog-out", key_serde=BYTES, value_serde=JSON)
        for i, rec in enumerate(records):
            driver.input_topic(rec["topic"]).pipe(rec["key"], rec["value"], rec["ts"])
            for data, value, ts, _ in reader.read_records():
                key = _key(data, serde)
                outputs.append(
                    {"after": i, "topic": "cog-out", "key": key, "value": value, "ts": ts}
                )
        store = _store(driver, shape.session)
        dropped = sum(driver.dropped_records().values())
    return {"outputs": outputs, "stores": {"cog-store": store}, "dropped_records": dropped}


def test_windowed_cogroups_agree_with_kafka_streams(java_runner: JavaRunner) -> None:
    """Record caches off on both sides: outputs, store and dropped records, exactly."""
    rng = random.Random(SEED)
    cases: list[dict[str, Any]] = [
        {
            "case": f"{name}-{i}",
            "topology": name,
            "records": generate(rng),
            "fetch_keys": KEYS,
            "cache_max_bytes": 0,
        }
        for name in COGROUP_WINDOW_SHAPES
        for i in range(CASES_PER_TOPOLOGY)
    ]
    results = java_results(java_runner, cases)
    mismatches = []
    outputs = dropped = 0
    for case in cases:
        java = results[case["case"]]
        assert "error" not in java["stores"]["cog-store"], java
        ours = run_python(case["topology"], case["records"], 0)
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
        outputs += len(java["outputs"])
        dropped += java["dropped_records"]
    _fail_on(mismatches, len(cases))
    assert outputs > 1_000, outputs
    assert dropped > 50, dropped
