"""Settings of the app's Kafka clients.

Partition assignment: ONE consumer per instance, ``group.id = application_id``, subscribed to
every source and repartition topic, with the **range** assignor. Range assigns each topic on its
own: members sorted by id, partitions split into contiguous ranges in that order. All members
subscribe to the same topics, so two topics with the same partition count are split identically
and partition ``p`` of every co-partitioned topic lands on the same member. A task
``(sub-topology, p)`` exists on the member that owns partition ``p`` of all its sub-topology's
source topics; equal counts within a sub-topology are checked at start (``topics.py``), which
is what makes that hold. (A sticky or round-robin assignor would scatter them.)

The producer uses ``murmur2_random`` so keyed records land where Java's producer puts them.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streamtable.errors import ConfigError, StreamTableError
from streamtable.runtime.config import StreamsConfig

log = logging.getLogger("streamtable.runtime.clients")

CREDENTIALS = "kafka sasl.username/sasl.password"


# How long a start waits for an unreachable broker (a broker restart takes about a minute on a
# small machine; an orchestrator restarting an instance meanwhile should not see it crash).
STARTUP_WAIT_S = 120.0

# How long one init_transactions call waits before it is asked again (and a stop looked at).
INIT_TRANSACTIONS_STEP_S = 5.0


def check_connection(
    settings: dict[str, Any],
    timeout_s: float = STARTUP_WAIT_S,
    stop: threading.Event | None = None,
) -> None:
    """Fetch cluster metadata once with ``settings``; fail fast on refused credentials.

    A wrong SASL password makes librdkafka retry forever; every metadata request then times
    out with a misleading "Broker transport failure". The broker's actual answer arrives as an
    error event (``_AUTHENTICATION``) within a second or so: this turns it into a
    :class:`ConfigError` naming the settings at once. Any other failure is left as it was: the
    ``KafkaException`` of the last metadata request once ``timeout_s`` has passed. Once
    ``stop`` is set it gives up with :class:`ShutdownRequested`.
    """
    refused: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() == KafkaError._AUTHENTICATION:
            refused.append(error)

    probe: dict[str, Any] = {**settings, "error_cb": on_error}
    admin = AdminClient(probe)
    started = time.monotonic()
    deadline = started + timeout_s
    said = started
    try:
        while True:
            try:
                admin.list_topics(timeout=max(min(0.5, deadline - time.monotonic()), 0.01))
                return
            except KafkaException:
                admin.poll(0)  # serves error events (and log lines)
                if time.monotonic() - said >= 10.0:
                    said = time.monotonic()
                    log.warning(
                        "no broker answers at %s yet after %.0fs; waiting up to %.0fs",
                        settings.get("bootstrap.servers"), said - started, timeout_s,
                    )  # fmt: skip
                if refused:
                    raise ConfigError(
                        CREDENTIALS,
                        f"authentication failed: the broker refused the credentials "
                        f"({refused[0].str()}); check kafka sasl.username/sasl.password "
                        f"(and sasl.mechanism)",
                    ) from None
                if time.monotonic() >= deadline:
                    raise
                if stop is not None and stop.is_set():
                    raise ShutdownRequested(
                        f"stopping while no broker answers at {settings.get('bootstrap.servers')}"
                    ) from None
    finally:
        admin.poll(0)


# librdkafka's periodic metadata refresh for the app's consumers (its default is 300000 ms). A
# classic consumer whose group join is waiting for a Metadata answer ("wait-metadata") when the
# broker stops never has that request answered nor sent again: only the next periodic refresh
# moves the join on, so with the default the instance stayed without an assignment for minutes
# after the broker was back (chaos seeds 460751, 503868). The assign-only consumers (restore,
# standby, global tables) refresh as often: they need a partition's leader to look a start
# offset up. (It was also meant for a restore that read nothing for minutes after a broker
# restart, chaos seed 341488, and could not cure it: that consumer had lost every broker, see
# cut_off below.) A refresh asks only for the topics in use. A ``kafka`` setting of the user's
# wins.
METADATA_REFRESH_MS = 5000


# A client that has lost every broker: librdkafka (2.10 and later) drops the brokers a Metadata
# answer leaves out, and a broker that has just started can answer with none (before it has
# registered itself: "0 brokers, 1 topics"); a client that asks it then at the wrong moment
# knows no broker at all and never connects again ("no usable brokers"; librdkafka issue
# 5301, still open), while every other client works. Seen after chaos broker restarts: a
# restore that read nothing for minutes (seed 509821, with librdkafka's debug log), an
# instance that never rejoined its group (seed 515885). Such a client is replaced.
PROBE_TIMEOUT_S = 5.0


def cut_off(client: Consumer | Producer, settings: dict[str, Any]) -> bool:
    """Whether ``client`` cannot get cluster metadata while a new client with ``settings`` can
    (from a broker that lists brokers). False while the cluster is out of everyone's reach:
    then a new client would not help."""
    try:
        client.list_topics(timeout=PROBE_TIMEOUT_S)
        return False
    except KafkaException:
        pass
    probe = AdminClient(settings)
    try:
        return bool(probe.list_topics(timeout=PROBE_TIMEOUT_S).brokers)
    except KafkaException:
        return False
    finally:
        probe.poll(0)


PREFETCH_KBYTES = 8192
"""The group consumer's prefetch queue (librdkafka ``queued.max.messages.kbytes``, 64 MiB by
default): with the default, peak RSS at 48 input partitions was 1.5x that at 6 (bench W7: 544 vs
355 MiB); with 8 MiB, 298 MiB and no slower. ``StreamsConfig.kafka`` may set it otherwise."""


def main_consumer(config: StreamsConfig) -> Consumer:
    settings: dict[str, Any] = {
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        "queued.max.messages.kbytes": PREFETCH_KBYTES,
        **config.client_config(),
        "group.id": config.application_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "range",
        "session.timeout.ms": config.session_timeout_ms,
        "heartbeat.interval.ms": max(config.session_timeout_ms // 4, 250),
    }
    if config.exactly_once:
        settings["isolation.level"] = "read_committed"
    return Consumer(settings)


def restore_consumer(config: StreamsConfig) -> Consumer:
    settings: dict[str, Any] = {
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        **config.client_config(),
        # Assign-only: it never joins this group nor commits.
        "group.id": f"{config.application_id}-restore",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    if config.exactly_once:
        settings["isolation.level"] = "read_committed"
    return Consumer(settings)


def offsets_consumer(config: StreamsConfig) -> Consumer:
    """Reads the group's committed offsets and end offsets (``_offsets.OffsetsRefresher``):
    ``group.id`` is the app's, but it never subscribes, so it never joins the group."""
    settings: dict[str, Any] = {
        "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
        **config.client_config(),
        "group.id": config.application_id,
        "enable.auto.commit": False,
    }
    if config.exactly_once:
        settings["isolation.level"] = "read_committed"  # end offsets as the group reads them
    return Consumer(settings)


def log_end_consumer(config: StreamsConfig) -> Consumer | None:
    """Under exactly_once_v2, a read_uncommitted consumer that only asks for log end offsets:
    a read_committed consumer's "high watermark" is the last stable offset, which a killed
    instance's open transaction holds back while committed records already follow it."""
    return read_uncommitted_consumer(config) if config.exactly_once else None


def read_uncommitted_consumer(config: StreamsConfig) -> Consumer:
    return Consumer(
        {
            "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
            **config.client_config(),
            "group.id": f"{config.application_id}-restore",  # assign-free: never joins it
            "enable.auto.commit": False,
            "isolation.level": "read_uncommitted",
        }
    )


def producer(
    config: StreamsConfig,
    process_id: uuid.UUID,
    stop: threading.Event | None = None,
) -> Producer:
    """The app's one producer. Under exactly_once_v2 its transactional id is
    ``<application.id>-<process id>``, the process id being kept in the state directory (as
    Kafka Streams does): a restart on the same state directory fences the killed process's
    producer and aborts its open transaction at once, rather than after the transaction
    timeout (10 s here, as Kafka Streams sets it; librdkafka's own default is 60 s), during
    which the partitions that transaction wrote to cannot be read past it (read_committed).

    ``init_transactions`` waits for an unreachable broker like the other start-up calls: up to
    ``config.task_timeout_ms`` (a broker restart can take longer than the 60 s one call waited,
    chaos seed 636651), asked again every :data:`INIT_TRANSACTIONS_STEP_S` after a timeout
    (librdkafka resumes the initialisation it had begun) so that ``stop`` (a SIGTERM) ends the
    wait within a step. A fatal error (fenced, or refused by the broker) is raised at once."""
    settings: dict[str, Any] = {
        **(
            {"transaction.timeout.ms": 10000}
            if config.exactly_once
            # At least once: a record not delivered within the session timeout is failed by
            # librdkafka (_MSG_TIMED_OUT) rather than delivered later. librdkafka scans its
            # queues for expired records before it sends (at least once a second), so a
            # process frozen past its session timeout (SIGSTOP, a paused VM) fails what it
            # had queued instead of delivering it on resuming, after the new owner of its
            # tasks has replayed the same input: an older change after a newer one leaves an
            # aggregation wrong for good (chaos seeds 912703, 338708, 496662, 890515). The
            # app starts its tasks again from the committed offsets on such a timeout.
            else {"message.timeout.ms": config.session_timeout_ms}
        ),
        **config.client_config(),
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        # As Kafka Streams' producers: batches fill for up to 100 ms (a commit flushes anyway),
        # so the broker sees few large requests instead of many small ones.
        "linger.ms": 100,
    }
    if config.exactly_once:
        settings["transactional.id"] = f"{config.application_id}-{process_id}"
    made = Producer(settings)
    if config.exactly_once:
        wait_s = config.task_timeout_s
        deadline = time.monotonic() + wait_s

        def init() -> None:
            left = deadline - time.monotonic()
            made.init_transactions(max(min(INIT_TRANSACTIONS_STEP_S, left), 0.1))

        retry_transient(init, "init_transactions", deadline_s=wait_s, stop=stop)
    return made


T = TypeVar("T")

# What a broker answers while a partition's leader or the group's coordinator starts, moves or
# loads (a topic just created, a broker just restarted): the same request succeeds shortly.
# _DESTROY_BROKER: the request was pending on a broker handle that librdkafka dropped (a Metadata
# answer that left the broker out, right after a broker restart); asked again, it goes to the
# broker as librdkafka knows it now (chaos seed 356835: a restore's end-offsets request failed
# so, and the instance stopped in ERROR).
_TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._DESTROY_BROKER,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
    }
)


def transient(exc: KafkaException) -> bool:
    """Whether the same request may succeed shortly (see :data:`_TRANSIENT`)."""
    error = exc.args[0] if exc.args else None
    return (
        isinstance(error, KafkaError)
        and not error.fatal()
        and (error.code() in _TRANSIENT or error.retriable())
    )


def committed_offsets(
    consumer: Consumer, tps: list[TopicPartition], timeout: float
) -> list[TopicPartition]:
    """``consumer.committed(tps)``, raising the first partition's own error: librdkafka puts
    per-partition errors in the result with offset -1001, which must not read as "nothing
    committed" (that would start the partition over from the beginning)."""
    found: list[TopicPartition] = consumer.committed(tps, timeout=timeout)
    for tp in found:
        if tp.error is not None:
            raise KafkaException(tp.error)
    return found


class ShutdownRequested(StreamTableError):
    """The app was asked to stop while a broker call was being asked again."""


class ClientCutOff(StreamTableError):
    """A broker call was given up: its client has lost every broker (see :func:`cut_off`)."""


# How long a broker call fails before its client is looked at for having lost every broker
# (and again at this interval).
CUT_OFF_AFTER_S = 30.0


def retry_transient(
    call: Callable[[], T],
    what: str,
    deadline_s: float = 120.0,
    stop: threading.Event | None = None,
    cut_off_check: Callable[[], bool] | None = None,
) -> T:
    """``call()``, asked again (with a growing pause) while it fails with a transient broker
    error, for up to ``deadline_s``; then, or on any other error (a fatal one included, whatever
    its code), its exception propagates.
    Once ``stop`` is set it gives up with :class:`ShutdownRequested` (a SIGTERM during a broker
    outage must not wait for the deadline). After :data:`CUT_OFF_AFTER_S` of failures, and
    again at that interval, ``cut_off_check()`` is asked: True gives up with
    :class:`ClientCutOff` (a client that has lost every broker never succeeds)."""
    started = looked = time.monotonic()
    deadline = started + deadline_s
    pause = 0.1
    while True:
        try:
            return call()
        except KafkaException as exc:
            if not transient(exc) or time.monotonic() + pause > deadline:
                raise
            error = exc.args[0] if exc.args else None
            now = time.monotonic()
            if cut_off_check is not None and now - looked >= CUT_OFF_AFTER_S:
                looked = now
                if cut_off_check():
                    raise ClientCutOff(
                        f"{what}: failing for {now - started:.0f}s ({error}); the client has "
                        "lost every broker while a new client reaches the cluster"
                    ) from exc
            log.info("%s: %s; asking again", what, error)
            # Back off before asking the broker again.
            if stop is None:
                time.sleep(pause)
            elif stop.wait(pause):
                raise ShutdownRequested(
                    f"{what}: stopping while the broker answers {error}"
                ) from None
            pause = min(pause * 2, 2.0)
