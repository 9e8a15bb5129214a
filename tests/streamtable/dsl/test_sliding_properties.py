"""Property test: for random (key, timestamp) sequences in any order, with a grace period long
enough that nothing is late, the driver's sliding-window counts (in the store, and the last
output per windowed key, with its timestamp) equal a brute-force oracle of what Kafka Streams'
sliding windows are: per key, the left window ``[t - diff, t]`` of each record at ``t >= diff``,
the window ``[0, diff]`` when a record is before ``diff``, and the right window
``[t + 1, t + 1 + diff]`` of each record at ``t`` that a later record falls in; each holding
the records at ``start <= ts <= end``, its timestamp the latest of theirs. The windows do not
depend on the order the records came in."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as s

import streamtable as st
from streamtable.serde import JSON, STRING

pytestmark = pytest.mark.unit

GRACE_MS = 100_000  # more than any timestamp drawn: no record is ever late


def oracle(piped: list[tuple[str, int]], diff: int) -> dict[tuple[str, int], tuple[int, int]]:
    """``(key, window start) -> (count, latest timestamp)``, by brute force."""
    times: dict[str, list[int]] = defaultdict(list)
    for key, ts in piped:
        times[key].append(ts)
    windows: dict[tuple[str, int], tuple[int, int]] = {}
    for key, stamps in times.items():
        starts = {max(0, t - diff) for t in stamps}
        starts |= {t + 1 for t in stamps if any(t < u <= t + 1 + diff for u in stamps)}
        for start in starts:
            inside = [u for u in stamps if start <= u <= start + diff]
            windows[key, start] = (len(inside), max(inside))
    return windows


records = s.lists(
    s.tuples(s.sampled_from(["a", "b", "ab"]), s.integers(min_value=0, max_value=30_000)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(s.sampled_from([1, 500, 2_000, 5_000]), records, s.booleans())
def test_sliding_counts_equal_the_oracle(
    diff: int, piped: list[tuple[str, int]], cached: bool
) -> None:
    b = st.StreamsBuilder()
    ms = timedelta(milliseconds=1)
    windows = st.SlidingWindows.of_time_difference_and_grace(diff * ms, GRACE_MS * ms)
    counts = (
        b.stream("in", key_serde=STRING, value_serde=JSON)
        .group_by_key()
        .windowed_by(windows)
        .count(store="counts")
    )
    counts.to_stream().to("out")
    config = {"cache_max_bytes": 1 << 20 if cached else 0}
    expected = oracle(piped, diff)
    with st.TopologyTestDriver(b.build(), config=config, start_time=0) as d:
        source = d.input_topic("in")
        for key, timestamp in piped:
            source.pipe(key, {}, timestamp)
        stored = {(k.key, k.window.start_ms): n for k, n in d.window_store("counts").all()}
        assert stored == {w: n for w, (n, _) in expected.items()}
        last: dict[tuple[str, int], tuple[int, int]] = {}
        for key, value, timestamp, _ in d.output_topic("out").read_records():
            assert key.window.end_ms == key.window.start_ms + diff
            last[key.key, key.window.start_ms] = (value, timestamp)
        assert last == expected
        assert d.dropped_records().get("late", 0) == 0
