"""``make bench``: streamtable vs. Kafka Streams vs. a raw consumer on one broker, in one run.

Writes ``bench/results/<UTC timestamp>.json``, ``bench/results/latest.json`` and
``bench/RESULTS.md``. Progress goes to stderr; each child process's stderr goes to
``.cache/bench-logs/<UTC timestamp>/``. See bench/RESULTS.md for the definitions.

The parts: ``harness`` (the broker, child processes, offsets), one module per workload (``seed``:
W1 and W4, ``restore``: W2, ``raw``: the raw consumer, ``queries``: W3, ``digest``: W5,
``w6``: W6, ``memory``: W7, ``latency``: produce-to-visible latency),
``results`` (the typed JSON), ``summary`` (medians and ratios) and ``render`` (RESULTS.md).

Environment: ``BENCH_RECORDS`` (input records, default 1,000,000), ``BENCH_REPEATS`` (runs per
figure, the median is reported; default 1: one repeat of everything at 1,000,000 records takes
about 6-7 minutes on the 2-core development machine, two would not fit in 10 minutes),
``BENCH_POSITIONS``, ``BENCH_CLIENTS``, ``BENCH_PARTITIONS``, ``BENCH_TIMEOUT_S`` (per workload
run, default 600),
``BENCH_COMMIT_MS_ALOS`` / ``BENCH_COMMIT_MS_EOS`` (1000 / 100), ``BENCH_CACHE_BYTES`` (10 MiB),
``KAFKA_BOOTSTRAP_SERVERS`` (use that cluster instead of starting kafka-local on port
``BENCH_KAFKA_PORT``, default 19192, home ``BENCH_KAFKA_HOME``, default ``.cache/bench-kafka``),
``BENCH_SKIP`` (workloads to leave out, comma-separated: ``w1`` (with it the raw consumer, W2 and
W4), ``w2``, ``w3``, ``w5``, ``w6`` (windowed counts and sums: streamtable, Kafka Streams and
Quix Streams; ``BENCH_W6_RECORDS``, default 1,000,000, ``BENCH_W6_CLIENTS``, 5,000), ``w7``
(memory at 6 and 48 partitions: six more W1-sized runs), ``latency`` (produce-to-visible
latency at a fixed rate, streamtable and Kafka Streams, W1's settings and a low-latency one, and
that one's throughput cost; ``BENCH_LATENCY_RATE`` (records/s, default 1,000),
``BENCH_LATENCY_SECONDS`` (30), ``BENCH_LATENCY_WARMUP_SECONDS`` (2), ``BENCH_LATENCY_CLIENTS``
(1,000), ``BENCH_LATENCY_PROBE_KEYS`` (20), ``BENCH_LATENCY_BACKLOG`` (200,000),
``BENCH_LATENCY_GUARANTEE`` (at_least_once), ``BENCH_LATENCY_LOW_COMMIT_MS`` (100),
``BENCH_LATENCY_LOW_CACHE_BYTES`` (0); see bench/latency.py),
``peers``), ``BENCH_PEERS`` (the Python peers to run on W1's input once, after the repeats,
comma-separated: ``quixstreams``, ``bytewax``, ``pathway``, ``faust``; default all; each in its
virtualenv under ``.cache/bench-venvs/``, created on first use; see bench/peer_run.py),
``BENCH_W3_KEYS`` (100,000), ``BENCH_W5_CLIENTS`` / ``BENCH_W5_POSITIONS`` (5,000 / 25,000),
``BENCH_PROCESSES`` (the extra W1 at_least_once run with that many streamtable processes of one
application; default: the number of CPUs; 1 leaves the run out).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from contextlib import suppress
from datetime import UTC, datetime

from bench.datagen import create_topic, produce
from bench.digest import run_w5
from bench.harness import (
    BENCH,
    REFERENCE,
    REPO,
    RESULTS,
    STATE_ROOT,
    Ctx,
    Impl,
    Offsets,
    broker,
    guarded,
    log,
    machine,
)
from bench.latency import run_latency
from bench.memory import run_w7
from bench.peer_run import run_peers
from bench.queries import run_w3
from bench.raw import run_raw
from bench.render import render_markdown
from bench.restore import run_w2
from bench.results import BenchResults, Extras, PeersResult, Repeat, W1Run
from bench.seed import Restart, run_w1
from bench.settings import Settings
from bench.summary import summarize
from bench.w6 import run_w6


def main() -> int:
    wall_start = time.monotonic()
    settings = Settings.from_env()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"bench-{stamp.lower()}"
    logs = REPO / ".cache" / "bench-logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    log(
        f"records={settings.data.records:,} repeats={settings.repeats} "
        f"skip={','.join(sorted(settings.skip)) or '-'}; child logs in {logs}"
    )
    java = any(settings.runs(w) for w in ("w1", "w6", "w7", "latency"))
    classpath = build_reference() if java else ""
    mach = machine()
    with broker() as (bootstrap, broker_pid):
        offsets = Offsets(bootstrap)
        try:
            ctx = Ctx(
                settings=settings,
                bootstrap=bootstrap,
                offsets=offsets,
                run_id=run_id,
                input_topic=f"{run_id}-positions",
                records=0,
                logs=logs,
                kstreams=Impl("kstreams", classpath),
                broker_pid=broker_pid,
            )
            runs, extras, peers = run_workloads(ctx)
        finally:
            log("deleting this run's topics")
            with suppress(Exception):
                offsets.delete_with_prefix(run_id)
            offsets.close()
            for path in STATE_ROOT.glob(f"{run_id}-*"):
                shutil.rmtree(path, ignore_errors=True)
    wall_s = time.monotonic() - wall_start
    results = summarize(
        settings, runs, mach, extras, generated_at=stamp, wall_time_s=round(wall_s, 1)
    )
    if peers is not None:
        results = results.model_copy(update={"peers": peers})
    write_results(results, settings, wall_s)
    return 0


def build_reference() -> str:
    """Build the Kafka Streams reference; the Java classpath to run it with."""
    log("building the Kafka Streams reference (bench/reference/build.sh)")
    subprocess.run(["bash", str(REFERENCE / "build.sh")], check=True)
    target = REFERENCE / "target"
    return f"{target / 'classes'}:{(target / 'classpath.txt').read_text().strip()}"


def run_workloads(ctx: Ctx) -> tuple[list[Repeat], Extras, PeersResult | None]:
    """The input, then every repeat of W1 (with W2), then the peers, W3, W5, W6, W7 and the
    latency part once each."""
    settings = ctx.settings
    runs: list[Repeat] = []
    peers = None
    if settings.runs("w1") or settings.runs("peers"):
        create_topic(ctx.offsets.admin, ctx.input_topic, settings.data.partitions)
        log(f"producing {settings.data.records:,} records to {ctx.input_topic}")
        started = time.monotonic()
        ctx.records = produce(ctx.bootstrap, ctx.input_topic, settings.data)
        log(f"produced {ctx.records:,} records in {time.monotonic() - started:.1f}s")
        if settings.runs("w1"):
            runs = [run_repeat(ctx, rep) for rep in range(settings.repeats)]
        if settings.runs("peers"):
            peers = run_peers(ctx)
    # W3, W5, W6, W7 and latency once: after the rest, on their own topics, so they change
    # nothing W1/W2 measure.
    extras = Extras()
    if settings.runs("w3"):
        extras = extras.model_copy(update={"w3": guarded("W3", lambda: run_w3(ctx))})
    if settings.runs("w5"):
        extras = extras.model_copy(update={"w5": guarded("W5", lambda: run_w5(ctx))})
    if settings.runs("w6"):
        extras = extras.model_copy(update={"w6": guarded("W6", lambda: run_w6(ctx))})
    if settings.runs("w7"):
        extras = extras.model_copy(update={"w7": guarded("W7", lambda: run_w7(ctx))})
    if settings.runs("latency"):
        latency = guarded("latency", lambda: run_latency(ctx))
        extras = extras.model_copy(update={"latency": latency})
    return runs, extras, peers


def run_repeat(ctx: Ctx, rep: int) -> Repeat:
    """One repeat: the raw consumer, the four W1 runs (and the multi-process one), then W2."""
    log(f"--- repeat {rep + 1}/{ctx.settings.repeats}")
    raw = run_raw(ctx)
    w1: dict[str, W1Run] = {}
    restarts: dict[str, Restart] = {}
    for label, impl, guarantee in (
        ("st_alos", ctx.streamtable, "at_least_once"),
        ("ks_alos", ctx.kstreams, "at_least_once"),
        ("st_eos", ctx.streamtable, "exactly_once_v2"),
        ("ks_eos", ctx.kstreams, "exactly_once_v2"),
    ):
        w1[label], restarts[label] = run_w1(ctx, impl, guarantee, f"{label}-r{rep + 1}")
    repeat = Repeat(
        raw=raw,
        st_alos=w1["st_alos"],
        ks_alos=w1["ks_alos"],
        st_eos=w1["st_eos"],
        ks_eos=w1["ks_eos"],
    )
    if ctx.settings.processes > 1:  # the same, one process per core (scaling out)
        procs, _ = run_w1(
            ctx,
            ctx.streamtable,
            "at_least_once",
            f"st_alos_procs-r{rep + 1}",
            ctx.settings.processes,
        )
        repeat = repeat.model_copy(update={"st_alos_procs": procs})
    # W2 last: by then the at_least_once runs' old group members are long gone.
    if ctx.settings.runs("w2"):
        st = repeat.st_alos.model_copy(update={"restore": run_w2(ctx, restarts["st_alos"])})
        ks = repeat.ks_alos.model_copy(update={"restore": run_w2(ctx, restarts["ks_alos"])})
        repeat = repeat.model_copy(update={"st_alos": st, "ks_alos": ks})
    return repeat


def write_results(results: BenchResults, settings: Settings, wall_s: float) -> None:
    """``bench/results/<stamp>.json``; for a full run also latest.json and RESULTS.md."""
    stamp = results.generated_at
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = results.to_json()
    (RESULTS / f"{stamp}.json").write_text(text)
    if settings.skip:  # a partial run: the full run's latest.json and RESULTS.md stand
        log(f"done in {wall_s:.0f}s: bench/results/{stamp}.json (partial: BENCH_SKIP)")
        return
    (RESULTS / "latest.json").write_text(text)
    (BENCH / "RESULTS.md").write_text(render_markdown(results, stamp, wall_s))
    log(f"done in {wall_s:.0f}s: bench/results/{stamp}.json, bench/RESULTS.md")


if __name__ == "__main__":
    sys.exit(main())
