"""Sliding windows on a real broker: a count per client (re-keyed, so through a repartition
topic) in sliding windows emitting final results (``EmitStrategy.on_window_close()``). Each
closed window is written once, with the count of the records at most the time difference
apart; a second instance on a fresh state dir restores the window store and the emit-final
progress from their changelogs: it extends the windows the first one left open and writes
none of the earlier ones again."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

import streamtable as st
from streamtable.serde import JSON, STRING
from tests.integration.test_suppress_on_broker import Finals, send, start
from tests.support.kafka import TopicFactory

pytestmark = pytest.mark.integration

DIFF_MS = 1_000


def topology(trades: str, finals: str, base: int) -> st.Topology:
    b = st.StreamsBuilder()
    windows = st.SlidingWindows.of_time_difference_with_no_grace(timedelta(milliseconds=DIFF_MS))
    counts = (
        b.stream(trades, key_serde=STRING, value_serde=JSON)
        .group_by(lambda trade_id, trade: trade["client"], key_serde=STRING)
        .windowed_by(windows)
        .emit_strategy(st.EmitStrategy.on_window_close())
        # kept long enough that windows emitted before the restore are still in the store
        .count(store="sliding-counts", retention=timedelta(minutes=10))
    )
    counts.to_stream().map(
        lambda k, v: (f"{k.key}@{k.window.start_ms - base}", v), key_serde=STRING, value_serde=JSON
    ).to(finals)
    return b.build()


def test_final_sliding_counts_are_written_once_across_a_restore(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    trades, finals_topic = new_topic(1, prefix="trades"), new_topic(1, prefix="finals")
    base = int(time.time() * 1000) - 60_000  # recent: the changelogs' retention.ms keeps it
    t = topology(trades, finals_topic, base)
    send(bootstrap_servers, trades, [
        ("t1", "c1", base), ("t2", "c1", base + 500), ("t3", "c1", base + 1_200),
        ("t4", "c1", base + 5_000),
    ])  # fmt: skip
    # Windows [start, start + 1000] relative to base: left ones [-1000, 0], [-500, 500],
    # [200, 1200], [4000, 5000]; right ones [1, 1001] (t1: t2), [501, 1501] (t2: t3). Closed
    # once their end is before stream time (5000): all but [4000, 5000].
    first = [("c1@-1000", 1), ("c1@-500", 2), ("c1@1", 1), ("c1@200", 2), ("c1@501", 1)]
    finals = Finals(bootstrap_servers, finals_topic)
    app = start(app_id, bootstrap_servers, tmp_path / "a", "at_least_once", t)
    try:
        finals.await_(app, lambda seen: len(seen) >= len(first), "the first finals")
    finally:
        app.close()
    assert finals.seen == first
    # t5 joins t4's open window [4000, 5000]'s neighbour: left [4600, 5600] holds t4 and t5,
    # t4's right window [5001, 6001] holds t5; t6 closes them and [4000, 5000].
    send(bootstrap_servers, trades, [("t5", "c1", base + 5_600), ("t6", "c1", base + 9_000)])
    app = start(app_id, bootstrap_servers, tmp_path / "b", "at_least_once", t)
    later = [("c1@4000", 1), ("c1@4600", 2), ("c1@5001", 1)]
    try:
        finals.await_(app, lambda seen: len(seen) >= len(first) + len(later), "the later finals")
        assert app.state is not st.AppState.ERROR
    finally:
        app.close()
        finals.close()
    assert finals.seen == first + later
