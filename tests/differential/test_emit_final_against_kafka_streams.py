"""Differential tests of emit-final and suppression: the windowed reference topologies (tumbling
and hopping ``count``, ``reduce``, ``aggregate``) with ``emit_strategy(EmitStrategy
.on_window_close())`` (``<name>_final``), ``suppress(Suppressed.until_window_closes(
BufferConfig.unbounded()))`` (``<name>_suppress``) and ``suppress(Suppressed.until_time_limit(5
s, ...))`` (``<name>_limit``: unbounded for tumbling windows, at most 3 records emitted early
when full for hopping ones), through our TopologyTestDriver and Java Kafka Streams'
(bench/reference DifferentialRunner, WindowedTopologies.java), on the seeded random inputs of
``test_windowed_against_kafka_streams`` (ties, out of order within the grace, late past it).

Compared record for record: which input caused each output, the windowed key's bytes, key,
window, value and timestamp; then the window store and the records dropped as late. The Java
runner sets Kafka Streams' internal ``__emit.interval.ms.kstreams.windowed.aggregation__`` to 0
(its driver never advances wall-clock time, so with the default 1 s only the first record could
emit final results; ours checks after every record)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.differential.compare import JavaRunner, first_difference
from tests.differential.test_windowed_against_kafka_streams import (
    _cases,
    _fail_on,
    _java_results,
    _live,
    run_python,
)
from tests.streamtable.topologies import ALL_WINDOW_SHAPES, EMIT_TOPOLOGIES

pytestmark = pytest.mark.integration

CASES_PER_TOPOLOGY = 40
SEED = 20261202


def _expired_in_java(case: dict[str, Any], output: dict[str, Any]) -> bool:
    """Whether Kafka Streams' emit-final store had expired ``output``'s window when the input
    ``output["after"]`` closed it: its start is before the store's stream time (the latest
    window start written, the input itself included) minus the retention (its time-ordered
    store keeps a window starting exactly there)."""
    shape = ALL_WINDOW_SHAPES[case["topology"]]
    retention = shape.retention_ms or shape.size_ms + shape.grace_ms
    latest = max(r["ts"] for r in case["records"][: output["after"] + 1])
    store_time = latest // shape.advance_ms * shape.advance_ms
    return bool(output["key"]["start"] < store_time - retention)


def _without_emits_java_skips(case: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Our emit-final outputs without those Kafka Streams' uncached store never emits (see
    ``streamtable.processors.window_emit_final``)."""
    kept = [o for o in ours["outputs"] if not _expired_in_java(case, o)]
    return {**ours, "outputs": kept}


def _compare(java_runner: JavaRunner, cache_max_bytes: int | None) -> Counter[str]:
    """Runs every case both ways; fails on a difference; returns what was compared."""
    cases = _cases(cache_max_bytes, EMIT_TOPOLOGIES, CASES_PER_TOPOLOGY, SEED)
    results = _java_results(java_runner, cases)
    mismatches = []
    seen: Counter[str] = Counter()
    for case in cases:
        java = results[case["case"]]
        ours = run_python(case["topology"], case["records"], cache_max_bytes=cache_max_bytes)
        if cache_max_bytes is None:  # see the windowed test: Java's cached reads add expired
            shape = ALL_WINDOW_SHAPES[case["topology"]]
            retention = shape.retention_ms or shape.size_ms + shape.grace_ms
            if shape.emit == "final":
                retention += 1  # its time-ordered store keeps a window 1 ms longer
            java = {**java, "stores": {"win-store": _live(java["stores"]["win-store"], retention)}}
        emit = ALL_WINDOW_SHAPES[case["topology"]].emit
        if cache_max_bytes == 0 and emit == "final":
            full = len(ours["outputs"])
            ours = _without_emits_java_skips(case, ours)
            seen["final outputs Java's uncached store skips"] += full - len(ours["outputs"])
        if ours != {k: java[k] for k in ours}:
            mismatches.append((case, first_difference(ours, java)))
        seen["cases"] += 1
        seen[f"{emit} outputs"] += len(java["outputs"])
        seen["dropped late"] += java["dropped_records"]
        seen["inputs"] += len(case["records"])
    _fail_on(mismatches, len(cases))
    print(dict(seen))
    return seen


def test_emit_final_and_suppress_agree_with_kafka_streams(java_runner: JavaRunner) -> None:
    """Record caches off on both sides: outputs, window store and dropped records, exactly,
    except the emit-final results of windows that Kafka Streams' uncached store had expired
    when they closed (it never emits those; we do, as it does with its cache on)."""
    seen = _compare(java_runner, cache_max_bytes=0)
    assert seen["final outputs Java's uncached store skips"] > 0, seen
    # The inputs make every kind of topology emit, and drop late records.
    assert all(seen[f"{emit} outputs"] > 100 for emit in ("final", "suppress", "limit")), seen
    assert seen["dropped late"] > 50, seen


def test_with_record_caches_emit_final_and_suppress_agree(java_runner: JavaRunner) -> None:
    """Record caches on (the default) on both sides: outputs and dropped records exactly (every
    closed window is emitted on both sides); the stores without the expired windows Kafka
    Streams' caching store still returns."""
    _compare(java_runner, cache_max_bytes=None)
