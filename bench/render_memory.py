"""W7's section of ``bench/RESULTS.md`` (none for results without W7).

bench/render.py puts it after the peers' section:

    lines = memory_markdown(results)
"""

from __future__ import annotations

from bench.render_peers import fmt, oracle_of
from bench.results import BenchResults, Failure, MemoryResult, MemoryRun, W1Run
from bench.summary import ratio

TITLES = {
    "budget": "streamtable, `rocksdb_memory_bytes` = {budget} (the default)",
    "unbounded": "streamtable, `rocksdb_memory_bytes=None` (RocksDB's per-store defaults)",
    "kstreams": "Kafka Streams (its default RocksDB configuration)",
}


def memory_markdown(results: BenchResults) -> list[str]:
    """The W7 heading, its table (or why there is none) and how it was measured."""
    w7 = None if results.extras is None else results.extras.w7
    if w7 is None:
        return []
    lines = ["## W7: memory at more partitions", ""]
    if isinstance(w7, Failure):
        return [*lines, f"W7 failed: {w7.error[:200]}", ""]
    return [*lines, *_table(w7), "", _definition(w7), ""]


def _table(w7: MemoryResult) -> list[str]:
    low, high = w7.partitions[0], w7.partitions[-1]
    lines = [
        f"| W7, at_least_once, {w7.records:,} records | peak RSS at {low} partitions (MiB) "
        f"| at {high} (MiB) | {high} / {low} | records/s at {low} / {high} "
        f"| CPU s at {low} / {high} | state on disk at {low} / {high} (MiB) | oracle |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for config in dict.fromkeys(r.config for r in w7.runs):
        lines.append(_row(w7, config, low, high))
    versus = [
        f"{fmt(ratio(w7.peak_rss_mb('budget', p), w7.peak_rss_mb('kstreams', p)), 2)} at {p}"
        for p in dict.fromkeys((low, high))
    ]
    lines += ["", f"Peak RSS, streamtable (the default) / Kafka Streams: {', '.join(versus)}."]
    return lines


def _row(w7: MemoryResult, config: str, low: int, high: int) -> str:
    a, b = w7.find(config, low), w7.find(config, high)
    title = _title(config, a or b)
    failed = [(r.partitions, r.error) for r in (a, b) if r is not None and r.error is not None]
    if failed:
        return f"| {title} | failed at {failed[0][0]} partitions: {failed[0][1][:200]} |"
    ra, rb = _w1(a), _w1(b)
    rss_a, rss_b = w7.peak_rss_mb(config, low), w7.peak_rss_mb(config, high)
    runs = [r for r in (ra, rb) if r is not None]
    return (
        f"| {title} | {fmt(rss_a)} | {fmt(rss_b)} | {fmt(ratio(rss_b, rss_a), 2)} "
        f"| {fmt(ra and ra.rps)} / {fmt(rb and rb.rps)} "
        f"| {fmt(ra and ra.cpu_s, 1)} / {fmt(rb and rb.cpu_s, 1)} "
        f"| {fmt(_mib(a), 0)} / {fmt(_mib(b), 0)} | {oracle_of(runs)[:120]} |"
    )


def _mib(run: MemoryRun | None) -> float | None:
    return None if run is None else run.state_dir_mb


def _w1(run: MemoryRun | None) -> W1Run | None:
    return None if run is None else run.run


def _title(config: str, run: MemoryRun | None) -> str:
    budget = None if run is None else run.rocksdb_memory_bytes
    mib = "n/a" if budget is None else f"{budget / 1024 / 1024:,.0f} MiB"
    return TITLES.get(config, config).format(budget=mib)


def _definition(w7: MemoryResult) -> str:
    sizes = " and ".join(str(p) for p in w7.partitions)
    return (
        f"W7 (`bench/memory.py`, once per `make bench`): W1's {w7.records:,} records (the same "
        f"generator and settings) produced to an input topic of {sizes} partitions; over each, "
        "the seed topology at_least_once as in W1 (one process, a fresh application id, timed "
        "until the group committed the input and the repartition topic, output checked against "
        "the oracle), peak RSS (`VmHWM`) read when done, then the size of its state "
        "directory. More partitions mean more tasks, each with its own RocksDB stores "
        "(streamtable: `positions-store` per input partition and "
        "`us-holders` per repartition partition); the budget is one block cache and write "
        "buffer manager for all of them. The record cache (`cache_max_bytes`) is the same "
        "in every run. Kafka Streams runs with JVM defaults, so its RSS includes the heap the "
        "JVM chose to grow."
    )
