"""W7: memory at 6 and at 48 partitions, with and without streamtable's RocksDB memory budget.

Once per ``make bench``: W1's records (the same generator and settings, ``BENCH_RECORDS``) are
produced to one input topic of each size in :data:`PARTITIONS`; over each, the seed topology
runs at_least_once as W1 does (bench/seed.py: one process, a fresh application id, timed until
the group committed the input, its output checked against the oracle, its peak RSS read before
it is stopped) in each :data:`CONFIGS`: streamtable with the default ``rocksdb_memory_bytes``,
streamtable with ``rocksdb_memory_bytes=None`` (RocksDB's per-store defaults), and Kafka Streams
(bench/reference BenchApp, its default RocksDB configuration). More partitions mean more tasks,
each with its own RocksDB stores: with the budget, peak RSS should hardly move (issue #13's goal:
48 partitions <= 1.3x 6).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import streamtable as st
from bench.datagen import create_topic, produce
from bench.harness import STATE_ROOT, Ctx, Impl, log
from bench.results import MemoryResult, MemoryRun
from bench.seed import run_w1

PARTITIONS = (6, 48)

DEFAULT_BUDGET: int = st.StreamsConfig.model_fields["rocksdb_memory_bytes"].default
"""streamtable's default ``rocksdb_memory_bytes`` (what the budgeted runs use)."""


@dataclasses.dataclass(frozen=True)
class MemoryConfig:
    """One of W7's configurations: an implementation and, for streamtable, its budget."""

    name: str  # as in the results: "budget", "unbounded", "kstreams"
    implementation: str  # "streamtable" or "kstreams"
    rocksdb_memory_bytes: int | None

    def impl(self, kstreams: Impl) -> Impl:
        """How to start this configuration (``kstreams``: the run's Kafka Streams)."""
        if self.implementation == "kstreams":
            return kstreams
        memory = "none" if self.rocksdb_memory_bytes is None else str(self.rocksdb_memory_bytes)
        return Impl("streamtable", extra_flags=("--rocksdb-memory-bytes", memory))


CONFIGS = (
    MemoryConfig("budget", "streamtable", DEFAULT_BUDGET),
    MemoryConfig("unbounded", "streamtable", None),
    MemoryConfig("kstreams", "kstreams", None),
)


def run_w7(ctx: Ctx) -> MemoryResult:
    """Every configuration at every partition count; a failed run is reported, not raised."""
    ctx.expected()  # once, before the clocks start: the same records at every size
    runs: list[MemoryRun] = []
    records = 0
    for partitions in PARTITIONS:
        sized = _input(ctx, partitions)
        records = sized.records
        runs += [_run(sized, config, partitions) for config in CONFIGS]
    result = MemoryResult(records=records, partitions=list(PARTITIONS), runs=runs)
    for config in CONFIGS:
        rss = [result.peak_rss_mb(config.name, p) for p in PARTITIONS]
        log(f"W7 {config.name}: peak RSS (MiB) at {PARTITIONS} partitions: {rss}")
    return result


def _input(ctx: Ctx, partitions: int) -> Ctx:
    """W1's records on a topic of ``partitions`` partitions; ``ctx`` for runs over it."""
    data = dataclasses.replace(ctx.settings.data, partitions=partitions)
    sized = dataclasses.replace(
        ctx,
        settings=dataclasses.replace(ctx.settings, data=data),
        input_topic=f"{ctx.run_id}-w7-p{partitions}-positions",
    )
    create_topic(ctx.offsets.admin, sized.input_topic, partitions)
    log(f"W7: producing {data.records:,} records to {sized.input_topic}")
    sized.records = produce(ctx.bootstrap, sized.input_topic, data)
    return sized


def _run(ctx: Ctx, config: MemoryConfig, partitions: int) -> MemoryRun:
    base = MemoryRun(
        config=config.name,
        implementation=config.implementation,
        rocksdb_memory_bytes=config.rocksdb_memory_bytes,
        partitions=partitions,
    )
    label = f"w7-{config.name}-p{partitions}"
    state_dir = STATE_ROOT / f"{ctx.run_id}-{label}"
    try:
        run, _ = run_w1(ctx, config.impl(ctx.kstreams), "at_least_once", label)
        size = round(disk_bytes(state_dir) / 1024 / 1024, 1)
    except Exception as exc:  # reported as this run's failure; the others still run
        log(f"W7 {label} failed: {exc!r}")
        return base.model_copy(update={"error": repr(exc)})
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    log(f"W7 {label}: peak RSS {run.peak_rss_mb} MiB, state {size} MiB, {run.oracle}")
    return base.model_copy(update={"run": run, "state_dir_mb": size})


def disk_bytes(root: Path) -> int:
    """The bytes of every file under ``root`` (0 when it does not exist)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
