"""At least once, a process frozen past its session timeout (SIGSTOP, a paused VM) used to
deliver on resuming what librdkafka had queued before the freeze: after the new owner of its
tasks had replayed the same input, an older change after a newer one, which left idempotent
aggregations wrong (chaos seeds 912703, 338708, 496662, 890515: records delivered 9 s, the
pause, after they were produced). The producer's ``message.timeout.ms`` is now the session
timeout, so librdkafka fails such records (_MSG_TIMED_OUT) instead of delivering them; the
app starts its tasks again from the committed offsets on such a failure instead of stopping."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError as ClientError
from confluent_kafka import Producer

import streamtable as st
from streamtable.errors import KafkaError
from streamtable.runtime import _clients
from streamtable.runtime._collector import DeliveryTimedOut, KafkaRecordCollector
from streamtable.runtime._producer import StreamsProducer
from streamtable.runtime._thread import StreamThread
from streamtable.runtime.topics import TopicPlan
from tests.support.offline import offline_thread

pytestmark = pytest.mark.unit


def config(**kwargs: Any) -> st.StreamsConfig:
    return st.StreamsConfig(
        application_id="late",
        bootstrap_servers="127.0.0.1:1",
        state_dir=Path(tempfile.mkdtemp(prefix="late-")),
        **kwargs,
    )


class Recorder:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings


def producer_settings(monkeypatch: pytest.MonkeyPatch, cfg: st.StreamsConfig) -> dict[str, Any]:
    made: list[Recorder] = []

    def record(settings: dict[str, Any]) -> Recorder:
        made.append(Recorder(settings))
        return made[-1]

    monkeypatch.setattr(_clients, "Producer", record)
    monkeypatch.setattr(_clients, "retry_transient", lambda *a, **k: None)
    _clients.producer(cfg, uuid.uuid4())
    return made[0].settings


def test_at_least_once_records_expire_after_the_session_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = producer_settings(monkeypatch, config(session_timeout_ms=6000))
    assert settings["message.timeout.ms"] == 6000


def test_a_kafka_setting_of_the_users_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config(kafka={"message.timeout.ms": 120000})
    assert producer_settings(monkeypatch, cfg)["message.timeout.ms"] == 120000


def test_exactly_once_keeps_its_transaction_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = producer_settings(monkeypatch, config(processing_guarantee="exactly_once_v2"))
    assert "message.timeout.ms" not in settings
    assert settings["transaction.timeout.ms"] == 10000


class FakeProducer:
    def __init__(self) -> None:
        self.reports: list[Any] = []

    def produce(self, topic: str, _value: Any, _key: Any, partition: int, **kw: Any) -> None:
        self.reports.append(kw["on_delivery"])


def test_records_failed_by_their_timeout_are_told_apart() -> None:
    producer = FakeProducer()
    streams_producer = StreamsProducer(lambda: cast(Producer, producer), transactional=False)
    c = KafkaRecordCollector(streams_producer, TopicPlan({"out": 1}, {}))
    for n in range(2):
        c.send("out", b"k", str(n).encode(), 0, 0, None)
    for report in producer.reports:
        report(ClientError(ClientError._MSG_TIMED_OUT), None)
    with pytest.raises(DeliveryTimedOut, match="2 record"):
        c.raise_delivery_errors()
    c.send("out", b"k", b"x", 0, 0, None)
    producer.reports[-1](ClientError(ClientError.MSG_SIZE_TOO_LARGE), None)
    with pytest.raises(KafkaError) as raised:  # any other delivery error stays fatal
        c.raise_delivery_errors()
    assert not isinstance(raised.value, DeliveryTimedOut)


class TimingOutCommitter:
    def commit(self, tasks: Any, closing: bool = False) -> None:
        raise DeliveryTimedOut("3 record(s) could not be delivered: _MSG_TIMED_OUT")


class Collector:
    def __init__(self) -> None:
        self.abandoned = 0

    def abandon_sent(self) -> None:
        self.abandoned += 1


def timing_out_thread() -> tuple[StreamThread, Collector]:
    """A thread whose next commit finds records failed by their timeout."""
    thread = offline_thread("late")
    collector = Collector()
    thread.clients.committer = TimingOutCommitter()  # type: ignore[assignment]
    thread.clients.collector = collector  # type: ignore[assignment]
    return thread, collector


def test_a_delivery_timeout_starts_the_tasks_again(monkeypatch: pytest.MonkeyPatch) -> None:
    thread, collector = timing_out_thread()
    restarts: list[bool] = []
    monkeypatch.setattr(thread.tasks, "restart_all", lambda: restarts.append(True))
    monkeypatch.setattr(_clients, "cut_off", lambda client, settings: False)
    thread.commits.commit()  # raised DeliveryTimedOut (the app went to ERROR) before
    assert restarts == [True]
    assert collector.abandoned == 1


def test_a_producer_that_lost_every_broker_is_replaced_on_a_delivery_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It would time out every record again: with no broker left, librdkafka never connects
    again (librdkafka issue 5301), and each restart of the tasks would end the same way."""
    thread, _ = timing_out_thread()
    events: list[str] = []
    asked: list[object] = []

    def cut_off(client: object, settings: dict[str, Any]) -> bool:
        asked.append(client)
        return True

    monkeypatch.setattr(_clients, "cut_off", cut_off)
    monkeypatch.setattr(thread.tasks, "replace_producer", lambda: events.append("replaced"))
    monkeypatch.setattr(thread.tasks, "restart_all", lambda: events.append("restarted"))
    thread.commits.commit()
    assert asked == [thread.clients.producer.client]
    assert events == ["replaced", "restarted"]
