"""Creating the internal topics right after a broker (re)start: a KRaft broker that is still
fenced refuses a topic with INVALID_REPLICATION_FACTOR ("all brokers are currently fenced"),
which ended the start at once (chaos seed 462288: both instances exited). It is asked again
while the cluster has brokers enough; too few brokers for the replication factor still fails
at once, naming the setting."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import NewTopic

import streamtable as st
from streamtable.errors import ConfigError
from streamtable.errors import KafkaError as StreamTableKafkaError
from streamtable.runtime._clients import ShutdownRequested
from streamtable.runtime.topics import InternalTopicManager

pytestmark = pytest.mark.unit


class _Topic:
    def __init__(self, partitions: int) -> None:
        self.error = None
        self.partitions = {p: object() for p in range(partitions)}


class _Metadata:
    def __init__(self, topics: dict[str, int], brokers: int) -> None:
        self.topics = {name: _Topic(n) for name, n in topics.items()}
        self.brokers = {b: object() for b in range(brokers)}


def fenced() -> KafkaException:
    return KafkaException(
        KafkaError(
            KafkaError.INVALID_REPLICATION_FACTOR,
            "Unable to replicate the partition 1 time(s): All brokers are currently fenced",
        )
    )


class FencedAdmin:
    """A one-broker cluster whose broker refuses ``refusals`` creations, then creates."""

    def __init__(self, refusals: int, brokers: int = 1) -> None:
        self.refusals = refusals
        self.brokers = brokers
        self.created: dict[str, int] = {}
        self.attempts = 0

    def list_topics(self, timeout: float) -> _Metadata:
        return _Metadata({"input": 2, **self.created}, self.brokers)

    def create_topics(self, new: list[NewTopic], **_: Any) -> dict[str, Future[None]]:
        self.attempts += 1
        futures: dict[str, Future[None]] = {}
        for topic in new:
            future: Future[None] = Future()
            if self.refusals > 0:
                future.set_exception(fenced())
            else:
                self.created[topic.topic] = topic.num_partitions
                future.set_result(None)
            futures[topic.topic] = future
        self.refusals -= 1
        return futures


def manager(admin: FencedAdmin, **kwargs: Any) -> InternalTopicManager:
    builder = st.StreamsBuilder()
    builder.stream("input").group_by(lambda k, v: v).count(store="counts")
    return InternalTopicManager(admin, builder.build(), "fenced", **kwargs)  # type: ignore[arg-type]


def test_a_fenced_broker_is_asked_again() -> None:
    admin = FencedAdmin(refusals=2)
    topics = manager(admin)
    topics.ensure(topics.plan())
    assert {"fenced-counts-repartition", "fenced-counts-changelog"} <= set(admin.created)
    assert admin.attempts == 3


def test_too_few_brokers_for_the_replication_factor_fails_at_once() -> None:
    admin = FencedAdmin(refusals=100)
    topics = manager(admin, replication_factor=3)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="replication_factor: 3 replicas wanted"):
        topics.ensure(topics.plan())
    assert admin.attempts == 1
    assert time.monotonic() - started < 1.0


def test_the_creation_gives_up_after_its_wait() -> None:
    admin = FencedAdmin(refusals=1000)
    topics = manager(admin, wait_s=0.5)
    with pytest.raises(StreamTableKafkaError, match="cannot create internal topics"):
        topics.ensure(topics.plan())
    assert admin.attempts >= 2


def test_a_stop_ends_the_creation_wait() -> None:
    admin = FencedAdmin(refusals=1000)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    topics = manager(admin, stop=stop)
    started = time.monotonic()
    with pytest.raises(ShutdownRequested):
        topics.ensure(topics.plan())
    assert time.monotonic() - started < 5.0


class StoppingAdmin(FencedAdmin):
    """A broker stopping: it refuses the creation, then its metadata is gone too, for
    ``gone`` look-ups (the plan's own look-ups come first and pass)."""

    def __init__(self, gone: int) -> None:
        super().__init__(refusals=1)
        self.gone = gone
        self.looks = 0

    def list_topics(self, timeout: float) -> _Metadata:
        self.looks += 1
        if self.attempts >= 1 and self.gone > 0:
            self.gone -= 1
            raise KafkaException(
                KafkaError(
                    KafkaError._TRANSPORT, "Failed to get metadata: Local: Broker transport failure"
                )
            )
        return super().list_topics(timeout)


def test_a_broker_gone_while_its_refusal_is_looked_into_is_asked_again() -> None:
    """Service chaos seed 286963: an instance starting as the broker stopped got the refusal,
    then the metadata request that looks into it failed, and the instance exited."""
    admin = StoppingAdmin(gone=1)
    topics = manager(admin)
    topics.ensure(topics.plan())
    assert {"fenced-counts-repartition", "fenced-counts-changelog"} <= set(admin.created)
    assert admin.attempts == 2
