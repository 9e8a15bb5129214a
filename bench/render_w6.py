"""W6's section of ``bench/RESULTS.md`` (none for results without W6).

bench/render.py puts it after the peers' section:

    lines = w6_markdown(results)
"""

from __future__ import annotations

from bench.render_peers import fmt
from bench.results import CORRECT, BenchResults, Failure
from bench.results_w6 import W6Result, W6Run
from bench.summary import ratio

TITLES = {"streamtable": "streamtable", "kstreams": "Kafka Streams"}


def w6_markdown(results: BenchResults) -> list[str]:
    """The W6 heading, its table (or why there is none), the ratios and how it was measured."""
    w6 = None if results.extras is None else results.extras.w6
    if w6 is None:
        return []
    lines = ["## W6: windowed counts and sums", ""]
    if isinstance(w6, Failure):
        return [*lines, f"W6 failed: {w6.error[:200]}", ""]
    return [*lines, *_table(w6), "", *_ratios(w6), "", _definition(w6), ""]


def _title(w6: W6Result, run: W6Run) -> str:
    if run.implementation == "quixstreams":
        return f"Quix Streams {w6.quixstreams_pin.split('==')[1]}"
    return TITLES.get(run.implementation, run.implementation)


def _table(w6: W6Result) -> list[str]:
    lines = [
        f"| W6, at_least_once, {w6.records:,} trades | records/s | CPU s | CPU µs per record "
        "| peak RSS (MiB) | output records | lines of user code | oracle |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in w6.runs:
        oracle = run.oracle if len(run.oracle) <= 200 else run.oracle[:200] + "..."
        lines.append(
            f"| {_title(w6, run)} | {fmt(run.rps)} | {fmt(run.cpu_s, 1)} "
            f"| {fmt(run.cpu_us_per_record, 1)} | {fmt(run.peak_rss_mb, 1)} "
            f"| {fmt(run.output_records)} | {fmt(run.code_lines)} | {oracle.replace('|', '/')} |"
        )
    return lines


def _ratios(w6: W6Result) -> list[str]:
    """streamtable against each other implementation: records/s and CPU per record."""
    st = w6.find("streamtable")
    if st is None or st.oracle != CORRECT:
        return ["No ratios: streamtable's run was not correct."]
    parts = []
    for run in w6.runs:
        if run is st or run.oracle != CORRECT:
            continue
        speed = ratio(st.rps, run.rps)
        cpu = ratio(st.cpu_us_per_record, run.cpu_us_per_record)
        parts.append(
            f"{_title(w6, run)}: {fmt(speed, 2)}x its records/s at {fmt(cpu, 2)}x its CPU "
            "per record"
        )
    return [f"streamtable against {'; '.join(parts) or 'nothing correct'}."]


def _definition(w6: W6Result) -> str:
    return (
        f"W6 (`bench/w6.py`, once per `make bench`): {w6.records:,} trades of {w6.clients:,} "
        f"clients on {w6.partitions} partitions, keyed by client, spanning {w6.span_s:,.0f} s "
        "of event time, up to 3 s out of order (never later than the 10 s grace). Each "
        "implementation counts and sums them per client in 1-minute tumbling windows and in "
        "5-minute windows hopping by 1 minute, emitting updates (Quix Streams: `.current()`), "
        "at_least_once with W1's commit interval and record cache, one process, timed from "
        "the spawn until its group committed the input; both outputs are then read back (the "
        f"last value per client and window) and compared with the oracle's "
        f"{w6.tumbling_windows:,} tumbling and {w6.hopping_windows:,} hopping windows. "
        "Kafka Streams' and streamtable's record caches merge updates of a window, so they "
        "write fewer output records than Quix Streams, which writes one per update."
    )
