"""Prometheus metrics of one app, in its own registry so several apps can run in a process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class StreamsMetrics:
    def __init__(self, application_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records_processed = Counter(
            "streamtable_records_processed",
            "Input records processed by the app's tasks.",
            registry=self.registry,
        )
        self.dlq_records = Counter(
            "streamtable_dlq_records",
            "Records sent to the dead-letter topic.",
            registry=self.registry,
        )
        self.stall_restarts = Counter(
            "streamtable_stall_restarts",
            "Restarts of every active task after this process was frozen long enough to lose "
            "its partitions and could not show that it still owned them (at least once).",
            registry=self.registry,
        )
        self.restored_records = Counter(
            "streamtable_restored_records",
            "Changelog records applied while restoring state.",
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "streamtable_commit_latency_seconds",
            "Time of one commit (flush caches, flush producer, commit offsets, checkpoint).",
            registry=self.registry,
        )
        self.active_tasks = Gauge(
            "streamtable_active_tasks", "Tasks running on this instance.", registry=self.registry
        )
        self.consumer_lag = Gauge(
            "streamtable_consumer_lag",
            "Records not yet processed per input partition (high watermark - position).",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.store_entries = Gauge(
            "streamtable_store_entries",
            "Approximate entries per store partition hosted here (active tasks).",
            ["store", "partition"],
            registry=self.registry,
        )
        self.restore_remaining = Gauge(
            "streamtable_restore_remaining_records",
            "Changelog records still to restore before the restoring tasks can run.",
            registry=self.registry,
        )
