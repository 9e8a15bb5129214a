"""Session windows emitted once: ``emit_strategy(EmitStrategy.on_window_close())`` and
``suppress(Suppressed.until_window_closes(...))`` over a session-windowed table."""

from __future__ import annotations

from datetime import timedelta

import pytest

import streamtable as st
from tests.streamtable.dsl.test_session_semantics import GAP, HOUR, SECOND, grouped, s
from tests.streamtable.dsl.test_windowed_semantics import run

pytestmark = pytest.mark.unit

WINDOWS = st.SessionWindows.of_inactivity_gap_and_grace(GAP, 2 * SECOND)  # closes 7 s after


def final_counts(retention: timedelta | None = HOUR) -> st.StreamsBuilder:
    b, clicks = grouped()
    sessions = clicks.windowed_by(WINDOWS).emit_strategy(st.EmitStrategy.on_window_close())
    sessions.count(store="n", retention=retention).to_stream().to("out")
    return b


def test_on_window_close_emits_each_session_once_after_its_end_plus_gap_and_grace() -> None:
    with run(final_counts()) as d:
        source, out = d.input_topic("clicks"), d.output_topic("out")
        for key, ts in (("a", 0), ("a", 3_000), ("b", 1_000), ("a", 10_000)):
            source.pipe(key, {}, ts)
        # Close time 3 s (10 s - gap - grace): b's [1 s, 1 s] ends before it; a's [0, 3 s] not.
        assert out.read_records() == [(s("b", 1_000, 1_000), 1, 1_000, None)]
        source.pipe("b", {}, 10_001)
        assert out.read_records() == [(s("a", 0, 3_000), 2, 3_000, None)]  # at its end
        source.pipe("a", {}, 30_000)
        assert out.read_records() == [  # earliest end first
            (s("a", 10_000, 10_000), 1, 10_000, None),
            (s("b", 10_001, 10_001), 1, 10_001, None),
        ]
        source.pipe("a", {}, 30_000)
        assert out.read_records() == []  # the close time has not moved: nothing again
        assert list(d.session_store("n").fetch("a")) == [
            (s("a", 0, 3_000), 2),
            (s("a", 10_000, 10_000), 1),
            (s("a", 30_000, 30_000), 2),
        ]


def test_sessions_merged_away_are_never_emitted() -> None:
    with run(final_counts()) as d:
        source, out = d.input_topic("clicks"), d.output_topic("out")
        for ts in (0, 6_000, 3_000, 20_000):  # 3 s bridges [0, 0] and [6 s, 6 s]
            source.pipe("a", {}, ts)
        assert out.read_records() == [(s("a", 0, 6_000), 3, 6_000, None)]


def test_a_record_can_extend_a_session_already_emitted_as_in_kafka_streams() -> None:
    with run(final_counts()) as d:
        source, out = d.input_topic("clicks"), d.output_topic("out")
        source.pipe("a", {}, 0)
        source.pipe("b", {}, 7_001)  # close time 1 ms: [0, 0] is emitted
        assert out.read_records() == [(s("a", 0, 0), 1, 0, None)]
        source.pipe("a", {}, 4_000)  # within the gap of [0, 0], and ends after the close time
        source.pipe("b", {}, 20_000)
        assert out.read_records() == [
            (s("a", 0, 4_000), 2, 4_000, None),
            (s("b", 7_001, 7_001), 1, 7_001, None),
        ]


def test_a_late_record_is_dropped_and_counted() -> None:
    with run(final_counts()) as d:
        source, out = d.input_topic("clicks"), d.output_topic("out")
        source.pipe("a", {}, 0)
        source.pipe("b", {}, 7_001)
        assert out.read_records() == [(s("a", 0, 0), 1, 0, None)]
        source.pipe("c", {}, 0)  # its session would end before the close time
        assert d.dropped_records() == {"late": 1}
        assert out.read_records() == []
        assert list(d.session_store("n").fetch("c")) == []


def test_suppress_emits_a_session_when_its_end_is_past_gap_and_grace() -> None:
    b, clicks = grouped()
    held = st.Suppressed.until_window_closes(st.BufferConfig.unbounded())
    table = clicks.windowed_by(WINDOWS).count(store="n", retention=HOUR).suppress(held)
    table.to_stream().to("out")
    with run(b, cache_max_bytes=0) as d:
        source, out = d.input_topic("clicks"), d.output_topic("out")
        for ts in (0, 6_000, 3_000):  # merged into [0, 6 s]: the deletes are never emitted
            source.pipe("a", {}, ts)
        source.pipe("b", {}, 12_999)
        assert out.read_records() == []
        # As Kafka Streams' suppression: at end <= stream time - gap - grace (emit-final
        # emits 1 ms later: at end < stream time - gap - grace).
        source.pipe("b", {}, 13_000)
        assert out.read_records() == [(s("a", 0, 6_000), 3, 6_000, None)]


def test_emit_strategy_refuses_what_is_not_an_emit_strategy() -> None:
    _, clicks = grouped()
    with pytest.raises(TypeError, match=r"emit_strategy takes st\.EmitStrategy"):
        clicks.windowed_by(WINDOWS).emit_strategy("on_window_close")  # type: ignore[arg-type]
