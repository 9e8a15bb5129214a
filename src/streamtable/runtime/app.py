"""``StreamsApp``: runs a topology on Kafka.

The public facade: the app's state machine, ``start``/``close``, wall-clock schedules and
interactive queries. One processing thread (:class:`~._thread.StreamThread`) owns every Kafka
client, the tasks (:class:`~._taskmanager.TaskManager`) and the commits
(:class:`~._commits.TaskCommits`); ``docs/architecture.md`` follows one record through them.

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
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

from confluent_kafka.admin import AdminClient

from streamtable.errors import StoreNotFound, StoreNotReady, StreamTableError, TopologyError
from streamtable.runtime import _clients, _gc
from streamtable.runtime._clients import ShutdownRequested
from streamtable.runtime._context import AppContext, open_clients
from streamtable.runtime._metadata import InstanceDirectory, KeyQueryMetadata, StreamsMetadata
from streamtable.runtime._restore import StateRestoreListener
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime._task import StreamTask
from streamtable.runtime._thread import StreamThread
from streamtable.runtime._views import CompositeStoreView, session_reader, window_reader
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.metrics import (
    DroppedRecordsCollector,
    StoreOperationsCollector,
    StreamsMetrics,
)
from streamtable.runtime.state import AppState, TaskState, check_app_transition
from streamtable.runtime.topics import InternalTopicManager, TopicPlan
from streamtable.state import (
    MeteredStore,
    ReadOnlyKeyValueStore,
    ReadOnlySessionStore,
    ReadOnlyWindowStore,
)
from streamtable.topology import Schedules, StoreSpec, Topology

log = logging.getLogger("streamtable.runtime.app")

StateListener = Callable[[AppState, AppState], None]


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
        self._stop = threading.Event()
        self._state_dir = StateDirectory.of(config)
        self._instances = InstanceDirectory(
            self.topology, config, str(self.instance_id), lambda: self._state.name
        )
        self._schedules: Schedules[None] = Schedules()
        self._restore_listener: StateRestoreListener | None = None
        self._ctx: AppContext | None = None  # from start(), once the topics are known
        self._loop: StreamThread | None = None  # once its clients are open
        self._thread: threading.Thread | None = None

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
        self._tell_listeners(old, new)

    def _tell_listeners(self, old: AppState, new: AppState) -> None:
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
            plan = self._ensure_topics()
        except BaseException:
            self._state_dir.unlock()
            raise
        self._ctx = AppContext(
            topology=self.topology,
            config=self.config,
            instance_id=str(self.instance_id),
            metrics=self.metrics,
            state_dir=self._state_dir,
            instances=self._instances,
            plan=plan,
            stop=self._stop,
            state=lambda: self._state,
            set_state=self._set_state,
            schedules=self._schedules,
            restore_listener=self._restore_listener,
        )
        if self.metrics.recording:
            self.metrics.registry.register(StoreOperationsCollector(self._metered_stores))
            self.metrics.registry.register(DroppedRecordsCollector(self._dropped_records))
            self.metrics.watch_rocksdb_memory(self._state_dir.memory)
        self._set_state(AppState.REBALANCING)
        name = f"streamtable-{self.config.application_id}"
        run = _gc.tuning(self._run, self.config.python_gc)  # the collector tuned while it runs
        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def _ensure_topics(self) -> TopicPlan:
        """Wait for the broker, then check the source topics and create the internal ones."""
        config = self.config
        _clients.check_connection(config.client_config(), config.task_timeout_s, stop=self._stop)
        admin = AdminClient(config.client_config())
        manager = InternalTopicManager(
            admin,
            self.topology,
            config.application_id,
            config.replication_factor,
            stop=self._stop,
            wait_s=config.task_timeout_s,
        )
        plan = manager.plan()
        manager.ensure(plan)
        admin.poll(0)  # its log lines, if any
        return plan

    def set_restore_listener(self, listener: StateRestoreListener | None) -> None:
        """Tell ``listener`` about every changelog partition that tasks restore (Kafka Streams'
        ``setGlobalStateRestoreListener``); before :meth:`start`. A progress bar, for one."""
        if self._state is not AppState.CREATED:
            raise StreamTableError("set_restore_listener() needs state CREATED")
        self._restore_listener = listener

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
        # Due by the monotonic clock (a clock step does not delay it), called with wall time.
        return self._schedules.add(interval_ms, None, callback, int(time.monotonic() * 1000))

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
        return 0 if self._loop is None else self._loop.clients.restorer.restored_records

    # -- interactive queries ---------------------------------------------------------------
    def store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyKeyValueStore:
        """A read-only view of key-value store ``name`` across this instance's active tasks.
        Raises :class:`StoreNotReady` unless the app is RUNNING; ``allow_stale=True`` also
        serves tasks still restoring (values may lag) and answers while REBALANCING. Window
        and session stores: :meth:`window_store`, :meth:`session_store`."""
        spec = self._spec(name, "key_value")
        return ReadOnlyKeyValueStore(self._view(name, spec, allow_stale))

    def window_store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyWindowStore:
        """A read-only view of window store ``name`` across this instance's active tasks
        (``fetch`` reads the task of the key's partition, ``fetch_all`` and ``all`` every
        task); ready and stale as :meth:`store`."""
        spec = self._spec(name, "window")
        return window_reader(spec, self._view(name, spec, allow_stale))  # never a global one

    def session_store(self, name: str, *, allow_stale: bool = False) -> ReadOnlySessionStore:
        """A read-only view of session store ``name`` across this instance's active tasks
        (``fetch`` and ``find_sessions`` read the key's task, ``all`` every task); ready and
        stale as :meth:`store`."""
        spec = self._spec(name, "session")
        return session_reader(spec, self._view(name, spec, allow_stale))

    def _spec(self, name: str, store_type: str) -> StoreSpec:
        spec = self.topology.stores.get(name)
        if spec is None:
            raise StoreNotFound(name, list(self.topology.stores))
        if spec.store_type != store_type:
            reader = {"key_value": "store", "window": "window_store"}.get(spec.store_type)
            raise TopologyError(f"store {name!r} is a {spec.store_type} store: read it with "
                                f"app.{reader or 'session_store'}()")  # fmt: skip
        return spec

    def _view(self, name: str, spec: StoreSpec, allow_stale: bool) -> Any:
        """A global store, or a view over the tasks' stores of ``name``."""
        check = self._check_alive if allow_stale else self._check_ready
        served = (TaskState.RUNNING, TaskState.RESTORING) if allow_stale else (TaskState.RUNNING,)
        check(name)
        ctx, loop = self._ctx, self._loop
        if ctx is None or loop is None:
            raise StoreNotReady(name, "the app is still opening its clients")
        global_stores = loop.clients.globals.stores
        if name in global_stores:
            return global_stores[name]
        sub = self.topology.subtopology_of_store(name)
        assert sub is not None  # every store is a global one or a sub-topology's
        count = max(ctx.plan.count(t) for t in sub.source_topics(self.config.application_id))
        tasks = loop.tasks.tasks

        def lookup() -> tuple[dict[int, Any], int]:
            stores = {
                t.partition: t.stores[name]
                for t in tasks.values()
                if t.sub.id == sub.id and t.state in served
            }
            return stores, count

        return CompositeStoreView(name, spec.key_serde, lookup, lambda: check(name), ctx.lock)

    def _tasks(self) -> list[StreamTask]:
        ctx, loop = self._ctx, self._loop
        if ctx is None or loop is None:
            return []
        with ctx.lock:
            return list(loop.tasks.tasks.values())

    def _metered_stores(self) -> list[MeteredStore]:
        """The active tasks' stores, for ``streamtable_store_operations_total`` (at a scrape)."""
        tasks = self._tasks()
        return [s for t in tasks for s in t.stores.values() if isinstance(s, MeteredStore)]

    def _dropped_records(self) -> list[Counter[str]]:
        """The active tasks' dropped records, for ``streamtable_dropped_records_total``."""
        return [t.core.dropped_records() for t in self._tasks()]

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
        ctx = self._ctx
        assert ctx is not None  # set by start() before this thread
        try:
            clean = True
            try:
                self._loop = StreamThread(ctx, open_clients(ctx))
                self._instances.start(ctx.plan)
                self._loop.run()
            except ShutdownRequested as exc:
                log.info("%s", exc)
                # A producer given up while it was being replaced (the stop came during its
                # init_transactions) is never used again: close without a commit, as after a
                # failure, but not in ERROR.
                clean = not (self._loop is not None and self._loop.clients.producer.lost)
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
                self._tell_listeners(old, AppState.ERROR)

    def _shutdown(self, clean: bool) -> None:
        if self._loop is not None:
            self._loop.shutdown(clean)
        self._instances.close()  # a tombstone: peers stop routing here
        self._state_dir.unlock()
