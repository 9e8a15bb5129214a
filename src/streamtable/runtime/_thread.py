"""``StreamThread``: the loop of the processing thread, which owns every Kafka client.

It joins the consumer group (see ``_clients.py`` for why the range assignor keeps
co-partitioned partitions together), hands assignments to the :class:`TaskManager`, restores
tasks a step at a time, processes each polled batch, commits every ``commit.interval.ms``
through :class:`TaskCommits`, serves global tables and standbys, and replaces a group consumer
that has lost every broker.

Data path of one record: ``poll`` -> :meth:`StreamThread.process` -> the task's
:class:`~streamtable.topology.TaskCore` -> processors -> stores (record caches) -> cache flush
at commit -> changelog and repartition records through the :class:`StreamsProducer` -> commit.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)

from streamtable.errors import StreamTableError
from streamtable.runtime import _clients
from streamtable.runtime._clients import ClientCutOff
from streamtable.runtime._commits import TaskCommits
from streamtable.runtime._context import AppContext, ThreadClients
from streamtable.runtime._deadletter import record_headers
from streamtable.runtime._freeze import FreezeWatch, ProcessingStalled
from streamtable.runtime._offsets import InputOffsets, OffsetsRefresher
from streamtable.runtime._producer import TransactionAborted
from streamtable.runtime._standby import standby_placement
from streamtable.runtime._stuck import close_in_background
from streamtable.runtime._taskmanager import GROUP_STALL_S, TP, TaskManager
from streamtable.runtime.state import AppState, TaskState
from streamtable.topology import TaskHooks

log = logging.getLogger("streamtable.runtime.app")

CUT_OFF = "it cannot reach the cluster while a new client can (it has lost every broker)"

BATCH = 500  # records per poll
RESTORE_STEP = 50_000  # changelog records restored per pass of the loop


class StreamThread:
    """Runs until ``ctx.stop`` is set; :meth:`shutdown` then closes everything it owns."""

    def __init__(self, ctx: AppContext, clients: ThreadClients) -> None:
        self.ctx = ctx
        self.config = ctx.config
        self.clients = clients
        self.offsets = InputOffsets(
            lambda: clients.consumer, OffsetsRefresher(ctx.config, ctx.plan)
        )
        hooks = TaskHooks(
            lambda: int(time.time() * 1000),
            clients.dead_letters.change_failed,
            self.offsets.of_task,
            self.offsets.of_group,
        )
        self.tasks = TaskManager(ctx, clients, hooks, lambda c, o: self.commits.commit(c, o))
        self.commits = TaskCommits(ctx, clients, self.tasks)
        self.freeze: FreezeWatch | None = None  # at least once only: see _freeze.py
        if not self.config.exactly_once:
            # A freeze past the session timeout can make this process a zombie; the
            # transactions fence one under exactly once. Limit: the heartbeat interval.
            limit_s = max(self.config.session_timeout_ms // 4, 250) / 1000.0
            self.freeze = FreezeWatch(limit_s, self.commits.still_member)
            clients.collector.before_send = self.freeze.check
        self.topics = sorted(
            {
                t
                for sub in ctx.topology.subtopologies
                for t in sub.source_topics(self.config.application_id)
            }
        )
        self.new_assignment: list[TP] | None = None
        self.assignment_seen = False
        # Since when this member has had no assignment (start, revoke, lost).
        self.unassigned_since = time.monotonic()
        self._standby_check = 0.0

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        if self.freeze is not None:
            self.freeze.start()
        self.clients.globals.restore()
        if self.clients.globals.replacements:
            self._replaced("global", self.clients.globals.replacements)
        self.unassigned_since = time.monotonic()
        self._subscribe()
        last_commit = time.monotonic()
        interval = self.config.effective_commit_interval_ms / 1000.0
        while not self.ctx.stop.is_set():
            self.poll_once()
            if time.monotonic() - last_commit >= interval:
                self.commits.commit()
                last_commit = time.monotonic()
                if self.commits.inputs.stuck is not None:
                    self._replace_stuck_consumer(self.commits.inputs.stuck)

    def _replaced(self, consumer: str, count: int = 1) -> None:
        self.ctx.metrics.consumer_replacements.labels(consumer).inc(count)

    def poll_once(self) -> None:
        # While restoring, poll without waiting: the restore consumer has the work to do.
        wait_s = 0.0 if self.clients.restorer.active else 0.1
        messages = self.clients.consumer.consume(num_messages=BATCH, timeout=wait_s)
        # Without the app's lock: interactive queries read the stores meanwhile (the lock is
        # only taken where tasks are created or closed: TaskManager).
        try:
            self.handle(messages)
        except ProcessingStalled as exc:
            self.commits.after_lost_records(exc)
        except ClientCutOff as exc:
            self._after_cut_off(exc)
        except (KafkaException, TransactionAborted) as exc:
            if not self.config.exactly_once:
                raise
            # Fenced or failed mid-transaction: nothing of it counts; start over.
            log.warning("%s; rebuilding the state of all active tasks", exc)
            self.clients.committer.abort()
            self.commits.recover_from_abort(fatal=True)

    def handle(self, messages: list[Message]) -> None:
        """One pass: start assigned tasks (or finish a restart), process ``messages``, restore
        a step, then the periodic work (punctuators, global tables, standbys, schedules)."""
        assigned = self.new_assignment is not None
        if self.new_assignment is not None:
            assignment, self.new_assignment = self.new_assignment, None
            self.tasks.create(assignment)
        if messages:
            self.process(messages)
        if not assigned and self.tasks.restart_pending is not None:
            # After this batch: a restart's tasks are closed, so its records are held, each
            # partition sought back to its first record here; the restart's seek to the
            # committed offsets must come after those, or a batch fetched before it would
            # move the partitions back past records the restart must process again (chaos
            # seed 297079: counts short by the records of the aborted transaction).
            self.tasks.resume_restart()
        self._restore_step()
        if (
            self.ctx.state() is AppState.REBALANCING
            and self.assignment_seen
            and self.new_assignment is None
            and self.tasks.restart_pending is None
            and not self.clients.restorer.active
        ):
            self.ctx.set_state(AppState.RUNNING)
        for task in self.tasks.running():
            task.core.punctuate_wall_clock()
        replaced = self.clients.globals.replacements
        self.clients.globals.poll()
        if self.clients.globals.replacements > replaced:
            self._replaced("global")
        if self.clients.standbys is not None:
            self._tend_standbys()
        self._watch_group()
        if self.ctx.schedules and self.ctx.state() is AppState.RUNNING:
            for due in self.ctx.schedules.due(None, int(time.monotonic() * 1000)):
                due.callback(int(time.time() * 1000))  # see StreamsApp.schedule

    def _restore_step(self) -> None:
        restorer = self.clients.restorer
        if not restorer.active:
            restorer.serve_idle()
        if not restorer.active:
            return
        before, replaced = restorer.restored_records, restorer.replacements
        for task in restorer.step(max_records=RESTORE_STEP):
            self.tasks.task_running(task)
        self.ctx.metrics.restored_records.inc(restorer.restored_records - before)
        if restorer.replacements > replaced:
            self._replaced("restore")
        self.ctx.metrics.restore_remaining.set(restorer.remaining)

    def _tend_standbys(self) -> None:
        """Once a second, place standbys from the live instances' records; always, apply
        what their changelogs have."""
        standbys = self.clients.standbys
        assert standbys is not None
        now = time.monotonic()
        if now - self._standby_check >= 1.0:
            self._standby_check = now
            active = {(t.sub.id, t.partition) for t in self.tasks.tasks.values()}
            wanted = standby_placement(
                self.ctx.instances.live_records(),
                self.ctx.instance_id,
                self.config.num_standby_replicas,
            )
            standbys.reconcile(wanted - active)
            self.ctx.instances.set_standby(standbys.tasks)
        standbys.poll()

    def process(self, messages: list[Message]) -> None:
        """Each record to its running task; a record of a task not running yet is fetched
        again later (seek), one its task has processed already is skipped."""
        skipped: set[TP] = set()
        redelivered: dict[TP, tuple[int, int, int]] = {}  # -> (first, last, count)
        processed = 0
        by_partition = self.tasks.by_partition
        for msg in messages:
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise StreamTableError(f"consumer failed: {error}")
                log.warning("consumer: %s", error)
                continue
            if topic is None or partition is None or offset is None:
                continue
            tp = (topic, partition)
            if tp in skipped:
                continue
            task = by_partition.get(tp)
            if task is None or task.state is not TaskState.RUNNING:
                # Fetched before its task could run: read it again once the task runs.
                self.tasks.holds.hold(topic, partition, offset)
                skipped.add(tp)
                continue
            if offset < task.consumed.get(topic, -1):
                # Already processed by this task: librdkafka moved the partition's fetch
                # position back on its own and hands records over again. Processed twice, they
                # would count twice in the stores and their changelogs, past the committed
                # offsets, and no restart would undo it (chaos seed 695530: a count under
                # exactly_once_v2 ran 63 records ahead after such a rewind, 2 s after start).
                first, _, count = redelivered.get(tp, (offset, offset, 0))
                redelivered[tp] = (first, offset, count + 1)
                continue
            kind, ts = msg.timestamp()
            try:
                task.core.process(
                    topic,
                    msg.key(),
                    msg.value(),
                    -1 if kind == TIMESTAMP_NOT_AVAILABLE else ts,
                    offset,
                    record_headers(msg),
                )
            except (KafkaException, TransactionAborted, ProcessingStalled):
                raise  # the producer or the process failed, not the record
            except Exception as exc:
                self.clients.dead_letters.record_failed(msg, exc)
            if task.replay_until:
                self.tasks.replayed(task, topic, offset)
            task.consumed[topic] = offset + 1
            processed += 1
        self.ctx.metrics.records_processed.inc(processed)  # once per batch: off the record path
        self._report_redelivered(redelivered)

    def _report_redelivered(self, redelivered: dict[TP, tuple[int, int, int]]) -> None:
        for (topic, partition), (first, last, count) in redelivered.items():
            log.warning(
                "consumer handed over %d record(s) of %s[%s] again (offsets %d..%d), which its "
                "task had processed: skipped",
                count, topic, partition, first, last,
            )  # fmt: skip
            self.ctx.metrics.redelivered_records.inc(count)

    # -- the group -------------------------------------------------------------------------
    def _subscribe(self) -> None:
        self.clients.consumer.subscribe(
            self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self.clients.consumer:
            return  # a replaced consumer, closing (_watch_group)
        if self.freeze is not None:
            self.freeze.clear()  # a member of the new generation: what it owns is its own
        # Not paused here: a pause right after assign() can keep a partition from ever being
        # fetched (see _holds). Records of tasks not running yet are held as they arrive.
        consumer.assign(partitions)
        self.new_assignment = [(tp.topic, tp.partition) for tp in partitions]
        self.tasks.restart_pending = None  # the new assignment starts its tasks afresh
        self.assignment_seen = True
        if self.ctx.state() is AppState.RUNNING:
            self.ctx.set_state(AppState.REBALANCING)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self.clients.consumer:
            return
        self._unassigned()
        self.tasks.holds.release_all()  # while still assigned: see _holds
        self.commits.commit(closing=True)
        self.tasks.close_all()
        self.tasks.restart_pending = None  # not this member's any more

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self.clients.consumer:
            return
        log.warning("partitions lost: %s", [(p.topic, p.partition) for p in partitions])
        self.tasks.holds.release_all()
        self._drop_tasks()

    def _unassigned(self) -> None:
        self.assignment_seen = False
        self.unassigned_since = time.monotonic()  # not RUNNING again before the next assignment
        if self.ctx.state() is AppState.RUNNING:
            self.ctx.set_state(AppState.REBALANCING)

    def _drop_tasks(self) -> None:
        self._unassigned()
        self.tasks.drop_all()

    def _watch_group(self) -> None:
        """A member without an assignment for :data:`GROUP_STALL_S` has its consumer looked
        at, at most once per that interval: one that has lost every broker while a new client
        reaches the cluster (:func:`_clients.cut_off`) never joins again, and is replaced."""
        if self.assignment_seen:
            return
        unassigned_s = time.monotonic() - self.unassigned_since
        if unassigned_s < GROUP_STALL_S or not self.clients.look_at_group_consumer(GROUP_STALL_S):
            return
        if self.clients.group_consumer_cut_off():
            self._renew_consumer(f"no assignment for {unassigned_s:.0f}s; {CUT_OFF}")

    def _replace_stuck_consumer(self, why: str) -> None:
        """An input partition of a running task is no longer fetched (:class:`InputWatch`):
        every task is committed and closed as on a revocation, and a new consumer joins the
        group (what librdkafka keeps of a partition is per consumer)."""
        self._on_revoke(self.clients.consumer, [])
        self._renew_consumer(why)

    def _renew_consumer(self, why: str) -> None:
        """A new group consumer in place of one that has lost every broker, or that no longer
        fetches a partition: it joins the group as a new member. The old one is closed on a
        thread of its own; its callbacks, if any, are ignored."""
        log.warning("app %s: replacing the group consumer: %s", self.config.application_id, why)
        self._replaced("group")
        old = self.clients.consumer
        self.clients.consumer = _clients.main_consumer(self.config)
        self.clients.committer.consumer = self.clients.consumer
        self.tasks.holds.forget()
        self.commits.inputs.forget()
        self._subscribe()
        close_in_background(old, "group")

    def _after_cut_off(self, exc: ClientCutOff) -> None:
        """A call of the group consumer given up while tasks start (it has lost every broker,
        so it has lost its membership too): its tasks are dropped as on lost partitions, and a
        new consumer joins the group."""
        log.warning("%s", exc)
        self._drop_tasks()
        self.new_assignment = None
        self._renew_consumer(f"a call failed for good; {CUT_OFF}")

    # -- shutdown --------------------------------------------------------------------------
    def shutdown(self, clean: bool) -> None:
        """Commit (if ``clean``) or abort, close the tasks (state kept, with checkpoints) and
        every client; the consumer leaves the group."""
        if clean:
            self.commits.commit(closing=True)
        else:
            self.clients.committer.abort()
        self.tasks.close_all()
        self.clients.close(flush=True)
        self.offsets.refresher.close()
        if self.freeze is not None:
            self.freeze.stop()
