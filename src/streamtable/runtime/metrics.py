"""Prometheus metrics of one app, in its own registry so several apps can run in a process.

prometheus-client is optional (``pip install 'streamtable[metrics]'``): without it the metrics
are counted nowhere and ``registry`` raises, the app runs the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast

from streamtable.state import MeteredStore, RocksDBMemory

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.metrics_core import CounterMetricFamily

try:
    import prometheus_client
except ImportError:  # the library runs without it
    prometheus_client = None  # type: ignore[assignment]

METRICS_EXTRA_HINT = "pip install 'streamtable[metrics]'"


class _Unrecorded:
    """Stands in for a counter, gauge or histogram when prometheus-client is not installed."""

    def inc(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, amount: float) -> None:
        pass

    def labels(self, *values: Any, **named: Any) -> _Unrecorded:
        return self

    def clear(self) -> None:
        pass


class StreamsMetrics:
    records_processed: Counter
    dlq_records: Counter
    stall_restarts: Counter
    redelivered_records: Counter
    restored_records: Counter
    consumer_replacements: Counter
    commit_latency: Histogram
    active_tasks: Gauge
    consumer_lag: Gauge
    store_entries: Gauge
    restore_remaining: Gauge

    def __init__(self, application_id: str) -> None:
        self._registry: CollectorRegistry | None = None
        if prometheus_client is None:
            self._record_nowhere()
            return
        registry = prometheus_client.CollectorRegistry(auto_describe=True)
        self._registry = registry
        self._add_counters(registry)
        self._add_latency_and_gauges(registry)

    def _record_nowhere(self) -> None:
        """Without prometheus-client: every metric accepts updates and keeps nothing."""
        unrecorded = _Unrecorded()
        self.records_processed = cast("Counter", unrecorded)
        self.dlq_records = cast("Counter", unrecorded)
        self.stall_restarts = cast("Counter", unrecorded)
        self.redelivered_records = cast("Counter", unrecorded)
        self.restored_records = cast("Counter", unrecorded)
        self.consumer_replacements = cast("Counter", unrecorded)
        self.commit_latency = cast("Histogram", unrecorded)
        self.active_tasks = cast("Gauge", unrecorded)
        self.consumer_lag = cast("Gauge", unrecorded)
        self.store_entries = cast("Gauge", unrecorded)
        self.restore_remaining = cast("Gauge", unrecorded)

    def _add_counters(self, registry: CollectorRegistry) -> None:
        self.records_processed = prometheus_client.Counter(
            "streamtable_records_processed",
            "Input records processed by the app's tasks.",
            registry=registry,
        )
        self.dlq_records = prometheus_client.Counter(
            "streamtable_dlq_records",
            "Records sent to the dead-letter topic.",
            registry=registry,
        )
        self.stall_restarts = prometheus_client.Counter(
            "streamtable_stall_restarts",
            "Restarts of every active task after this process was frozen long enough to lose "
            "its partitions and could not show that it still owned them (at least once).",
            registry=registry,
        )
        self.redelivered_records = prometheus_client.Counter(
            "streamtable_redelivered_records",
            "Input records the consumer handed over again after their task had processed them "
            "(a fetch position moved back inside librdkafka); skipped, not processed twice.",
            registry=registry,
        )
        self.restored_records = prometheus_client.Counter(
            "streamtable_restored_records",
            "Changelog records applied while restoring state.",
            registry=registry,
        )
        self.consumer_replacements = prometheus_client.Counter(
            "streamtable_consumer_replacements",
            "Consumers replaced because they stopped fetching while the broker held records "
            "for them (restore, global) or lost every broker (group); seen after broker restarts.",
            ["consumer"],
            registry=registry,
        )
        for consumer in ("group", "restore", "global"):  # served at 0 before the first one
            self.consumer_replacements.labels(consumer)

    def _add_latency_and_gauges(self, registry: CollectorRegistry) -> None:
        self.commit_latency = prometheus_client.Histogram(
            "streamtable_commit_latency_seconds",
            "Time of one commit (flush caches, flush producer, commit offsets, checkpoint).",
            registry=registry,
        )
        self.active_tasks = prometheus_client.Gauge(
            "streamtable_active_tasks", "Tasks running on this instance.", registry=registry
        )
        self.consumer_lag = prometheus_client.Gauge(
            "streamtable_consumer_lag",
            "Records not yet processed per input partition (high watermark - position).",
            ["topic", "partition"],
            registry=registry,
        )
        self.store_entries = prometheus_client.Gauge(
            "streamtable_store_entries",
            "Approximate entries per store partition hosted here (active tasks).",
            ["store", "partition"],
            registry=registry,
        )
        self.restore_remaining = prometheus_client.Gauge(
            "streamtable_restore_remaining_records",
            "Changelog records still to restore before the restoring tasks can run.",
            registry=registry,
        )

    def watch_rocksdb_memory(self, memory: RocksDBMemory | None) -> None:
        """Serve the shared RocksDB budget's use, read at scrape time (metrics kept only)."""
        if memory is None or self._registry is None:
            return
        for name, what, read in (
            ("usage", "held now, memtables included", memory.usage_bytes),
            ("capacity", "the budget (rocksdb_memory_bytes)", lambda: memory.capacity_bytes),
        ):
            gauge = prometheus_client.Gauge(
                f"streamtable_rocksdb_memory_{name}_bytes",
                f"Shared RocksDB block cache of all stores here: {what}.",
                registry=self._registry,
            )
            gauge.set_function(read)

    @property
    def recording(self) -> bool:
        """Whether metrics are kept (prometheus-client is installed)."""
        return self._registry is not None

    @property
    def registry(self) -> CollectorRegistry:
        """The app's prometheus-client registry (serve it with ``generate_latest``)."""
        if self._registry is None:
            raise ModuleNotFoundError(
                f"app.metrics.registry needs prometheus-client: {METRICS_EXTRA_HINT}",
                name="prometheus_client",
            )
        return self._registry


class _ScrapedCounter:
    """A counter family served from plain counts read when Prometheus scrapes: the
    processing path pays an integer increment, nothing more. Subclasses name the family and
    give :meth:`totals`."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    needs: str  # what the metrics are, for the message without prometheus-client

    def __init__(self) -> None:
        if prometheus_client is None:
            raise ModuleNotFoundError(
                f"{self.needs} need prometheus-client: {METRICS_EXTRA_HINT}",
                name="prometheus_client",
            )

    def _family(self) -> CounterMetricFamily:
        return prometheus_client.metrics_core.CounterMetricFamily(
            self.name, self.documentation, labels=list(self.labels)
        )

    def totals(self) -> dict[tuple[str, ...], int]:
        raise NotImplementedError

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = self._family()
        for labels, count in sorted(self.totals().items()):
            family.add_metric(list(labels), count)
        yield family


class StoreOperationsCollector(_ScrapedCounter):
    """Serves ``streamtable_store_operations_total{store,op}`` from the counts the metered
    stores keep (:class:`~streamtable.state.MeteredStore`), read when Prometheus scrapes: the
    processing path pays a plain integer increment per operation, nothing more.

    ``stores`` returns the metered stores open now (every partition of every store hosted here);
    the counts of a store's partitions are summed. A partition that moves away takes its counts
    with it, which Prometheus reads as a counter reset. Register with
    ``app.metrics.registry.register(StoreOperationsCollector(...))``.
    """

    name = "streamtable_store_operations"
    documentation = "Operations on the stores hosted here (get, put, delete, range), per store."
    labels = ("store", "op")
    needs = "store operation metrics"

    def __init__(self, stores: Callable[[], Iterable[MeteredStore]]) -> None:
        super().__init__()
        self._stores = stores

    def totals(self) -> dict[tuple[str, ...], int]:
        totals: dict[tuple[str, ...], int] = {}
        for store in self._stores():
            for op, count in store.operation_counts().items():
                totals[store.name, op] = totals.get((store.name, op), 0) + count
        return totals


class DroppedRecordsCollector(_ScrapedCounter):
    """Serves ``streamtable_dropped_records_total{reason}``: records processors dropped, read
    from their counts (``Node.dropped_records``) when Prometheus scrapes. Reasons: ``late``
    (a window had closed: once per closed window of the record), ``null_key``, ``null_value``.

    ``counts`` returns the counts of the active tasks hosted here; a task that moves away takes
    its counts with it (a counter reset), as with the store operations.
    """

    name = "streamtable_dropped_records"
    documentation = "Records dropped by processors, per reason (late: their window had closed)."
    labels = ("reason",)
    needs = "dropped-record metrics"

    def __init__(self, counts: Callable[[], Iterable[Mapping[str, int]]]) -> None:
        super().__init__()
        self._counts = counts

    def totals(self) -> dict[tuple[str, ...], int]:
        totals: dict[tuple[str, ...], int] = {
            (reason,): 0 for reason in ("late", "null_key", "null_value")
        }
        for counts in self._counts():
            for reason, count in counts.items():
                totals[reason,] = totals.get((reason,), 0) + count
        return totals
