"""Emit-final through ``suppress`` on a real broker: a windowed count suppressed until its
windows close, with ``close_idle_after`` so that windows of partitions no record arrives on any
more are closed by the wall clock. Each window's final count is written once; a second instance
that restores the buffer from its changelog (fresh state dir) writes none of them again."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

import streamtable as st
from streamtable.serde import JSON, STRING
from tests.support.kafka import TopicFactory, unique_name, wait_until

pytestmark = pytest.mark.integration

SIZE_MS = 2_000
TIMEOUT_S = 60.0


def topology(trades: str, finals: str) -> st.Topology:
    b = st.StreamsBuilder()
    counts = (
        b.stream(trades, key_serde=STRING, value_serde=JSON)
        .group_by(lambda trade_id, trade: trade["client"], key_serde=STRING)
        .windowed_by(st.TimeWindows.of_size_with_no_grace(timedelta(milliseconds=SIZE_MS)))
        .count()
    )
    final = counts.suppress(
        st.Suppressed.until_window_closes(
            st.BufferConfig.unbounded(), close_idle_after=timedelta(seconds=2)
        )
    )
    final.to_stream().map(
        lambda k, v: (f"{k.key}@{k.window.start_ms}", v), key_serde=STRING, value_serde=JSON
    ).to(finals)
    return b.build()


class Finals:
    """The output topic read as it grows: ``(key, count)`` in order."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.seen: list[tuple[str, Any]] = []
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("g"),
                                   "isolation.level": "read_committed"})  # fmt: skip
        self._consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])

    def read(self) -> list[tuple[str, Any]]:
        for msg in self._consumer.consume(100, timeout=0.5):
            if msg.error() is None:
                key, value = msg.key(), msg.value()
                assert key is not None
                assert value is not None
                self.seen.append((key.decode(), JSON.deserialize(value)))
        return self.seen

    def await_(self, app: Any, done: Callable[[list[Any]], bool], what: str) -> None:
        try:
            wait_until(lambda: done(self.read()), what, TIMEOUT_S)
        except AssertionError as exc:
            dropped = app._dropped_records()
            raise AssertionError(f"{exc}; written {self.seen}; dropped {dropped}; "
                                 f"app {app.state.name}, error {app.error!r}") from exc  # fmt: skip

    def close(self) -> None:
        self._consumer.close()


def start(app_id: str, bootstrap: str, state_dir: Path, guarantee: str, t: st.Topology) -> Any:
    config = st.StreamsConfig(application_id=app_id, bootstrap_servers=bootstrap,
                              state_dir=state_dir, processing_guarantee=guarantee,
                              commit_interval_ms=200, session_timeout_ms=6000)  # fmt: skip
    app = st.StreamsApp(t, config)
    app.start()
    return app


def send(bootstrap: str, topic: str, records: list[tuple[str, str, int]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for trade_id, client, timestamp in records:
        producer.produce(topic, JSON.serialize({"client": client}), trade_id.encode(),
                         timestamp=timestamp)  # fmt: skip
    assert producer.flush(30) == 0


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once_v2"])
def test_idle_windows_are_emitted_once_and_not_again_after_a_restore(
    guarantee: str, new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    trades, finals_topic = new_topic(2, prefix="trades"), new_topic(1, prefix="finals")
    t = topology(trades, finals_topic)
    base = (int(time.time() * 1000) // SIZE_MS) * SIZE_MS - 10 * SIZE_MS  # closed by the clock
    early = [("t1", "c1", base + 1), ("t2", "c1", base + 50), ("t3", "c2", base + 70),
             ("t4", "c1", base + 1999)]  # fmt: skip
    send(bootstrap_servers, trades, early)
    finals = Finals(bootstrap_servers, finals_topic)
    app = start(app_id, bootstrap_servers, tmp_path / "a", guarantee, t)
    try:
        first = {f"c1@{base}": 3, f"c2@{base}": 1}
        finals.await_(app, lambda seen: sorted(seen) == sorted(first.items()), "the first finals")
    finally:
        app.close()
    # A second instance on a fresh state dir restores the buffer (and its closed windows) from
    # the changelog; a new window is closed the same way, and nothing before it comes again.
    # (It is a window of now: one that ended before the first close would be late by then.)
    later = (int(time.time() * 1000) // SIZE_MS) * SIZE_MS
    send(bootstrap_servers, trades, [("t5", "c3", later + 5)])
    app = start(app_id, bootstrap_servers, tmp_path / "b", guarantee, t)
    try:
        finals.await_(app, lambda seen: (f"c3@{later}", 1) in seen, "c3's final count")
        assert app.state is not st.AppState.ERROR
    finally:
        app.close()
        finals.close()
    assert sorted(finals.seen) == sorted([*first.items(), (f"c3@{later}", 1)])
