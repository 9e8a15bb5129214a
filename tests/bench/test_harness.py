"""The benchmark harness's own logic without a broker: the data generator, settings, W2's parsing
of a child's output, and W3's percentiles."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from bench.datagen import US_EXCHANGES, DataSettings, generate
from bench.queries import percentiles
from bench.restore import restored
from bench.settings import Settings, skipped

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


def test_bench_skip_names_workloads() -> None:
    assert skipped(" W3, w5 ") == frozenset({"w3", "w5"})
    assert skipped("") == frozenset()
    settings = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024, skip=skipped("w1"))
    assert not settings.runs("w2")  # W2 restarts a W1 run
    assert settings.runs("w3")
    with pytest.raises(SystemExit):
        skipped("w4")


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "BENCH_RECORDS": "20_000",
        "BENCH_REPEATS": "0",
        "BENCH_SKIP": "w5",
        "BENCH_PROCESSES": "3",
        "BENCH_COMMIT_MS_EOS": "250",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert settings.data.records == 20_000
    assert settings.data.positions == 2_000  # a tenth of the records
    assert settings.data.clients == 200
    assert settings.repeats == 1  # at least one
    assert settings.skip == frozenset({"w5"})
    assert settings.processes == 3
    assert settings.commit_ms("exactly_once_v2") == 250
    assert settings.commit_ms("at_least_once") == 1000


def _said(*lines: str) -> list[tuple[float, str]]:
    """A child's stdout lines, the n-th at time n."""
    return [(float(t), line) for t, line in enumerate(lines, start=1)]


def test_w2_reads_streamtables_restored_total_at_running() -> None:
    lines = _said("STATE REBALANCING", "RESTORE_START", "STATE RUNNING")
    assert restored(lines, "streamtable") is None  # RUNNING, but no total yet
    lines.append((4.0, "RESTORED_TOTAL 1234"))
    assert restored(lines, "streamtable") == (1234, 3.0)


def test_w2_waits_for_every_kafka_streams_restore_to_end() -> None:
    lines = _said(
        "RESTORE_START positions-store 0 0 100",
        "RESTORE_START positions-store 1 0 50",
        "RESTORED positions-store 0 100",
        "STATE RUNNING",
    )
    assert restored(lines, "kstreams") is None  # partition 1 still restoring
    lines.append((5.0, "RESTORED positions-store 1 50"))
    assert restored(lines, "kstreams") == (150, 5.0)  # the last RESTORED, after RUNNING


def test_percentiles_in_milliseconds() -> None:
    stats = percentiles([i * 1_000_000 for i in range(1, 101)])
    assert stats.p50_ms == 51.0
    assert stats.p99_ms == 100.0
    assert stats.n == 100
