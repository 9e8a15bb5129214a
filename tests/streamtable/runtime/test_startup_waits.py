"""Start-up calls wait for a broker that is down, like the connection check before them.

Found by the fault harness (chaos seed 636651, exactly_once_v2): the broker was down for 64 s,
the transactional producer's one ``init_transactions(60.0)`` call timed out and the instance
stopped in ERROR. Likewise the topic check at start (``runtime/topics.py``) failed at once with
``_TRANSPORT`` when the broker was down. Both are now asked again for up to
``STARTUP_WAIT_S``, a stop (SIGTERM) ends the wait promptly, and what cannot get better (a fatal
producer error, a source topic the cluster does not have) still fails at once.

The broker outage is played by stand-ins for the client classes (a real one would take a minute
or more to show the difference); one test drives the real librdkafka producer against a port
where nothing listens, to check that it accepts ``init_transactions`` again after a timeout.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

import streamtable as st
from streamtable.errors import KafkaError as StreamTableKafkaError
from streamtable.errors import TopologyError
from streamtable.runtime import StreamsConfig, _clients
from streamtable.runtime._clients import ShutdownRequested
from streamtable.runtime.topics import InternalTopicManager
from tests.support.offline import closed_port

pytestmark = pytest.mark.unit

EOS = StreamsConfig(
    application_id="waits",
    bootstrap_servers="unused:9092",
    processing_guarantee="exactly_once_v2",
)


def timed_out() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))


class FakeProducer:
    """Stands in for ``confluent_kafka.Producer``: ``init_transactions`` answers from a script
    (an exception to raise, or None for success); once the script is used up, it succeeds."""

    script: ClassVar[list[KafkaException | None]] = []
    timeouts: ClassVar[list[float]] = []

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    def init_transactions(self, timeout: float) -> None:
        FakeProducer.timeouts.append(timeout)
        if FakeProducer.script:
            answer = FakeProducer.script.pop(0)
            if answer is not None:
                raise answer


@pytest.fixture
def fake_producer(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.script = []
    FakeProducer.timeouts = []
    monkeypatch.setattr(_clients, "Producer", FakeProducer)
    return FakeProducer


def test_init_transactions_is_asked_again_while_the_broker_is_away(
    fake_producer: type[FakeProducer],
) -> None:
    fake_producer.script = [timed_out(), timed_out(), timed_out()]
    made = _clients.producer(EOS, uuid.uuid4())
    assert isinstance(made, FakeProducer)
    assert len(fake_producer.timeouts) == 4  # three timeouts, then the answer
    # Each call waits at most one step, so that a stop is looked at between them.
    assert max(fake_producer.timeouts) <= _clients.INIT_TRANSACTIONS_STEP_S


@pytest.mark.parametrize(
    "code",
    [KafkaError._FENCED, KafkaError._TIMED_OUT],  # a fatal error is fatal whatever its code
)
def test_a_fatal_init_transactions_error_is_raised_at_once(
    fake_producer: type[FakeProducer], code: int
) -> None:
    fake_producer.script = [KafkaException(KafkaError(code, "fatal", fatal=True))]
    with pytest.raises(KafkaException) as raised:
        _clients.producer(EOS, uuid.uuid4())
    assert raised.value.args[0].fatal()
    assert len(fake_producer.timeouts) == 1


def test_init_transactions_gives_up_after_the_task_timeout(
    fake_producer: type[FakeProducer],
) -> None:
    fake_producer.script = [timed_out() for _ in range(1000)]
    started = time.monotonic()
    with pytest.raises(KafkaException) as raised:
        _clients.producer(EOS.model_copy(update={"task_timeout_ms": 1000}), uuid.uuid4())
    assert raised.value.args[0].code() == KafkaError._TIMED_OUT
    assert 0.5 <= time.monotonic() - started < 10.0


def test_a_stop_ends_the_init_transactions_wait(fake_producer: type[FakeProducer]) -> None:
    fake_producer.script = [timed_out() for _ in range(100000)]
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(ShutdownRequested):
        _clients.producer(EOS, uuid.uuid4(), stop=stop)
    assert time.monotonic() - started < 5.0


def test_librdkafka_accepts_init_transactions_again_after_a_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real client against a port where nothing listens: each step times out with a
    retriable error and the next call resumes (no "conflicting operation" or state error)."""
    calls: list[float] = []

    class Counting(Producer):
        def init_transactions(self, *args: Any) -> None:
            calls.append(time.monotonic())
            super().init_transactions(*args)

    monkeypatch.setattr(_clients, "Producer", Counting)
    monkeypatch.setattr(_clients, "INIT_TRANSACTIONS_STEP_S", 0.5)
    config = StreamsConfig(
        application_id="waits",
        bootstrap_servers=f"127.0.0.1:{closed_port()}",
        processing_guarantee="exactly_once_v2",
        task_timeout_ms=3000,
    )
    with pytest.raises(KafkaException) as raised:
        _clients.producer(config, uuid.uuid4())
    error = raised.value.args[0]
    assert error.code() == KafkaError._TIMED_OUT
    assert error.retriable()
    assert not error.fatal()
    assert len(calls) >= 3


# -- the topic check at start ------------------------------------------------------------------
class _Topic:
    def __init__(self, partitions: int) -> None:
        self.error = None
        self.partitions = {p: object() for p in range(partitions)}


class _Metadata:
    def __init__(self, topics: dict[str, int]) -> None:
        self.topics = {name: _Topic(n) for name, n in topics.items()}


class FakeAdmin:
    """``list_topics`` answers from a script (an exception, or the topics the cluster has)."""

    def __init__(self, script: list[KafkaException | dict[str, int]]) -> None:
        self.script = script
        self.calls = 0

    def list_topics(self, timeout: float) -> _Metadata:
        self.calls += 1
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, KafkaException):
            raise answer
        return _Metadata(answer)


def transport() -> KafkaException:
    return KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))


def _topology() -> st.Topology:
    builder = st.StreamsBuilder()
    builder.table("input", store="store")
    return builder.build()


def _manager(admin: FakeAdmin, **kwargs: Any) -> InternalTopicManager:
    return InternalTopicManager(admin, _topology(), "waits", **kwargs)  # type: ignore[arg-type]


def test_the_topic_check_waits_for_the_broker() -> None:
    admin = FakeAdmin([transport(), transport(), {"input": 4}])
    plan = _manager(admin).plan()
    assert plan.count("input") == 4
    assert admin.calls == 3


def test_a_missing_source_topic_still_fails_at_once() -> None:
    admin = FakeAdmin([{"other": 4}])
    started = time.monotonic()
    with pytest.raises(TopologyError, match="source topic\\(s\\) missing from the cluster: input"):
        _manager(admin).plan()
    assert admin.calls == 1
    assert time.monotonic() - started < 1.0


def test_the_topic_check_gives_up_after_its_wait() -> None:
    admin = FakeAdmin([transport()])
    with pytest.raises(StreamTableKafkaError, match="cannot read cluster metadata"):
        _manager(admin, wait_s=0.5).plan()
    assert admin.calls >= 2


def test_a_stop_ends_the_topic_check_wait() -> None:
    admin = FakeAdmin([transport()])
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(ShutdownRequested):
        _manager(admin, stop=stop).plan()
    assert time.monotonic() - started < 5.0


# -- the group consumer's metadata refresh -----------------------------------------------------
class FakeConsumer:
    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings


def test_the_group_consumer_refreshes_metadata_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A join left in librdkafka's ``wait-metadata`` by a broker stop moves on only at the next
    periodic metadata refresh (300 s by default): chaos seeds 460751 and 503868."""
    monkeypatch.setattr(_clients, "Consumer", FakeConsumer)
    made: Any = _clients.main_consumer(EOS)
    assert made.settings["topic.metadata.refresh.interval.ms"] == 5000


def test_the_group_consumer_prefetches_a_bounded_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka's 64 MiB default made memory grow with the number of input partitions (bench
    W7: peak RSS at 48 partitions 1.5x that at 6); a user's setting wins."""
    monkeypatch.setattr(_clients, "Consumer", FakeConsumer)
    made: Any = _clients.main_consumer(EOS)
    assert made.settings["queued.max.messages.kbytes"] == 8192
    mine = EOS.model_copy(update={"kafka": {"queued.max.messages.kbytes": 32768}})
    assert _clients.main_consumer(mine).settings["queued.max.messages.kbytes"] == 32768  # type: ignore[attr-defined]


def test_the_assign_only_consumers_refresh_metadata_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The restore consumer (and the end-offset one under exactly_once_v2) waits for each
    partition's leader before it can look its start offset up: after a broker restart a restore
    read nothing for minutes (chaos seed 341488). Standbys use a restore consumer of their own."""
    monkeypatch.setattr(_clients, "Consumer", FakeConsumer)
    made: Any = [_clients.restore_consumer(EOS), _clients.log_end_consumer(EOS)]
    assert [m.settings["topic.metadata.refresh.interval.ms"] for m in made] == [5000, 5000]


def test_the_delivery_workers_group_consumer_refreshes_metadata_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service's delivery worker joins a consumer group of its own: the same wait."""
    from prometheus_client import CollectorRegistry

    from us_shareholders import worker

    monkeypatch.setattr(worker, "Consumer", FakeConsumer)
    monkeypatch.setattr(worker, "Producer", FakeConsumer)
    unused: Any = lambda *_: None  # noqa: E731
    made = worker.DeliveryWorker(
        {"bootstrap.servers": "unused:9092"},
        "waits",
        unused,
        unused,
        worker.DeliveryMetrics(CollectorRegistry()),
    )
    consumer: Any = made._consumer
    assert consumer.settings["topic.metadata.refresh.interval.ms"] == 5000


def test_a_users_metadata_refresh_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_clients, "Consumer", FakeConsumer)
    config = StreamsConfig(
        application_id="waits",
        bootstrap_servers="unused:9092",
        kafka={"topic.metadata.refresh.interval.ms": 60000},
    )
    made: Any = _clients.main_consumer(config)
    assert made.settings["topic.metadata.refresh.interval.ms"] == 60000


# -- a SIGTERM while the start waits -----------------------------------------------------------
def test_a_sigterm_ends_a_start_that_waits_for_the_broker(tmp_path: Path) -> None:
    """``run_until_signal`` (a service's main thread): the broker is unreachable, so ``start``
    waits for it (up to ``STARTUP_WAIT_S``); a SIGTERM ends that wait and the process exits
    cleanly (exit code 0) at once instead of after the wait."""
    app = st.StreamsApp(
        _topology(),
        StreamsConfig(
            application_id=f"waits-{uuid.uuid4().hex}",
            bootstrap_servers=f"127.0.0.1:{closed_port()}",
            state_dir=tmp_path,
        ),
    )
    # Should the start end before the signal arrives, the signal must not end the test run.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        started = time.monotonic()
        code = app.run_until_signal()
        elapsed = time.monotonic() - started
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGTERM, previous)
    assert code == 0
    assert elapsed < 15.0
    assert app.state is st.AppState.NOT_RUNNING
