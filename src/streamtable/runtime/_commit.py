"""The one owner of the commit order.

A commit, for all running tasks at once:

1. flush every task's record caches (their changes run downstream, so changelog, repartition
   and output records are handed to the producer by the record collector);
2. flush the producer: every record is acknowledged, delivery errors raise here;
3. commit the consumed offsets: ``consumer.commit`` under at_least_once, or under
   exactly_once_v2 ``send_offsets_to_transaction`` + ``commit_transaction`` (steps 2 and 3 are
   then one atomic transaction);
4. write each task's checkpoint (changelog offsets from the producer's delivery reports), only
   under at_least_once or when closing: under EOS a checkpoint exists only while not processing;
5. purge the repartition topics below the committed offsets (now and then, asynchronously).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka import KafkaError as ClientError

from streamtable.errors import KafkaError, TaskMigrated
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._purge import RepartitionPurger
from streamtable.runtime._task import StreamTask
from streamtable.runtime.metrics import StreamsMetrics

log = logging.getLogger("streamtable.runtime.commit")

_TIMEOUT_S = 30.0


class TransactionAborted(KafkaError):
    """The transaction was aborted (EOS): local state of active tasks must be rebuilt.
    ``fatal`` means the producer was fenced or failed and must be replaced."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class Committer:
    """Commits tasks in the order stated in the module docstring."""

    def __init__(
        self,
        consumer: Consumer,
        producer: Producer,
        collector: KafkaRecordCollector,
        exactly_once: bool,
        metrics: StreamsMetrics,
        purger: RepartitionPurger | None = None,
    ) -> None:
        self.purger = purger
        self.consumer = consumer
        self.producer = producer
        self.collector = collector
        self.exactly_once = exactly_once
        self.metrics = metrics
        self.in_transaction = False
        if exactly_once:
            collector.before_send = self.begin

    def begin(self) -> None:
        if self.exactly_once and not self.in_transaction:
            self.producer.begin_transaction()
            self.in_transaction = True

    def commit(self, tasks: Iterable[StreamTask], *, closing: bool = False) -> None:
        tasks = list(tasks)
        started = time.monotonic()
        for task in tasks:  # 1. caches
            task.core.flush()
        offsets: dict[str, dict[str, int]] = {t.task_id: t.uncommitted() for t in tasks}
        partitions = [
            TopicPartition(topic, task.partition, offset)
            for task in tasks
            for topic, offset in offsets[task.task_id].items()
        ]
        if self.exactly_once:
            if partitions:
                self.begin()
            if self.in_transaction:
                self._commit_transaction(partitions)
        else:
            self._flush_producer()  # 2.
            if partitions:  # 3.
                self._commit_offsets(partitions)
        for task in tasks:
            task.mark_committed(offsets[task.task_id])
        if not self.exactly_once or closing:  # 4.
            for task in tasks:
                task.write_checkpoint(self.collector.changelog_offsets, force=closing)
        if partitions or closing:
            self.metrics.commit_latency.observe(time.monotonic() - started)
        if partitions and self.purger is not None:  # 5.
            self.purger.maybe_purge(partitions)

    def _flush_producer(self) -> None:
        remaining = self.producer.flush(_TIMEOUT_S)
        if remaining:
            raise KafkaError(f"{remaining} record(s) not delivered within {_TIMEOUT_S:.0f}s")
        self.collector.raise_delivery_errors()

    def _commit_offsets(self, partitions: list[TopicPartition]) -> None:
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
            raise KafkaError(f"offset commit failed: {exc}") from exc

    def _commit_transaction(self, partitions: list[TopicPartition]) -> None:
        try:
            if partitions:
                self.producer.send_offsets_to_transaction(
                    partitions, self.consumer.consumer_group_metadata(), _TIMEOUT_S
                )
            self.producer.commit_transaction(_TIMEOUT_S)
            self.in_transaction = False
            self.collector.raise_delivery_errors()
        except KafkaException as exc:
            self.in_transaction = False
            error = exc.args[0] if exc.args else None
            fatal = isinstance(error, ClientError) and error.fatal()
            if not fatal:
                try:
                    self.producer.abort_transaction(_TIMEOUT_S)
                except KafkaException:
                    fatal = True
            raise TransactionAborted(f"transaction aborted: {exc}", fatal) from exc

    def abort(self) -> None:
        """Abort an open transaction (EOS) without committing anything."""
        if self.exactly_once and self.in_transaction:
            self.in_transaction = False
            try:
                self.producer.abort_transaction(_TIMEOUT_S)
            except KafkaException as exc:
                log.warning("abort_transaction failed: %s", exc)
