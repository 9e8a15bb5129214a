"""Differential tests of the session-windowed aggregations: ``count``, ``reduce`` and
``aggregate`` (with a merger that concatenates, so that the order sessions merge in shows),
with and without a grace period, on seeded random inputs with ties, records that bridge and
merge sessions, records out of order within the grace and late records past it, through our
TopologyTestDriver and Java Kafka Streams' (bench/reference DifferentialRunner,
SessionTopologies.java). Compared: every output record (which input caused it, the
session-windowed key's bytes, key, session start and end, value, timestamp) with the deletes
of merged sessions, the final session store (``fetch(key)`` and ``find_sessions(key, 20 s,
60 s)`` per key) and the number of records dropped as late; each case runs with the record
caches off, and again with them on.

Inputs carry no null keys or values (see ``streamtable.processors.session_aggregate``)."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import BYTES, JSON, STRING, SessionWindowedSerde
from tests.differential.compare import JavaRunner, first_difference, java_results, trades
from tests.streamtable.topologies import (
    ALL_SESSION_SHAPES,
    SESSION_EMIT_TOPOLOGIES,
    SESSION_SHAPES,
    SESSION_TOPOLOGIES,
    sessioned,
)

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 60
SEED = 20261212
CLIENTS = ("c0", "c1", "c2")
FIND = (20_000, 60_000)  # SessionTopologies.FIND_EARLIEST_END / FIND_LATEST_START
KEY_SERDE = SessionWindowedSerde(STRING)


def _next_timestamp(rng: random.Random, stream_time: int) -> int:
    """In order (ties, steps within and past the 3-5 s gaps), out of order by a few seconds
    (mostly within the grace, often bridging two sessions), or late by up to 30 s."""
    roll = rng.random()
    jitter = rng.randint(1, 499) if rng.random() < 0.2 else 0
    if roll < 0.55:
        step = rng.choice([0, 0, 500, 1_000, 2_000, 3_000, 4_000, 5_000, 6_000, 12_000])
        ts = stream_time + step + jitter
    elif roll < 0.9:
        ts = stream_time - 500 * rng.randint(1, 8) + jitter
    else:
        ts = stream_time - 500 * rng.randint(10, 60) + jitter
    return max(0, ts)


def generate(rng: random.Random) -> list[dict[str, Any]]:
    """Trades keyed by a client, for another (or the same) client, over a few minutes."""
    return trades(rng, _next_timestamp, CLIENTS)


def _key(data: bytes, serde: Any = KEY_SERDE) -> dict[str, Any]:
    """A windowed key as the Java runner prints it (``serde``: its windowed serde)."""
    windowed = serde.deserialize(data)
    window = windowed.window
    return {
        "key": windowed.key,
        "start": window.start_ms,
        "end": window.end_ms,
        "bytes": data.hex(),
    }


def _rows(found: Any) -> list[list[Any]]:
    return [[w.key, w.window.start_ms, w.window.end_ms, v] for w, v in found]


def run_python(
    topology: str, records: list[dict[str, Any]], cache_max_bytes: int | None = None
) -> dict[str, Any]:
    """What the Java runner prints for a case, from our TopologyTestDriver."""
    config = {} if cache_max_bytes is None else {"cache_max_bytes": cache_max_bytes}
    outputs = []
    with st.TopologyTestDriver(sessioned(topology), config=config, start_time=0) as driver:
        source = driver.input_topic("trades")
        reader = driver.output_topic("ses-out", key_serde=BYTES, value_serde=JSON)
        for i, rec in enumerate(records):
            source.pipe(rec["key"], rec["value"], rec["ts"])
            for data, value, ts, _ in reader.read_records():
                outputs.append(
                    {"after": i, "topic": "ses-out", "key": _key(data), "value": value, "ts": ts}
                )
        store = driver.session_store("ses-store")
        fetched = [row for k in CLIENTS for row in _rows(store.fetch(k))]
        found = [row for k in CLIENTS for row in _rows(store.find_sessions(k, *FIND))]
        dropped = sum(driver.dropped_records().values())
    stores = {"ses-store": {"fetch": fetched, "find": found}}
    return {"outputs": outputs, "stores": stores, "dropped_records": dropped}


def _cases(
    cache_max_bytes: int | None,
    topologies: Any = SESSION_TOPOLOGIES,
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


def _live(store: dict[str, Any], retention_ms: int) -> dict[str, Any]:
    """A session store dump without the sessions that ended ``retention_ms`` or more before
    the latest session end (the store's stream time)."""
    latest = max((row[2] for row in store["fetch"]), default=-1)
    return {part: [r for r in rows if r[2] > latest - retention_ms] for part, rows in store.items()}


def _retention(topology: str) -> int:
    shape = ALL_SESSION_SHAPES[topology]
    return shape.retention_ms or shape.gap_ms + shape.grace_ms


def merges_a_cached_expired_session(
    outputs: list[dict[str, Any]], at: int, retention_ms: int
) -> bool:
    """Whether Kafka Streams' output ``at`` is a session spanning one of its earlier sessions
    that its store had expired (ended ``retention_ms`` or more before the latest session end):
    one only its record cache could have handed the aggregation."""
    rec = outputs[at]
    key = rec["key"]
    earlier = [o for o in outputs if o["after"] < rec["after"] and o["value"] is not None]
    stream_time = max((o["key"]["end"] for o in earlier), default=-1)
    return rec["value"] is not None and any(
        o["key"]["key"] == key["key"]
        and o["key"]["end"] <= stream_time - retention_ms
        and key["start"] <= o["key"]["start"]
        and o["key"]["end"] <= key["end"]
        for o in earlier
    )


def _fail_on(mismatches: list[tuple[dict[str, Any], dict[str, Any]]], total: int) -> None:
    if mismatches:
        per_topology: dict[str, int] = {}
        for case, _ in mismatches:
            per_topology[case["topology"]] = per_topology.get(case["topology"], 0) + 1
        case, first = mismatches[0]
        detail = json.dumps({"case": case, "first difference": first}, indent=1)
        pytest.fail(
            f"{len(mismatches)}/{total} cases differ {per_topology}; first:\n{detail[:6000]}"
        )


def test_session_aggregations_agree_with_kafka_streams_caches_off(java_runner: JavaRunner) -> None:
    """Record caches off on both sides (``statestore.cache.max.bytes=0``): outputs (the
    deletes of merged sessions included), dropped records and the session store, exactly."""
    cases = _cases(0)
    results = java_results(java_runner, cases)
    mismatches = []
    for case in cases:
        java = results[case["case"]]
        assert "error" not in java["stores"]["ses-store"], java
        ours = run_python(case["topology"], case["records"], 0)
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
    _fail_on(mismatches, len(cases))


def test_session_aggregations_agree_with_kafka_streams_caches_on(java_runner: JavaRunner) -> None:
    """Record caches on (the default) on both sides, flushed after every record: a session
    deleted and written again by one record (a merge that ends on its bounds) comes out once,
    as its update, on both sides. Kafka Streams' ``CachingSessionStore`` merges its cache
    (which keeps entries after a flush) into ``fetch`` and ``findSessions`` without the
    retention check its segmented store makes, as its ``CachingWindowStore`` does (see the
    windowed test), so its reads also return sessions past the retention while they are
    cached; ours never does. Without those, the stores agree.

    Worse, its session aggregation reads through that cache: a record can merge into a
    session the store has expired, still in the cache (its size decides how long). Ours
    never merges an expired session, with or without a cache. A case whose outputs first
    differ there is counted as that difference (and must be a minority); every other case
    agrees exactly."""
    cases = _cases(None)
    results = java_results(java_runner, cases)
    mismatches, expired_merges = [], 0
    for case in cases:
        java = results[case["case"]]
        retention = _retention(case["topology"])
        java = {**java, "stores": {"ses-store": _live(java["stores"]["ses-store"], retention)}}
        ours = run_python(case["topology"], case["records"])
        if ours == {k: java[k] for k in ours}:
            continue
        first = first_difference(ours, java)
        if first["part"] == "outputs" and merges_a_cached_expired_session(
            java["outputs"], first["index"], retention
        ):
            expired_merges += 1
        else:
            mismatches.append((case, first))
    _fail_on(mismatches, len(cases))
    assert expired_merges < len(cases) // 3, expired_merges


def test_the_generated_inputs_hold_merges_out_of_order_and_late_records() -> None:
    """The inputs exercise what they are meant to, counted with the shortest gap (3 s, no
    grace): records that merge two or more sessions, records out of order that are not late,
    and late records."""
    gap = SESSION_SHAPES["ses_count_no_grace"].gap_ms
    rng = random.Random(SEED)
    seen = {"merge": 0, "out_of_order": 0, "late": 0}
    for _ in range(CASES_PER_TOPOLOGY):
        stream_time = -1
        sessions: dict[str, list[tuple[int, int]]] = {}
        for rec in generate(rng):
            ts, key = rec["ts"], rec["key"]
            stream_time = max(stream_time, ts)
            mine = sessions.setdefault(key, [])
            near = [s for s in mine if s[1] >= ts - gap and s[0] <= ts + gap]
            start = min([ts, *(s[0] for s in near)])
            end = max([ts, *(s[1] for s in near)])
            if end < stream_time - gap:
                seen["late"] += 1
                continue
            if ts < stream_time:
                seen["out_of_order"] += 1
            if len(near) >= 2:
                seen["merge"] += 1
            sessions[key] = [s for s in mine if s not in near] + [(start, end)]
    assert all(n >= 20 for n in seen.values()), seen


EMIT_CASES_PER_TOPOLOGY = 20
EMIT_SEED = 20261213


def _dropped_segment_in_java(case: dict[str, Any], output: dict[str, Any]) -> bool:
    """Whether Kafka Streams' emit-final store had dropped the segment of ``output``'s session
    when the input ``output["after"]`` closed it: that input's write moved the store's stream
    time (the latest session end written: the latest timestamp so far) past the segment's end
    plus the retention, before it looked for closed sessions (see
    ``streamtable.processors.session_emit_final``)."""
    retention = _retention(case["topology"])
    interval = max(retention // 2, 60_000)  # Kafka Streams' segment interval
    latest = max(r["ts"] for r in case["records"][: output["after"] + 1])
    return bool(output["key"]["end"] // interval < (latest - retention) // interval)


def _emit_comparison(
    java_runner: JavaRunner, cache_max_bytes: int | None, topologies: Any
) -> Counter[str]:
    """Runs every case of ``topologies`` both ways; fails on a difference; returns counts."""
    cases = _cases(cache_max_bytes, topologies, EMIT_CASES_PER_TOPOLOGY, EMIT_SEED)
    results = java_results(java_runner, cases)
    mismatches, seen = [], Counter[str]()
    for case in cases:
        java = results[case["case"]]
        assert "error" not in java["stores"]["ses-store"], java
        emit = ALL_SESSION_SHAPES[case["topology"]].emit
        ours = run_python(case["topology"], case["records"], cache_max_bytes)
        if emit == "final":
            kept = [o for o in ours["outputs"] if not _dropped_segment_in_java(case, o)]
            seen["final outputs Java's store had dropped"] += len(ours["outputs"]) - len(kept)
            ours = {**ours, "outputs": kept}
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
        seen[f"{emit} outputs"] += len(java["outputs"])
        seen["dropped late"] += java["dropped_records"]
    _fail_on(mismatches, len(cases))
    print(dict(seen))
    return seen


def test_session_emit_final_and_suppress_agree_with_kafka_streams(java_runner: JavaRunner) -> None:
    """``emit_strategy(EmitStrategy.on_window_close())`` and ``suppress(Suppressed
    .until_window_closes(BufferConfig.unbounded()))`` over every session topology, record
    caches off: every output (which input caused it, key bytes, session, value, timestamp), the
    session store and the records dropped as late, exactly; except the emit-final results of
    sessions whose store segment Kafka Streams had dropped when they closed (it never emits
    those; we do)."""
    seen = _emit_comparison(java_runner, 0, SESSION_EMIT_TOPOLOGIES)
    assert seen["final outputs"] > 100, seen
    assert seen["suppress outputs"] > 100, seen
    assert seen["final outputs Java's store had dropped"] > 0, seen
    assert seen["dropped late"] > 50, seen


def test_session_emit_final_ignores_record_caches_as_kafka_streams(
    java_runner: JavaRunner,
) -> None:
    """Emit-final with record caches on (the default): Kafka Streams' emit-final session store
    has no record cache, nor has ours, so the results are those of the caches-off test. (A
    suppression over a cached session aggregation differs as that aggregation does, see
    ``test_session_aggregations_agree_with_kafka_streams_caches_on``: Kafka Streams can merge
    a session its store has expired while its cache still holds it.)"""
    finals = {n: t for n, t in SESSION_EMIT_TOPOLOGIES.items() if n.endswith("_final")}
    seen = _emit_comparison(java_runner, None, finals)
    assert seen["final outputs"] > 100, seen
