"""Differential tests of the windowed aggregations: tumbling and hopping ``count``, ``reduce``
and ``aggregate`` with a grace period, on seeded random inputs with ties, records out of order
within the grace and late records past it, through our TopologyTestDriver and Java Kafka
Streams' (bench/reference DifferentialRunner, WindowedTopologies.java). Compared: every output
record (which input caused it, the windowed key's bytes, key, window start and end, value,
timestamp), the final window store (``all()`` and ``fetch(key, 0, max)`` per key) and the
number of records dropped as late (Java: the tasks' ``dropped-records-total``); each case runs
with the record caches off, and again with them on (see the second test for the one
difference that shows then, in Kafka Streams' reads). The runner builds against Kafka Streams
4.4.0 (bench/reference/pom.xml); built against 4.3.1, it gives the same results.

Inputs carry no null keys or values: Kafka Streams 4.4.0's ``KStreamWindowAggregate`` drops
only null keys and hands null values to the aggregator, while ours drops both (see
``streamtable.processors.window_aggregate``), a documented difference."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import BYTES, JSON, STRING, TimeWindowedSerde
from tests.differential.compare import JavaRunner, first_difference, java_results, trades
from tests.streamtable.topologies import ALL_WINDOW_SHAPES, WINDOWED_TOPOLOGIES, windowed

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 60
SEED = 20261201
CLIENTS = ("c0", "c1", "c2")
LATEST = 2**63 - 1


def _next_timestamp(rng: random.Random, stream_time: int) -> int:
    """In order (ties and gaps that close windows), out of order within a few seconds (mostly
    within the grace), or late by up to 30 s (past the grace of some or all of its windows).
    Mostly multiples of 500 ms, so that records fall on window boundaries."""
    roll = rng.random()
    jitter = rng.randint(1, 499) if rng.random() < 0.2 else 0
    if roll < 0.6:
        ts = stream_time + rng.choice([0, 0, 500, 1_000, 2_000, 4_000, 9_000, 20_000]) + jitter
    elif roll < 0.85:
        ts = stream_time - 500 * rng.randint(1, 8) + jitter
    else:
        ts = stream_time - 500 * rng.randint(8, 60) + jitter
    return max(0, ts)


def generate(rng: random.Random) -> list[dict[str, Any]]:
    """Trades keyed by a client, for another (or the same) client, over a few minutes."""
    return trades(rng, _next_timestamp, CLIENTS)


def _key(data: bytes, serde: TimeWindowedSerde) -> dict[str, Any]:
    windowed = serde.deserialize(data)
    window = windowed.window
    start, end = window.start_ms, window.end_ms
    return {"key": windowed.key, "start": start, "end": end, "bytes": data.hex()}


def run_python(
    topology: str, records: list[dict[str, Any]], cache_max_bytes: int | None = None
) -> dict[str, Any]:
    """What the Java runner prints for a case, from our TopologyTestDriver."""
    key_serde = TimeWindowedSerde(STRING, ALL_WINDOW_SHAPES[topology].size_ms)
    config = {} if cache_max_bytes is None else {"cache_max_bytes": cache_max_bytes}
    outputs = []
    with st.TopologyTestDriver(windowed(topology), config=config, start_time=0) as driver:
        source = driver.input_topic("trades")
        reader = driver.output_topic("win-out", key_serde=BYTES, value_serde=JSON)
        for i, rec in enumerate(records):
            source.pipe(rec["key"], rec["value"], rec["ts"])
            for data, value, ts, _ in reader.read_records():
                key = _key(data, key_serde)
                outputs.append(
                    {"after": i, "topic": "win-out", "key": key, "value": value, "ts": ts}
                )
        store = driver.window_store("win-store")
        rows = [[w.key, w.window.start_ms, w.window.end_ms, v] for w, v in store.all()]
        fetched = [[k, start, v] for k in CLIENTS for start, v in store.fetch(k, 0, LATEST)]
        dropped = sum(driver.dropped_records().values())
    stores = {"win-store": {"all": sorted(rows, key=lambda r: (r[0], r[1])), "fetch": fetched}}
    return {"outputs": outputs, "stores": stores, "dropped_records": dropped}


def _cases(
    cache_max_bytes: int | None,
    topologies: Iterable[str] = WINDOWED_TOPOLOGIES,
    per_topology: int = CASES_PER_TOPOLOGY,
    seed: int = SEED,
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "case": f"{name}-{i}",
            "topology": name,
            "records": generate(rng),
            "fetch_keys": CLIENTS,
            "cache_max_bytes": cache_max_bytes,
        }
        for name in topologies
        for i in range(per_topology)
    ]


def _java_results(java_runner: JavaRunner, cases: list[dict[str, Any]]) -> dict[str, Any]:
    results = java_results(java_runner, cases)
    for case in cases:
        assert "error" not in results[case["case"]]["stores"]["win-store"], results[case["case"]]
    return results


def _fail_on(mismatches: list[tuple[dict[str, Any], dict[str, Any]]], total: int) -> None:
    if not mismatches:
        return
    per_topology = Counter(case["topology"] for case, _ in mismatches)
    case, first = mismatches[0]
    detail = json.dumps({"case": case, "first difference": first}, indent=1)
    pytest.fail(
        f"{len(mismatches)}/{total} cases differ {dict(per_topology)}; first:\n{detail[:6000]}"
    )


def test_windowed_aggregations_agree_with_kafka_streams(java_runner: JavaRunner) -> None:
    """Record caches off on both sides (``statestore.cache.max.bytes=0``): outputs, dropped
    records and the window store, exactly."""
    cases = _cases(cache_max_bytes=0)
    results = _java_results(java_runner, cases)
    mismatches = []
    for case in cases:
        java = results[case["case"]]
        ours = run_python(case["topology"], case["records"], cache_max_bytes=0)
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
    _fail_on(mismatches, len(cases))


def _live(store: dict[str, Any], retention_ms: int) -> dict[str, Any]:
    """A window store dump without the windows that started ``retention_ms`` or more before
    its latest window (the store's stream time)."""
    latest = max((row[1] for row in store["all"]), default=-1)
    return {part: [r for r in rows if r[1] > latest - retention_ms] for part, rows in store.items()}


def test_with_record_caches_outputs_agree_and_java_reads_add_only_expired_windows(
    java_runner: JavaRunner,
) -> None:
    """Record caches on (the default) on both sides: outputs and dropped records agree
    exactly. Kafka Streams' ``CachingWindowStore`` merges its cache into ``all()`` and
    ``fetch()`` without the retention check its segmented store makes (KAFKA-12960's
    discussion calls that a caching-layer bug), so it also returns windows past the retention
    while they are cached; ours never does. Without those, the stores agree."""
    cases = _cases(cache_max_bytes=None)
    results = _java_results(java_runner, cases)
    mismatches = []
    for case in cases:
        java = results[case["case"]]
        ours = run_python(case["topology"], case["records"])
        shape = ALL_WINDOW_SHAPES[case["topology"]]
        retention = shape.retention_ms or shape.size_ms + shape.grace_ms
        java = {**java, "stores": {"win-store": _live(java["stores"]["win-store"], retention)}}
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
    _fail_on(mismatches, len(cases))


def test_the_generated_inputs_hold_ties_out_of_order_and_late_records() -> None:
    """The inputs exercise what they are meant to: ties, records out of order within the
    grace, and records late for every window, in each topology's windows."""
    rng = random.Random(SEED)
    seen = {"tie": 0, "out_of_order": 0, "late": 0}
    for _ in range(CASES_PER_TOPOLOGY):
        stream_time = -1
        for rec in generate(rng):
            ts = rec["ts"]
            if ts == stream_time:
                seen["tie"] += 1
            elif ts < stream_time:
                window_end = (ts // 10_000 + 1) * 10_000  # its tumbling window, grace 3 s
                late = window_end + 3_000 <= stream_time
                seen["late" if late else "out_of_order"] += 1
            stream_time = max(stream_time, ts)
    assert all(n >= 20 for n in seen.values()), seen
