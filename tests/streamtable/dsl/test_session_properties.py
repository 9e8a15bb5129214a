"""Property test: for random (key, timestamp) sequences, out of order and late, the driver's
session counts (in the store, and the table the outputs describe) equal a brute-force oracle:
a key's sessions are its accepted timestamps cut wherever two neighbours are more than the
gap apart (each session counts its records, and spans its first to its last timestamp); a
record is late, and dropped, when the session it would land in ends before ``stream time -
grace - gap``. The store keeps every session here (a retention longer than the input), so
every session a record reaches can merge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

import streamtable as st
from streamtable.serde import JSON, STRING

pytestmark = pytest.mark.unit

RETENTION = timedelta(hours=1)


def sessions_of(timestamps: list[int], gap: int) -> list[tuple[int, int, int]]:
    """``(start, end, count)`` of the sessions of these timestamps, by brute force."""
    sessions: list[tuple[int, int, int]] = []
    for ts in sorted(timestamps):
        if sessions and ts - sessions[-1][1] <= gap:
            start, _, n = sessions[-1]
            sessions[-1] = (start, ts, n + 1)
        else:
            sessions.append((ts, ts, 1))
    return sessions


@dataclass
class Oracle:
    gap: int
    grace: int
    stream_time: int = -1
    accepted: dict[str, list[int]] = field(default_factory=dict)
    late: int = 0

    def add(self, key: str, timestamp: int) -> None:
        self.stream_time = max(self.stream_time, timestamp)
        mine = self.accepted.get(key, [])
        landing = next(
            (start, end)
            for start, end, _ in sessions_of([*mine, timestamp], self.gap)
            if start <= timestamp <= end
        )
        if landing[1] < self.stream_time - self.grace - self.gap:
            self.late += 1
        else:
            self.accepted[key] = [*mine, timestamp]

    def sessions(self) -> dict[tuple[str, int, int], int]:
        return {
            (key, start, end): n
            for key, stamps in self.accepted.items()
            for start, end, n in sessions_of(stamps, self.gap)
        }


records = s.lists(
    s.tuples(s.sampled_from(["a", "b", "ab"]), s.integers(min_value=0, max_value=40_000)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    s.sampled_from([1, 500, 3_000, 10_000]),  # gap
    s.sampled_from([0, 500, 4_000]),  # grace
    records,
    s.booleans(),
)
def test_session_counts_equal_the_oracle(
    gap: int, grace: int, piped: list[tuple[str, int]], cached: bool
) -> None:
    oracle = Oracle(gap, grace)
    b = st.StreamsBuilder()
    windows = st.SessionWindows.of_inactivity_gap_and_grace(
        timedelta(milliseconds=gap), timedelta(milliseconds=grace)
    )
    counts = (
        b.stream("in", key_serde=STRING, value_serde=JSON)
        .group_by_key()
        .windowed_by(windows)
        .count(store="counts", retention=RETENTION)
    )
    counts.to_stream().to("out")
    config = {"cache_max_bytes": 1 << 20 if cached else 0}
    with st.TopologyTestDriver(b.build(), config=config, start_time=0) as d:
        source = d.input_topic("in")
        for key, timestamp in piped:
            source.pipe(key, {}, timestamp)
            oracle.add(key, timestamp)
        expected = oracle.sessions()
        store = d.session_store("counts")
        stored = {(w.key, w.window.start_ms, w.window.end_ms): n for w, n in store.all()}
        assert stored == expected
        for key in ("a", "b", "ab"):
            fetched = [(w.window.start_ms, w.window.end_ms, n) for w, n in store.fetch(key)]
            mine = [(start, end, n) for (k, start, end), n in expected.items() if k == key]
            assert fetched == sorted(mine, key=lambda row: (row[1], row[0]))
        table: dict[tuple[str, int, int], int] = {}
        for windowed, value, timestamp, _ in d.output_topic("out").read_records():
            session = (windowed.key, windowed.window.start_ms, windowed.window.end_ms)
            assert timestamp == windowed.window.end_ms
            if value is None:
                del table[session]
            else:
                table[session] = value
        assert table == expected
        assert d.dropped_records().get("late", 0) == oracle.late
