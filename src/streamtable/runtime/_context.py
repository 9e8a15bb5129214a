"""What a :class:`StreamsApp` shares with its processing thread, and the thread's clients.

:class:`AppContext` is built by ``StreamsApp.start()`` once the topics are known;
:func:`open_clients` opens every Kafka client the processing thread owns (closing again what
it opened if one of them fails), so the thread's parts never see a client that is not there.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from streamtable.runtime import _clients
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._commit import Committer
from streamtable.runtime._deadletter import DeadLetterWriter
from streamtable.runtime._global import GlobalStores
from streamtable.runtime._metadata import InstanceDirectory
from streamtable.runtime._producer import StreamsProducer
from streamtable.runtime._purge import RepartitionPurger
from streamtable.runtime._restore import ChangelogRestorer, StateRestoreListener
from streamtable.runtime._standby import StandbyTasks
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.runtime.state import AppState
from streamtable.runtime.topics import TopicPlan, dlq_topic
from streamtable.state import CacheBudget
from streamtable.topology import Schedules, Topology

PURGE_INTERVAL_S = 30.0
"""How often consumed records are deleted from repartition topics (Kafka Streams:
``repartition.purge.interval.ms``, also 30 s)."""


@dataclass(eq=False)
class AppContext:
    """The app's parts that its processing thread uses: settings, the state directory, the
    instance directory, metrics, and the lock that interactive queries take to see tasks."""

    topology: Topology
    config: StreamsConfig
    instance_id: str
    metrics: StreamsMetrics
    state_dir: StateDirectory
    instances: InstanceDirectory
    plan: TopicPlan
    stop: threading.Event
    state: Callable[[], AppState]
    set_state: Callable[[AppState], None]
    schedules: Schedules[None]
    restore_listener: StateRestoreListener | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    budget: CacheBudget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = CacheBudget(self.config.cache_max_bytes)


@dataclass(eq=False)
class ThreadClients:
    """The processing thread's Kafka clients. The group consumer may be replaced (one that
    has lost every broker: see :func:`_clients.cut_off`); the others keep their identity
    (the producer's client is replaced inside its :class:`StreamsProducer`)."""

    settings: dict[str, str]
    consumer: Consumer
    producer: StreamsProducer
    collector: KafkaRecordCollector
    committer: Committer
    restorer: ChangelogRestorer
    globals: GlobalStores
    standbys: StandbyTasks | None  # only with num_standby_replicas > 0
    dead_letters: DeadLetterWriter
    # When the group consumer was last looked at for having lost every broker (at most once
    # per GROUP_STALL_S: it costs a Metadata request).
    group_looked: float = 0.0

    def group_consumer_cut_off(self) -> bool:
        return _clients.cut_off(self.consumer, self.settings)

    def committed_offsets(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return _clients.committed_offsets(self.consumer, tps, 10)

    def look_at_group_consumer(self, every_s: float) -> bool:
        """Whether the group consumer may be looked at now (then not again for ``every_s``)."""
        now = time.monotonic()
        if now - self.group_looked < every_s:
            return False
        self.group_looked = now
        return True

    def close(self, *, flush: bool) -> None:
        """Close every client; the consumer leaves the group. The producer delivers what it
        holds when ``flush`` (and it was not given up)."""
        self.consumer.close()
        if flush:
            self.producer.close(10)
        self.restorer.close()
        self.globals.close()
        if self.standbys is not None:
            self.standbys.close()


def open_clients(ctx: AppContext) -> ThreadClients:
    """Every client of the processing thread, or none: those opened before one that fails
    (a broker refusing the producer's ``init_transactions``, a stop meanwhile) are closed."""
    opened = contextlib.ExitStack()
    try:
        return _open(ctx, opened)
    except BaseException:
        opened.close()
        raise


def _open(ctx: AppContext, opened: contextlib.ExitStack) -> ThreadClients:
    """Opens the clients, registering the close of each in ``opened``."""
    config = ctx.config
    consumer = _clients.main_consumer(config)
    opened.callback(consumer.close)
    process_id = ctx.state_dir.process_id()
    producer = StreamsProducer(
        lambda: _clients.producer(config, process_id, stop=ctx.stop),
        transactional=config.exactly_once,
    )
    opened.callback(producer.close, 10)
    collector = KafkaRecordCollector(producer, ctx.plan)
    restore = _clients.restore_consumer(config)
    opened.callback(restore.close)
    log_end = _clients.log_end_consumer(config)
    if log_end is not None:
        opened.callback(log_end.close)
    restorer = ChangelogRestorer(
        restore,
        log_end=log_end,
        deadline_s=config.task_timeout_s,
        renew=lambda: _clients.restore_consumer(config),
        renew_log_end=lambda: _clients.read_uncommitted_consumer(config),
        settings=config.client_config(),
        listener=ctx.restore_listener,
    )
    globals_ = GlobalStores(ctx.topology, config, ctx.state_dir)
    opened.callback(globals_.close)
    clients = ThreadClients(
        settings=config.client_config(),
        consumer=consumer,
        producer=producer,
        collector=collector,
        committer=_committer(ctx, consumer, producer, collector),
        restorer=restorer,
        globals=globals_,
        standbys=None,
        dead_letters=DeadLetterWriter(
            dlq_topic(config.application_id), config.on_error == "fail", collector, ctx.metrics
        ),
    )
    if config.num_standby_replicas > 0:
        # Committed offsets through the group consumer of the moment (it may be replaced).
        clients.standbys = StandbyTasks(
            ctx.topology,
            config,
            ctx.state_dir,
            _clients.restore_consumer(config),
            clients.committed_offsets,
            renew=lambda: _clients.restore_consumer(config),
        )
    return clients  # the closes registered in ``opened`` are dropped with it


def _committer(
    ctx: AppContext,
    consumer: Consumer,
    producer: StreamsProducer,
    collector: KafkaRecordCollector,
) -> Committer:
    app = ctx.config.application_id
    repartition = [
        f"{app}-{s}" for s, t in ctx.topology.internal_topics.items() if t.purpose == "repartition"
    ]
    purger = RepartitionPurger(
        AdminClient(ctx.config.client_config()), repartition, interval_s=PURGE_INTERVAL_S
    )
    return Committer(
        consumer,
        producer,
        collector,
        ctx.config.exactly_once,
        ctx.metrics,
        purger,
    )
