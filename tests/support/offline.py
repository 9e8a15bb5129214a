"""The runtime's processing thread without a broker, for unit tests that drive its parts
(:class:`StreamThread`, :class:`TaskManager`, :class:`TaskCommits`) directly, and a port where
no broker listens.

:func:`offline_thread` builds a :class:`StreamThread` from an :class:`AppContext` and
:class:`ThreadClients` as ``StreamsApp`` does, with fakes in place of the Kafka clients: a test
passes the fake its case needs (a consumer whose ``committed()`` fails, a producer holding
undelivered records, ...); the defaults fail the test on any call it did not expect.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Consumer, Producer

import streamtable as st
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._commit import Committer
from streamtable.runtime._context import AppContext, ThreadClients
from streamtable.runtime._deadletter import DeadLetterWriter
from streamtable.runtime._global import GlobalStores
from streamtable.runtime._metadata import InstanceDirectory
from streamtable.runtime._producer import StreamsProducer
from streamtable.runtime._restore import ChangelogRestorer
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime._thread import StreamThread
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.runtime.state import AppState, check_app_transition
from streamtable.runtime.topics import TopicPlan, dlq_topic
from streamtable.topology import Schedules

PARTITIONS = 2  # of every topic of an offline thread's plan


class Unexpected:
    """A client stand-in for a test that expects no call of it: any call fails the test."""

    def __init__(self, role: str) -> None:
        self._role = role

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected use of the {self._role}: {name}")


class IdleProducer:
    """A producer client that keeps what it is given: ``queued`` records stay undelivered
    (``flush`` returns how many), produced records are listed in ``produced``."""

    def __init__(self, queued: int = 0) -> None:
        self.queued = queued
        self.produced: list[dict[str, Any]] = []

    def produce(self, topic: str, value: Any, key: Any, partition: int, **kw: Any) -> None:
        self.produced.append({"topic": topic, "key": key, "value": value, **kw})

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return self.queued

    def __len__(self) -> int:
        return self.queued


class IdleRestorer:
    """A changelog restorer with nothing to restore; it lists the tasks added and removed."""

    active = False
    restored_records = 0
    replacements = 0

    def __init__(self) -> None:
        self.added: list[tuple[str, dict[str, int]]] = []
        self.removed: list[str] = []

    def add(self, task: Any, committed: dict[str, int]) -> None:
        self.added.append((task.task_id, dict(committed)))

    def remove(self, task: Any) -> None:
        self.removed.append(task.task_id)

    def serve_idle(self) -> None:
        pass

    def close(self) -> None:
        pass


def copy_topology() -> st.Topology:
    """``events`` copied to ``copy``: one sub-topology, no store."""
    builder = st.StreamsBuilder()
    builder.stream("events").to("copy")
    return builder.build()


def offline_config(application_id: str, **settings: Any) -> st.StreamsConfig:
    """Its bootstrap server refuses connections; its state directory is a fresh temporary one."""
    settings.setdefault("bootstrap_servers", "127.0.0.1:1")
    settings.setdefault("state_dir", Path(tempfile.mkdtemp(prefix=f"{application_id}-")))
    return st.StreamsConfig(application_id=application_id, **settings)


def offline_context(
    application_id: str, topology: st.Topology | None = None, **settings: Any
) -> AppContext:
    """What ``StreamsApp.start()`` hands its thread, the app REBALANCING (started). Every
    topic the topology reads or writes has :data:`PARTITIONS` partitions."""
    config = offline_config(application_id, **settings)
    topology = (topology or copy_topology()).bind_serdes(application_id)
    topics = {t for sub in topology.subtopologies for t in sub.source_topics(application_id)}
    topics |= {s.topic for sub in topology.subtopologies for s in sub.sinks if not s.internal}
    state = [AppState.REBALANCING]

    def set_state(new: AppState) -> None:
        if new is not state[0]:
            check_app_transition(state[0], new)
            state[0] = new

    instance_id = str(uuid.uuid4())
    return AppContext(
        topology=topology,
        config=config,
        instance_id=instance_id,
        metrics=StreamsMetrics(application_id),
        state_dir=StateDirectory(config.state_dir, application_id),
        instances=InstanceDirectory(topology, config, instance_id, lambda: state[0].name),
        plan=TopicPlan(dict.fromkeys(sorted(topics), PARTITIONS), {}),
        stop=threading.Event(),
        state=lambda: state[0],
        set_state=set_state,
        schedules=Schedules(),
    )


def offline_clients(
    ctx: AppContext,
    *,
    consumer: object | None = None,
    producer: object | None = None,
    restorer: object | None = None,
) -> ThreadClients:
    """The thread's clients as ``open_clients`` makes them, over fakes of the Kafka clients:
    the record collector, committer and dead-letter writer are the real ones."""
    config = ctx.config
    # ``is None``, not ``or``: a fake producer holding no record is falsy (``len() == 0``).
    group_consumer = cast(Consumer, Unexpected("group consumer") if consumer is None else consumer)
    client = cast(Producer, IdleProducer() if producer is None else producer)
    streams_producer = StreamsProducer(lambda: client, transactional=config.exactly_once)
    collector = KafkaRecordCollector(streams_producer, ctx.plan)
    return ThreadClients(
        settings=config.client_config(),
        consumer=group_consumer,
        producer=streams_producer,
        collector=collector,
        committer=Committer(
            group_consumer,
            streams_producer,
            collector,
            config.exactly_once,
            ctx.metrics,
        ),
        restorer=cast(ChangelogRestorer, IdleRestorer() if restorer is None else restorer),
        globals=GlobalStores(ctx.topology, config, ctx.state_dir),
        standbys=None,
        dead_letters=DeadLetterWriter(
            dlq_topic(config.application_id), config.on_error == "fail", collector, ctx.metrics
        ),
    )


def offline_thread(
    application_id: str,
    *,
    consumer: object | None = None,
    producer: object | None = None,
    restorer: object | None = None,
    topology: st.Topology | None = None,
    **settings: Any,
) -> StreamThread:
    """A :class:`StreamThread` (never run) over fake clients; see the module docstring.
    ``settings`` are :class:`StreamsConfig` fields; ``topology`` defaults to
    :func:`copy_topology`."""
    ctx = offline_context(application_id, topology, **settings)
    clients = offline_clients(ctx, consumer=consumer, producer=producer, restorer=restorer)
    return StreamThread(ctx, clients)


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again when the socket is
