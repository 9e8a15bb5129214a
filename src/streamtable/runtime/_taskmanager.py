"""``TaskManager``: creates, restores, starts, closes and restarts the active tasks.

A task per assigned ``(sub-topology, partition)``: created RESTORING (its stores restored from
their changelogs by the :class:`ChangelogRestorer`), then RUNNING (those of its partitions held
meanwhile resumed: :mod:`._holds`), then closed with or without its state. A restart (after an
aborted transaction, lost records, a freeze) closes and wipes every task at once and starts them
again from the committed offsets in a second half, :meth:`resume_restart`, that the loop calls
at each pass until the group coordinator answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from streamtable.errors import KafkaError
from streamtable.runtime import _clients
from streamtable.runtime._clients import ClientCutOff
from streamtable.runtime._commit import CLEAN_CLOSE
from streamtable.runtime._context import AppContext, ThreadClients
from streamtable.runtime._holds import PartitionHolds
from streamtable.runtime._task import StreamTask
from streamtable.runtime.state import AppState, TaskState
from streamtable.topology import TaskHooks

log = logging.getLogger("streamtable.runtime.app")

TP = tuple[str, int]

# How long a member may be without an assignment before its group consumer is looked at for
# having lost every broker (a normal rebalance, even one waiting for a frozen member, is over
# within a session timeout or two; looking costs one Metadata request).
GROUP_STALL_S = 60.0

CommitFn = Callable[[bool, list[StreamTask] | None], None]


class TaskManager:
    """The active tasks of one processing thread, by id and by input partition."""

    def __init__(
        self, ctx: AppContext, clients: ThreadClients, hooks: TaskHooks, commit: CommitFn
    ) -> None:
        self._ctx = ctx
        self._config = ctx.config
        self._clients = clients
        self._hooks = hooks
        self._commit = commit  # the thread's commit (closing, only these tasks)
        self.tasks: dict[str, StreamTask] = {}
        self.by_partition: dict[TP, StreamTask] = {}
        # Partitions of tasks being started again (restart), until their committed offsets are
        # read (resume_restart); a rebalance cancels it.
        self.restart_pending: list[TP] | None = None
        self._restart_since = 0.0
        self.holds = PartitionHolds(lambda: clients.consumer)

    def running(self) -> list[StreamTask]:
        return [t for t in self.tasks.values() if t.state is TaskState.RUNNING]

    # -- create and restore ----------------------------------------------------------------
    def create(self, assignment: list[TP]) -> None:
        """A task for every sub-topology partition whose input partitions are all in
        ``assignment``; each starts RESTORING."""
        owned = set(assignment)
        for sub in self._ctx.topology.subtopologies:
            topics = sub.source_topics(self._config.application_id)
            for p in sorted({p for t, p in owned if t == topics[0]}):
                if not all((t, p) in owned for t in topics):
                    log.warning(
                        "sub-topology %s: partition %s not owned for all of %s", sub.id, p, topics
                    )
                    continue
                existing = self.tasks.get(f"{sub.id}_{p}")
                if existing is not None:
                    self._reopen(existing)
                if self._clients.standbys is not None:
                    self._clients.standbys.release(f"{sub.id}_{p}")  # its directory becomes active
                task = StreamTask(
                    self._ctx.topology,
                    sub,
                    p,
                    self._config,
                    self._ctx.state_dir,
                    self._clients.collector,
                    self._ctx.budget,
                    self._clients.globals.stores,
                    self._hooks,
                    metered=self._ctx.metrics.recording,
                )
                with self._ctx.lock:  # queries look tasks up under it
                    self.tasks[task.task_id] = task
                    for t in task.topics:
                        self.by_partition[(t, p)] = task
                self._start_restore(task)
        self._tasks_changed()

    def _reopen(self, existing: StreamTask) -> None:
        """Assigned again while it still runs here (an assignment without a revocation before
        it): the assignment reset its fetch positions to the committed offsets, so commit what
        it did and close it, to start it afresh (a second StreamTask beside it would find its
        RocksDB directories locked)."""
        log.info("task %s: assigned again while open; committing and reopening", existing.task_id)
        if self._config.exactly_once:
            self._commit(False, None)  # one transaction for all: no checkpoints meanwhile
        else:
            self._commit(True, [existing])
        self.close([existing])

    def _start_restore(self, task: StreamTask) -> None:
        task.transition(TaskState.RESTORING)
        # Under exactly_once_v2, the committed offsets of every input partition first: the
        # consumer reads them read_committed, which waits while a transaction of the previous
        # owner holds offsets of them not yet committed or aborted (a process frozen past its
        # session timeout). That transaction's changelog records may not have reached the
        # broker yet (still in its producer): a restore planned meanwhile would end before
        # them, and the input would then resume past the records they came from (chaos seed
        # 189807). Once it has ended, the changelogs' ends hold all it committed.
        topics = set(task.topics) if self._config.exactly_once else set()
        topics |= {tp[0] for tp in task.source_changelogs}
        committed: dict[str, int] = {}
        if topics:
            consumer = self._clients.consumer
            wanted = [TopicPartition(t, task.partition) for t in sorted(topics)]
            try:
                found = _clients.retry_transient(
                    lambda: _clients.committed_offsets(consumer, wanted, 10),
                    f"committed offsets of task {task.task_id} (an open transaction may hold them)",
                    stop=self._ctx.stop,
                    deadline_s=self._config.task_timeout_s,
                    cut_off_check=self._clients.group_consumer_cut_off,
                )
            except KafkaException as exc:
                if not (self._config.exactly_once and _clients.transient(exc)):
                    raise
                raise KafkaError(_unstable_offsets_message(task.task_id, wanted, exc)) from exc
            committed = {tp.topic: tp.offset for tp in found}
        self._clients.restorer.add(task, committed)

    # -- running ---------------------------------------------------------------------------
    def task_running(self, task: StreamTask) -> None:
        """``task`` is restored: at least once, it first learns what it must replay one change
        per record (:meth:`_replay_window`); then those of its partitions held meanwhile are
        resumed."""
        task.transition(TaskState.RUNNING)
        if self._config.exactly_once:
            task.delete_checkpoint()
        else:
            task.replay_until = self._replay_window(task)
        self.holds.release((t, task.partition) for t in task.topics)
        log.info("task %s running", task.task_id)

    def replayed(self, task: StreamTask, topic: str, offset: int) -> None:
        limit = task.replay_until.get(topic)
        if limit is None:
            return
        task.core.flush()  # one change per replayed record: see StreamTask.replay_until
        if offset + 1 >= limit:
            del task.replay_until[topic]
            log.info("task %s: %s replayed", task.task_id, topic)

    def _replay_window(self, task: StreamTask) -> dict[str, int]:
        """At least once: where the previous owner of ``task``'s partitions may have forwarded
        changes past the committed offsets (it did not close cleanly), the end offsets now."""
        consumer = self._clients.consumer
        window: dict[str, int] = {}
        tps = [TopicPartition(t, task.partition) for t in task.topics]
        found: list[TopicPartition] = _clients.retry_transient(
            lambda: _clients.committed_offsets(consumer, tps, 30),
            f"committed offsets of {task}",
            stop=self._ctx.stop,
            deadline_s=self._config.task_timeout_s,
            cut_off_check=self._clients.group_consumer_cut_off,
        )
        unmarked = []
        for tp in found:
            if tp.offset < 0 or tp.metadata == CLEAN_CLOSE:
                unmarked.append(tp)
                continue
            end = TopicPartition(tp.topic, tp.partition)
            _, high = _clients.retry_transient(
                partial(consumer.get_watermark_offsets, end, 10, False),
                f"end offset of {tp.topic}[{tp.partition}]",
                stop=self._ctx.stop,
                deadline_s=self._config.task_timeout_s,
                cut_off_check=self._clients.group_consumer_cut_off,
            )
            if high > tp.offset:
                window[tp.topic] = high
                log.info(
                    "task %s replays %s[%d] %d..%d one change per record (its previous owner "
                    "did not close cleanly)",
                    task.task_id, tp.topic, tp.partition, tp.offset, high,
                )  # fmt: skip
        if unmarked:
            self._mark_start(consumer, unmarked)
        return window

    def _mark_start(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Nothing to replay here (nothing committed yet, or a clean close): commit where this
        task starts, without the clean-close mark, before it forwards anything, so that an
        owner after a crash of this one replays from there. (A clean-close mark left in place
        told the next owner to skip the replay of what this one forwarded: chaos seed 48777.)"""
        starts = []
        for tp in partitions:
            offset = tp.offset
            if offset < 0:
                offset, _ = _clients.retry_transient(
                    partial(
                        consumer.get_watermark_offsets, TopicPartition(tp.topic, tp.partition), 10
                    ),
                    f"start offset of {tp.topic}[{tp.partition}]",
                    stop=self._ctx.stop,
                    deadline_s=self._config.task_timeout_s,
                )
            starts.append(TopicPartition(tp.topic, tp.partition, offset))
        try:
            consumer.commit(offsets=starts, asynchronous=False)
        except KafkaException as exc:  # a rebalance under way: the next owner starts over
            log.warning("could not commit the start offsets: %s", exc)

    # -- close -----------------------------------------------------------------------------
    def close(self, tasks: list[StreamTask], *, keep_state: bool = True) -> None:
        """Close ``tasks``. Unless ``keep_state``, their state directories are wiped at once
        (they start again from the changelogs), before anything that may wait: a crash meanwhile
        must not leave a checkpoint beside stores whose forwarded changes were never delivered.
        Under the app's lock: no query reads a store being closed or wiped."""
        undelivered = not self._config.exactly_once and self._clients.producer.undelivered()
        with self._ctx.lock:
            for task in tasks:
                self._close(task, keep_state, undelivered)
        self._tasks_changed()

    def _close(self, task: StreamTask, keep_state: bool, undelivered: bool) -> None:
        if task.state is TaskState.RESTORING:
            self._clients.restorer.remove(task)
        if not keep_state or (task.state is TaskState.RUNNING and undelivered):
            # At least once, the stores hold the values that their caches forwarded
            # downstream past the committed offsets, but the producer still holds records
            # carrying some of those changes: it may never deliver them (a crash, a delivery
            # timeout). Kept, with the checkpoint below, the stores would make the replay
            # continue from values whose changes never arrived: a subtraction lost for good
            # (chaos seed 653252: killed while its restart after a delivery timeout waited
            # for the broker). Wiped, the source tables restore up to the committed offsets
            # and the replay forwards every change again, one per record.
            task.close()
            self._ctx.state_dir.wipe(task.task_id)
        elif task.state is TaskState.RUNNING and not self._config.exactly_once:
            # At least once, a close may be dirty (lost partitions, a failed offset commit):
            # the stores then hold, per key, the last value their caches forwarded
            # downstream, past the committed offsets. Checkpointing a source table at its
            # committed offset keeps the next restore from rewinding those keys to older
            # values that the replay would then collapse in its cache without retracting
            # what the repartition topic already received (extra ids after a broker
            # bounce). The replay from the committed offsets continues from the forwarded
            # values instead, as Kafka Streams' restore to the changelog's end does.
            task.write_checkpoint(self._clients.collector.changelog_offsets)
            task.close()
        else:
            task.close()
        self.tasks.pop(task.task_id, None)
        for t in task.topics:
            self.by_partition.pop((t, task.partition), None)

    def close_all(self) -> None:
        self.close(list(self.tasks.values()))

    def drop_all(self) -> None:
        """The partitions are no longer this member's, and what its open work sent is not to
        count: abort it and close the tasks without a commit."""
        self._clients.committer.abort()
        if self._clients.producer.lost:
            self.replace_producer()
        for task in self.tasks.values():
            task.core.discard_caches()
        self.close_all()
        self.restart_pending = None  # not this member's any more

    def replace_producer(self) -> None:
        log.warning("app %s: replacing the producer", self._config.application_id)
        self._clients.producer.replace()

    def _tasks_changed(self) -> None:
        self._ctx.metrics.active_tasks.set(len(self.tasks))
        self._ctx.instances.set_active((t.sub.id, t.partition) for t in self.tasks.values())

    # -- restart ---------------------------------------------------------------------------
    def restart_all(self) -> None:
        """Start every active task again as after a crash of this process: drop its caches
        and state (a record may be half processed), restore it from the changelogs and re-read
        the input from the committed offsets.

        Only the first half happens here. Reading the committed offsets needs the group
        coordinator, which a broker outage (the usual cause of a restart) takes away; waiting
        for it here, without polling the consumer, left librdkafka's lost-partitions event
        unserved, and its group, waiting for the app, never answered: an instance stayed
        REBALANCING for 3 minutes after the broker was back (chaos seed 934116). The loop
        finishes the restart in :meth:`resume_restart`, polling meanwhile; a rebalance before
        that hands the partitions out afresh and cancels it."""
        if self._ctx.state() is AppState.RUNNING:
            self._ctx.set_state(AppState.REBALANCING)  # queries fail fast from now on
        tasks = list(self.tasks.values())
        for task in tasks:
            task.core.discard_caches()
        self.close(tasks, keep_state=False)  # their records are held meanwhile (_holds)
        if self.restart_pending is None:
            self.restart_pending = []
            self._restart_since = time.monotonic()
        self.restart_pending += [(t, task.partition) for task in tasks for t in task.topics]

    def resume_restart(self) -> None:
        """The second half of :meth:`restart_all`, asked again at each pass of the loop until
        the committed offsets can be read (for up to ``task_timeout_ms``): seek to them and
        create the tasks."""
        pending = self.restart_pending
        if not pending:
            self.restart_pending = None
            return
        consumer = self._clients.consumer
        try:
            found = _clients.committed_offsets(
                consumer, [TopicPartition(t, p) for t, p in pending], 1
            )
        except KafkaException as exc:
            self._restart_waits(exc)
            return
        self.restart_pending = None
        gone: set[TP] = set()
        for tp in found:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                # No longer this consumer's (librdkafka: "Erroneous state"): a process
                # frozen past its session timeout learns here that it lost its partitions,
                # before the lost-partitions callback. Their tasks are not started again;
                # the rebalance under way hands them out (chaos seed 890515 went to ERROR).
                log.warning("%s[%s] no longer assigned: %s", tp.topic, tp.partition, exc)
                gone.add((tp.topic, tp.partition))
        self.create([(t, p) for t, p in pending if (t, p) not in gone])

    def _restart_waits(self, exc: KafkaException) -> None:
        """The committed offsets were not readable: ask again at the next pass, unless it has
        lasted past ``task_timeout_ms`` or the group consumer has lost every broker."""
        waited = time.monotonic() - self._restart_since
        if not _clients.transient(exc) or waited > self._config.task_timeout_s:
            raise exc
        if (
            waited >= _clients.CUT_OFF_AFTER_S
            and self._clients.look_at_group_consumer(GROUP_STALL_S)
            and self._clients.group_consumer_cut_off()
        ):
            raise ClientCutOff(
                f"restart: committed offsets not readable for {waited:.0f}s ({exc})"
            ) from exc
        log.info("restart: committed offsets not readable yet (%s); asking again", exc)


def _unstable_offsets_message(task_id: str, wanted: list[TopicPartition], exc: Exception) -> str:
    """Why task ``task_id`` cannot start under exactly_once_v2, naming its partitions: their
    committed offsets stay unreadable while a transaction holding offsets of them has not ended.
    A transaction the coordinator counts as ended whose markers never reached its partitions
    (a broker stopped mid-commit: a "hanging" transaction) blocks them for good."""
    names = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in wanted)
    return (
        f"the committed offsets of {names} (task {task_id}) stayed unreadable: a transaction "
        f"holding offsets of them has not ended ({exc}). If it lasts, it may be a hanging "
        "transaction: kafka-transactions.sh find-hanging names it; abort it on every partition "
        "it lists for that producer, __consumer_offsets included"
    )
