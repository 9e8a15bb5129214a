"""The one owner of the commit order.

A commit, for all running tasks at once:

1. flush every task's record caches (their changes run downstream, so changelog, repartition
   and output records are handed to the producer by the record collector);
2. flush the producer: every record is acknowledged, delivery errors raise here; then the
   processors log what must not run ahead of the output (``Node.on_delivered``: emit-final's
   close time), sent with the next commit (under exactly_once_v2 this happens before the
   transaction commits instead, which makes it atomic with the output);
3. commit the consumed offsets: ``consumer.commit`` under at_least_once, or under
   exactly_once_v2 ``send_offsets_to_transaction`` + ``commit_transaction`` (steps 2 and 3 are
   then one atomic transaction). Under exactly_once_v2 a task that has processed everything
   fetched commits the consumer's position, which steps over transaction markers (lag 0 when
   caught up, as Kafka Streams). The app's lock is not held (interactive queries are served
   meanwhile: see ``_thread.py``); each transactional call has a deadline
   of its own (librdkafka's ``send_offsets_to_transaction`` ignores its timeout while the group
   coordinator is unreachable): past it the producer is given up (fatal, replaced);
   Under at_least_once a closing commit marks its offsets :data:`CLEAN_CLOSE`;
4. write each task's checkpoint (changelog offsets from the producer's delivery reports), only
   under at_least_once or when closing: under EOS a checkpoint exists only while not processing;
5. purge the repartition topics below the committed offsets (now and then, asynchronously).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka import KafkaError as ClientError

from streamtable.errors import KafkaError, TaskMigrated
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._producer import StreamsProducer, TransactionAborted
from streamtable.runtime._purge import RepartitionPurger
from streamtable.runtime._task import StreamTask
from streamtable.runtime.metrics import StreamsMetrics

log = logging.getLogger("streamtable.runtime.commit")

_TIMEOUT_S = 30.0
# The metadata of an offset committed by a clean close under at_least_once: its owner processed
# nothing past it, so the next owner can batch changes in its record cache from there at once.
# Any other committed offset may have records past it whose changes already went downstream:
# the next owner replays those one change per record (see ``StreamTask.replay_until``).
CLEAN_CLOSE = "streamtable:clean-close"
# Offset commits that did not reach the group coordinator: try again at the next commit.
_UNREACHED = frozenset(
    {
        ClientError._TIMED_OUT,
        ClientError._TRANSPORT,
        ClientError._WAIT_COORD,
        ClientError._ALL_BROKERS_DOWN,
        ClientError.REQUEST_TIMED_OUT,
        ClientError.NOT_COORDINATOR,
        ClientError.COORDINATOR_NOT_AVAILABLE,
        ClientError.COORDINATOR_LOAD_IN_PROGRESS,
    }
)
# A transactional call that has not returned this long after its own timeout never will.
_DEADLINE_GRACE_S = 5.0


class CommitDeferred(KafkaError):
    """At least once: the broker did not acknowledge the records or the offsets in time (it is
    unreachable). Nothing is lost: the records stay queued in the producer, the offsets stay
    uncommitted, and the next commit tries again. Only delivery errors are fatal."""


class Committer:
    """Commits tasks in the order stated in the module docstring.

    The producer and its transaction state are a :class:`StreamsProducer` shared with the
    record collector: a transactional call that overran its deadline gives it up
    (``producer.lost``), and the owner replaces it there.
    """

    def __init__(
        self,
        consumer: Consumer,
        producer: StreamsProducer,
        collector: KafkaRecordCollector,
        exactly_once: bool,
        metrics: StreamsMetrics,
        purger: RepartitionPurger | None = None,
        timeout_s: float = _TIMEOUT_S,
        deadline_grace_s: float = _DEADLINE_GRACE_S,
    ) -> None:
        self.purger = purger
        self.consumer = consumer
        self.producer = producer
        self.collector = collector
        self.exactly_once = exactly_once
        self.metrics = metrics
        self._timeout = timeout_s
        self._grace = deadline_grace_s
        if exactly_once:
            collector.before_send = producer.begin

    @property
    def producer_lost(self) -> bool:
        return self.producer.lost

    def commit(self, tasks: Iterable[StreamTask], *, closing: bool = False) -> bool:
        """Commit ``tasks``; True if a transaction (at least once: an offset commit) went
        through, False if there was nothing to commit."""
        tasks = list(tasks)
        started = time.monotonic()
        for task in tasks:  # 1. caches
            task.core.flush()
        if self.exactly_once:
            for task in tasks:  # in the transaction: atomic with what it stands for
                task.core.after_delivered()
            self._advance_to_positions(tasks)
        offsets: dict[str, dict[str, int]] = {t.task_id: t.uncommitted() for t in tasks}
        partitions = [
            TopicPartition(topic, task.partition, offset)
            for task in tasks
            for topic, offset in offsets[task.task_id].items()
        ]
        went_through = False
        if self.exactly_once:
            if partitions:
                self.producer.begin()
            if self.producer.in_transaction:
                self._commit_transaction(partitions)
                went_through = True
        else:
            self._flush_producer()  # 2.
            for task in tasks:  # what every record sent so far stands for: sent next time
                task.core.after_delivered()
            if closing:  # 3.
                closing_offsets = _closing_offsets(tasks, offsets)
                self._commit_offsets(closing_offsets)
                went_through = bool(closing_offsets)
            elif partitions:
                self._commit_offsets(partitions)
                went_through = True
        for task in tasks:
            task.mark_committed(offsets[task.task_id])
        if not self.exactly_once or closing:  # 4.
            for task in tasks:
                task.write_checkpoint(self.collector.changelog_offsets, force=closing)
        if partitions or closing:
            self.metrics.commit_latency.observe(time.monotonic() - started)
        if partitions and self.purger is not None:  # 5.
            self.purger.maybe_purge(partitions)
        return went_through

    def _advance_to_positions(self, tasks: list[StreamTask]) -> None:
        """Under read_committed the last offset of a partition is often a transaction marker,
        which the consumer's position steps over but no processed record reaches. Every record
        a running task was handed has been processed (the loop processes each batch whole), so
        its position is what it has consumed: committing it reads lag 0 when caught up."""
        wanted = [TopicPartition(t, task.partition) for task in tasks for t in task.topics]
        if not wanted:
            return
        positions = {(tp.topic, tp.partition): tp.offset for tp in self.consumer.position(wanted)}
        for task in tasks:
            for topic in task.topics:
                position = positions.get((topic, task.partition), -1)
                if position > max(task.consumed.get(topic, -1), task.committed.get(topic, -1)):
                    task.consumed[topic] = position

    def _bounded(self, what: str, call: Callable[[], None]) -> None:
        """Run a transactional call with a deadline of its own. Past it, the call is left to
        finish (or not) on its own thread, the producer is given up and the commit fails as a
        fatal abort: the owner replaces the producer and rebuilds the tasks' state."""
        result: list[BaseException | None] = []
        done = threading.Event()

        def run() -> None:
            try:
                call()
                result.append(None)
            except BaseException as exc:
                result.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name=f"streamtable-{what}", daemon=True).start()
        deadline = self._timeout + self._grace
        if not done.wait(deadline):
            self.producer.give_up()
            log.error(
                "%s did not return within %.0fs (broker or coordinator unreachable); "
                "giving up this producer",
                what,
                deadline,
            )
            raise TransactionAborted(f"{what} timed out after {deadline:.0f}s", fatal=True)
        if result[0] is not None:
            raise result[0]

    def _flush_producer(self) -> None:
        remaining = self.producer.client.flush(self._timeout)
        self.collector.raise_delivery_errors()
        if remaining:
            raise CommitDeferred(
                f"{remaining} record(s) not acknowledged within {self._timeout:.0f}s; "
                "offsets not committed"
            )

    def _commit_offsets(self, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        try:
            self.consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, ClientError) and error.code() in (
                ClientError.REBALANCE_IN_PROGRESS,
                ClientError.ILLEGAL_GENERATION,
                ClientError.UNKNOWN_MEMBER_ID,
                ClientError._NO_OFFSET,
            ):
                raise TaskMigrated(f"offset commit failed during a rebalance: {error}") from exc
            if isinstance(error, ClientError) and (error.retriable() or error.code() in _UNREACHED):
                raise CommitDeferred(f"offset commit not done: {error}") from exc
            raise KafkaError(f"offset commit failed: {exc}") from exc

    def _commit_transaction(self, partitions: list[TopicPartition]) -> None:
        producer = self.producer.client
        timeout = self._timeout
        try:
            if partitions:
                group = self.consumer.consumer_group_metadata()
                self._bounded(
                    "send_offsets_to_transaction",
                    lambda: producer.send_offsets_to_transaction(partitions, group, timeout),
                )
            self._bounded("commit_transaction", lambda: producer.commit_transaction(timeout))
            self.producer.in_transaction = False
            self.collector.raise_delivery_errors()
        except KafkaException as exc:
            self.producer.in_transaction = False
            error = exc.args[0] if exc.args else None
            fatal = isinstance(error, ClientError) and error.fatal()
            if not fatal:
                try:
                    self._bounded("abort_transaction", lambda: producer.abort_transaction(timeout))
                except (KafkaException, TransactionAborted):
                    fatal = True
            raise TransactionAborted(f"transaction aborted: {exc}", fatal) from exc

    def abort(self) -> None:
        """Abort an open transaction (EOS) without committing anything. A producer that
        cannot abort in time is given up (``producer.lost``). What the transaction sent is
        abandoned: librdkafka fails its queued records with ``_PURGE_QUEUE`` at a later poll,
        and those reports must not fail the next commit (chaos seed 747451: partitions lost
        after a pause, the abort of that loss, then "452 record(s) could not be delivered:
        Local: Purged in queue" raised by the next transaction, which had gone through, and
        the app failed)."""
        if self.exactly_once and self.producer.in_transaction and not self.producer.lost:
            self.producer.in_transaction = False
            self.collector.abandon_sent()
            producer = self.producer.client
            try:
                self._bounded(
                    "abort_transaction", lambda: producer.abort_transaction(self._timeout)
                )
            except KafkaException as exc:
                log.warning("abort_transaction failed: %s", exc)
            except TransactionAborted as exc:
                log.warning("%s", exc)


def _closing_offsets(
    tasks: list[StreamTask], offsets: dict[str, dict[str, int]]
) -> list[TopicPartition]:
    """A clean close commits every position it owns, marked :data:`CLEAN_CLOSE` where the task
    has replayed all that a previous owner might have forwarded (nothing left in its window)."""
    partitions = []
    for task in tasks:
        for topic, offset in {**task.committed, **offsets[task.task_id]}.items():
            if topic in task.replay_until:
                if topic in offsets[task.task_id]:
                    partitions.append(TopicPartition(topic, task.partition, offset))
            else:
                partitions.append(
                    TopicPartition(topic, task.partition, offset, metadata=CLEAN_CLOSE)
                )
    return partitions
