"""The digest-progress gauges: what ``GET /digests`` shows per partition, as numbers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import streamtable as st
from streamtable.errors import StoreNotReady
from us_shareholders.digest import PROGRESS_STORE
from us_shareholders.metrics import DigestProgressCollector
from us_shareholders.schedule import parse_schedule

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)  # a Monday: week 2026-W49
SCHEDULE = parse_schedule("MON 07:00 America/New_York")


class FakeStore:
    def __init__(self, entries: dict[int, dict[str, Any]]) -> None:
        self.entries = entries

    def all(self) -> Iterator[tuple[int, dict[str, Any]]]:
        return iter(sorted(self.entries.items()))


class FakeApp:
    def __init__(self, entries: dict[int, dict[str, Any]] | None) -> None:
        self.entries = entries

    def store(self, name: str) -> FakeStore:
        assert name == PROGRESS_STORE
        if self.entries is None:
            raise StoreNotReady(name, "rebalancing")
        return FakeStore(self.entries)


def scrape(entries: dict[int, dict[str, Any]] | None) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry(auto_describe=True)
    app = cast(st.StreamsApp, FakeApp(entries))
    registry.register(DigestProgressCollector(app, SCHEDULE, clock=lambda: NOW))
    text = generate_latest(registry).decode()
    return {
        (s.name, s.labels.get("reason", "")): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def run(jobs: int, unsubscribed: int, no_email: int, finished_at: int) -> dict[str, int]:
    return {
        "jobs": jobs,
        "skipped_unsubscribed": unsubscribed,
        "skipped_no_email": no_email,
        "finished_at": finished_at,
    }


def test_counts_the_partitions_done_this_week_and_their_jobs() -> None:
    samples = scrape(
        {
            0: {"last_week": "2026-W49", "armed_at": 0,
                "runs": {"2026-W48": run(9, 9, 9, 1_000), "2026-W49": run(5, 1, 2, 7_000)}},
            1: {"last_week": "2026-W48", "armed_at": 0, "runs": {"2026-W48": run(4, 0, 0, 2_000)}},
            2: {"last_week": "2026-W49", "armed_at": 0, "runs": {"2026-W49": run(3, 0, 1, 9_000)}},
            3: {"last_week": None, "armed_at": 0, "runs": {}},
        }
    )  # fmt: skip
    assert samples == {
        ("ush_digest_partitions", ""): 4,
        ("ush_digest_partitions_done", ""): 2,
        ("ush_digest_week_jobs", ""): 8,
        ("ush_digest_week_skipped", "unsubscribed"): 1,
        ("ush_digest_week_skipped", "no_email"): 3,
        ("ush_digest_last_run_timestamp_seconds", ""): 9.0,
    }


def test_no_samples_while_the_store_is_not_ready() -> None:
    assert scrape(None) == {}
