"""Session windows through the test driver: merges and their deletes, late records, argument
errors, the session store's reads, retention and changelog, and a restore from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import streamtable as st
from streamtable.serde import BYTES, JSON, STRING, SessionWindowedSerde
from streamtable.state import CacheBudget, open_engine
from streamtable.topology import build_store
from tests.streamtable.dsl.test_windowed_semantics import run

pytestmark = pytest.mark.unit

SECOND = timedelta(seconds=1)
GAP = 5 * SECOND
HOUR = timedelta(hours=1)


def s(key: Any, start: int, end: int) -> st.Windowed:
    return st.Windowed(key, st.SessionWindow(start, end))


def grouped() -> tuple[st.StreamsBuilder, st.KGroupedStream]:
    b = st.StreamsBuilder()
    return b, b.stream("clicks", key_serde=STRING, value_serde=JSON).group_by_key()


def test_a_record_bridging_two_sessions_deletes_both_and_writes_the_merge() -> None:
    b, clicks = grouped()
    sessions = clicks.windowed_by(st.SessionWindows.of_inactivity_gap_with_no_grace(GAP))
    sessions.count(store="n", retention=HOUR).to_stream().to("out")
    with run(b, cache_max_bytes=0) as d:
        source, out = d.input_topic("clicks"), d.output_topic("out")
        for ts in (0, 8_000, 4_000):
            source.pipe("a", {}, ts)
        assert out.read_records() == [
            (s("a", 0, 0), 1, 0, None),
            (s("a", 8_000, 8_000), 1, 8_000, None),
            (s("a", 0, 0), None, 0, None),  # the deletes, at their sessions' ends, first
            (s("a", 8_000, 8_000), None, 8_000, None),
            (s("a", 0, 8_000), 3, 8_000, None),
        ]
        assert list(d.session_store("n").fetch("a")) == [(s("a", 0, 8_000), 3)]


def test_aggregate_merges_earliest_end_first_and_reduce_as_kafka_streams() -> None:
    b, clicks = grouped()
    sessions = clicks.windowed_by(st.SessionWindows.of_inactivity_gap_with_no_grace(GAP))
    sessions.aggregate(
        list,
        lambda k, v, agg: [*agg, v],
        lambda k, one, two: one + two,
        store="seq",
        retention=HOUR,
    )
    sessions.reduce(lambda agg, v: f"{agg}{v}", store="text", retention=HOUR)
    with run(b) as d:
        for ts, v in ((0, "a"), (8_000, "b"), (9_000, "c"), (4_000, "d")):
            d.input_topic("clicks").pipe("k", v, ts)
        assert list(d.session_store("seq").fetch("k")) == [(s("k", 0, 9_000), list("abcd"))]
        assert list(d.session_store("text").fetch("k")) == [(s("k", 0, 9_000), "abcd")]


def test_a_record_past_gap_and_grace_is_late_and_counted() -> None:
    b, clicks = grouped()
    windows = st.SessionWindows.of_inactivity_gap_and_grace(GAP, 2 * SECOND)
    clicks.windowed_by(windows).count(store="n", retention=HOUR)
    with run(b) as d:
        source = d.input_topic("clicks")
        source.pipe("a", {}, 20_000)
        source.pipe("a", {}, 13_000)  # a session ending at 13 s = 20 s - 2 s - 5 s: open
        source.pipe("b", {}, 12_999)  # ends before 13 s: late
        source.pipe("a", {}, 7_999)  # reaches no session (13 s is past its gap): late
        source.pipe("a", {}, 8_000)  # joins [13 s, 13 s]: not late
        source.pipe(None, {}, 20_000)
        source.pipe("a", None, 20_000)
        assert d.dropped_records() == {"late": 2, "null_key": 1, "null_value": 1}
        assert list(d.session_store("n").fetch("a")) == [
            (s("a", 8_000, 13_000), 2),
            (s("a", 20_000, 20_000), 1),
        ]
        assert list(d.session_store("n").fetch("b")) == []


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"inactivity gap must be > 0 ms \(gap: got 0 ms\)"):
        st.SessionWindows.of_inactivity_gap_with_no_grace(timedelta(0))
    with pytest.raises(ValueError, match="grace must not be negative"):
        st.SessionWindows.of_inactivity_gap_and_grace(GAP, -SECOND)
    with pytest.raises(TypeError, match=r"inactivity_gap must be a datetime\.timedelta"):
        st.SessionWindows.of_inactivity_gap_with_no_grace(5_000)  # type: ignore[arg-type]
    _, clicks = grouped()
    sessions = clicks.windowed_by(st.SessionWindows.of_inactivity_gap_and_grace(GAP, SECOND))
    with pytest.raises(st.TopologyError, match=r"store 'n'.*gap=5000 ms, grace=1000 ms"):
        sessions.count(store="n", retention=GAP)
    with pytest.raises(TypeError, match="merger must be callable"):
        sessions.aggregate(list, lambda k, v, a: a, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reducer must be callable"):
        sessions.reduce("+")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="end_ms must not be before its start_ms"):
        st.SessionWindow(2, 1)


def test_the_store_reads_sessions_by_key_end_and_start() -> None:
    b, clicks = grouped()
    clicks.windowed_by(st.SessionWindows.of_inactivity_gap_with_no_grace(GAP)).count(
        store="n", retention=timedelta(hours=1)
    )
    with run(b) as d:
        source = d.input_topic("clicks")
        for key, ts in (("a", 0), ("a", 2_000), ("a", 10_000), ("ab", 10_000), ("a", 30_000)):
            source.pipe(key, {}, ts)
        store = d.session_store("n")
        assert [w for w, _ in store.fetch("a")] == [
            s("a", 0, 2_000),
            s("a", 10_000, 10_000),
            s("a", 30_000, 30_000),
        ]
        assert [w for w, _ in store.find_sessions("a", 2_000, 10_000)] == [
            s("a", 0, 2_000),
            s("a", 10_000, 10_000),
        ]
        assert list(store.find_sessions("a", 2_001, 9_999)) == []
        when = datetime.fromtimestamp(10, tz=UTC)
        assert [w for w, _ in store.find_sessions("a", when, when)] == [s("a", 10_000, 10_000)]
        assert store.fetch_session("a", 0, 2_000) == 2
        assert store.fetch_session("a", 0, 1_999) is None
        assert [w.key for w, _ in store.all()] == ["a", "a", "a", "ab"]
        with pytest.raises(st.TopologyError, match="'n' is a session store"):
            d.window_store("n")


def test_sessions_expire_after_the_retention_past_their_end() -> None:
    b, clicks = grouped()
    windows = st.SessionWindows.of_inactivity_gap_with_no_grace(GAP)
    clicks.windowed_by(windows).count(store="n", retention=10 * SECOND)
    with run(b) as d:
        source = d.input_topic("clicks")
        source.pipe("a", {}, 1_000)
        source.pipe("b", {}, 11_000)  # a's session ended 10 s before: expired
        assert list(d.session_store("n").fetch("a")) == []
        assert [w for w, _ in d.session_store("n").all()] == [s("b", 11_000, 11_000)]


def test_the_changelog_holds_session_keys_and_restores_the_store() -> None:
    b, clicks = grouped()
    windows = st.SessionWindows.of_inactivity_gap_with_no_grace(GAP)
    clicks.windowed_by(windows).count(store="n", retention=timedelta(minutes=2))
    topology = b.build()
    spec = topology.stores["n"]
    assert (spec.store_type, spec.retention_ms) == ("session", 120_000)
    assert spec.changelog_config() == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(120_000 + 86_400_000),
    }
    with st.TopologyTestDriver(topology, start_time=0) as d:
        source = d.input_topic("clicks")
        for key, ts in (("a", 1_000), ("a", 3_000), ("b", 200_000)):
            source.pipe(key, {}, ts)
        changelog = d.output_topic("test-driver-n-changelog", key_serde=BYTES, value_serde=BYTES)
        records = changelog.read_records()
        expected = list(d.session_store("n").all())
    end_start = (3_000).to_bytes(8, "big") + (1_000).to_bytes(8, "big")
    assert [(k, v is None, ts) for k, v, ts, _ in records][1:3] == [
        (b"a" + (1_000).to_bytes(8, "big") * 2, True, 1_000),  # the merged-away session
        (b"a" + end_start, False, 3_000),
    ]
    restored, _ = build_store(spec, open_engine(False, None), "app", 0, None, CacheBudget(0))
    restored.restore_batch([(k, v, ts) for k, v, ts, _ in records])
    view = st.ReadOnlySessionStore.over(restored)
    assert list(view.all()) == expected == [(s("b", 200_000, 200_000), 1)]  # a's expired
    assert SessionWindowedSerde(STRING).deserialize(b"a" + end_start) == s("a", 1_000, 3_000)
