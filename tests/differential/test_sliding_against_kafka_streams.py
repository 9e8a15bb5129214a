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

CASES_PER_TOPOLOGY = 25
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


@pytest.mark.parametrize("cache_max_bytes", [0, None], ids=["caches_off", "caches_on"])
def test_sliding_windows_agree_with_kafka_streams(
    java_runner: JavaRunner, cache_max_bytes: int | None
) -> None:
    """Outputs and dropped records exactly; the window store too, except that with caches on
    Kafka Streams' reads also return windows past the retention while they are cached (see
    ``test_windowed_against_kafka_streams``), which are left out of its dump."""
    cases = _sliding_cases(cache_max_bytes)
    results = _java_results(java_runner, cases)
    mismatches = []
    for case in cases:
        java = results[case["case"]]
        ours = run_python(case["topology"], case["records"], cache_max_bytes=cache_max_bytes)
        shape = SLIDING_SHAPES[case["topology"]]
        if cache_max_bytes is None and shape.emit != "final":  # emit-final is never cached
            retention = shape.retention_ms or shape.default_retention_ms
            java = {**java, "stores": {"win-store": _live(java["stores"]["win-store"], retention)}}
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
    _fail_on(mismatches, len(cases))


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
