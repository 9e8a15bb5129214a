"""The sessions kind's oracle and checks, without a broker: the oracle agrees with streamtable's
session count in the test driver (one partition), the gap makes several sessions per position,
and each check reports what it is there to find."""

from __future__ import annotations

from typing import Any

import pytest

import streamtable as st
from tests.chaos.plan import Size, draw
from tests.chaos.sessions import (
    closed,
    compare_changelog,
    expected,
    session_key,
    sessions_of,
)
from tests.chaos.test_windowed import BASE, keys_in_two_partitions, pipe_timed, position
from tests.chaos.topologies import KINDS, WindowShape
from tests.chaos.windowed import Expected, compare_final

pytestmark = pytest.mark.unit

GAP = WindowShape(1000, 1000, 2000, 5000, disorder_ms=1500, sessions=True)


def test_sessions_of_cut_where_records_are_more_than_the_gap_apart() -> None:
    got = sessions_of([5000, 100, 1100, 2101, 2102], 1000)
    assert got == [(100, 1100, 2), (2101, 2102, 2), (5000, 5000, 1)]
    assert sessions_of([0, 1000, 2000], 1000) == [(0, 2000, 3)]  # the gap is inclusive
    assert sessions_of([], 1000) == []


def test_expected_expires_sessions_by_their_end_per_partition() -> None:
    a, b = keys_in_two_partitions(4)
    # a's partition reaches 9000: sessions ending after 4000 live; b's stops at 3000.
    events = [position(a, 1000), position(a, 1900), position(b, 3000), position(a, 3500),
              position(a, 9000), ("positions", a, None), position(a, 8600)]  # fmt: skip
    want = expected(events, GAP, 4, BASE)
    assert want.live == {
        session_key(a, BASE + 8600, BASE + 9000): 2,
        session_key(b, BASE + 3000, BASE + 3000): 1,
    }
    assert want.expired == {
        session_key(a, BASE + 1000, BASE + 1900): 2,
        session_key(a, BASE + 3500, BASE + 3500): 1,
    }


@pytest.mark.parametrize("seed", [1, 3, 4])
def test_expected_is_what_streamtable_counts_in_the_test_driver(seed: int) -> None:
    plan = draw(seed, kind="sessions", faults=[], size=Size(events=4000))
    shape = plan.windows
    assert shape is not None
    assert shape.sessions
    events = [*plan.preload, *plan.live]
    topology = KINDS["sessions"].build({"positions": "positions", "output": "out"}, shape)
    emits = shape.emit_final or shape.suppress
    with st.TopologyTestDriver(topology) as driver:
        pipe_timed(driver, events)
        found = {
            session_key(w.key, w.window.start_ms, w.window.end_ms): n
            for w, n in driver.session_store("result").all()
        }
        assert driver.dropped_records().get("late", 0) == 0
        emitted = [
            (session_key(w.key, w.window.start_ms, w.window.end_ms), n)
            for w, n in (driver.output_topic("out").read_key_values() if emits else [])
        ]
    want = expected(events, shape, 1, BASE)
    assert want.expired  # the test means something: sessions expired on the way
    assert any(n > 1 for n in want.live.values())  # and sessions hold several records
    assert found == want.live
    # drawn: every variant is tested here (seed 1 suppress, 3 emit-final, 4 updates only)
    assert (shape.emit_final, shape.suppress) == {1: (False, True), 3: (True, False)}.get(
        seed, (False, False)
    )
    final = closed(events, shape, 1, BASE) if emits else {}
    assert compare_final(final, emitted, exact=True) == []
    assert len(final) > 100 or not emits


WANT = Expected(
    live={"p1@1000..1500": 2, "p2@1000..1000": 1},
    expired={"p1@0..0": 1},
    stream_time={0: 1500},
)


def test_compare_changelog_accepts_merges_and_rewrites() -> None:
    # p1@1000..1000 merged into p1@1000..1500 (a tombstone); p2 rewritten by a record inside it
    history: dict[str, list[Any]] = {
        "p1@1000..1000": [1, None],
        "p1@1000..1500": [2],
        "p2@1000..1000": [None, 1],
        "p1@0..0": [1],
    }
    assert compare_changelog(WANT, history) == []


def test_compare_changelog_finds_each_kind_of_difference() -> None:
    bad: dict[str, list[Any]] = {
        "p1@1000..1500": [2, 1],
        "p1@0..0": [2],
        "p1@1000..1000": [1],
        "p9@0..0": [None],
    }
    text = "\n".join(compare_changelog(WANT, bad))
    assert "1 of 3 sessions missing: ['p2@1000..1000']" in text
    assert "sessions end off the oracle: ['p1@1000..1500: expected 2, ends at 1'" in text
    assert "left without a tombstone: ['p1@1000..1000: [1]']" in text
    assert "sessions whose counts do not rise: ['p1@1000..1500: [2, 1]']" in text
