"""The latency part's section of ``bench/RESULTS.md`` (none for results without it).

bench/render.py puts it after W6's section:

    lines = latency_markdown(results)
"""

from __future__ import annotations

from bench.render_peers import fmt
from bench.results import CORRECT, BenchResults, Failure
from bench.results_latency import LatencyResult, LatencyRun, LatencyStats, ThroughputRun
from bench.summary import ratio

HEADING = "## Latency: from produce to visible"
TITLES = {"streamtable": "streamtable", "kstreams": "Kafka Streams"}
SETTINGS = {"default": "default", "low_latency": "low latency"}


def latency_markdown(results: BenchResults) -> list[str]:
    """The heading, the latency and throughput tables (or why there are none), the comparisons
    and how it was measured."""
    lat = None if results.extras is None else results.extras.latency
    if lat is None:
        return []
    lines = [HEADING, ""]
    if isinstance(lat, Failure):
        return [*lines, f"The latency part failed: {lat.error[:200]}", ""]
    return [
        *lines,
        *latency_table(lat),
        "",
        *comparisons(lat),
        "",
        *throughput_table(lat),
        "",
        throughput_cost(lat),
        "",
        definition(lat),
        "",
    ]


def cache(size: int) -> str:
    """``cache_max_bytes`` for a table: off, or its size."""
    if size == 0:
        return "off"
    if size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024):,} MiB"
    return f"{size:,} B"


def _stats(stats: LatencyStats | None) -> str:
    """p50 / p99 / max (ms), and how many were measured (and missing)."""
    if stats is None or stats.n == 0:
        missing = "" if stats is None else f" ({stats.missing:,} missing)"
        return f"n/a{missing}"
    figures = " / ".join(fmt(v, 1) for v in (stats.p50_ms, stats.p99_ms, stats.max_ms))
    missing = f", {stats.missing:,} missing" if stats.missing else ""
    return f"{figures} (n={stats.n:,}{missing})"


def _run_row(run: LatencyRun) -> str:
    name = f"{TITLES.get(run.implementation, run.implementation)}, {SETTINGS[run.setting]}"
    settings = f"{run.commit_interval_ms:,} ms | {cache(run.cache_max_bytes)}"
    if run.error is not None:
        return f"| {name} | {settings} | failed: {run.error[:200].replace('|', '/')} | | | |"
    return (
        f"| {name} | {settings} | {fmt(run.achieved_rate_per_s)} | {_stats(run.output)} "
        f"| {_stats(run.store)} | {fmt(run.cpu_s, 1)} |"
    )


def latency_table(lat: LatencyResult) -> list[str]:
    return [
        f"| {lat.guarantee}, {lat.rate_per_s:,} records/s for {lat.duration_s:,} s "
        "| commit interval | record cache | fed at (records/s) | output topic: p50 / p99 / max "
        "(ms) | `store(...)`: p50 / p99 / max (ms) | app CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(_run_row(run) for run in lat.runs),
    ]


def comparisons(lat: LatencyResult) -> list[str]:
    """streamtable's p50 and p99 over Kafka Streams' in each setting, where both have them."""
    lines = []
    for setting, title in SETTINGS.items():
        st, ks = lat.find("streamtable", setting), lat.find("kstreams", setting)
        if st is None or ks is None:
            continue
        parts = [
            f"{where}: p50 {fmt(ratio(a.p50_ms, b.p50_ms), 2)}x, p99 "
            f"{fmt(ratio(a.p99_ms, b.p99_ms), 2)}x"
            for where, a, b in (("output", st.output, ks.output), ("store", st.store, ks.store))
            if a is not None and b is not None and a.n and b.n
        ]
        if parts:
            lines.append(f"streamtable over Kafka Streams, {title}: {'; '.join(parts)}.")
    return lines or ["No comparison: no setting has figures from both implementations."]


def throughput_table(lat: LatencyResult) -> list[str]:
    lines = [
        f"| streamtable, {lat.backlog_records:,}-record backlog | commit interval "
        "| record cache | records/s | records/s once RUNNING | CPU s | CPU µs per record "
        "| oracle |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in lat.throughput:
        verdict = run.oracle if run.error is None else f"failed: {run.error[:200]}"
        lines.append(
            f"| {SETTINGS[run.setting]} | {run.commit_interval_ms:,} ms "
            f"| {cache(run.cache_max_bytes)} | {fmt(run.rps)} | {fmt(run.running_rps)} "
            f"| {fmt(run.cpu_s, 1)} "
            f"| {fmt(run.cpu_us_per_record, 1)} | {str(verdict).replace('|', '/')} |"
        )
    return lines


def throughput_cost(lat: LatencyResult) -> str:
    """The low-latency setting's records/s and CPU per record over the default's."""
    default, low = lat.throughput_of("default"), lat.throughput_of("low_latency")
    if default is None or low is None or not (_correct(default) and _correct(low)):
        return "No throughput cost: a throughput run failed or was wrong."
    speed = ratio(low.running_rps, default.running_rps)
    cpu = ratio(low.cpu_us_per_record, default.cpu_us_per_record)
    return (
        f"The low-latency setting runs the backlog at {fmt(speed, 2)}x the default's records/s "
        f"once RUNNING, at {fmt(cpu, 2)}x its CPU per record."
    )


def _correct(run: ThroughputRun) -> bool:
    return run.error is None and run.oracle == CORRECT


def definition(lat: LatencyResult) -> str:
    return (
        f"Latency part (`bench/latency.py`, once per `make bench`): W1's seed topology, one "
        f"process per implementation, fed {lat.rate_per_s:,} new US positions per second "
        f"({lat.warmup_s:,} s of warm-up not counted, then {lat.duration_s:,} s) of "
        f"{lat.clients:,} clients on {lat.partitions} partitions, once the app is RUNNING; each "
        "record carries its produce wall-clock time and adds its position id to its client's "
        "list. Output topic: the time a consumer (read_committed) received the first output "
        "record whose list holds the id, minus the produce time, for every record. Store: a "
        f"thread in the app's own process reads the first {lat.probe_keys:,} clients through "
        '`app.store("us-holders").get` (Kafka Streams: `KafkaStreams.store(...)`, interactive '
        "queries) in a loop (1 ms between rounds), for the records of those clients. The "
        "default setting is W1's commit interval and record cache, the same for both; the "
        "low-latency one is a short commit interval with the record cache off "
        "(`commit_interval_ms`, `cache_max_bytes`). The seed topology caches twice: its "
        "source table forwards a change only when its cache is flushed (at a commit), through "
        "the repartition topic to the aggregation, whose cache is flushed to the output at a "
        "later commit; so with the cache on, the store shows an update after up to one commit "
        "interval and the output after up to two (plus the hops between). Throughput: "
        "streamtable over a fresh backlog "
        f"of {lat.backlog_records:,} W1-shaped records in each setting, timed as a W1 run "
        "(from the spawn until the group committed the input, so the clock also waits for the "
        "last commit: up to one commit interval; records/s once RUNNING leaves the start-up "
        "out, and is what the cost compares) and checked against the oracle. The "
        "machine is shared: read the figures as orders of magnitude."
    )
