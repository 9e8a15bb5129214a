"""The app while its producer's ``init_transactions`` cannot complete (a broker outage, played
by a stand-in producer): the processing thread keeps asking instead of ending in ERROR after one
call (chaos seed 636651), and a close during that wait ends the app cleanly, promptly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

import streamtable as st
from streamtable.runtime import _clients
from tests.support.kafka import TopicFactory, delete_topics, unique_name, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("waits")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def test_a_close_while_init_transactions_waits_ends_the_app_cleanly(
    new_topic: TopicFactory,
    bootstrap_servers: str,
    app_id: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[float] = []

    class Unanswered:
        """A transactional producer whose broker does not answer: every call times out."""

        def __init__(self, settings: dict[str, Any]) -> None:
            pass

        def init_transactions(self, timeout: float) -> None:
            calls.append(timeout)
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))

    monkeypatch.setattr(_clients, "Producer", Unanswered)
    topic = new_topic(partitions=2, prefix="waits-input")
    builder = st.StreamsBuilder()
    builder.table(topic, store="store")
    app = st.StreamsApp(
        builder.build(),
        st.StreamsConfig(
            application_id=app_id,
            bootstrap_servers=bootstrap_servers,
            state_dir=tmp_path,
            processing_guarantee="exactly_once_v2",
        ),
    )
    app.start()
    try:
        wait_until(lambda: len(calls) >= 3, "init_transactions asked again", timeout=30)
        assert app.state is st.AppState.REBALANCING
    finally:
        closed = app.close(timeout=30)
    assert closed
    final: st.AppState = app.state  # (a fresh name: mypy narrowed app.state above)
    assert final is st.AppState.NOT_RUNNING
    assert app.error is None
