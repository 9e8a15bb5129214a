"""Helpers of the differential tests: running cases through the Java runner and finding where
our results and Kafka Streams' first differ."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

JavaRunner = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def java_results(java_runner: JavaRunner, cases: list[dict[str, Any]]) -> dict[str, Any]:
    """The Java runner's result per case id; fails if it rejected a case or an input record."""
    results = {r["case"]: r for r in java_runner(cases)}
    for case in cases:
        java = results[case["case"]]
        assert "fatal" not in java, java
        errors = [o for o in java["outputs"] if "error" in o]
        assert not errors, f"{case['case']}: the Java runner rejected an input: {errors[0]}"
    return results


def first_difference(ours: dict[str, Any], java: dict[str, Any]) -> dict[str, Any]:
    """The first part of ``ours`` that differs from ``java``: for outputs, the first record."""
    for part in ours:
        if ours[part] != java[part]:
            if part != "outputs":
                return {"part": part, "python": ours[part], "java": java[part]}
            pairs = zip(ours[part], java[part], strict=False)
            at = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
            if at is None:
                at = min(len(ours[part]), len(java[part]))
            python_at = ours[part][at] if at < len(ours[part]) else None
            java_at = java[part][at] if at < len(java[part]) else None
            return {"part": part, "index": at, "python": python_at, "java": java_at}
    return {}


def trades(
    rng: random.Random, next_timestamp: Callable[[random.Random, int], int], clients: Sequence[str]
) -> list[dict[str, Any]]:
    """Up to 40 ``trades`` records keyed by a client, for another (or the same) client, their
    times drawn by ``next_timestamp(rng, stream_time)`` from a random start: the windowed and
    session tests' inputs."""
    records = []
    stream_time = rng.choice([0, 1_000, 9_500, 60_000])
    for _ in range(rng.randint(1, 40)):
        ts = next_timestamp(rng, stream_time)
        stream_time = max(stream_time, ts)
        value = {"client": rng.choice(clients), "amount": rng.randint(1, 100)}
        records.append({"topic": "trades", "key": rng.choice(clients), "value": value, "ts": ts})
    return records
