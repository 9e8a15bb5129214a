"""The ``windowed`` kind (``topologies.windowed_topology``): its record times, oracle and verdict.

Record times: every record is produced with an explicit timestamp, ``base + at``. ``at`` (ms)
grows with the record's index over the run's span (drawn: 150-240 s of record time, so tens of
windows), and about one record in twenty falls back by up to ``disorder_ms``, less than the
grace period: within a partition (records keep their produce order there, and the count reads
the input partitions without a repartition) no record is ever late, whatever the faults. A
position's value carries its ``at`` (the serde drops the field); a tombstone or a malformed
record gets the time of the record before it. ``base`` is chosen when the run starts
(:func:`time_base`): a multiple of ``ALIGN_MS``, minutes in the past, so the broker keeps every
record and a window start is ``base`` plus the same offset in every run of a seed.

Oracle (:func:`expected`): the count of every (position id, window) of the valid input. A
window store keeps a window while its start is after ``stream time - retention``, its stream time
being the latest window start written to that partition's store: at the end, the latest window
start of the partition's records (positions are keyed by id; the producer places them by
murmur2 of it). So the windows split exactly into live ones, which the instances together must
show once each with their count (exact under exactly_once_v2, never below it under
at_least_once, where a replay counts again), and expired ones, which no instance may show,
whatever restores (kill -9, a wiped state dir) happened (:func:`compare_stores`).

Under exactly_once_v2 the store's changelog, read_committed, must end at the count of every
window, live or expired, rising at each record (:func:`compare_changelog`).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from streamtable.topology import partition_for
from tests.chaos.topologies import ALIGN_MS, Event, WindowShape

OUT_OF_ORDER = 0.05  # the share of records that fall back in time
_SHOWN = 8  # windows shown in a report


def draw_windowed(
    rng: random.Random, preload: list[Event], live: list[Event]
) -> tuple[WindowShape, list[Event], list[Event]]:
    """A window shape, and ``preload`` and ``live`` with each position's ``at``."""
    size = rng.choice((2000, 5000))
    advance = size if rng.random() < 0.6 else size // 2  # tumbling, or hopping by half
    span_ms = rng.uniform(150_000, 240_000)
    # The live windows at the end are the last 10-45% of the run, so a fault's windows are
    # sometimes among them and the earlier ones have expired (and their segments gone).
    retention = max(2 * size, round(span_ms * rng.uniform(0.1, 0.45) / size) * size)
    shape = WindowShape(size, advance, size, retention, disorder_ms=size * 3 // 4)
    stamped = stamp_events([*preload, *live], span_ms, rng, shape.disorder_ms)
    # drawn last: a seed drawn before emit-final came keeps its shape and record times
    final = rng.random() < 0.5
    shape = dataclasses.replace(shape, emit_final=final, suppress=not final and rng.random() < 0.6)
    return shape, stamped[: len(preload)], stamped[len(preload) :]


def stamp_events(
    events: list[Event], span_ms: float, rng: random.Random, disorder_ms: int
) -> list[Event]:
    """``events`` with each position's ``at``: growing with its index over ``span_ms``, about
    one in twenty falling back by up to ``disorder_ms``."""
    step = span_ms / max(1, len(events))
    return [_stamped(event, int(n * step), rng, disorder_ms) for n, event in enumerate(events)]


def _stamped(event: Event, at: int, rng: random.Random, disorder_ms: int) -> Event:
    role, key, value = event
    if value is None:
        return event
    if rng.random() < OUT_OF_ORDER:
        at = max(0, at - rng.randint(1, disorder_ms))
    return role, key, {**value, "at": at}


def time_base(now_s: float | None = None) -> int:
    """A run's time base: ``ALIGN_MS``-aligned, 10 to 11 minutes before ``now_s``."""
    now_ms = int((time.time() if now_s is None else now_s) * 1000)
    return (now_ms - 10 * ALIGN_MS) // ALIGN_MS * ALIGN_MS


def record_times(events: list[Event], base_ms: int | None) -> list[int]:
    """The timestamp of each of ``events`` and one more (for malformed records after the
    last): ``base_ms`` plus the position's ``at``, or the one before's; without a base, 0
    (confluent-kafka's default: the producer's clock)."""
    if base_ms is None:
        return [0] * (len(events) + 1)
    at, times = 0, []
    for _, _, value in events:
        at = at if value is None else value.get("at", at)
        times.append(base_ms + at)
    return [*times, base_ms + at]


def window_key(key: str, start_ms: int) -> str:
    """How a window is named in dumps and reports: ``key@start``."""
    return f"{key}@{start_ms}"


def window_starts(timestamp: int, shape: WindowShape) -> range:
    """The starts of the windows holding ``timestamp``: multiples of the advance in
    ``(timestamp - size, timestamp]``, not below 0."""
    advance = shape.advance_ms
    first = ((timestamp - shape.size_ms) // advance + 1) * advance
    return range(max(0, first), timestamp + 1, advance)


@dataclass(frozen=True)
class Expected:
    live: dict[str, int]  # window_key -> count: what the stores must show
    expired: dict[str, int]  # past the retention at the end: what no store may show
    stream_time: dict[int, int]  # partition -> its latest window start


def expected(events: list[Event], shape: WindowShape, partitions: int, base_ms: int) -> Expected:
    """The windows of the valid position records in ``events``, split by the retention."""
    counts, latest_time = _counted(events, shape, partitions, base_ms)
    # a partition's latest window start: that of its latest record
    latest = {p: window_starts(t, shape)[-1] for p, t in latest_time.items()}
    # Kafka Streams' emit-final store (and so streamtable's) keeps windows 1 ms longer
    retention = shape.retention_ms + 1 if shape.emit_final else shape.retention_ms
    live: dict[str, int] = {}
    expired: dict[str, int] = {}
    for (key, start), n in sorted(counts.items()):
        stream_time = latest[partition_for(key.encode(), partitions)]
        kept = start > stream_time - retention
        (live if kept else expired)[window_key(key, start)] = n
    return Expected(live, expired, latest)


def _counted(
    events: list[Event], shape: WindowShape, partitions: int, base_ms: int
) -> tuple[Counter[tuple[str, int]], dict[int, int]]:
    """The count of each (key, window start) of the valid position records in ``events``,
    and each partition's latest record time."""
    counts: Counter[tuple[str, int]] = Counter()
    latest: dict[int, int] = {}
    for role, key, value in events:
        if role != "positions" or value is None:
            continue
        ts = base_ms + value["at"]
        for start in window_starts(ts, shape):
            counts[(key, start)] += 1
        p = partition_for(key.encode(), partitions)
        latest[p] = max(latest.get(p, -1), ts)
    return counts, latest


def compare_stores(want: Expected, stores: dict[str, dict[str, Any]], exact: bool) -> list[str]:
    """``stores`` (instance -> window_key -> count) against the oracle; see the module doc."""
    union: dict[str, Any] = {}
    where: dict[str, str] = {}
    twice = []
    for name, store in sorted(stores.items()):
        for key, count in store.items():
            if key in union:
                twice.append(f"{key} ({where[key]}, {name})")
            union[key], where[key] = count, name
    failures = []
    if twice:
        failures.append(f"{len(twice)} windows served by two instances: {twice[:_SHOWN]}")
    missing = [k for k in want.live if k not in union]
    wrong = [
        f"{k}: expected {n}, got {union[k]} on {where[k]}"
        for k, n in want.live.items()
        if k in union and (union[k] != n if exact else union[k] < n)
    ]
    visible = [f"{k} on {where[k]}" for k in union if k in want.expired]
    unexpected = [f"{k} on {where[k]}" for k in union if k not in want.live | want.expired]
    return failures + reported(
        "store: {n} {what} of " + f"{len(want.live)} live",
        [
            ("live windows missing", missing),
            (
                "live windows " + ("differ from" if exact else "fall short of") + " the oracle",
                wrong,
            ),
            ("expired windows visible (past the retention)", visible),
            ("windows not implied by the input", unexpected),
        ],
    )


def compare_changelog(want: Expected, history: dict[str, list[Any]]) -> list[str]:
    """Under exactly_once_v2: the changelog's values per window (``history``, in offset order)
    end at the oracle's count of every window, live or expired, and rise at each record."""
    every = want.live | want.expired
    missing = [k for k in every if k not in history]
    wrong = [
        f"{k}: expected {n}, ends at {history[k][-1]}"
        for k, n in every.items()
        if k in history and history[k][-1] != n
    ]
    unexpected = [k for k in history if k not in every]
    falling = [
        f"{k}: {values[-10:]}"
        for k, values in history.items()
        if any(a is None or b is None or b <= a for a, b in pairwise(values))
    ]
    return reported(
        "changelog (read_committed): {n} of " + f"{len(every)} {{what}}",
        [
            ("windows missing", missing),
            ("windows end off the oracle", wrong),
            ("windows not implied by the input", unexpected),
            ("windows whose counts do not rise", falling),
        ],
    )


def reported(line: str, findings: list[tuple[str, list[str]]]) -> list[str]:
    """A failure line (``line`` formatted with ``n`` and ``what``, then the first findings) for
    each kind of finding that found any."""
    return [
        f"{line.format(n=len(found), what=what)}: {found[:_SHOWN]}"
        for what, found in findings
        if found
    ]


def closed(
    events: list[Event], shape: WindowShape, partitions: int, base_ms: int
) -> dict[str, int]:
    """With ``emit_final`` or ``suppress``: the windows (``key@start`` -> count) whose end +
    grace the stream time of their partition (its latest record time) reached: those
    emitted, each once."""
    counts, latest = _counted(events, shape, partitions, base_ms)
    return {
        window_key(key, start): n
        for (key, start), n in sorted(counts.items())
        if start + shape.size_ms <= latest[partition_for(key.encode(), partitions)] - shape.grace_ms
    }


def compare_final(want: dict[str, int], emitted: list[tuple[str, Any]], exact: bool) -> list[str]:
    """The output of emit-final (``(key@start, count)`` in offset order) against the closed
    windows: each emitted with its count, once under exactly_once_v2 (read_committed); at
    least once, never below the count, under at_least_once; no window that is not closed."""
    seen: dict[str, list[Any]] = {}
    for name, value in emitted:
        seen.setdefault(name, []).append(value)
    missing = [k for k in want if k not in seen]
    wrong = [
        f"{k}: expected {n}, emitted {seen[k]}"
        for k, n in want.items()
        if k in seen and any((v != n if exact else v is None or v < n) for v in seen[k])
    ]
    twice = [f"{k}: {v}" for k, v in seen.items() if exact and len(v) > 1]
    early = [f"{k}: {v}" for k, v in seen.items() if k not in want]
    return reported(
        "output: {n} of " + f"{len(want)} {{what}}",
        [
            ("closed windows never emitted", missing),
            ("closed windows emitted " + ("off" if exact else "below") + " their count", wrong),
            ("windows emitted more than once", twice),
            ("windows emitted that are not closed", early),
        ],
    )
