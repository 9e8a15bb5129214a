"""``TaskCommits``: the processing thread's commits, and what it does when one fails.

The :class:`~._commit.Committer` commits in order (caches, producer, offsets, checkpoints);
this decides what a failure means for the tasks: an aborted transaction rebuilds every active
task's state (with a new producer when fatal, or after two aborts in a row), records lost at
least once (a delivery timeout, a freeze past the session timeout) start the tasks again from
the committed offsets, a rebalance or an unreachable broker leaves them for the next commit.
"""

from __future__ import annotations

import logging
from time import monotonic

from confluent_kafka import KafkaException, TopicPartition

from streamtable.errors import TaskMigrated
from streamtable.runtime import _clients
from streamtable.runtime._collector import DeliveryTimedOut
from streamtable.runtime._commit import CommitDeferred
from streamtable.runtime._context import AppContext, ThreadClients
from streamtable.runtime._freeze import ProcessingStalled
from streamtable.runtime._inputwatch import InputWatch
from streamtable.runtime._producer import TransactionAborted
from streamtable.runtime._task import StreamTask
from streamtable.runtime._taskmanager import TaskManager
from streamtable.runtime.state import TaskState

log = logging.getLogger("streamtable.runtime.app")

GAUGES_EVERY_S = 5.0


class TaskCommits:
    """Commits the running tasks of ``tasks`` through ``clients.committer``."""

    def __init__(self, ctx: AppContext, clients: ThreadClients, tasks: TaskManager) -> None:
        self._ctx = ctx
        self._config = ctx.config
        self._clients = clients
        self._tasks = tasks
        self.aborts_in_a_row = 0  # aborted commits since the last one that went through
        self._gauges_at = 0.0
        self.inputs = InputWatch()  # a running input partition no longer fetched

    def commit(self, closing: bool = False, only: list[StreamTask] | None = None) -> None:
        tasks = self._tasks.tasks.values() if only is None else only
        running = [t for t in tasks if t.state is TaskState.RUNNING]
        try:
            if self._clients.committer.commit(running, closing=closing):
                # Only a transaction that went through ends a streak of aborts: a commit with
                # nothing to commit (the tasks still restoring after the last abort's rebuild)
                # came between every two aborts of chaos seed 695530's replay, and the producer
                # whose coordinator connection was stuck was never replaced (17 aborts in a row).
                self.aborts_in_a_row = 0
            if self._clients.standbys is not None:
                self._clients.standbys.checkpoint()
            self.update_gauges(running)
        except ProcessingStalled as exc:
            self.after_lost_records(exc)
        except DeliveryTimedOut as exc:
            if self._config.exactly_once:
                raise
            self.after_lost_records(exc)
        except TaskMigrated as exc:
            log.warning("%s; the tasks will be reassigned", exc)
        except CommitDeferred as exc:
            log.warning("commit deferred: %s; trying again at the next commit", exc)
        except TransactionAborted as exc:
            self._after_abort(exc)
        except KafkaException as exc:
            if not self._config.exactly_once:
                raise
            log.warning("%s during a commit; rebuilding the state of all active tasks", exc)
            self._clients.committer.abort()
            self.recover_from_abort(fatal=True)

    def _after_abort(self, exc: TransactionAborted) -> None:
        self.aborts_in_a_row += 1
        # A second abort in a row replaces the producer as well: after a broker restart
        # (and a freeze) librdkafka's connection to the transaction coordinator can stay
        # stuck, every AddOffsetsToTxn timing out in its queue, while the abort succeeds;
        # keeping the producer then aborted every commit and the task's input never moved
        # again (chaos seed 743451: 17 aborts in a row over 3 minutes). A new producer
        # (same transactional id, which fences the old one) connects afresh.
        fatal = exc.fatal or self.aborts_in_a_row >= 2
        log.warning(
            "%s; rebuilding the state of all active tasks%s",
            exc,
            " with a new producer" if fatal else "",
        )
        self.recover_from_abort(fatal)

    def recover_from_abort(self, fatal: bool) -> None:
        """After an aborted transaction: wipe every active task's state, restore it from the
        changelogs and re-read the input from the committed offsets."""
        if fatal or self._clients.producer.lost:
            self._tasks.replace_producer()
        self._clients.collector.abandon_sent()
        self._tasks.restart_all()

    def after_lost_records(self, exc: ProcessingStalled | DeliveryTimedOut) -> None:
        """At least once, after a freeze past the session timeout or records not delivered in
        time: what was sent since the committed offsets is forgotten (the reports of what
        librdkafka fails now are not errors of the next commit) and the tasks start again from
        the committed offsets, replaying their changes in order."""
        log.warning("%s; the tasks start again from the committed offsets", exc)
        self._ctx.metrics.stall_restarts.inc()
        self._clients.collector.abandon_sent()
        if isinstance(exc, DeliveryTimedOut) and _clients.cut_off(
            self._clients.producer.client, self._clients.settings
        ):  # it would time out every record again (see _clients.cut_off)
            log.warning("the producer cannot reach the cluster while a new client can")
            self._tasks.replace_producer()
        self._tasks.restart_all()

    def still_member(self) -> bool:
        """The probe of :class:`FreezeWatch`: commits again the offsets already committed for
        the running tasks' partitions, which the coordinator refuses from a member it removed
        (or a rebalance under way). False also when nothing can show it."""
        consumer = self._clients.consumer
        tps = [
            TopicPartition(t, task.partition) for task in self._tasks.running() for t in task.topics
        ]
        if not tps:
            return True  # nothing running: nothing to send on its behalf
        try:
            found = consumer.committed(tps, timeout=10)
            again = [
                TopicPartition(tp.topic, tp.partition, tp.offset, tp.metadata or "")
                for tp in found
                if tp.offset >= 0
            ]
            if not again:
                return False
            consumer.commit(offsets=again, asynchronous=False)
        except KafkaException as exc:
            log.warning("probe after a freeze failed: %s", exc)
            return False
        return True

    def update_gauges(self, running: list[StreamTask]) -> None:
        """Lag per input partition and entries per store, at most every 5 s (cheap: cached
        watermarks and RocksDB's estimate); then a look for inputs no longer fetched
        (:class:`InputWatch`)."""
        now = monotonic()
        if now - self._gauges_at < GAUGES_EVERY_S:
            return
        self._gauges_at = now
        metrics = self._ctx.metrics
        metrics.consumer_lag.clear()
        metrics.store_entries.clear()
        consumer = self._clients.consumer
        inputs: list[tuple[StreamTask, str, int]] = []
        for task in running:
            for topic in task.topics:
                tp = TopicPartition(topic, task.partition)
                try:
                    position = consumer.position([tp])[0].offset
                    inputs.append((task, topic, position))
                    _, high = consumer.get_watermark_offsets(tp, cached=True)
                except KafkaException as exc:
                    # Nothing cached for it (its metadata dropped after a broker restart): no
                    # figure this time. A gauge must not fail the commit that called it.
                    log.debug("no lag for %s[%s]: %s", topic, task.partition, exc)
                    continue
                if high >= 0 and position >= 0:
                    metrics.consumer_lag.labels(topic, str(task.partition)).set(
                        max(high - position, 0)
                    )
            for name, store in task.serde_stores.items():
                metrics.store_entries.labels(name, str(task.partition)).set(
                    store.approximate_num_entries()
                )
        self.inputs.watch(consumer, inputs, now)
