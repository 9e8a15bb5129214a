"""From the repeats' measurements to the summary: medians over the repeats, and their ratios."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import TypeVar

from bench.results import (
    SKIPPED,
    BenchResults,
    CommitIntervals,
    DigestResult,
    Extras,
    Failure,
    Machine,
    Num,
    QueriesResult,
    Ratios,
    Repeat,
    RunSettings,
    W1Summary,
    W2Summary,
    W3Summary,
    W4Summary,
    W5Summary,
)
from bench.settings import Settings

T = TypeVar("T")

W3_KSTREAMS = "none: Kafka Streams has no built-in HTTP query server"
W5_KSTREAMS = "none: the digest service exists only on streamtable"


def median(values: Sequence[Num | None]) -> Num | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def ratio(a: Num | None, b: Num | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summarize(
    settings: Settings,
    runs: list[Repeat],
    machine: Machine,
    extras: Extras | None = None,
    *,
    generated_at: str = "",
    wall_time_s: Num = 0.0,
) -> BenchResults:
    """The results of one ``make bench``: medians of ``runs``, ``extras`` as measured."""
    extras = extras or Extras()
    w1, w2, w4 = w1_summary(settings, runs), w2_summary(runs), w4_summary(runs)
    return BenchResults(
        records=settings.data.records,
        repeats=len(runs),
        machine=machine,
        settings=RunSettings(
            data=settings.data,
            commit_interval_ms=CommitIntervals(
                at_least_once=settings.commit_ms_alos, exactly_once_v2=settings.commit_ms_eos
            ),
            cache_max_bytes=settings.cache_bytes,
            threads=1,
            kstreams_jvm_flags="none (JVM defaults)",
        ),
        w1=w1,
        w2=w2,
        w3=w3_summary(extras.w3),
        w4=w4,
        w5=w5_summary(extras.w5),
        ratios=ratios(w1, w2, w4),
        generated_at=generated_at,
        wall_time_s=wall_time_s,
        runs=runs,
        extras=extras,
    )


def _median(items: Sequence[T | None], figure: Callable[[T], Num | None]) -> Num | None:
    """The median of ``figure`` over ``items`` that were measured (not ``None``)."""
    return median([None if item is None else figure(item) for item in items])


def w1_summary(settings: Settings, runs: list[Repeat]) -> W1Summary:
    st_alos, st_eos = [r.st_alos for r in runs], [r.st_eos for r in runs]
    ks_alos, ks_eos = [r.ks_alos for r in runs], [r.ks_eos for r in runs]
    return W1Summary(
        streamtable_alos_rps=_median(st_alos, lambda r: r.rps),
        streamtable_eos_rps=_median(st_eos, lambda r: r.rps),
        kstreams_alos_rps=_median(ks_alos, lambda r: r.rps),
        kstreams_eos_rps=_median(ks_eos, lambda r: r.rps),
        raw_consumer_rps=_median([r.raw for r in runs], lambda r: r.rps),
        streamtable_alos_processes=settings.processes if settings.processes > 1 else None,
        streamtable_alos_processes_rps=_median([r.st_alos_procs for r in runs], lambda r: r.rps),
        streamtable_alos_cpu_s=_median(st_alos, lambda r: r.cpu_s),
        streamtable_eos_cpu_s=_median(st_eos, lambda r: r.cpu_s),
        kstreams_alos_cpu_s=_median(ks_alos, lambda r: r.cpu_s),
        kstreams_eos_cpu_s=_median(ks_eos, lambda r: r.cpu_s),
        broker_cpu_s_during_streamtable_alos=_median(st_alos, lambda r: r.broker_cpu_s),
        broker_cpu_s_during_streamtable_eos=_median(st_eos, lambda r: r.broker_cpu_s),
        broker_cpu_s_during_kstreams_alos=_median(ks_alos, lambda r: r.broker_cpu_s),
        broker_cpu_s_during_kstreams_eos=_median(ks_eos, lambda r: r.broker_cpu_s),
    )


def w2_summary(runs: list[Repeat]) -> W2Summary:
    st = [r.st_alos.restore for r in runs]
    ks = [r.ks_alos.restore for r in runs]
    return W2Summary(
        streamtable_restore_rps=_median(st, lambda r: r.rps),
        kstreams_restore_rps=_median(ks, lambda r: r.rps),
        streamtable_restored_records=_median(st, lambda r: r.restored_records),
        kstreams_restored_records=_median(ks, lambda r: r.restored_records),
        streamtable_time_to_running_s=_median(st, lambda r: r.elapsed_s),
        kstreams_time_to_running_s=_median(ks, lambda r: r.elapsed_s),
    )


def w4_summary(runs: list[Repeat]) -> W4Summary:
    return W4Summary(
        streamtable_rss_mb=_median([r.st_alos for r in runs], lambda r: r.peak_rss_mb),
        kstreams_rss_mb=_median([r.ks_alos for r in runs], lambda r: r.peak_rss_mb),
        streamtable_eos_rss_mb=_median([r.st_eos for r in runs], lambda r: r.peak_rss_mb),
        kstreams_eos_rss_mb=_median([r.ks_eos for r in runs], lambda r: r.peak_rss_mb),
    )


def w3_summary(measured: QueriesResult | Failure | None) -> W3Summary:
    """W3's figures; ``skipped`` when ``BENCH_SKIP`` left it out (``None``), ``error`` when it
    failed (then every figure is ``null``)."""
    if not isinstance(measured, QueriesResult):
        return W3Summary.model_validate({**_NO_W3, "kstreams": W3_KSTREAMS, **_outcome(measured)})
    return W3Summary(
        local_get_p50_ms=measured.local_get.p50_ms,
        local_get_p99_ms=measured.local_get.p99_ms,
        routed_get_p50_ms=measured.routed_get.p50_ms,
        routed_get_p99_ms=measured.routed_get.p99_ms,
        scan_100k_s=measured.scan_s,
        scan_100k_s_by_page_limit=measured.scan_s_by_limit,
        scan_keys=measured.scan_keys,
        local_gets=measured.local_get.n,
        routed_gets=measured.routed_get.n,
        kstreams=W3_KSTREAMS,
    )


def w5_summary(measured: DigestResult | Failure | None) -> W5Summary:
    """W5's figures; ``skipped`` when ``BENCH_SKIP`` left it out (``None``), ``error`` when it
    failed (then every figure is ``null``)."""
    if not isinstance(measured, DigestResult):
        return W5Summary.model_validate({**_NO_W5, "kstreams": W5_KSTREAMS, **_outcome(measured)})
    # the reads only when measured: a summary of earlier results stays as it was written
    reads = measured.model_dump(include={"reads_idle", "reads_during_digest"}, exclude_unset=True)
    return W5Summary.model_validate(
        {
            "jobs_per_s": measured.jobs_per_s,
            "emails_per_s": measured.emails_per_s,
            "jobs": measured.jobs,
            "emails": measured.emails,
            "jobs_s": measured.jobs_s,
            "emails_s": measured.emails_s,
            "clients": measured.clients,
            "positions": measured.positions,
            **reads,
            "kstreams": W5_KSTREAMS,
        }
    )


# A W3/W5 that did not run or failed: every figure null (written out, as the summary always was).
_NO_W3: dict[str, None] = dict.fromkeys(
    ["local_get_p50_ms", "local_get_p99_ms", "routed_get_p50_ms", "routed_get_p99_ms",
     "scan_100k_s", "scan_100k_s_by_page_limit", "scan_keys", "local_gets", "routed_gets"]
)  # fmt: skip
_NO_W5: dict[str, None] = dict.fromkeys(
    ["jobs_per_s", "emails_per_s", "jobs", "emails", "jobs_s", "emails_s", "clients", "positions"]
)


def _outcome(measured: Failure | object) -> dict[str, str]:
    if measured is None:
        return {"skipped": SKIPPED}
    if isinstance(measured, Failure):
        return {"error": measured.error}
    return {}


def ratios(w1: W1Summary, w2: W2Summary, w4: W4Summary) -> Ratios:
    return Ratios(
        w1_alos_streamtable_over_kstreams=ratio(w1.streamtable_alos_rps, w1.kstreams_alos_rps),
        w1_eos_streamtable_over_kstreams=ratio(w1.streamtable_eos_rps, w1.kstreams_eos_rps),
        w1_streamtable_alos_over_raw=ratio(w1.streamtable_alos_rps, w1.raw_consumer_rps),
        w1_streamtable_eos_over_raw=ratio(w1.streamtable_eos_rps, w1.raw_consumer_rps),
        w1_kstreams_alos_over_raw=ratio(w1.kstreams_alos_rps, w1.raw_consumer_rps),
        w1_streamtable_alos_processes_over_raw=ratio(
            w1.streamtable_alos_processes_rps, w1.raw_consumer_rps
        ),
        w1_streamtable_alos_processes_over_kstreams=ratio(
            w1.streamtable_alos_processes_rps, w1.kstreams_alos_rps
        ),
        w1_streamtable_eos_over_alos=ratio(w1.streamtable_eos_rps, w1.streamtable_alos_rps),
        w1_kstreams_eos_over_alos=ratio(w1.kstreams_eos_rps, w1.kstreams_alos_rps),
        w2_restore_streamtable_over_kstreams=ratio(
            w2.streamtable_restore_rps, w2.kstreams_restore_rps
        ),
        w2_time_to_running_streamtable_over_kstreams=ratio(
            w2.streamtable_time_to_running_s, w2.kstreams_time_to_running_s
        ),
        w4_rss_streamtable_over_kstreams=ratio(w4.streamtable_rss_mb, w4.kstreams_rss_mb),
        w1_alos_cpu_streamtable_over_kstreams=ratio(
            w1.streamtable_alos_cpu_s, w1.kstreams_alos_cpu_s
        ),
        w1_eos_cpu_streamtable_over_kstreams=ratio(w1.streamtable_eos_cpu_s, w1.kstreams_eos_cpu_s),
    )
