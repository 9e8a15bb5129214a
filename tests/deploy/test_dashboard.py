"""deploy/grafana/dashboard.json: every metric a panel (or a variable) queries is one that the
service's ``GET /metrics`` serves, and every family it serves is on the dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.support import DEPLOY, get, service_api

pytestmark = pytest.mark.unit

METRIC = re.compile(r"\b((?:streamtable|ush)_[a-z0-9_]+)\b")


def dashboard() -> dict[str, Any]:
    loaded = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    assert isinstance(loaded, dict)
    return loaded


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def served(tmp_path: Path) -> tuple[set[str], set[str]]:
    """(series names a query can use, families) of the real service's /metrics, not started.
    A series name is a sample's (``x_total``, ``x_bucket``) or a gauge family's (a labelled
    gauge has no sample until a label set is written)."""
    with service_api(tmp_path) as api:
        reply = get(api, "/metrics")
    assert reply.status_code == 200
    families = list(text_string_to_metric_families(reply.text))
    series = {s.name for f in families for s in f.samples}
    series |= {f.name for f in families if f.type == "gauge"}
    return series, {f.name for f in families if not f.name.endswith("_created")}


def test_every_panel_queries_metrics_that_metrics_serves(tmp_path: Path) -> None:
    series, _ = served(tmp_path)
    assert panels()
    for panel in panels():
        exprs = [t["expr"] for t in panel["targets"]]
        names = {n for e in exprs for n in METRIC.findall(e)}
        assert names, f"panel {panel['title']!r} queries no streamtable_/ush_ metric"
        unknown = sorted(names - series)
        assert not unknown, f"panel {panel['title']!r}: not served by /metrics: {unknown}"
    for variable in dashboard()["templating"]["list"]:
        query = json.dumps(variable.get("query", ""))
        assert set(METRIC.findall(query)) <= series, variable["name"]


def test_every_served_family_is_on_the_dashboard(tmp_path: Path) -> None:
    _, families = served(tmp_path)
    text = json.dumps([t["expr"] for p in panels() for t in p["targets"]])
    on_dashboard = set(METRIC.findall(text))
    missing = sorted(
        f for f in families if not any(n == f or n.startswith(f + "_") for n in on_dashboard)
    )
    assert not missing, f"served by /metrics but on no panel: {missing}"
    # The list: lag, restore remaining, commit latency, DLQ, digest progress, delivery.
    for wanted in ("streamtable_consumer_lag", "streamtable_restore_remaining_records",
                   "streamtable_commit_latency_seconds_bucket", "streamtable_dlq_records_total",
                   "ush_digest_partitions_done", "ush_emails_delivered_total"):  # fmt: skip
        assert wanted in on_dashboard


def test_panels_have_unique_ids_and_use_the_datasource_variable() -> None:
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert [t["refId"] for t in panel["targets"]] == [
            chr(65 + i) for i in range(len(panel["targets"]))
        ]
