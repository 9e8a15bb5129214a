"""Property test: for random (key, timestamp) sequences, out of order and late, the driver's
windowed counts (in the store, and the last output per windowed key) equal a brute-force oracle
applying Kafka Streams' rules: stream time = the latest timestamp seen; a record counts in each
window ``[start, start + size)`` holding it (start a multiple of the advance, >= 0) whose
``end + grace`` is after the stream time, and is dropped as late for each other one; the store
keeps the windows starting after ``its latest window start - retention``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

import streamtable as st
from streamtable.serde import JSON, STRING

pytestmark = pytest.mark.unit


@dataclass
class Oracle:
    size: int
    advance: int
    grace: int
    retention: int
    stream_time: int = -1
    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    latest: dict[tuple[str, int], int] = field(default_factory=dict)  # window -> max timestamp
    late: int = 0

    def add(self, key: str, timestamp: int) -> None:
        self.stream_time = max(self.stream_time, timestamp)
        start = 0
        while start <= timestamp:  # every window start, brute force
            if timestamp < start + self.size:
                if start + self.size + self.grace > self.stream_time:
                    self.counts[key, start] += 1
                    self.latest[key, start] = max(self.latest.get((key, start), -1), timestamp)
                else:
                    self.late += 1
            start += self.advance

    def stored(self) -> dict[tuple[str, int], int]:
        latest_start = max((start for _, start in self.counts), default=-1)
        return {w: n for w, n in self.counts.items() if w[1] > latest_start - self.retention}


windows = s.tuples(
    s.sampled_from([1_000, 3_000, 10_000]),  # size
    s.sampled_from([1, 2, 3]),  # hops per window
    s.sampled_from([0, 500, 4_000]),  # grace
    s.sampled_from([0, 2_000, 30_000]),  # extra retention
)
records = s.lists(
    s.tuples(s.sampled_from(["a", "b", "ab"]), s.integers(min_value=0, max_value=40_000)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(windows, records, s.booleans())
def test_windowed_counts_equal_the_oracle(
    shape: tuple[int, int, int, int], piped: list[tuple[str, int]], cached: bool
) -> None:
    size, hops, grace, extra = shape
    advance = size // hops
    oracle = Oracle(size, advance, grace, size + grace + extra)
    b = st.StreamsBuilder()
    time_windows = st.TimeWindows.of_size_and_grace(
        timedelta(milliseconds=size), timedelta(milliseconds=grace)
    ).advance_by(timedelta(milliseconds=advance))
    counts = (
        b.stream("in", key_serde=STRING, value_serde=JSON)
        .group_by_key()
        .windowed_by(time_windows)
        .count(store="counts", retention=timedelta(milliseconds=oracle.retention))
    )
    counts.to_stream().to("out")
    config = {"cache_max_bytes": 1 << 20 if cached else 0}
    with st.TopologyTestDriver(b.build(), config=config, start_time=0) as d:
        source = d.input_topic("in")
        for key, timestamp in piped:
            source.pipe(key, {}, timestamp)
            oracle.add(key, timestamp)
        stored = {(k.key, k.window.start_ms): n for k, n in d.window_store("counts").all()}
        assert stored == oracle.stored()
        last: dict[tuple[str, int], tuple[int, int]] = {}
        for key, value, timestamp, _ in d.output_topic("out").read_records():
            assert key.window.end_ms == key.window.start_ms + size
            last[key.key, key.window.start_ms] = (value, timestamp)
        assert last == {w: (n, oracle.latest[w]) for w, n in oracle.counts.items()}
        assert d.dropped_records().get("late", 0) == oracle.late
