"""The summary: medians over the repeats and their ratios, as ``make bench`` writes them."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.datagen import DataSettings
from bench.results import (
    BenchResults,
    DigestResult,
    Extras,
    Failure,
    HolderReads,
    LocalGets,
    Machine,
    Percentiles,
    QueriesResult,
    RawRun,
    Repeat,
    RestoreRun,
    W1Run,
)
from bench.settings import Settings
from bench.summary import summarize

pytestmark = pytest.mark.unit

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
SETTINGS = Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024)
MACHINE = Machine(
    nproc=2, memory_gib=1.0, cpu_model="x", python="3", java="j", kernel="k", kafka="4"
)


def w1(rps: float, rss: float | None = None, restore: float | None = None) -> W1Run:
    run = W1Run(
        label="l", app_id="a", guarantee="g", elapsed_s=1.0, rps=rps,
        startup_to_running_s=None, peak_rss_mb=rss,
    )  # fmt: skip
    if restore is None:
        return run
    restored = RestoreRun(
        restored_records=7, elapsed_s=2.0, restore_phase_s=1.0, rps=restore, peak_rss_mb=None
    )
    return run.model_copy(update={"restore": restored})


def repeat(scale: float = 1.0) -> Repeat:
    return Repeat(
        raw=RawRun(elapsed_s=1.0, rps=100.0 * scale, records_read=10, in_process_s=0.5),
        st_alos=w1(10.0 * scale, rss=100.0, restore=50.0),
        ks_alos=w1(20.0 * scale, rss=400.0, restore=100.0),
        st_eos=w1(8.0 * scale),
        ks_eos=w1(10.0 * scale),
    )


@pytest.mark.parametrize(
    "name",
    # every results file written since the multi-process run and the CPU figures were added
    ["latest.json", "20261130T234616Z.json", "20261201T022851Z.json", "20261202T073530Z.json"],
)
def test_summarizing_a_files_runs_again_gives_the_same_file(name: str) -> None:
    results = BenchResults.load(RESULTS / name)
    settings = Settings(
        data=results.settings.data,
        repeats=results.repeats,
        timeout_s=600.0,
        commit_ms_alos=results.settings.commit_interval_ms.at_least_once,
        commit_ms_eos=results.settings.commit_interval_ms.exactly_once_v2,
        cache_bytes=results.settings.cache_max_bytes,
        processes=results.w1.streamtable_alos_processes or 1,
    )
    again = summarize(
        settings,
        results.runs,
        results.machine,
        results.extras,
        generated_at=results.generated_at,
        wall_time_s=results.wall_time_s,
    )
    if results.peers is not None:  # measured once, attached by bench/run.py as here
        again = again.model_copy(update={"peers": results.peers})
    assert again.to_json() == (RESULTS / name).read_text()


def test_medians_and_ratios_and_nulls_for_skipped_extras() -> None:
    summary = summarize(SETTINGS, [repeat(), repeat(), repeat(3.0)], MACHINE)
    assert summary.records == 10
    assert summary.repeats == 3
    assert summary.w1.streamtable_alos_rps == 10.0
    assert summary.w1.streamtable_alos_processes is None  # one process: no such run
    assert summary.ratios.w1_alos_streamtable_over_kstreams == 0.5
    assert summary.ratios.w4_rss_streamtable_over_kstreams == 0.25
    assert summary.w2.streamtable_restored_records == 7
    assert summary.ratios.w2_restore_streamtable_over_kstreams == 0.5
    assert summary.ratios.w1_alos_cpu_streamtable_over_kstreams is None  # no CPU measured
    assert summary.w3.local_get_p99_ms is None
    assert summary.w3.skipped == "BENCH_SKIP"
    assert summary.w5.jobs_per_s is None
    assert summary.w5.skipped == "BENCH_SKIP"


def test_w3_and_w5_figures_reach_the_summary() -> None:
    extras = Extras(
        w3=QueriesResult(
            keys=100000,
            local_get=LocalGets(
                local_keys=5, missing=0, p50_ms=0.02, p99_ms=0.05, mean_ms=0.03, n=20000
            ),
            routed_get=Percentiles(p50_ms=1.5, p99_ms=4.0, mean_ms=2.0, n=2000),
            scan_s=3.25,
            scan_keys=100000,
            scan_pages=10,
            scan_s_by_limit={"10000": 3.25, "1000": 7.5},
        ),
        w5=DigestResult(
            clients=5,
            positions=25,
            input_records=40,
            jobs=9000,
            jobs_reported=9000,
            emails=9000,
            jobs_s=1.8,
            emails_s=30.0,
            jobs_per_s=5000.0,
            emails_per_s=300.0,
        ),
    )
    summary = summarize(SETTINGS, [], MACHINE, extras)
    assert summary.w3.local_get_p50_ms == 0.02
    assert summary.w3.routed_get_p99_ms == 4.0
    assert summary.w3.scan_100k_s == 3.25
    assert summary.w3.scan_keys == 100000
    assert summary.w5.jobs_per_s == 5000.0
    assert summary.w5.emails_per_s == 300.0
    assert summary.w5.jobs == 9000
    assert summary.w3.skipped is None
    assert '"skipped"' not in summary.to_json()


def test_a_failed_extra_is_reported_not_raised() -> None:
    summary = summarize(SETTINGS, [], MACHINE, Extras(w5=Failure(error="boom")))
    assert summary.w5.error == "boom"
    assert summary.w5.jobs_per_s is None
    assert summary.w3.skipped == "BENCH_SKIP"


def test_a_fresh_summary_has_every_key_of_the_latest_results() -> None:
    """A figure the summary forgets to set would silently vanish from the JSON."""
    latest = BenchResults.load(RESULTS / "20261201T022851Z.json").model_dump(exclude_unset=True)
    fresh = summarize(
        Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024, processes=2),
        [repeat().model_copy(update={"st_alos_procs": w1(30.0)})],
        MACHINE,
    ).model_dump(exclude_unset=True)
    for section in ("machine", "settings", "w1", "w2", "w3", "w4", "w5", "ratios"):
        assert list(fresh[section]) == list(latest[section]), section
    assert list(fresh) == list(latest)
    assert list(fresh["runs"][0]) == list(latest["runs"][0])


def digest(**reads: HolderReads) -> DigestResult:
    return DigestResult(
        clients=5, positions=25, input_records=40, jobs=9, jobs_reported=9, emails=9,
        jobs_s=1.8, emails_s=30.0, jobs_per_s=5.0, emails_per_s=0.3, **reads,
    )  # fmt: skip


def test_w5_reads_reach_the_summary_only_when_measured() -> None:
    idle = HolderReads(n=300, p50_ms=2.5, p99_ms=9.0, max_ms=12.0, non_200=0)
    during = HolderReads(n=40, p50_ms=3, p99_ms=50.0, max_ms=60.5, non_200=1)
    summary = summarize(
        SETTINGS, [], MACHINE, Extras(w5=digest(reads_idle=idle, reads_during_digest=during))
    )
    assert summary.w5.reads_idle == idle
    assert summary.w5.reads_during_digest == during
    written = summary.to_json()
    assert '"p50_ms": 3,' in written  # an int stays an int
    assert BenchResults.model_validate_json(written).to_json() == written
    earlier = summarize(SETTINGS, [], MACHINE, Extras(w5=digest())).to_json()
    assert "reads_idle" not in earlier
    assert "reads_during_digest" not in earlier
