"""The latency part without a broker: its settings, statistics, probe and section."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from bench.datagen import DataSettings
from bench.latency import settings_of, store_sample
from bench.latency_feed import client_of, index_of, latency_stats, position, seen_lines
from bench.latency_probe import StoreProbe, new_elements
from bench.latency_settings import LatencySettings, Setting
from bench.render_latency import HEADING, cache, latency_markdown
from bench.results import Extras, Failure, Machine
from bench.results_latency import LatencyResult, LatencyRun, LatencyStats, ThroughputRun
from bench.runner import build_parser
from bench.settings import Settings, skipped
from bench.summary import summarize

import streamtable as st
from tests.bench.sections import assert_round_trip_before_machine

pytestmark = pytest.mark.unit

MACHINE = Machine(
    nproc=2, memory_gib=1.0, cpu_model="x", python="3", java="j", kernel="k", kafka="4.4"
)
SETTINGS = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024)
MS = 1_000_000


# -- settings -------------------------------------------------------------------------------------


def test_the_settings_default_and_parse_every_variable() -> None:
    assert LatencySettings.from_env({}) == LatencySettings()
    s = LatencySettings.from_env(
        {
            "BENCH_LATENCY_RATE": "1_500",
            "BENCH_LATENCY_SECONDS": "10",
            "BENCH_LATENCY_WARMUP_SECONDS": "0",
            "BENCH_LATENCY_CLIENTS": "2,000",
            "BENCH_LATENCY_PROBE_KEYS": "5",
            "BENCH_LATENCY_BACKLOG": "50000",
            "BENCH_LATENCY_GUARANTEE": "exactly_once_v2",
            "BENCH_LATENCY_LOW_COMMIT_MS": "50",
            "BENCH_LATENCY_LOW_CACHE_BYTES": "1024",
        }
    )
    assert s == LatencySettings(1_500, 10, 0, 2_000, 5, 50_000, "exactly_once_v2", 50, 1024)
    assert (s.records, s.warmup_records) == (15_000, 0)
    assert s.low_latency() == Setting("low_latency", 50, 1024)
    assert LatencySettings(rate_per_s=500, duration_s=10, warmup_s=2).records == 6_000


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BENCH_LATENCY_RATE": "fast"}, "BENCH_LATENCY_RATE: 'fast' is not an integer"),
        ({"BENCH_LATENCY_RATE": "0"}, "BENCH_LATENCY_RATE: must be >= 1, got 0"),
        ({"BENCH_LATENCY_LOW_CACHE_BYTES": "-1"}, "BENCH_LATENCY_LOW_CACHE_BYTES: must be >= 0"),
        ({"BENCH_LATENCY_GUARANTEE": "eos"}, "BENCH_LATENCY_GUARANTEE: 'eos' is not one of"),
        (
            {"BENCH_LATENCY_CLIENTS": "3", "BENCH_LATENCY_PROBE_KEYS": "4"},
            "BENCH_LATENCY_PROBE_KEYS: 4 is more than the 3 clients",
        ),
        ({"BENCH_LATENCY_RATE": "1000000"}, "more than 10,000,000"),
    ],
)
def test_a_bad_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LatencySettings.from_env(env)


def test_the_bench_settings_take_the_latency_part(monkeypatch: pytest.MonkeyPatch) -> None:
    assert skipped("latency, w1") == frozenset({"latency", "w1"})
    monkeypatch.setenv("BENCH_LATENCY_SECONDS", "7")
    assert Settings.from_env().latency.duration_s == 7
    monkeypatch.setenv("BENCH_LATENCY_SECONDS", "-7")
    with pytest.raises(SystemExit, match="BENCH_LATENCY_SECONDS: must be >= 1"):
        Settings.from_env()


def test_the_default_setting_is_w1s_for_the_guarantee() -> None:
    class Ctx:
        settings = SETTINGS

    assert settings_of(Ctx()) == (  # type: ignore[arg-type]
        Setting("default", 1000, 1024),
        Setting("low_latency", 100, 0),
    )
    Ctx.settings = Settings(
        DataSettings(records=10), 1, 60.0, 1000, 100, 1024,
        latency=LatencySettings(guarantee="exactly_once_v2", low_commit_ms=10),
    )  # fmt: skip
    assert settings_of(Ctx())[0] == Setting("default", 100, 1024)  # type: ignore[arg-type]
    assert settings_of(Ctx())[1] == Setting("low_latency", 10, 0)  # type: ignore[arg-type]


# -- the input and the statistics ----------------------------------------------------------------


def test_each_record_is_a_new_us_position_carrying_its_produce_time() -> None:
    value = orjson.loads(position(1_234, 1_000, 42))
    assert value == {
        "id": "l1234",
        "client": "c234",
        "ticker": "T000",
        "exchange": "NASDAQ",
        "amount": 1,
        "produced_ns": 42,
    }
    assert index_of("l1234") == 1_234
    with pytest.raises(ValueError, match="not a latency position id: 'p1'"):
        index_of("p1")


def test_the_store_sample_is_the_probe_clients_records() -> None:
    lat = LatencySettings(clients=10, probe_keys=3)
    produced = {f"l{i}": i for i in range(25)}
    sample = store_sample(produced, lat)
    assert sorted(sample, key=index_of) == [
        "l0",
        "l1",
        "l2",
        "l10",
        "l11",
        "l12",
        "l20",
        "l21",
        "l22",
    ]
    assert {client_of(index_of(p), 10) for p in sample} == {"c0", "c1", "c2"}


def test_latency_stats_by_nearest_rank_with_the_missing_counted() -> None:
    produced = {f"l{i}": 1_000 * MS for i in range(101)}
    seen = {f"l{i}": 1_000 * MS + i * MS for i in range(100)}  # l100 never seen
    stats = latency_stats(produced, seen)
    assert stats == LatencyStats(
        n=100, missing=1, p50_ms=50.0, p99_ms=99.0, max_ms=99.0, mean_ms=49.5
    )
    assert latency_stats({"l0": 5}, {}) == LatencyStats(
        n=0, missing=1, p50_ms=None, p99_ms=None, max_ms=None, mean_ms=None
    )


def test_seen_lines_keep_the_first_time_of_each_id() -> None:
    lines = [
        (0.0, "STATE RUNNING"),
        (0.1, "SEEN l1 100"),
        (0.2, "SEEN l2 200"),
        (0.3, "SEEN l1 300"),
        (0.4, "RESTORED_TOTAL 0"),
    ]
    assert seen_lines(lines) == {"l1": 100, "l2": 200}


# -- the store probe ------------------------------------------------------------------------------


def test_new_elements_are_each_reported_once() -> None:
    known: set[str] = set()
    assert new_elements(["l1", "l2"], known) == ["l1", "l2"]
    assert new_elements(["l1", "l2", "l3"], known) == ["l3"]
    assert new_elements(None, known) == []
    assert known == {"l1", "l2", "l3"}


class FakeApp:
    """``store()`` is not ready twice, then answers from ``values`` (which the test grows)."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {"c0": ["l0"]}
        self.not_ready = 2

    def store(self, name: str) -> Any:
        if self.not_ready:
            self.not_ready -= 1
            raise st.StoreNotReady(name, "not yet")
        return self.values


def test_the_probe_waits_for_the_store_and_says_each_new_element_once() -> None:
    app = FakeApp()
    lines: list[str] = []
    got = [threading.Event(), threading.Event()]

    def say(line: str) -> None:
        lines.append(line)
        got[min(len(lines), 2) - 1].set()

    probe = StoreProbe(app, "us-holders", ["c0", "c1"], say)  # type: ignore[arg-type]
    probe.start()
    try:
        assert got[0].wait(10)
        app.values["c1"] = ["l1"]
        assert got[1].wait(10)
    finally:
        probe.stop()
    assert [line.split()[:2] for line in lines] == [["SEEN", "l0"], ["SEEN", "l1"]]
    assert int(lines[1].split()[2]) >= int(lines[0].split()[2])
    with pytest.raises(ValueError, match="--probe-keys"):
        StoreProbe(app, "s", [], say)  # type: ignore[arg-type]


def test_the_runner_takes_the_probe_flags() -> None:
    base = ["streamtable", "--bootstrap", "b", "--input", "i"]
    args = build_parser().parse_args(base)
    assert args.probe_store is None
    args = build_parser().parse_args([*base, "--probe-store", "s", "--probe-keys", "c0,c1"])
    assert (args.probe_store, args.probe_keys) == ("s", "c0,c1")


# -- the section ----------------------------------------------------------------------------------


def stats(p50: float, p99: float, n: int = 100, missing: int = 0) -> LatencyStats:
    return LatencyStats(n=n, missing=missing, p50_ms=p50, p99_ms=p99, max_ms=p99, mean_ms=p50)


def result(low_rps: float = 30_000.0, low_oracle: str = "correct") -> LatencyResult:
    def run(impl: str, setting: str, out: LatencyStats, store: LatencyStats) -> LatencyRun:
        commit, size = (1000, 10 * 1024 * 1024) if setting == "default" else (100, 0)
        return LatencyRun(
            implementation=impl, setting=setting, commit_interval_ms=commit,
            cache_max_bytes=size, produced=100, achieved_rate_per_s=1000.0, output=out,
            store=store, cpu_s=2.0, exit_code=0,
        )  # fmt: skip

    return LatencyResult(
        guarantee="at_least_once", rate_per_s=1000, duration_s=30, warmup_s=2, clients=1000,
        probe_keys=20, partitions=4, backlog_records=200_000,
        runs=[
            run("streamtable", "default", stats(1000.0, 2000.0), stats(500.0, 1000.0)),
            run("kstreams", "default", stats(2000.0, 4000.0), stats(500.0, 500.0)),
            run("streamtable", "low_latency", stats(200.0, 300.0), stats(150.0, 200.0)),
            LatencyRun(
                implementation="kstreams", setting="low_latency", commit_interval_ms=100,
                cache_max_bytes=0, produced=0, error="RuntimeError('boom')",
            ),
        ],
        throughput=[
            ThroughputRun(
                setting="default", commit_interval_ms=1000, cache_max_bytes=10 * 1024 * 1024,
                elapsed_s=5.0, rps=40_000.0, running_rps=50_000.0, cpu_s=4.0,
                cpu_us_per_record=20.0,
                oracle="correct",
            ),
            ThroughputRun(
                setting="low_latency", commit_interval_ms=100, cache_max_bytes=0,
                elapsed_s=6.0, rps=low_rps, running_rps=low_rps * 1.25, cpu_s=8.0,
                cpu_us_per_record=40.0,
                oracle=low_oracle,
            ),
        ],
    )  # fmt: skip


def test_the_section_has_every_run_the_comparisons_and_the_cost(tmp_path: Path) -> None:
    results = summarize(SETTINGS, [], MACHINE, Extras(latency=result()))
    lines = latency_markdown(results)
    assert lines[0] == HEADING
    assert (
        "| streamtable, default | 1,000 ms | 10 MiB | 1,000 | 1,000.0 / 2,000.0 / 2,000.0 (n=100) "
        "| 500.0 / 1,000.0 / 1,000.0 (n=100) | 2.0 |"
    ) in lines
    assert "| Kafka Streams, low latency | 100 ms | off | failed: RuntimeError('boom') | | | |" in (
        lines
    )
    assert (
        "streamtable over Kafka Streams, default: output: p50 0.50x, p99 0.50x; "
        "store: p50 1.00x, p99 2.00x."
    ) in lines
    assert not any(line.startswith("streamtable over Kafka Streams, low") for line in lines)
    assert "| low latency | 100 ms | off | 30,000 | 37,500 | 8.0 | 40.0 | correct |" in lines
    assert (
        "The low-latency setting runs the backlog at 0.75x the default's records/s once "
        "RUNNING, at 2.00x its CPU per record."
    ) in lines
    assert_round_trip_before_machine(results, tmp_path, HEADING)


def test_a_wrong_throughput_run_has_no_cost_and_a_failure_says_why() -> None:
    wrong = latency_markdown(summarize(SETTINGS, [], MACHINE, Extras(latency=result(1.0, "x"))))
    assert "No throughput cost: a throughput run failed or was wrong." in wrong
    failed = latency_markdown(summarize(SETTINGS, [], MACHINE, Extras(latency=Failure(error="no"))))
    assert failed == [HEADING, "", "The latency part failed: no", ""]
    assert latency_markdown(summarize(SETTINGS, [], MACHINE)) == []


def test_missing_records_are_shown() -> None:
    only = result().model_copy(
        update={"runs": [result().runs[0].model_copy(update={"store": stats(1, 2, 0, 20)})]}
    )
    lines = latency_markdown(summarize(SETTINGS, [], MACHINE, Extras(latency=only)))
    assert any("| n/a (20 missing) |" in line for line in lines)
    assert "No comparison: no setting has figures from both implementations." in lines
    assert (cache(0), cache(10 * 1024 * 1024), cache(1000)) == ("off", "10 MiB", "1,000 B")
