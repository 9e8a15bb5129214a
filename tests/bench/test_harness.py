"""The benchmark harness's own logic: the data generator and the summary (no broker)."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from bench.datagen import US_EXCHANGES, DataSettings, generate
from bench.queries import percentiles
from bench.run import Settings, skipped, summarize, write_markdown

pytestmark = pytest.mark.unit


def test_generator_is_deterministic_and_sized() -> None:
    settings = DataSettings(records=5000, positions=500, clients=50, seed=3)
    events = list(generate(settings))
    assert events == list(generate(settings))
    assert len(events) == 5000
    assert events != list(generate(DataSettings(records=5000, positions=500, clients=50, seed=4)))


def test_generator_opens_every_position_first_then_mixes_changes() -> None:
    settings = DataSettings(records=20_000, positions=1000, clients=100)
    events = list(generate(settings))
    first = events[:1000]
    assert len({k for k, _ in first}) == 1000
    assert all(v is not None for _, v in first)
    values = [orjson.loads(v) for _, v in events if v is not None]
    assert all(set(v) == {"id", "client", "ticker", "exchange", "amount"} for v in values)
    assert {v["client"] for v in values} <= {f"c{i}" for i in range(100)}
    tombstones = sum(1 for _, v in events[1000:] if v is None)
    assert 0.05 < tombstones / 19_000 < 0.15
    us = Counter(v["exchange"] in US_EXCHANGES for v in values[:1000])
    assert 0.5 < us[True] / 1000 < 0.7


def test_summary_has_the_agreed_keys_and_nulls_for_skipped_extras(tmp_path: Path) -> None:
    settings = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024)
    run = {
        "raw": {"rps": 100.0},
        "st_alos": {"rps": 10.0, "peak_rss_mb": 100.0, "restore": {"rps": 50.0}},
        "ks_alos": {"rps": 20.0, "peak_rss_mb": 400.0, "restore": {"rps": 100.0}},
        "st_eos": {"rps": 8.0},
        "ks_eos": {"rps": 10.0},
    }
    summary = summarize(settings, [run, run], {"nproc": 2})
    assert summary["records"] == 10
    assert summary["w1"]["streamtable_alos_rps"] == 10.0
    assert summary["ratios"]["w1_alos_streamtable_over_kstreams"] == 0.5
    assert summary["ratios"]["w4_rss_streamtable_over_kstreams"] == 0.25
    for key in ("local_get_p99_ms", "routed_get_p99_ms", "scan_100k_s"):
        assert summary["w3"][key] is None
    assert summary["w5"]["jobs_per_s"] is None
    assert summary["w5"]["emails_per_s"] is None
    assert summary["w3"]["skipped"]
    assert summary["w5"]["skipped"]
    summary["machine"] = dict.fromkeys(
        ["nproc", "cpu_model", "memory_gib", "kernel", "python", "java", "kafka"], "x"
    )
    out = tmp_path / "RESULTS.md"
    write_markdown(summary, "stamp", 1.0, out)
    text = out.read_text()
    assert "| W1 seed, at_least_once (records/s) | 10 | 20 | 0.50 |" in text
    assert "| workload | streamtable | Kafka Streams x |" in text  # the version measured with
    assert "broker: kafka-local (Apache Kafka x, one KRaft node)" in text
    assert list(itertools.islice(text.splitlines(), 1)) == ["# Benchmark results"]


def test_w3_and_w5_figures_reach_the_summary_and_the_markdown(tmp_path: Path) -> None:
    settings = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024)
    extras: dict[str, dict[str, Any]] = {
        "w3": {
            "local_get": {"p50_ms": 0.02, "p99_ms": 0.05, "n": 20000},
            "routed_get": {"p50_ms": 1.5, "p99_ms": 4.0, "n": 2000},
            "scan_s": 3.25,
            "scan_keys": 100000,
            "scan_s_by_limit": {"10000": 3.25, "1000": 7.5},
        },
        "w5": {"jobs_per_s": 5000.0, "emails_per_s": 300.0, "jobs": 9000, "emails": 9000},
    }
    summary = summarize(settings, [], {"nproc": 2}, extras)
    assert summary["w3"]["local_get_p50_ms"] == 0.02
    assert summary["w3"]["routed_get_p99_ms"] == 4.0
    assert summary["w3"]["scan_100k_s"] == 3.25
    assert summary["w3"]["scan_keys"] == 100000
    assert summary["w5"]["jobs_per_s"] == 5000.0
    assert summary["w5"]["emails_per_s"] == 300.0
    assert summary["w5"]["jobs"] == 9000
    assert "skipped" not in summary["w3"]
    summary["machine"] = dict.fromkeys(
        ["nproc", "cpu_model", "memory_gib", "kernel", "python", "java", "kafka"], "x"
    )
    out = tmp_path / "RESULTS.md"
    write_markdown(summary, "stamp", 1.0, out)
    text = out.read_text()
    assert "| W3 full paginated scan over HTTP, 100,000 keys, pages of 10,000 (s) | 3.25 |" in text
    assert "| W3 the same scan, pages of 1,000 (s) | 7.50 |" in text
    assert "| W5 emails/s to the SMTP sink" in text
    assert "no Kafka Streams reference" in text


def test_a_failed_extra_is_reported_not_raised() -> None:
    settings = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024)
    summary = summarize(settings, [], {"nproc": 2}, {"w5": {"error": "boom"}})
    assert summary["w5"]["error"] == "boom"
    assert summary["w5"]["jobs_per_s"] is None


def test_bench_skip_names_workloads() -> None:
    assert skipped(" W3, w5 ") == frozenset({"w3", "w5"})
    assert skipped("") == frozenset()
    settings = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024, skip=skipped("w1"))
    assert not settings.runs("w2")  # W2 restarts a W1 run
    assert settings.runs("w3")
    with pytest.raises(SystemExit):
        skipped("w4")


def test_percentiles_in_milliseconds() -> None:
    stats = percentiles([i * 1_000_000 for i in range(1, 101)])
    assert stats["p50_ms"] == 51.0
    assert stats["p99_ms"] == 100.0
    assert stats["n"] == 100
