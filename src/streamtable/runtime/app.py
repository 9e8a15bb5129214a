"""``StreamsApp``: runs a topology on Kafka.

One processing thread owns every Kafka client. It joins the consumer group (see
``_clients.py`` for why the range assignor keeps co-partitioned partitions together), creates a
task per assigned ``(sub-topology, partition)``, restores the task's stores from their changelogs
before processing, processes records, and commits through :class:`~._commit.Committer`.

Example::

    with st.StreamsApp(topology, st.StreamsConfig(application_id="app",
                                                  bootstrap_servers="localhost:9092")) as app:
        ...  # app.store("us-share-holders").get("c1") once app.state is AppState.RUNNING
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from streamtable.errors import (
    KafkaError,
    ProcessingError,
    StoreNotFound,
    StoreNotReady,
    StreamTableError,
    TaskMigrated,
    bounded_utf8,
    loggable,
)
from streamtable.runtime import _clients
from streamtable.runtime._clients import ClientCutOff, ShutdownRequested
from streamtable.runtime._collector import DeliveryTimedOut, KafkaRecordCollector
from streamtable.runtime._commit import (
    CLEAN_CLOSE,
    CommitDeferred,
    Committer,
    TransactionAborted,
)
from streamtable.runtime._freeze import FreezeWatch, ProcessingStalled
from streamtable.runtime._global import GlobalStores
from streamtable.runtime._metadata import InstanceDirectory, KeyQueryMetadata, StreamsMetadata
from streamtable.runtime._purge import RepartitionPurger
from streamtable.runtime._restore import ChangelogRestorer
from streamtable.runtime._standby import StandbyTasks, standby_placement
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime._stuck import close_in_background
from streamtable.runtime._task import StreamTask
from streamtable.runtime._views import CompositeStoreView
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.runtime.state import AppState, TaskState, check_app_transition
from streamtable.runtime.topics import InternalTopicManager, TopicPlan, dlq_topic
from streamtable.serde import DEFAULT
from streamtable.state import CacheBudget, ReadOnlyKeyValueStore
from streamtable.topology import TaskCore, TaskHooks, Topology

log = logging.getLogger("streamtable.runtime.app")

StateListener = Callable[[AppState, AppState], None]
TP = tuple[str, int]

DLQ_ERROR_MAX_BYTES = 1000
"""Longest ``x-error`` header of a dead-letter record (the full reason, cut to this size)."""

# How long a member may be without an assignment before its group consumer is looked at for
# having lost every broker (a normal rebalance, even one waiting for a frozen member, is over
# within a session timeout or two; looking costs one Metadata request).
GROUP_STALL_S = 60.0


class StreamsApp:
    """Runs ``topology`` with ``config``; see the module docstring."""

    def __init__(self, topology: Topology, config: StreamsConfig) -> None:
        # Contextual serdes (schema registry) learn their topics here, once.
        self.topology = topology.bind_serdes(config.application_id)
        self.config = config
        self.instance_id = uuid.uuid4()
        self.metrics = StreamsMetrics(config.application_id)
        self.error: BaseException | None = None
        self._state = AppState.CREATED
        self._state_lock = threading.Lock()
        self._listeners: list[StateListener] = []
        self._lock = threading.RLock()  # tasks and stores vs. interactive queries
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state_dir = StateDirectory(config.state_dir, config.application_id)
        self._plan: TopicPlan | None = None
        self._tasks: dict[str, StreamTask] = {}
        self._task_by_tp: dict[TP, StreamTask] = {}
        self._new_assignment: list[TP] | None = None
        self._assignment_seen = False
        self._budget = CacheBudget(config.cache_max_bytes)
        self._hooks = TaskHooks(
            lambda: int(time.time() * 1000),
            self._on_flush_error,
            self._input_offsets,
            self._group_offsets,
        )
        self._globals: GlobalStores | None = None
        self._restorer: ChangelogRestorer | None = None
        self._consumer: Consumer | None = None
        self._committer: Committer | None = None
        self._collector: KafkaRecordCollector | None = None
        self._freeze: FreezeWatch | None = None  # at least once only: see _freeze.py
        self._dlq = dlq_topic(config.application_id)
        self._purge_interval_s = 30.0  # repartition.purge.interval.ms in Kafka Streams
        self._instances = InstanceDirectory(
            self.topology, config, str(self.instance_id), lambda: self._state.name
        )
        self._standbys: StandbyTasks | None = None
        self._standby_check = 0.0
        self._gauges_at = 0.0
        self._aborts_in_a_row = 0  # aborted commits since the last one that went through
        # Partitions of tasks being started again (_restart_tasks), until their committed
        # offsets are read (_resume_restart); a rebalance cancels it.
        self._restart_pending: list[TP] | None = None
        self._restart_since = 0.0
        self._topics: list[str] = []  # what the group consumer subscribes to
        # Since when this member has had no assignment (start, revoke, lost), and when its
        # consumer was last looked at for having lost every broker (_watch_group).
        self._unassigned_since = time.monotonic()
        self._group_looked = 0.0
        self._schedules: list[list[Any]] = []  # [interval_ms, next due (monotonic), cb, cancelled]

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def state(self) -> AppState:
        return self._state

    def add_state_listener(self, listener: StateListener) -> None:
        """``listener(old, new)`` is called (on the thread that changed it) on every change."""
        self._listeners.append(listener)

    def _set_state(self, new: AppState) -> None:
        with self._state_lock:
            old = self._state
            if old is new and new is not AppState.REBALANCING:
                return
            check_app_transition(old, new)
            self._state = new
        log.info("app %s: %s -> %s", self.config.application_id, old.name, new.name)
        for listener in list(self._listeners):
            try:
                listener(old, new)
            except Exception:
                log.exception("state listener failed")

    def start(self) -> None:
        """Check topics, lock the state directory and start processing in the background.

        Raises at once for what can be known up front: :class:`StateDirLocked`, a missing
        source topic (:class:`TopologyError`), :class:`CoPartitioningError`, credentials the
        broker refuses (:class:`ConfigError` naming ``kafka sasl.username/sasl.password``).
        """
        if self._state is not AppState.CREATED:
            raise StreamTableError(f"start() needs state CREATED, not {self._state.name}")
        self._state_dir.lock()
        try:
            _clients.check_connection(
                self.config.client_config(), self.config.task_timeout_s, stop=self._stop
            )
            admin = AdminClient(self.config.client_config())
            manager = InternalTopicManager(
                admin,
                self.topology,
                self.config.application_id,
                self.config.replication_factor,
                stop=self._stop,
                wait_s=self.config.task_timeout_s,
            )
            plan = manager.plan()
            manager.ensure(plan)
            admin.poll(0)  # its log lines, if any
            self._plan = plan
        except BaseException:
            self._state_dir.unlock()
            raise
        self._set_state(AppState.REBALANCING)
        self._thread = threading.Thread(
            target=self._run, name=f"streamtable-{self.config.application_id}", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 60.0) -> bool:
        """Commit, close tasks (state kept on disk with a checkpoint), leave the group.

        Returns False if the processing thread did not stop within ``timeout`` seconds.
        """
        if self._state is AppState.CREATED:
            self._set_state(AppState.PENDING_SHUTDOWN)
            self._set_state(AppState.NOT_RUNNING)
            return True
        if self._state.is_alive():
            self._set_state(AppState.PENDING_SHUTDOWN)
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error(
                    "app %s: the processing thread did not stop within %.0fs",
                    self.config.application_id,
                    timeout,
                )
                return False
        if self._state is AppState.PENDING_SHUTDOWN:
            self._set_state(AppState.NOT_RUNNING)
        return True

    def schedule(self, interval_ms: int, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call ``callback(now_ms)`` every ``interval_ms`` of wall-clock time on the processing
        thread (between batches, never during a commit), while the app runs. Returns a
        function that cancels it. For per-task work with state, use a processor's punctuator."""
        if interval_ms <= 0:
            raise ValueError("interval_ms must be positive")
        entry = [interval_ms, time.monotonic() + interval_ms / 1000.0, callback, False]
        self._schedules.append(entry)

        def cancel() -> None:
            entry[3] = True

        return cancel

    def _run_schedules(self) -> None:
        now = time.monotonic()
        for entry in list(self._schedules):
            interval_ms, due, callback, cancelled = entry
            if cancelled:
                self._schedules.remove(entry)
            elif now >= due:
                entry[1] = now + interval_ms / 1000.0  # the next slot after now: no bursts
                callback(int(time.time() * 1000))

    def run_until_signal(
        self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> int:
        """Start, run until one of ``signals`` arrives or the app fails, then close.

        For a process's main thread (a service's entry point): on SIGTERM/SIGINT the app
        commits, closes its stores (with checkpoints) and leaves the group. Returns the exit
        code: 0 after a clean close, 1 if the app failed or did not stop in time.
        """
        stop = threading.Event()

        def on_signal(*_: object) -> None:
            stop.set()
            if self._state is AppState.CREATED:  # still in start(): end its waits for a broker
                self._stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in signals}

        def on_state(old: AppState, new: AppState) -> None:
            if new is AppState.ERROR:
                stop.set()

        self.add_state_listener(on_state)
        try:
            try:
                self.start()
            except ShutdownRequested as exc:
                log.info("app %s: %s", self.config.application_id, exc)
                return 0 if self.close() else 1
            while not stop.wait(0.2):
                pass
            failed = self._state is AppState.ERROR
            closed = self.close()
            return 0 if closed and not failed else 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> StreamsApp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def restored_records(self) -> int:
        """Changelog records applied while restoring tasks since start (global tables aside)."""
        return 0 if self._restorer is None else self._restorer.restored_records

    # -- interactive queries ---------------------------------------------------------------
    def store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyKeyValueStore:
        """A read-only view of store ``name`` across this instance's active tasks.

        Raises :class:`StoreNotReady` unless the app is RUNNING. ``allow_stale=True`` opts in
        to stale reads: the view also serves tasks that are still restoring (their values may
        lag) and answers while the app is REBALANCING.
        """
        spec = self.topology.stores.get(name)
        if spec is None:
            raise StoreNotFound(name, list(self.topology.stores))
        check = self._check_alive if allow_stale else self._check_ready
        served = (TaskState.RUNNING, TaskState.RESTORING) if allow_stale else (TaskState.RUNNING,)
        check(name)
        if self._globals is not None and name in self._globals.stores:
            return ReadOnlyKeyValueStore(self._globals.stores[name])
        sub = self.topology.subtopology_of_store(name)
        assert sub is not None
        assert self._plan is not None
        plan = self._plan
        count = max(plan.count(t) for t in sub.source_topics(self.config.application_id))

        def lookup() -> tuple[dict[int, Any], int]:
            stores = {
                t.partition: t.stores[name]
                for t in self._tasks.values()
                if t.sub.id == sub.id and t.state in served
            }
            return stores, count

        view = CompositeStoreView(name, spec.key_serde, lookup, lambda: check(name), self._lock)
        return ReadOnlyKeyValueStore(view)

    def _check_ready(self, name: str) -> None:
        if self._state is not AppState.RUNNING:
            raise StoreNotReady(name, f"the app is {self._state.name}")

    def _check_alive(self, name: str) -> None:
        if not self._state.is_alive():
            raise StoreNotReady(name, f"the app is {self._state.name}")

    def metadata_for_key(self, store: str, key: Any) -> KeyQueryMetadata:
        """The partition of ``key`` in ``store`` (the store's key serde and the partitioner that
        placed it) and the instance hosting it, from the ``<app>-instances`` topic (see
        ``_metadata.py``). Raises :class:`StoreNotFound`, :class:`SerializationError` for a
        key the serde rejects, :class:`StoreNotReady` before :meth:`start`."""
        spec = self.topology.stores.get(store)
        if spec is None:
            raise StoreNotFound(store, list(self.topology.stores))
        return self._instances.metadata_for_key(store, spec.key_serde.serialize(key))

    def all_metadata(self) -> list[StreamsMetadata]:
        """Every live instance (this one included) with its active partitions per store."""
        return self._instances.all_metadata()

    def local_metadata(self) -> StreamsMetadata:
        """This instance's entry of :meth:`all_metadata`; its ``generation`` grows whenever
        its tasks change (a reader can check that nothing moved while it read)."""
        return self._instances.local_metadata()

    # -- the processing thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            clean = True
            try:
                self._open_clients()
                assert self._plan is not None
                self._instances.start(self._plan)
                assert self._consumer is not None
                assert self._globals is not None
                self._globals.restore()
                if self._globals.replacements:
                    self.metrics.consumer_replacements.labels("global").inc(
                        self._globals.replacements
                    )
                self._topics = sorted(
                    {
                        t
                        for sub in self.topology.subtopologies
                        for t in sub.source_topics(self.config.application_id)
                    }
                )
                self._unassigned_since = time.monotonic()
                self._subscribe()
                last_commit = time.monotonic()
                interval = self.config.effective_commit_interval_ms / 1000.0
                while not self._stop.is_set():
                    self._poll_once()
                    if time.monotonic() - last_commit >= interval:
                        with self._lock:
                            self._commit()
                        last_commit = time.monotonic()
            except ShutdownRequested as exc:
                log.info("%s", exc)
                # A producer given up while it was being replaced (the stop came during its
                # init_transactions) is never used again: close without a commit, as after a
                # failure, but not in ERROR.
                clean = not (self._committer is not None and self._committer.producer_lost)
            self._shutdown(clean=clean)
        except BaseException as exc:
            log.exception("app %s failed", self.config.application_id)
            self.error = exc
            try:
                self._shutdown(clean=False)
            except Exception:
                log.exception("shutdown after failure failed")
            if self._state is not AppState.ERROR:
                with self._state_lock:
                    old = self._state
                    self._state = AppState.ERROR  # from any state: the thread is gone
                for listener in list(self._listeners):
                    try:
                        listener(old, AppState.ERROR)
                    except Exception:
                        log.exception("state listener failed")

    def _subscribe(self) -> None:
        assert self._consumer is not None
        self._consumer.subscribe(
            self._topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )

    def _watch_group(self) -> None:
        """A member without an assignment for :data:`GROUP_STALL_S` has its consumer looked
        at, at most once per that interval: one that has lost every broker while a new client
        reaches the cluster (:func:`_clients.cut_off`) never joins again, and is replaced."""
        if self._assignment_seen or self._consumer is None:
            return
        now = time.monotonic()
        if now - self._unassigned_since < GROUP_STALL_S or now - self._group_looked < GROUP_STALL_S:
            return
        self._group_looked = now
        if not self._group_consumer_cut_off():
            return
        self._renew_consumer(f"no assignment for {now - self._unassigned_since:.0f}s")

    def _group_consumer_cut_off(self) -> bool:
        assert self._consumer is not None
        return _clients.cut_off(self._consumer, self.config.client_config())

    def _renew_consumer(self, why: str) -> None:
        """A new group consumer in place of one that has lost every broker: it joins the group
        as a new member. The old one is closed on a thread of its own; its callbacks, if any,
        are ignored."""
        log.warning(
            "app %s: replacing the group consumer (%s): it cannot reach the cluster while a new "
            "client can (it has lost every broker)",
            self.config.application_id,
            why,
        )
        self.metrics.consumer_replacements.labels("group").inc()
        old = self._consumer
        assert old is not None
        self._consumer = _clients.main_consumer(self.config)
        if self._committer is not None:
            self._committer.consumer = self._consumer
        self._subscribe()
        close_in_background(old, "group")

    def _after_cut_off(self, exc: ClientCutOff) -> None:
        """A call of the group consumer given up while tasks start (it has lost every broker,
        so it has lost its membership too): its tasks are dropped as on lost partitions, and a
        new consumer joins the group."""
        assert self._consumer is not None
        log.warning("%s", exc)
        self._drop_tasks()
        self._new_assignment = None
        self._renew_consumer("a call failed for good")

    def _open_clients(self) -> None:
        assert self._plan is not None
        self._consumer = _clients.main_consumer(self.config)
        producer = _clients.producer(self.config, self._state_dir.process_id(), stop=self._stop)
        self._collector = KafkaRecordCollector(producer, self._plan)
        if not self.config.exactly_once:
            # A freeze past the session timeout can make this process a zombie; the
            # transactions fence one under exactly once. Limit: the heartbeat interval.
            limit_s = max(self.config.session_timeout_ms // 4, 250) / 1000.0
            self._freeze = FreezeWatch(limit_s, self._still_member)
            self._collector.before_send = self._freeze.check
            self._freeze.start()
        app = self.config.application_id
        purger = RepartitionPurger(
            AdminClient(self.config.client_config()),
            [
                f"{app}-{s}"
                for s, t in self.topology.internal_topics.items()
                if t.purpose == "repartition"
            ],
            interval_s=self._purge_interval_s,
        )
        self._committer = Committer(
            self._consumer,
            producer,
            self._collector,
            self.config.exactly_once,
            self.metrics,
            purger,
            wait_lock=self._lock,
        )
        config = self.config
        self._restorer = ChangelogRestorer(
            _clients.restore_consumer(config),
            log_end=_clients.log_end_consumer(config),
            deadline_s=config.task_timeout_s,
            renew=lambda: _clients.restore_consumer(config),
            renew_log_end=lambda: _clients.read_uncommitted_consumer(config),
            settings=config.client_config(),
        )
        if self.config.num_standby_replicas > 0:
            self._standbys = StandbyTasks(
                self.topology,
                self.config,
                self._state_dir,
                _clients.restore_consumer(self.config),
                self._committed_offsets,
            )
        self._globals = GlobalStores(self.topology, self.config, self._state_dir)

    def _committed_offsets(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        assert self._consumer is not None
        return self._consumer.committed(tps, timeout=10)

    def _poll_once(self) -> None:
        assert self._consumer is not None
        assert self._restorer is not None
        # While restoring, poll without waiting: the restore consumer has the work to do.
        wait_s = 0.0 if self._restorer.active else 0.1
        messages = self._consumer.consume(num_messages=500, timeout=wait_s)
        with self._lock:
            try:
                self._handle(messages)
            except ProcessingStalled as exc:
                self._after_lost_records(exc)
            except ClientCutOff as exc:
                self._after_cut_off(exc)
            except (KafkaException, TransactionAborted) as exc:
                if not self.config.exactly_once:
                    raise
                # Fenced or failed mid-transaction: nothing of it counts; start over.
                log.warning("%s; rebuilding the state of all active tasks", exc)
                assert self._committer is not None
                self._committer.abort()
                self._recover_from_abort(fatal=True)

    def _handle(self, messages: list[Message]) -> None:
        assert self._restorer is not None
        if self._new_assignment is not None:
            assignment, self._new_assignment = self._new_assignment, None
            self._create_tasks(assignment)
        elif self._restart_pending is not None:
            self._resume_restart()
        if messages:
            self._process(messages)
        if not self._restorer.active:
            self._restorer.serve_idle()
        if self._restorer.active:
            before, replaced = self._restorer.restored_records, self._restorer.replacements
            for task in self._restorer.step(max_records=50_000):
                self._task_running(task)
            self.metrics.restored_records.inc(self._restorer.restored_records - before)
            if self._restorer.replacements > replaced:
                self.metrics.consumer_replacements.labels("restore").inc()
            self.metrics.restore_remaining.set(self._restorer.remaining)
        if (
            self._state is AppState.REBALANCING
            and self._assignment_seen
            and self._new_assignment is None
            and self._restart_pending is None
            and not self._restorer.active
        ):
            self._set_state(AppState.RUNNING)
        for task in self._tasks.values():
            if task.state is TaskState.RUNNING:
                task.core.punctuate_wall_clock()
        assert self._globals is not None
        replaced = self._globals.replacements
        self._globals.poll()
        if self._globals.replacements > replaced:
            self.metrics.consumer_replacements.labels("global").inc()
        if self._standbys is not None:
            self._tend_standbys()
        self._watch_group()
        if self._schedules and self._state is AppState.RUNNING:
            self._run_schedules()

    def _tend_standbys(self) -> None:
        """Once a second, place standbys from the live instances' records; always, apply
        what their changelogs have."""
        assert self._standbys is not None
        now = time.monotonic()
        if now - self._standby_check >= 1.0:
            self._standby_check = now
            active = {(t.sub.id, t.partition) for t in self._tasks.values()}
            wanted = standby_placement(
                self._instances.live_records(),
                str(self.instance_id),
                self.config.num_standby_replicas,
            )
            self._standbys.reconcile(wanted - active)
            self._instances.set_standby(self._standbys.tasks)
        self._standbys.poll()

    def _process(self, messages: list[Message]) -> None:
        assert self._consumer is not None
        skipped: set[TP] = set()
        redelivered: dict[TP, tuple[int, int, int]] = {}  # -> (first, last, count)
        processed = 0
        for msg in messages:
            topic, partition = msg.topic(), msg.partition()
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise StreamTableError(f"consumer failed: {error}")
                log.warning("consumer: %s", error)
                continue
            if topic is None or partition is None:
                continue
            tp = (topic, partition)
            if tp in skipped:
                continue
            task = self._task_by_tp.get(tp)
            offset = msg.offset()
            if offset is None:
                continue
            if task is None or task.state is not TaskState.RUNNING:
                # Fetched before its task could run: read it again once the task runs.
                self._consumer.seek(TopicPartition(topic, partition, offset))
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
            if kind == TIMESTAMP_NOT_AVAILABLE:
                ts = -1
            try:
                task.core.process(topic, msg.key(), msg.value(), ts, offset, _headers(msg))
            except (KafkaException, TransactionAborted, ProcessingStalled):
                raise  # the producer or the process failed, not the record
            except Exception as exc:
                self._on_record_error(msg, exc)
            if task.replay_until:
                self._replayed(task, topic, offset)
            task.consumed[topic] = offset + 1
            processed += 1
        self.metrics.records_processed.inc(processed)  # once per batch: off the per-record path
        for (topic, partition), (first, last, count) in redelivered.items():
            log.warning(
                "consumer handed over %d record(s) of %s[%s] again (offsets %d..%d), which its "
                "task had processed: skipped",
                count, topic, partition, first, last,
            )  # fmt: skip
            self.metrics.redelivered_records.inc(count)

    def _on_record_error(self, msg: Message, exc: Exception) -> None:
        """A record that failed: to the DLQ (value, key and full reason) or, under
        ``on_error="fail"``, the end of the app. Logs name the record and a value-free reason
        (:func:`~streamtable.errors.loggable`), never the record's data: it may be personal."""
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        if self.config.on_error == "fail":
            if isinstance(exc, StreamTableError):
                raise exc
            # from None: the cause's message may quote the value, and the app logs this error
            # with its traceback; the cause stays reachable as __context__.
            raise ProcessingError(f"processing {where} failed: {loggable(exc)}") from None
        assert self._collector is not None
        log.warning("record %s to %s: %s", where, self._dlq, loggable(exc))
        headers = _headers(msg) or []
        headers += [
            ("x-error", _dlq_reason(exc)),
            ("x-topic", (msg.topic() or "").encode()),
            ("x-partition", str(msg.partition()).encode()),
            ("x-offset", str(msg.offset()).encode()),
        ]
        self._collector.send(self._dlq, msg.key(), msg.value(), msg.timestamp()[1], None, headers)
        self.metrics.dlq_records.inc()

    def _input_offsets(self, core: TaskCore) -> dict[str, tuple[int, int]]:
        """How far a task has read each input: (position, high watermark).

        The consumer's position, not the last processed offset: under ``read_committed`` the
        last offsets of a partition are transaction markers, which the position steps over
        (every record it passed has been processed: the loop processes each batch whole).
        """
        assert self._consumer is not None
        result: dict[str, tuple[int, int]] = {}
        for topic in core.topics:
            tp = TopicPartition(topic, core.partition)
            _, high = self._consumer.get_watermark_offsets(tp, timeout=10)
            position = self._consumer.position([tp])[0].offset
            if position < 0:  # nothing fetched yet since the assignment
                position = max(self._consumer.committed([tp], timeout=10)[0].offset, 0)
            result[topic] = (position, high)
        return result

    def _group_offsets(self, topic: str) -> dict[int, tuple[int, int]]:
        """The group's committed offset and the high watermark of each partition of ``topic``
        (an input of some sub-topology): what every instance has processed and committed."""
        assert self._consumer is not None
        assert self._plan is not None
        tps = [TopicPartition(topic, p) for p in range(self._plan.count(topic))]
        committed = self._consumer.committed(tps, timeout=10)
        return {
            tp.partition: (
                max(tp.offset, 0),
                self._consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)[1],
            )
            for tp in committed
        }

    def _on_flush_error(self, node: str, key: Any, value: Any, exc: Exception) -> None:
        """A cached table change failed downstream at commit time (e.g. a filter reading a
        missing field): the row goes to the DLQ, encoded with the DEFAULT serde."""
        if self.config.on_error == "fail":
            reason = loggable(exc)
            raise ProcessingError(f"processing a change of {node} failed: {reason}") from None
        assert self._collector is not None
        log.warning("change of %s for a key to %s: %s", node, self._dlq, loggable(exc))
        headers: list[tuple[str, bytes | None]] = [
            ("x-error", _dlq_reason(exc)),
            ("x-processor", node.encode()),
        ]
        self._collector.send(
            self._dlq, _encode(key), _encode(value), int(time.time() * 1000), None, headers
        )
        self.metrics.dlq_records.inc()

    # -- tasks -----------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return  # a replaced consumer, closing (_watch_group)
        if self._freeze is not None:
            self._freeze.clear()  # a member of the new generation: what it owns is its own
        consumer.assign(partitions)
        if partitions:
            consumer.pause(partitions)  # resumed per task once it is restored
        self._new_assignment = [(tp.topic, tp.partition) for tp in partitions]
        self._restart_pending = None  # the new assignment starts its tasks afresh
        self._assignment_seen = True
        if self._state is AppState.RUNNING:
            self._set_state(AppState.REBALANCING)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return
        self._assignment_seen = False
        self._unassigned_since = time.monotonic()  # not RUNNING again before the next assignment
        if self._state is AppState.RUNNING:
            self._set_state(AppState.REBALANCING)
        with self._lock:
            self._commit(closing=True)
            self._close_tasks(list(self._tasks.values()))
            self._restart_pending = None  # not this member's any more

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:
            return
        log.warning("partitions lost: %s", [(p.topic, p.partition) for p in partitions])
        self._drop_tasks()

    def _drop_tasks(self) -> None:
        """The partitions are no longer this member's, and what its open work sent is not to
        count: abort it and close the tasks without a commit."""
        self._assignment_seen = False
        self._unassigned_since = time.monotonic()
        if self._state is AppState.RUNNING:
            self._set_state(AppState.REBALANCING)
        with self._lock:
            if self._committer is not None:
                self._committer.abort()
                if self._committer.producer_lost:
                    self._replace_producer()
            for task in self._tasks.values():
                task.core.discard_caches()
            self._close_tasks(list(self._tasks.values()))
            self._restart_pending = None  # not this member's any more

    def _create_tasks(self, assignment: list[TP]) -> None:
        assert self._consumer is not None
        assert self._restorer is not None
        assert self._collector is not None
        assert self._globals is not None
        owned = set(assignment)
        app = self.config.application_id
        for sub in self.topology.subtopologies:
            topics = sub.source_topics(app)
            partitions = {p for t, p in owned if t == topics[0]}
            for p in sorted(partitions):
                if not all((t, p) in owned for t in topics):
                    log.warning(
                        "sub-topology %s: partition %s not owned for all of %s", sub.id, p, topics
                    )
                    continue
                existing = self._tasks.get(f"{sub.id}_{p}")
                if existing is not None:
                    # Assigned again while it still runs here (an assignment without a
                    # revocation before it): the assignment reset its fetch positions to the
                    # committed offsets, so commit what it did, close it and start it afresh
                    # (a second StreamTask beside it would find its RocksDB directories locked).
                    log.info(
                        "task %s: assigned again while open; committing and reopening",
                        existing.task_id,
                    )
                    with self._lock:
                        if self.config.exactly_once:
                            self._commit()  # one transaction for all: no checkpoints meanwhile
                        else:
                            self._commit(closing=True, only=[existing])
                        self._close_tasks([existing])
                if self._standbys is not None:
                    self._standbys.release(f"{sub.id}_{p}")  # its directory becomes active
                task = StreamTask(
                    self.topology,
                    sub,
                    p,
                    self.config,
                    self._state_dir,
                    self._collector,
                    self._budget,
                    self._globals.stores,
                    self._hooks,
                )
                self._tasks[task.task_id] = task
                for t in task.topics:
                    self._task_by_tp[(t, p)] = task
                self._start_restore(task)
        self.metrics.active_tasks.set(len(self._tasks))
        self._instances.set_active((t.sub.id, t.partition) for t in self._tasks.values())

    def _start_restore(self, task: StreamTask) -> None:
        assert self._consumer is not None
        assert self._restorer is not None
        task.transition(TaskState.RESTORING)
        # Under exactly_once_v2, the committed offsets of every input partition first: the
        # consumer reads them read_committed, which waits while a transaction of the previous
        # owner holds offsets of them not yet committed or aborted (a process frozen past its
        # session timeout). That transaction's changelog records may not have reached the
        # broker yet (still in its producer): a restore planned meanwhile would end before
        # them, and the input would then resume past the records they came from (chaos seed
        # 189807). Once it has ended, the changelogs' ends hold all it committed.
        topics = set(task.topics) if self.config.exactly_once else set()
        topics |= {tp[0] for tp in task.source_changelogs}
        committed: dict[str, int] = {}
        if topics:
            consumer = self._consumer
            wanted = [TopicPartition(t, task.partition) for t in sorted(topics)]
            try:
                found = _clients.retry_transient(
                    lambda: consumer.committed(wanted, timeout=10),
                    f"committed offsets of task {task.task_id} (an open transaction may hold them)",
                    stop=self._stop,
                    deadline_s=self.config.task_timeout_s,
                    cut_off_check=self._group_consumer_cut_off,
                )
            except KafkaException as exc:
                if not (self.config.exactly_once and _clients.transient(exc)):
                    raise
                raise KafkaError(_unstable_offsets_message(task.task_id, wanted, exc)) from exc
            committed = {tp.topic: tp.offset for tp in found}
        self._restorer.add(task, committed)

    def _replayed(self, task: StreamTask, topic: str, offset: int) -> None:
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
        consumer = self._consumer
        assert consumer is not None
        window: dict[str, int] = {}
        tps = [TopicPartition(t, task.partition) for t in task.topics]
        found = _clients.retry_transient(
            lambda: consumer.committed(tps, timeout=30),
            f"committed offsets of {task}",
            stop=self._stop,
            deadline_s=self.config.task_timeout_s,
            cut_off_check=self._group_consumer_cut_off,
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
                stop=self._stop,
                deadline_s=self.config.task_timeout_s,
                cut_off_check=self._group_consumer_cut_off,
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
                    stop=self._stop,
                    deadline_s=self.config.task_timeout_s,
                )
            starts.append(TopicPartition(tp.topic, tp.partition, offset))
        try:
            consumer.commit(offsets=starts, asynchronous=False)
        except KafkaException as exc:  # a rebalance under way: the next owner starts over
            log.warning("could not commit the start offsets: %s", exc)

    def _task_running(self, task: StreamTask) -> None:
        assert self._consumer is not None
        task.transition(TaskState.RUNNING)
        if self.config.exactly_once:
            task.delete_checkpoint()
        else:
            task.replay_until = self._replay_window(task)
        self._consumer.resume([TopicPartition(t, task.partition) for t in task.topics])
        log.info("task %s running", task.task_id)

    def _close_tasks(self, tasks: list[StreamTask], *, keep_state: bool = True) -> None:
        """Close ``tasks``. Unless ``keep_state``, their state directories are wiped at once
        (they start again from the changelogs), before anything that may wait: a crash meanwhile
        must not leave a checkpoint beside stores whose forwarded changes were never delivered."""
        assert self._restorer is not None
        assert self._collector is not None
        undelivered = not self.config.exactly_once and self._undelivered()
        for task in tasks:
            if task.state is TaskState.RESTORING:
                self._restorer.remove(task)
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
                self._state_dir.wipe(task.task_id)
            elif task.state is TaskState.RUNNING and not self.config.exactly_once:
                # At least once, a close may be dirty (lost partitions, a failed offset commit):
                # the stores then hold, per key, the last value their caches forwarded
                # downstream, past the committed offsets. Checkpointing a source table at its
                # committed offset keeps the next restore from rewinding those keys to older
                # values that the replay would then collapse in its cache without retracting
                # what the repartition topic already received (extra ids after a broker
                # bounce). The replay from the committed offsets continues from the forwarded
                # values instead, as Kafka Streams' restore to the changelog's end does.
                task.write_checkpoint(self._collector.changelog_offsets)
                task.close()
            else:
                task.close()
            self._tasks.pop(task.task_id, None)
            for t in task.topics:
                self._task_by_tp.pop((t, task.partition), None)
        self.metrics.active_tasks.set(len(self._tasks))
        self._instances.set_active((t.sub.id, t.partition) for t in self._tasks.values())

    def _undelivered(self) -> bool:
        """Whether the producer still holds records it has not delivered (queued or in
        flight); a producer given up counts as holding some."""
        if self._committer is not None and self._committer.producer_lost:
            return True
        assert self._collector is not None
        producer = self._collector.producer
        producer.poll(0)  # delivery reports that have arrived
        return len(producer) > 0

    # -- commits ---------------------------------------------------------------------------
    def _commit(self, closing: bool = False, only: list[StreamTask] | None = None) -> None:
        if self._committer is None:
            return
        tasks = self._tasks.values() if only is None else only
        running = [t for t in tasks if t.state is TaskState.RUNNING]
        try:
            if self._committer.commit(running, closing=closing):
                # Only a transaction that went through ends a streak of aborts: a commit with
                # nothing to commit (the tasks still restoring after the last abort's rebuild)
                # came between every two aborts of chaos seed 695530's replay, and the producer
                # whose coordinator connection was stuck was never replaced (17 aborts in a row).
                self._aborts_in_a_row = 0
            if self._standbys is not None:
                self._standbys.checkpoint()
            self._update_gauges(running)
        except ProcessingStalled as exc:
            self._after_lost_records(exc)
        except DeliveryTimedOut as exc:
            if self.config.exactly_once:
                raise
            self._after_lost_records(exc)
        except TaskMigrated as exc:
            log.warning("%s; the tasks will be reassigned", exc)
        except CommitDeferred as exc:
            log.warning("commit deferred: %s; trying again at the next commit", exc)
        except TransactionAborted as exc:
            self._aborts_in_a_row += 1
            # A second abort in a row replaces the producer as well: after a broker restart
            # (and a freeze) librdkafka's connection to the transaction coordinator can stay
            # stuck, every AddOffsetsToTxn timing out in its queue, while the abort succeeds;
            # keeping the producer then aborted every commit and the task's input never moved
            # again (chaos seed 743451: 17 aborts in a row over 3 minutes). A new producer
            # (same transactional id, which fences the old one) connects afresh.
            fatal = exc.fatal or self._aborts_in_a_row >= 2
            log.warning(
                "%s; rebuilding the state of all active tasks%s",
                exc,
                " with a new producer" if fatal else "",
            )
            self._recover_from_abort(fatal)
        except KafkaException as exc:
            if not self.config.exactly_once:
                raise
            log.warning("%s during a commit; rebuilding the state of all active tasks", exc)
            self._committer.abort()
            self._recover_from_abort(fatal=True)

    def _update_gauges(self, running: list[StreamTask]) -> None:
        """Lag per input partition and entries per store, at most every 5 s (cheap: cached
        watermarks and RocksDB's estimate)."""
        now = time.monotonic()
        if now - self._gauges_at < 5.0 or self._consumer is None:
            return
        self._gauges_at = now
        self.metrics.consumer_lag.clear()
        self.metrics.store_entries.clear()
        for task in running:
            for topic in task.topics:
                tp = TopicPartition(topic, task.partition)
                try:
                    _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                    position = self._consumer.position([tp])[0].offset
                except KafkaException as exc:
                    # Nothing cached for it (its metadata dropped after a broker restart): no
                    # figure this time. A gauge must not fail the commit that called it.
                    log.debug("no lag for %s[%s]: %s", topic, task.partition, exc)
                    continue
                if high >= 0 and position >= 0:
                    self.metrics.consumer_lag.labels(topic, str(task.partition)).set(
                        max(high - position, 0)
                    )
            for name, store in task.serde_stores.items():
                self.metrics.store_entries.labels(name, str(task.partition)).set(
                    store.approximate_num_entries()
                )

    def _recover_from_abort(self, fatal: bool) -> None:
        """After an aborted transaction: wipe every active task's state, restore it from the
        changelogs and re-read the input from the committed offsets."""
        assert self._committer is not None
        assert self._collector is not None
        if fatal or self._committer.producer_lost:
            self._replace_producer()
        self._collector.abandon_sent()
        self._restart_tasks()

    def _restart_tasks(self) -> None:
        """Start every active task again as after a crash of this process: drop its caches
        and state (a record may be half processed), restore it from the changelogs and re-read
        the input from the committed offsets.

        Only the first half happens here. Reading the committed offsets needs the group
        coordinator, which a broker outage (the usual cause of a restart) takes away; waiting
        for it here, without polling the consumer, left librdkafka's lost-partitions event
        unserved, and its group, waiting for the app, never answered: an instance stayed
        REBALANCING for 3 minutes after the broker was back (chaos seed 934116). The loop
        finishes the restart in :meth:`_resume_restart`, polling meanwhile; a rebalance
        before that hands the partitions out afresh and cancels it."""
        assert self._consumer is not None
        if self._state is AppState.RUNNING:
            self._set_state(AppState.REBALANCING)  # queries fail fast from now on
        tasks = list(self._tasks.values())
        for task in tasks:
            task.core.discard_caches()
        self._close_tasks(tasks, keep_state=False)
        partitions = [TopicPartition(t, task.partition) for task in tasks for t in task.topics]
        if partitions:
            self._consumer.pause(partitions)
        if self._restart_pending is None:
            self._restart_pending = []
            self._restart_since = time.monotonic()
        self._restart_pending += [(tp.topic, tp.partition) for tp in partitions]

    def _resume_restart(self) -> None:
        """The second half of :meth:`_restart_tasks`, asked again at each pass of the loop
        until the committed offsets can be read (for up to ``task_timeout_ms``): seek to them
        and create the tasks."""
        assert self._consumer is not None
        pending = self._restart_pending
        if not pending:
            self._restart_pending = None
            return
        partitions = [TopicPartition(t, p) for t, p in pending]
        try:
            found = self._consumer.committed(partitions, timeout=1)
        except KafkaException as exc:
            waited = time.monotonic() - self._restart_since
            if not _clients.transient(exc) or waited > self.config.task_timeout_s:
                raise
            now = time.monotonic()
            if waited >= _clients.CUT_OFF_AFTER_S and now - self._group_looked >= GROUP_STALL_S:
                self._group_looked = now
                if self._group_consumer_cut_off():
                    raise ClientCutOff(
                        f"restart: committed offsets not readable for {waited:.0f}s ({exc})"
                    ) from exc
            log.info("restart: committed offsets not readable yet (%s); asking again", exc)
            return
        self._restart_pending = None
        gone: set[TP] = set()
        for tp in found:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            try:
                self._consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
            except KafkaException as exc:
                # No longer this consumer's (librdkafka: "Erroneous state"): a process
                # frozen past its session timeout learns here that it lost its partitions,
                # before the lost-partitions callback. Their tasks are not started again;
                # the rebalance under way hands them out (chaos seed 890515 went to ERROR).
                log.warning("%s[%s] no longer assigned: %s", tp.topic, tp.partition, exc)
                gone.add((tp.topic, tp.partition))
        self._create_tasks([(t, p) for t, p in pending if (t, p) not in gone])

    def _after_lost_records(self, exc: ProcessingStalled | DeliveryTimedOut) -> None:
        """At least once, after a freeze past the session timeout or records not delivered in
        time: what was sent since the committed offsets is forgotten (the reports of what
        librdkafka fails now are not errors of the next commit) and the tasks start again from
        the committed offsets, replaying their changes in order."""
        log.warning("%s; the tasks start again from the committed offsets", exc)
        self.metrics.stall_restarts.inc()
        assert self._collector is not None
        self._collector.abandon_sent()
        if isinstance(exc, DeliveryTimedOut) and _clients.cut_off(
            self._collector.producer, self.config.client_config()
        ):  # it would time out every record again (see _clients.cut_off)
            log.warning("the producer cannot reach the cluster while a new client can")
            self._replace_producer()
        self._restart_tasks()

    def _still_member(self) -> bool:
        """The probe of :class:`FreezeWatch`: commits again the offsets already committed for
        the running tasks' partitions, which the coordinator refuses from a member it removed
        (or a rebalance under way). False also when nothing can show it."""
        consumer = self._consumer
        if consumer is None:
            return False
        tps = [
            TopicPartition(t, task.partition)
            for task in self._tasks.values()
            if task.state is TaskState.RUNNING
            for t in task.topics
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

    def _replace_producer(self) -> None:
        """A new transactional producer with the same ``transactional.id``: its
        ``init_transactions`` fences the old one and aborts its open transaction. The old one
        is dropped unflushed (it may still be inside a call that never returns)."""
        assert self._committer is not None
        assert self._collector is not None
        log.warning("app %s: replacing the producer", self.config.application_id)
        try:
            producer = _clients.producer(self.config, self._state_dir.process_id(), stop=self._stop)
        except BaseException:
            # The old one had failed (or was given up): it is never to be used again, not even
            # to flush at the shutdown that follows.
            self._committer.producer_lost = True
            raise
        self._collector.producer = producer
        self._committer.producer = producer

    def _shutdown(self, clean: bool) -> None:
        with self._lock:
            if clean:
                self._commit(closing=True)
            elif self._committer is not None:
                self._committer.abort()
            if self._restorer is not None:
                self._close_tasks(list(self._tasks.values()))
        if self._consumer is not None:
            self._consumer.close()  # leaves the group
            self._consumer = None
        if self._collector is not None and not (
            self._committer is not None and self._committer.producer_lost
        ):
            self._collector.producer.flush(10)
        if self._restorer is not None:
            self._restorer.close()
        if self._freeze is not None:
            self._freeze.stop()
        if self._globals is not None:
            self._globals.close()
        if self._standbys is not None:
            self._standbys.close()
        self._instances.close()  # a tombstone: peers stop routing here
        self._state_dir.unlock()


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


def _dlq_reason(exc: Exception) -> bytes:
    """The ``x-error`` header: the exception's type and full message (the dead-letter record
    carries the data anyway), bounded."""
    return bounded_utf8(f"{type(exc).__name__}: {exc}", DLQ_ERROR_MAX_BYTES)


def _encode(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return DEFAULT.serialize(value)
    except StreamTableError:
        return repr(value).encode()


def _headers(msg: Message) -> list[tuple[str, bytes | None]] | None:
    raw = msg.headers()
    if not raw:
        return None
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), v.encode() if isinstance(v, str) else v) for k, v in items]
