"""Differential tests of sliding windows: ``count``, ``reduce`` (sum) and ``aggregate`` (count
and total) over ``SlidingWindows`` with a grace period, each emitting every update, once per
window (``emit_strategy(EmitStrategy.on_window_close())``: ``_final``) or through
``suppress(until_window_closes(unbounded()))`` (``_suppress``), on seeded random inputs with
ties, early records (before the time difference), records out of order within the grace and
late records past it, through our TopologyTestDriver and Java Kafka Streams' (bench/reference
DifferentialRunner, WindowedTopologies.java: ``sli_*``). Compared as for tumbling and hopping
windows (``test_windowed_against_kafka_streams``): every output record (the input that caused
it, the windowed key's bytes, key, window start and end, value, timestamp), the final window
store (``all()`` and ``fetch(key, 0, max)``) and the records dropped as late, with the record
caches off and on."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.differential.compare import JavaRunner, first_difference, trades
from tests.differential.test_windowed_against_kafka_streams import (
    CLIENTS,
    _fail_on,
    _java_results,
    _live,
    run_python,
)
from tests.streamtable.topologies import SLIDING_SHAPES

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 20
SEED = 20261202


def _next_timestamp(rng: random.Random, stream_time: int) -> int:
    """In order (ties, steps of about the time difference, gaps that close windows), out of
    order within the grace, or late by up to 20 s; often 1 ms off a multiple of 500 ms, so
    that records land on and next to window bounds (``t - diff``, ``t + 1``)."""
    roll = rng.random()
    jitter = rng.choice([0, 0, 0, 1, -1, rng.randint(1, 499)])
    if roll < 0.6:
        step = rng.choice([0, 0, 500, 1_000, 2_000, 4_000, 5_000, 9_000, 20_000])
        ts = stream_time + step + jitter
    elif roll < 0.85:
        ts = stream_time - 500 * rng.randint(1, 6) + jitter
    else:
        ts = stream_time - 500 * rng.randint(6, 40) + jitter
    return max(0, ts)


def _sliding_cases(cache_max_bytes: int | None) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    return [
        {
            "case": f"{name}-{i}",
            "topology": name,
            "records": trades(rng, _next_timestamp, CLIENTS),
            "fetch_keys": CLIENTS,
            "cache_max_bytes": cache_max_bytes,
        }
        for name in SLIDING_SHAPES
        for i in range(CASES_PER_TOPOLOGY)
    ]


def reads_a_cached_expired_window(topology: str, records: list[dict[str, Any]]) -> bool:
    """Whether a record of the case, not late as a whole, has in its key's fetch range
    (``[t - 2 * diff, t + 1]``) a window its store had expired (started ``retention`` or more
    before the latest window start): one only Kafka Streams' record cache hands the aggregation
    (its ``CachingWindowStore`` merges the cache into ``backwardFetch`` without the retention
    check). The windows written and their order come from our driver, record caches off,
    emitting every update (they agree with Kafka Streams' then)."""
    shape = SLIDING_SHAPES[topology]
    update = topology.removesuffix("_final").removesuffix("_suppress")
    retention = shape.retention_ms or shape.default_retention_ms
    diff = shape.size_ms
    written: dict[int, list[tuple[str, int]]] = {}
    for out in run_python(update, records, cache_max_bytes=0)["outputs"]:
        written.setdefault(out["after"], []).append((out["key"]["key"], out["key"]["start"]))
    seen: list[tuple[str, int]] = []
    stream_time = -1
    for i, rec in enumerate(records):
        t = rec["ts"]
        stream_time = max(stream_time, t)
        key = rec["key"] if shape.op == "count" else rec["value"]["client"]
        expired_below = max((start for _, start in seen), default=-1) - retention
        if t + diff >= stream_time - shape.grace_ms and any(
            k == key and max(0, t - 2 * diff) <= start <= min(t + 1, expired_below)
            for k, start in seen
        ):
            return True
        seen.extend(written.get(i, []))
    return False


@pytest.mark.parametrize("cache_max_bytes", [0, None], ids=["caches_off", "caches_on"])
def test_sliding_windows_agree_with_kafka_streams(
    java_runner: JavaRunner, cache_max_bytes: int | None
) -> None:
    """Outputs and dropped records exactly; the window store too, except that with caches on
    Kafka Streams' reads also return windows past the retention while they are cached (see
    ``test_windowed_against_kafka_streams``), which are left out of its dump. With caches on,
    the aggregation reads through that cache too: a record that finds such an expired window
    may update it as closed (one more dropped record) or take it as the window before it (its
    left window seeded from it); ours never sees an expired window. A case that differs where
    a record read a cached expired window (``reads_a_cached_expired_window``; the same inputs
    agree exactly with caches off) is counted as that difference, and must be a minority;
    every other case agrees exactly. Emit-final stores are never cached (as Kafka Streams)."""
    cases = _sliding_cases(cache_max_bytes)
    results = _java_results(java_runner, cases)
    mismatches, expired_reads = [], 0
    for case in cases:
        java = results[case["case"]]
        ours = run_python(case["topology"], case["records"], cache_max_bytes=cache_max_bytes)
        shape = SLIDING_SHAPES[case["topology"]]
        if cache_max_bytes is None and shape.emit != "final":
            retention = shape.retention_ms or shape.default_retention_ms
            java = {**java, "stores": {"win-store": _live(java["stores"]["win-store"], retention)}}
        if ours == {k: java[k] for k in ours}:
            continue
        if cache_max_bytes is None and reads_a_cached_expired_window(
            case["topology"], case["records"]
        ):
            expired_reads += 1
        else:
            mismatches.append((case, first_difference(ours, java)))
    _fail_on(mismatches, len(cases))
    assert expired_reads < len(cases) // 10, expired_reads


def test_the_generated_inputs_hold_early_out_of_order_and_late_records() -> None:
    """The inputs exercise what they are meant to, for a time difference of 5 s and a grace
    of 2 s: records before the difference, ties, out of order within the grace, too late."""
    rng = random.Random(SEED)
    seen = {"early": 0, "tie": 0, "out_of_order": 0, "late": 0}
    for _ in range(CASES_PER_TOPOLOGY):
        stream_time = -1
        for rec in trades(rng, _next_timestamp, CLIENTS):
            ts = rec["ts"]
            if ts < 5_000:
                seen["early"] += 1
            if ts == stream_time:
                seen["tie"] += 1
            elif ts < stream_time:
                late = ts + 5_000 < stream_time - 2_000
                seen["late" if late else "out_of_order"] += 1
            stream_time = max(stream_time, ts)
    assert all(n >= 10 for n in seen.values()), seen
