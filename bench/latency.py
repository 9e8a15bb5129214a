"""The latency part: from a record's produce to its effect, in the output topic and in the store.

Once per ``make bench`` (``BENCH_SKIP=latency`` leaves it out; sizes from ``BENCH_LATENCY_*``,
bench/latency_settings.py). The topology is W1's seed topology (positions table -> US filter ->
per-client list of position ids), in streamtable (``python -m bench.runner``) and in Kafka
Streams (BenchApp), each in its own process, under ``BENCH_LATENCY_GUARANTEE``
(at_least_once by default) in two settings:

* ``default``: W1's commit interval for that guarantee (``BENCH_COMMIT_MS_ALOS``, 1000 ms, or
  ``BENCH_COMMIT_MS_EOS``, 100 ms) and record cache (``BENCH_CACHE_BYTES``, 10 MiB): the same for
  both implementations;
* ``low_latency``: ``commit_interval_ms`` ``BENCH_LATENCY_LOW_COMMIT_MS`` (100) and
  ``cache_max_bytes`` ``BENCH_LATENCY_LOW_CACHE_BYTES`` (0: no record cache).

Each run (a fresh application id and topics) starts the app with a store probe on the first
``BENCH_LATENCY_PROBE_KEYS`` clients (bench/latency_probe.py, StoreProbe.java), waits for it to
be RUNNING, then feeds it at ``BENCH_LATENCY_RATE`` records/s for ``BENCH_LATENCY_WARMUP_SECONDS``
(not measured) + ``BENCH_LATENCY_SECONDS`` (bench/latency_feed.py) and waits until every
measured record's effect was seen (or a deadline: 30 s + 3 commit intervals). Output latency =
the time the output record showing it was received - its produce time; store latency = the time
the probe first read it in the store - its produce time (probe clients only).

Throughput cost: the seed topology over a fresh backlog of ``BENCH_LATENCY_BACKLOG`` W1-shaped
records (200,000), timed as a W1 run (bench/seed.py: from the spawn until the group committed
the input, output checked against the oracle), streamtable in each setting.
"""

from __future__ import annotations

import dataclasses
import shutil
import time

from bench.datagen import DataSettings, create_topic, produce
from bench.harness import STATE_ROOT, Child, Ctx, Impl, log
from bench.latency_feed import (
    OutputWatcher,
    client_of,
    feed,
    index_of,
    latency_stats,
    seen_lines,
)
from bench.latency_settings import LatencySettings, Setting
from bench.results_latency import LatencyResult, LatencyRun, ThroughputRun
from bench.seed import run_w1

STORE = "us-holders"
IMPLEMENTATIONS = ("streamtable", "kstreams")
RUNNING_TIMEOUT_S = 120.0


def settings_of(ctx: Ctx) -> tuple[Setting, Setting]:
    """The two settings: W1's for the guarantee, and the low-latency one."""
    s, lat = ctx.settings, ctx.settings.latency
    return Setting("default", s.commit_ms(lat.guarantee), s.cache_bytes), lat.low_latency()


def run_latency(ctx: Ctx) -> LatencyResult:
    """Every implementation in every setting, then streamtable's throughput in each."""
    lat = ctx.settings.latency
    settings = settings_of(ctx)
    runs = [_latency_run(ctx, impl, setting) for setting in settings for impl in IMPLEMENTATIONS]
    backlog, throughput = _throughput(ctx, settings)
    return LatencyResult(
        guarantee=lat.guarantee,
        rate_per_s=lat.rate_per_s,
        duration_s=lat.duration_s,
        warmup_s=lat.warmup_s,
        clients=lat.clients,
        probe_keys=lat.probe_keys,
        partitions=ctx.settings.data.partitions,
        runs=runs,
        backlog_records=backlog,
        throughput=throughput,
    )


def probe_keys(lat: LatencySettings) -> list[str]:
    return [client_of(i, lat.clients) for i in range(lat.probe_keys)]


def store_sample(produced: dict[str, int], lat: LatencySettings) -> dict[str, int]:
    """The part of ``produced`` (position id -> produce ns) that the store probe reads: the
    positions of the probe keys' clients."""
    probed = set(probe_keys(lat))
    return {p: t for p, t in produced.items() if client_of(index_of(p), lat.clients) in probed}


def _impl(ctx: Ctx, name: str, lat: LatencySettings) -> Impl:
    probe = ("--probe-store", STORE, "--probe-keys", ",".join(probe_keys(lat)))
    classpath = ctx.kstreams.java_classpath if name == "kstreams" else ""
    return Impl(name, classpath, probe)


def _latency_run(ctx: Ctx, name: str, setting: Setting) -> LatencyRun:
    """One implementation in one setting; a failure is its ``error``, not an exception."""
    app_id = f"{ctx.run_id}-lat-{name}-{setting.name.replace('_', '-')}"
    base = LatencyRun(
        implementation=name,
        setting=setting.name,
        commit_interval_ms=setting.commit_interval_ms,
        cache_max_bytes=setting.cache_max_bytes,
        produced=0,
    )
    state = STATE_ROOT / app_id
    try:
        run = _measure(ctx, base, app_id, setting)
    except Exception as exc:  # reported as this run's failure; the others still run
        log(f"latency {name} {setting.name} failed: {exc!r}")
        return base.model_copy(update={"error": f"{exc!r}"[:500]})
    finally:
        shutil.rmtree(state, ignore_errors=True)
    out, store = run.output, run.store
    log(
        f"latency {name} {setting.name}: output p50 {out and out.p50_ms} ms, p99 "
        f"{out and out.p99_ms} ms; store p50 {store and store.p50_ms} ms, p99 "
        f"{store and store.p99_ms} ms"
    )
    return run


def _measure(ctx: Ctx, base: LatencyRun, app_id: str, setting: Setting) -> LatencyRun:
    lat, parts = ctx.settings.latency, ctx.settings.data.partitions
    topic, output = f"{app_id}-in", f"{app_id}-out"
    for t in (topic, output):
        ctx.offsets.create(t, parts)
    argv = _impl(ctx, base.implementation, lat).argv(
        ctx.bootstrap, app_id, topic, output, STATE_ROOT / app_id, lat.guarantee,
        setting.commit_interval_ms, setting.cache_max_bytes,
    )  # fmt: skip
    watcher = OutputWatcher(ctx.bootstrap, output, parts)
    child = ctx.child(argv, app_id.removeprefix(f"{ctx.run_id}-"))
    try:
        _wait_running(child)
        log(f"latency {base.implementation} {setting.name}: RUNNING; feeding {lat.records:,}")
        produced, took = feed(ctx.bootstrap, topic, lat)
        in_store = store_sample(produced, lat)
        deadline = time.monotonic() + 30 + 3 * setting.commit_interval_ms / 1000
        watcher.wait_for(produced, deadline - time.monotonic())
        while time.monotonic() < deadline and not set(in_store) <= set(seen_lines(child.output())):
            child.check_alive()
            time.sleep(0.1)
        cpu = child.cpu_s()
    finally:
        code = child.stop()
        watcher.close()
    return base.model_copy(
        update={
            "produced": len(produced),
            "achieved_rate_per_s": round(len(produced) / took, 1) if took > 0 else None,
            "output": latency_stats(produced, watcher.seen),
            "store": latency_stats(in_store, seen_lines(child.output())),
            "cpu_s": None if cpu is None else round(cpu, 2),
            "exit_code": code,
        }
    )


def _wait_running(child: Child) -> None:
    deadline = time.monotonic() + RUNNING_TIMEOUT_S
    while child.first(lambda line: line == "STATE RUNNING") is None:
        child.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"not RUNNING after {RUNNING_TIMEOUT_S:.0f}s")
        time.sleep(0.1)


def _throughput(ctx: Ctx, settings: tuple[Setting, ...]) -> tuple[int, list[ThroughputRun]]:
    """The backlog, then streamtable over it once per setting (as a W1 run)."""
    records = ctx.settings.latency.backlog
    positions = max(1, records // 10)
    data = DataSettings(
        records=records,
        positions=positions,
        clients=max(1, positions // 10),
        partitions=ctx.settings.data.partitions,
    )
    topic = f"{ctx.run_id}-lat-backlog"
    create_topic(ctx.offsets.admin, topic, data.partitions)
    log(f"latency: producing a backlog of {records:,} records to {topic}")
    produced = produce(ctx.bootstrap, topic, data)
    base = dataclasses.replace(
        ctx, input_topic=topic, records=produced, settings=dataclasses.replace(
            ctx.settings, data=data
        ), _expected=None,
    )  # fmt: skip
    base.expected()  # once, before the clocks start
    return produced, [_throughput_run(base, setting) for setting in settings]


def _throughput_run(base: Ctx, setting: Setting) -> ThroughputRun:
    s, guarantee = base.settings, base.settings.latency.guarantee
    ms = setting.commit_interval_ms
    if guarantee == "exactly_once_v2":
        s = dataclasses.replace(s, commit_ms_eos=ms, cache_bytes=setting.cache_max_bytes)
    else:
        s = dataclasses.replace(s, commit_ms_alos=ms, cache_bytes=setting.cache_max_bytes)
    ctx = dataclasses.replace(base, settings=s)
    result = ThroughputRun(
        setting=setting.name,
        commit_interval_ms=setting.commit_interval_ms,
        cache_max_bytes=setting.cache_max_bytes,
    )
    label = f"lat-tput-{setting.name.replace('_', '-')}"
    try:
        run, _ = run_w1(ctx, ctx.streamtable, guarantee, label)
    except Exception as exc:  # reported; the other setting still runs
        log(f"latency throughput {setting.name} failed: {exc!r}")
        return result.model_copy(update={"error": f"{exc!r}"[:500]})
    cpu, up = run.cpu_s, run.startup_to_running_s
    running = None if up is None or run.elapsed_s <= up else base.records / (run.elapsed_s - up)
    figures = {"elapsed_s": run.elapsed_s, "rps": run.rps, "cpu_s": cpu, "oracle": run.oracle}
    return result.model_copy(
        update={
            **figures,
            "running_rps": None if running is None else round(running, 1),
            "cpu_us_per_record": None if cpu is None else round(cpu / base.records * 1e6, 2),
        }
    )
