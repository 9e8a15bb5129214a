"""The latency part's typed results (bench/latency.py): produce-to-visible latency per setting
and implementation, and the throughput of each setting on a fixed backlog."""

from __future__ import annotations

from bench.results_model import Model, Num


class LatencyStats(Model):
    """Latencies in milliseconds (p50/p99 by nearest rank, as bench/queries.py's percentiles);
    ``n`` records measured, ``missing`` produced but never seen before the run's deadline. The
    figures are ``null`` when nothing was measured."""

    n: int
    missing: int
    p50_ms: Num | None
    p99_ms: Num | None
    max_ms: Num | None
    mean_ms: Num | None


class LatencyRun(Model):
    """One implementation in one setting, fed at the fixed rate. ``store`` is ``null`` when it
    was not measured; ``error`` says why a run has no figures."""

    implementation: str  # "streamtable" or "kstreams"
    setting: str  # "default" or "low_latency" (bench/latency.py's settings)
    commit_interval_ms: int
    cache_max_bytes: int
    produced: int  # records measured: produced after the warm-up
    achieved_rate_per_s: Num | None = None  # what the producer kept up, measured records only
    output: LatencyStats | None = None
    store: LatencyStats | None = None
    cpu_s: Num | None = None  # the app process's CPU seconds over the whole run
    error: str | None = None
    exit_code: int | None = None


class ThroughputRun(Model):
    """streamtable over the backlog in one setting, as a W1 run (bench/seed.py) measures it."""

    setting: str
    commit_interval_ms: int
    cache_max_bytes: int
    elapsed_s: Num | None = None
    rps: Num | None = None  # records / elapsed_s (from the spawn, as W1)
    running_rps: Num | None = None  # records / the time after the app reached RUNNING
    cpu_s: Num | None = None
    cpu_us_per_record: Num | None = None
    oracle: str | None = None  # "correct" or what is wrong
    error: str | None = None


class LatencyResult(Model):
    """The latency part: its input, every latency run and the throughput runs."""

    guarantee: str
    rate_per_s: int
    duration_s: Num
    warmup_s: Num
    clients: int
    probe_keys: int
    partitions: int
    runs: list[LatencyRun]
    backlog_records: int
    throughput: list[ThroughputRun]

    def find(self, implementation: str, setting: str) -> LatencyRun | None:
        return next(
            (r for r in self.runs if (r.implementation, r.setting) == (implementation, setting)),
            None,
        )

    def throughput_of(self, setting: str) -> ThroughputRun | None:
        return next((r for r in self.throughput if r.setting == setting), None)
