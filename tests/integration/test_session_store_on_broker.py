"""Session windows on a real broker: ``StreamsApp.session_store`` reads the sessions of every
local task, and a second instance on a fresh state dir restores them from the changelog."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

import streamtable as st
from streamtable.errors import StoreNotReady, TopologyError
from streamtable.serde import JSON, STRING
from tests.support.kafka import TopicFactory, wait_until

pytestmark = pytest.mark.integration

STORE = "sessions"
EXPECTED = {
    "a": [((1_000, 2_000), 2), ((10_000, 10_000), 1)],
    "b": [((5_000, 5_500), 2)],
}


def topology(clicks: str) -> st.Topology:
    b = st.StreamsBuilder()
    b.stream(clicks, key_serde=STRING, value_serde=JSON).group_by_key().windowed_by(
        st.SessionWindows.of_inactivity_gap_with_no_grace(timedelta(seconds=3))
    ).count(store=STORE, retention=timedelta(minutes=1))  # nothing expires here
    return b.build()


def sessions(app: st.StreamsApp, base: int) -> dict[str, Any] | None:
    """Each key's sessions, their times relative to ``base``."""
    try:
        store = app.session_store(STORE)
        found = {
            k: [((w.window.start_ms - base, w.window.end_ms - base), n) for w, n in store.fetch(k)]
            for k in EXPECTED
        }
    except StoreNotReady:
        return None
    assert app.state is not st.AppState.ERROR, app.error
    return found


def await_sessions(app: st.StreamsApp, base: int, which: str) -> None:
    last: list[Any] = [None]

    def done() -> bool:
        last[0] = sessions(app, base)
        return bool(last[0] == EXPECTED)

    try:
        wait_until(done, f"the sessions ({which})", 60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: last read {last[0]}") from exc


def test_sessions_are_read_across_tasks_and_restored_from_the_changelog(
    new_topic: TopicFactory, bootstrap_servers: str, app_id: str, tmp_path: Path
) -> None:
    clicks = new_topic(2, prefix="clicks")
    # Placed as Kafka Streams (and the app's routing of a key to its task) expect.
    producer = Producer({"bootstrap.servers": bootstrap_servers, "partitioner": "murmur2_random"})
    # Times of today: a changelog's retention.ms (retention + 1 day) is by the broker's clock.
    base = int(time.time() * 1000) - 60_000
    for key, at in [("a", 1_000), ("b", 5_000), ("a", 2_000), ("b", 5_500), ("a", 10_000)]:
        producer.produce(clicks, JSON.serialize({"at": at}), key.encode(), timestamp=base + at)
    assert producer.flush(30) == 0
    for state_dir in (tmp_path / "first", tmp_path / "restored"):
        config = st.StreamsConfig(application_id=app_id, bootstrap_servers=bootstrap_servers,
                                  state_dir=state_dir, commit_interval_ms=200,
                                  session_timeout_ms=6000)  # fmt: skip
        with st.StreamsApp(topology(clicks), config) as app:
            await_sessions(app, base, state_dir.name)
            every = sorted(
                (w.key, w.window.start_ms - base) for w, _ in app.session_store(STORE).all()
            )
            assert every == [("a", 1_000), ("a", 10_000), ("b", 5_000)]
            with pytest.raises(TopologyError, match="session_store"):
                app.store(STORE)
