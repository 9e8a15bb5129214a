"""The digest's progress as Prometheus gauges, read from the ``digest-progress`` store when
``/metrics`` is scraped (what ``GET /digests`` shows, per instance, as numbers).

Each instance reports the partitions it runs: summed over the instances they cover every
partition once. While the app is not RUNNING (restoring, rebalancing) the gauges have no samples
rather than partial ones. No client data: counts only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import streamtable as st
from streamtable.errors import StoreNotReady
from us_shareholders.digest import PROGRESS_STORE
from us_shareholders.schedule import DigestSchedule

SKIP_REASONS = {"unsubscribed": "skipped_unsubscribed", "no_email": "skipped_no_email"}


class DigestProgressCollector(Collector):
    """``registry.register(DigestProgressCollector(app, schedule))``."""

    def __init__(
        self,
        app: st.StreamsApp,
        schedule: DigestSchedule,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._app = app
        self._schedule = schedule
        self._clock = clock

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        try:
            progress = list(self._app.store(PROGRESS_STORE).all())
        except StoreNotReady:
            yield from self._families()
            return
        yield from self._families([state for _, state in progress])

    def _families(self, progress: list[dict[str, Any]] | None = None) -> Iterator[Metric]:
        partitions = GaugeMetricFamily(
            "ush_digest_partitions", "Partitions whose digest this instance runs."
        )
        done = GaugeMetricFamily(
            "ush_digest_partitions_done",
            "Of those, partitions whose digest of the current week has run.",
        )
        jobs = GaugeMetricFamily(
            "ush_digest_week_jobs",
            "Email jobs written this week by this instance's partitions.",
        )
        skipped = GaugeMetricFamily(
            "ush_digest_week_skipped",
            "Holders skipped this week by this instance's partitions, by reason.",
            labels=["reason"],
        )
        last_run = GaugeMetricFamily(
            "ush_digest_last_run_timestamp_seconds",
            "When the latest digest run of this instance's partitions finished (Unix time).",
        )
        if progress is not None:
            week = str(self._schedule.week_of(self._clock()))
            runs = [state.get("runs") or {} for state in progress]
            this_week = [r[week] for r in runs if week in r]
            partitions.add_metric([], len(progress))
            done.add_metric([], sum(1 for s in progress if s.get("last_week") == week))
            jobs.add_metric([], sum(int(r.get("jobs", 0)) for r in this_week))
            for reason, field in SKIP_REASONS.items():
                skipped.add_metric([reason], sum(int(r.get(field, 0)) for r in this_week))
            finished = [
                int(run["finished_at"]) for r in runs for run in r.values() if "finished_at" in run
            ]
            if finished:
                last_run.add_metric([], max(finished) / 1000.0)
        yield from (partitions, done, jobs, skipped, last_run)
