"""W7 (memory at 6 vs 48 partitions): its configurations, its results and its RESULTS.md section."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.datagen import DataSettings
from bench.harness import Impl
from bench.memory import CONFIGS, DEFAULT_BUDGET, disk_bytes
from bench.render import render_markdown
from bench.render_memory import memory_markdown
from bench.results import (
    CORRECT,
    BenchResults,
    Extras,
    Failure,
    Machine,
    MemoryResult,
    MemoryRun,
    W1Run,
)
from bench.runner import build_parser
from bench.settings import Settings, skipped
from bench.summary import summarize

pytestmark = pytest.mark.unit

MACHINE = Machine(
    nproc=2, memory_gib=1.0, cpu_model="x", python="3", java="j", kernel="k", kafka="4.3.1"
)
SETTINGS = Settings(DataSettings(records=20_000), 1, 60.0, 1000, 100, 1024)


def run(config: str, partitions: int, rss: float, oracle: str = CORRECT) -> MemoryRun:
    w1 = W1Run(
        label=f"w7-{config}-p{partitions}",
        app_id="a",
        guarantee="at_least_once",
        elapsed_s=2.0,
        rps=10_000.0,
        startup_to_running_s=1.0,
        peak_rss_mb=rss,
        cpu_s=3.25,
        oracle=oracle,
    )
    budget = DEFAULT_BUDGET if config == "budget" else None
    implementation = "kstreams" if config == "kstreams" else "streamtable"
    return MemoryRun(
        config=config,
        implementation=implementation,
        rocksdb_memory_bytes=budget,
        partitions=partitions,
        run=w1,
        state_dir_mb=12.5,
    )


def with_w7(w7: MemoryResult | Failure) -> BenchResults:
    return summarize(SETTINGS, [], MACHINE, Extras(w7=w7))


def memory_result() -> MemoryResult:
    return MemoryResult(
        records=20_000,
        partitions=[6, 48],
        runs=[
            run("budget", 6, 100.0),
            run("unbounded", 6, 150.0),
            run("kstreams", 6, 400.0),
            run("budget", 48, 120.0),
            run("unbounded", 48, 450.0, oracle="wrong: 1 missing"),
            run("kstreams", 48, 600.0),
        ],
    )


def test_the_table_has_rss_at_each_size_and_their_ratio() -> None:
    lines = memory_markdown(with_w7(memory_result()))
    assert lines[0] == "## W7: memory at more partitions"
    assert (
        "| streamtable, `rocksdb_memory_bytes` = 128 MiB (the default) | 100 | 120 | 1.20 "
        "| 10,000 / 10,000 | 3.2 / 3.2 | 12 / 12 | correct |"
    ) in lines
    unbounded = next(line for line in lines if "rocksdb_memory_bytes=None" in line)
    assert "| 150 | 450 | 3.00 |" in unbounded
    assert unbounded.endswith("| wrong: 1 missing |")  # one wrong run: the row says so
    assert "| Kafka Streams (its default RocksDB configuration) | 400 | 600 | 1.50 |" in "".join(
        lines
    )
    assert "Peak RSS, streamtable (the default) / Kafka Streams: 0.25 at 6, 0.20 at 48." in lines
    assert any("20,000 records" in line and "6 and 48 partitions" in line for line in lines)


def test_a_failed_run_or_a_failed_w7_says_why() -> None:
    result = memory_result()
    failed = MemoryRun(
        config="kstreams",
        implementation="kstreams",
        rocksdb_memory_bytes=None,
        partitions=48,
        error="RuntimeError('not done after 600s')",
    )
    runs = [r for r in result.runs if (r.config, r.partitions) != ("kstreams", 48)] + [failed]
    text = "\n".join(memory_markdown(with_w7(result.model_copy(update={"runs": runs}))))
    assert (
        "| Kafka Streams (its default RocksDB configuration) | failed at 48 partitions: "
        "RuntimeError('not done after 600s') |"
    ) in text
    assert "Kafka Streams: 0.25 at 6, n/a at 48." in text
    lines = memory_markdown(with_w7(Failure(error="boom")))
    assert lines == ["## W7: memory at more partitions", "", "W7 failed: boom", ""]


def test_results_without_w7_have_no_section() -> None:
    results = summarize(SETTINGS, [], MACHINE)
    assert memory_markdown(results) == []
    assert "W7" not in render_markdown(results, "stamp", 1.0)


def test_w7_survives_the_json_and_sits_after_the_peers(tmp_path: Path) -> None:
    results = with_w7(memory_result())
    path = tmp_path / "r.json"
    path.write_text(results.to_json())
    loaded = BenchResults.load(path)
    assert loaded == results
    assert loaded.to_json() == path.read_text()
    text = render_markdown(loaded, "stamp", 1.0)
    assert text.index("## W7") < text.index("## Machine")
    assert loaded.extras is not None
    assert isinstance(loaded.extras.w7, MemoryResult)
    assert loaded.extras.w7.peak_rss_mb("budget", 48) == 120.0
    assert loaded.extras.w7.peak_rss_mb("budget", 12) is None


def test_configs_start_streamtable_with_and_without_the_budget() -> None:
    assert DEFAULT_BUDGET == 128 * 1024 * 1024
    kstreams = Impl("kstreams", "cp")
    argvs = {
        c.name: c.impl(kstreams).argv("b", "a", "i", "o", Path("s"), "g", 1, 2) for c in CONFIGS
    }
    assert argvs["budget"][-2:] == ["--rocksdb-memory-bytes", str(DEFAULT_BUDGET)]
    assert argvs["unbounded"][-2:] == ["--rocksdb-memory-bytes", "none"]
    assert "--rocksdb-memory-bytes" not in argvs["kstreams"]
    assert argvs["kstreams"][0] == "java"


def test_w7_is_skippable_and_the_state_size_is_counted(tmp_path: Path) -> None:
    assert skipped("w7") == frozenset({"w7"})
    assert not Settings(
        DataSettings(records=10), 1, 60.0, 1000, 100, 1024, skip=skipped("w7")
    ).runs("w7")
    assert disk_bytes(tmp_path / "absent") == 0
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_bytes(b"x" * 100)
    (tmp_path / "g").write_bytes(b"y" * 5)
    assert disk_bytes(tmp_path) == 105


def test_the_runner_takes_a_budget_or_none() -> None:
    base = ["streamtable", "--bootstrap", "b", "--input", "i"]
    parse = build_parser().parse_args
    assert parse([*base, "--rocksdb-memory-bytes", "1048576"]).rocksdb_memory_bytes == 1048576
    assert parse([*base, "--rocksdb-memory-bytes", "none"]).rocksdb_memory_bytes is None
    assert "rocksdb_memory_bytes" not in vars(parse(base))  # streamtable's default then
    with pytest.raises(SystemExit):
        parse([*base, "--rocksdb-memory-bytes", "lots"])
