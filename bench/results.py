"""The typed results of ``make bench``: what each run measured and the summary, as JSON.

``BenchResults.load(path)`` reads a file under ``bench/results/`` and ``results.to_json()`` writes
the same JSON back: fields are declared in the order they are written, and a field that a file
does not have (older results lack later figures, e.g. ``machine.kafka`` or a run's ``cpu_s``) is
left out again on the way back (``exclude_unset``), while a figure that was measured as missing is
``null``. Figures are ``int | float`` as measured, so ``5`` stays ``5`` and ``5.0`` stays ``5.0``.

    results = BenchResults.load(Path("bench/results/latest.json"))
    assert results.to_json() == Path("bench/results/latest.json").read_text()
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.datagen import DataSettings
from bench.results_latency import LatencyResult
from bench.results_model import Model as Model
from bench.results_model import Num as Num
from bench.results_w6 import W6Result

SKIPPED = "BENCH_SKIP"
"""The ``skipped`` value of a W3/W5 summary that ``BENCH_SKIP`` left out."""


# -- one repeat's measurements --------------------------------------------------------------------


class RawRun(Model):
    """The raw confluent-kafka consumer reading the whole input (the ceiling)."""

    elapsed_s: Num
    rps: Num
    records_read: int
    in_process_s: Num


class RestoreRun(Model):
    """W2: a W1 run restarted with its state directory wiped, until RUNNING."""

    restored_records: int
    elapsed_s: Num
    restore_phase_s: Num | None
    rps: Num | None
    peak_rss_mb: Num | None
    exit_code: int | None = None


class W1Run(Model):
    """W1 (and W4's RSS): one implementation from empty state until the input is committed."""

    label: str
    app_id: str
    guarantee: str
    processes: int = 1
    elapsed_s: Num
    rps: Num
    startup_to_running_s: Num | None
    peak_rss_mb: Num | None
    cpu_s: Num | None = None
    broker_cpu_s: Num | None = None
    exit_code: int | None = None
    restore: RestoreRun | None = None
    oracle: str | None = None  # "correct" or what is wrong; not checked by the earlier results


class Repeat(Model):
    """One repeat of the W1 runs (and their W2 restarts)."""

    raw: RawRun
    st_alos: W1Run
    ks_alos: W1Run
    st_eos: W1Run
    ks_eos: W1Run
    st_alos_procs: W1Run | None = None


# -- the extras (W3, W5): one measurement each ----------------------------------------------------


class Failure(Model):
    """An extra that failed: the run goes on and reports the error."""

    error: str


class Percentiles(Model):
    p50_ms: Num
    p99_ms: Num
    mean_ms: Num
    n: int


class LocalGets(Model):
    """Percentiles of ``app.store(...).get`` in the instance's own process."""

    local_keys: int
    missing: int
    p50_ms: Num
    p99_ms: Num
    mean_ms: Num
    n: int


class QueriesResult(Model):
    """W3 (bench/queries.py)."""

    keys: int
    local_get: LocalGets
    routed_get: Percentiles
    scan_s: Num
    scan_keys: int
    scan_pages: int
    scan_s_by_limit: dict[str, Num] | None = None


class HolderReads(Model):
    """W5: ``GET /holders/{client}`` in one phase, one request at a time (bench/holder_reads.py):
    every request counts, ``non_200`` those not answered 200 (or not answered at all); the
    figures are ``null`` when the phase had no request."""

    n: int
    p50_ms: Num | None
    p99_ms: Num | None
    max_ms: Num | None
    non_200: int


class DigestResult(Model):
    """W5 (bench/digest.py)."""

    clients: int
    positions: int
    input_records: int
    jobs: int
    jobs_reported: int
    emails: int
    jobs_s: Num
    emails_s: Num
    jobs_per_s: Num
    emails_per_s: Num
    reads_idle: HolderReads | None = None  # not measured by the earlier results
    reads_during_digest: HolderReads | None = None  # the same


class MemoryRun(Model):
    """W7: one W1 at_least_once run over an input of ``partitions`` partitions; ``run`` is
    ``None`` and ``error`` says why when it failed. ``rocksdb_memory_bytes`` is streamtable's
    budget (``None``: RocksDB's per-store defaults; Kafka Streams: its defaults)."""

    config: str  # "budget", "unbounded" or "kstreams" (bench/memory.py's CONFIGS)
    implementation: str
    rocksdb_memory_bytes: int | None
    partitions: int
    run: W1Run | None = None
    state_dir_mb: Num | None = None  # the state directory's size on disk when done
    error: str | None = None


class MemoryResult(Model):
    """W7 (bench/memory.py): the same records at each partition count, in each configuration."""

    records: int
    partitions: list[int]
    runs: list[MemoryRun]

    def find(self, config: str, partitions: int) -> MemoryRun | None:
        return next(
            (r for r in self.runs if (r.config, r.partitions) == (config, partitions)), None
        )

    def peak_rss_mb(self, config: str, partitions: int) -> Num | None:
        found = self.find(config, partitions)
        return None if found is None or found.run is None else found.run.peak_rss_mb


class Extras(Model):
    """W3, W5, W6, W7 and the latency part as measured; ``None`` when ``BENCH_SKIP`` left them
    out."""

    w3: QueriesResult | Failure | None = None
    w5: DigestResult | Failure | None = None
    w7: MemoryResult | Failure | None = None  # not measured before W7 existed (issue #13)
    w6: W6Result | Failure | None = None  # not measured before W6 existed (issue #12)
    latency: LatencyResult | Failure | None = None  # not measured before it existed (issue #13)


# -- the Python peers: once per run, on W1's input ----------------------------------------------


CORRECT = "correct"
"""The ``verdict`` of a peer (and ``oracle`` of a W1 run) whose output matched the oracle."""


class PeerRun(Model):
    """The seed topology in one Python peer (bench/peer_run.py), checked against the oracle.

    ``verdict`` is :data:`CORRECT`, ``"wrong: <what differs>"`` or ``"failed: <why>"``; the
    figures are ``null`` unless it is correct (a wrong or failed peer is never a number).
    """

    peer: str
    pins: list[str]
    completion: str
    records: int
    code_lines: int
    verdict: str
    elapsed_s: Num | None = None
    rps: Num | None = None
    cpu_s: Num | None = None
    cpu_s_per_million: Num | None = None
    peak_rss_mb: Num | None = None
    exit_code: int | None = None


class PeersResult(Model):
    """Every peer's run, with the size of streamtable's own seed topology to compare."""

    records: int
    streamtable_code_lines: int
    runs: list[PeerRun]


# -- the summary ----------------------------------------------------------------------------------


class Machine(Model):
    nproc: int | None
    memory_gib: Num | None
    cpu_model: str
    python: str
    java: str
    kernel: str
    kafka: str | None = None  # not recorded before 2026-11-30


class CommitIntervals(Model):
    at_least_once: int
    exactly_once_v2: int


class RunSettings(Model):
    data: DataSettings
    commit_interval_ms: CommitIntervals
    cache_max_bytes: int
    threads: int
    kstreams_jvm_flags: str


class W1Summary(Model):
    """Medians over the repeats (records/s, CPU seconds)."""

    streamtable_alos_rps: Num | None = None
    streamtable_eos_rps: Num | None = None
    kstreams_alos_rps: Num | None = None
    kstreams_eos_rps: Num | None = None
    raw_consumer_rps: Num | None = None
    streamtable_alos_processes: int | None = None
    streamtable_alos_processes_rps: Num | None = None
    streamtable_alos_cpu_s: Num | None = None
    streamtable_eos_cpu_s: Num | None = None
    kstreams_alos_cpu_s: Num | None = None
    kstreams_eos_cpu_s: Num | None = None
    broker_cpu_s_during_streamtable_alos: Num | None = None
    broker_cpu_s_during_streamtable_eos: Num | None = None
    broker_cpu_s_during_kstreams_alos: Num | None = None
    broker_cpu_s_during_kstreams_eos: Num | None = None


class W2Summary(Model):
    streamtable_restore_rps: Num | None = None
    kstreams_restore_rps: Num | None = None
    streamtable_restored_records: Num | None = None
    kstreams_restored_records: Num | None = None
    streamtable_time_to_running_s: Num | None = None
    kstreams_time_to_running_s: Num | None = None


class W3Summary(Model):
    local_get_p50_ms: Num | None = None
    local_get_p99_ms: Num | None = None
    routed_get_p50_ms: Num | None = None
    routed_get_p99_ms: Num | None = None
    scan_100k_s: Num | None = None
    scan_100k_s_by_page_limit: dict[str, Num] | None = None
    scan_keys: int | None = None
    local_gets: int | None = None
    routed_gets: int | None = None
    kstreams: str | None = None  # what Kafka Streams offers instead
    pending: str | None = None  # the first results, before W3 existed
    skipped: str | None = None
    error: str | None = None


class W4Summary(Model):
    streamtable_rss_mb: Num | None = None
    kstreams_rss_mb: Num | None = None
    streamtable_eos_rss_mb: Num | None = None
    kstreams_eos_rss_mb: Num | None = None


class W5Summary(Model):
    jobs_per_s: Num | None = None
    emails_per_s: Num | None = None
    jobs: int | None = None
    emails: int | None = None
    jobs_s: Num | None = None
    emails_s: Num | None = None
    clients: int | None = None
    positions: int | None = None
    reads_idle: HolderReads | None = None  # only when measured (not by the earlier results)
    reads_during_digest: HolderReads | None = None  # the same
    kstreams: str | None = None  # what Kafka Streams offers instead
    pending: str | None = None  # the first results, before W5 existed
    skipped: str | None = None
    error: str | None = None


class Ratios(Model):
    """streamtable over Kafka Streams (or over the raw consumer, or EOS over ALOS)."""

    w1_alos_streamtable_over_kstreams: Num | None = None
    w1_eos_streamtable_over_kstreams: Num | None = None
    w1_streamtable_alos_over_raw: Num | None = None
    w1_streamtable_eos_over_raw: Num | None = None
    w1_kstreams_alos_over_raw: Num | None = None
    w1_streamtable_alos_processes_over_raw: Num | None = None
    w1_streamtable_alos_processes_over_kstreams: Num | None = None
    w1_streamtable_eos_over_alos: Num | None = None
    w1_kstreams_eos_over_alos: Num | None = None
    w2_restore_streamtable_over_kstreams: Num | None = None
    w2_time_to_running_streamtable_over_kstreams: Num | None = None
    w4_rss_streamtable_over_kstreams: Num | None = None
    w1_alos_cpu_streamtable_over_kstreams: Num | None = None
    w1_eos_cpu_streamtable_over_kstreams: Num | None = None


class BenchResults(Model):
    """One ``make bench``: the summary first, then every repeat's runs and the extras."""

    records: int
    repeats: int
    machine: Machine
    settings: RunSettings
    w1: W1Summary
    w2: W2Summary
    w3: W3Summary
    w4: W4Summary
    w5: W5Summary
    ratios: Ratios
    generated_at: str
    wall_time_s: Num
    runs: list[Repeat]
    extras: Extras | None = None  # not recorded by the first results
    peers: PeersResult | None = None  # not recorded before the peers joined (issue #13)

    @classmethod
    def load(cls, path: Path) -> BenchResults:
        """A results file; a clear error naming the file if it is not one."""
        try:
            return cls.model_validate_json(path.read_text())
        except ValueError as exc:  # pydantic's ValidationError and bad JSON alike
            raise ValueError(f"{path}: not a bench results file: {exc}") from exc

    def to_json(self) -> str:
        """The JSON written to ``bench/results/`` (two-space indent, a final newline)."""
        return json.dumps(self.model_dump(mode="json", exclude_unset=True), indent=2) + "\n"
