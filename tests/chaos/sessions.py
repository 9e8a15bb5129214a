"""The ``sessions`` kind (``topologies.sessions_topology``): its record times, oracle and checks.

Record times are the windowed kind's (``windowed.py``: ``base + at``, about one record in twenty
falling back by less than the grace period, so no record is ever late). The inactivity gap is
drawn near the average time between two records of one position, so a position's records fall
into several sessions, some of them merged from earlier ones.

Oracle (:func:`expected`): a position's sessions are its valid records' times cut wherever two
consecutive ones (in time order) are more than the gap apart, each session counting its
records, as Kafka Streams' session windows merge (a record joins every session within the gap
of it, whatever order the records came in, as long as it is not late). A session store keys
and expires sessions by their end, its stream time being the latest session end written to
that partition's store: the latest record time of the partition. So, as for the windowed kind,
the sessions split into live ones (ending after ``stream time - retention``), which the
instances together must show once each with their count (exact under exactly_once_v2, never
below it under at_least_once: a replayed record lands in the same session), and expired ones,
which no instance may show (``windowed.compare_stores``).

Under exactly_once_v2 the store's changelog, read_committed, must end at the count of every
session, live or expired, and at a tombstone for every session merged away; a session's counts
rise (a record inside a session rewrites it: a tombstone, then the new count; see
:func:`compare_changelog`).
"""

from __future__ import annotations

import dataclasses
import random
from itertools import pairwise
from typing import Any

from streamtable.topology import partition_for
from tests.chaos.topologies import ALIGN_MS, Event, WindowShape
from tests.chaos.windowed import Expected, reported, stamp_events

GRACE_MS = 4_000
DISORDER_MS = 3_000
GAPS = (2_000, 3_000, 4_000, 5_000, 6_000, 10_000, 12_000, 15_000, 20_000)
"""The inactivity gaps drawn from: each divides ``ALIGN_MS``, as a WindowShape's advance must."""
_SHOWN = 8


def draw_sessions(
    rng: random.Random, preload: list[Event], live: list[Event]
) -> tuple[WindowShape, list[Event], list[Event]]:
    """A session shape, and ``preload`` and ``live`` with each position's ``at``."""
    span_ms = rng.uniform(150_000, 240_000)
    events = [*preload, *live]
    keys = {key for role, key, value in events if role == "positions" and value is not None}
    spacing = span_ms * max(1, len(keys)) / max(1, len(events))  # one position's, on average
    target = spacing * rng.uniform(0.3, 1.5)
    gap = min(GAPS, key=lambda g: abs(g - target))
    retention = max(gap + GRACE_MS, round(span_ms * rng.uniform(0.1, 0.45) / 1000) * 1000)
    shape = WindowShape(gap, gap, GRACE_MS, retention, DISORDER_MS, sessions=True)
    stamped = stamp_events(events, span_ms, rng, DISORDER_MS)
    final = rng.random() < 0.35  # drawn last: the seeds drawn before keep their times
    shape = dataclasses.replace(shape, emit_final=final, suppress=not final and rng.random() < 0.5)
    assert ALIGN_MS % gap == 0
    return shape, stamped[: len(preload)], stamped[len(preload) :]


def session_key(key: str, start_ms: int, end_ms: int) -> str:
    """How a session is named in dumps and reports: ``key@start..end``."""
    return f"{key}@{start_ms}..{end_ms}"


def sessions_of(times: list[int], gap_ms: int) -> list[tuple[int, int, int]]:
    """``(start, end, count)`` of the sessions of these record times, earliest first."""
    out: list[tuple[int, int, int]] = []
    for t in sorted(times):
        if out and t - out[-1][1] <= gap_ms:
            start, _, count = out[-1]
            out[-1] = (start, t, count + 1)
        else:
            out.append((t, t, 1))
    return out


def expected(events: list[Event], shape: WindowShape, partitions: int, base_ms: int) -> Expected:
    """The sessions of the valid position records in ``events``, split by the retention."""
    times: dict[str, list[int]] = {}
    for role, key, value in events:
        if role == "positions" and value is not None:
            times.setdefault(key, []).append(base_ms + value["at"])
    latest: dict[int, int] = {}
    for key, ts in times.items():
        p = partition_for(key.encode(), partitions)
        latest[p] = max(latest.get(p, -1), max(ts))
    live: dict[str, int] = {}
    expired: dict[str, int] = {}
    for key, ts in sorted(times.items()):
        stream_time = latest[partition_for(key.encode(), partitions)]
        for start, end, count in sessions_of(ts, shape.size_ms):
            kept = end > stream_time - shape.retention_ms
            (live if kept else expired)[session_key(key, start, end)] = count
    return Expected(live, expired, latest)


def compare_changelog(want: Expected, history: dict[str, list[Any]]) -> list[str]:
    """Under exactly_once_v2: the changelog's values per session (``history``, in offset
    order) end at the oracle's count of every session, live or expired, and at a tombstone for
    every other (merged away); a session's counts (tombstones aside) rise."""
    every = want.live | want.expired
    missing = [k for k in every if k not in history]
    wrong = [
        f"{k}: expected {n}, ends at {history[k][-1]}"
        for k, n in every.items()
        if k in history and history[k][-1] != n
    ]
    left = [f"{k}: {values[-3:]}" for k, values in history.items()
            if k not in every and values[-1] is not None]  # fmt: skip
    falling = [
        f"{k}: {values[-10:]}"
        for k, values in history.items()
        if any(b <= a for a, b in pairwise(v for v in values if v is not None))
    ]
    return reported(
        "changelog (read_committed): {n} of " + f"{len(every)} {{what}}",
        [
            ("sessions missing", missing),
            ("sessions end off the oracle", wrong),
            ("sessions not implied by the input left without a tombstone", left),
            ("sessions whose counts do not rise", falling),
        ],
    )


def closed(
    events: list[Event], shape: WindowShape, partitions: int, base_ms: int
) -> dict[str, int]:
    """With ``emit_final`` or ``suppress``: the sessions (``key@start..end`` -> count) that
    closed, their end before ``stream time - gap - grace`` of their partition (emit-final; at
    or before it for suppress, as Kafka Streams). No record can merge into a closed session:
    it would have to be later than the grace, which none is."""
    want = expected(events, shape, partitions, base_ms)
    every = want.live | want.expired
    latest = want.stream_time  # the partition's latest record time: its latest session end
    out = {}
    for name, count in every.items():
        key, span = name.rsplit("@", 1)
        end = int(span.split("..")[1])
        close = latest[partition_for(key.encode(), partitions)] - shape.grace_ms - shape.size_ms
        if end < close or (shape.suppress and end == close):
            out[name] = count
    return out
