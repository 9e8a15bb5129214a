"""W6: trades per client per 1-minute tumbling window and per 5-minute window hopping by 1 minute.

Once per ``make bench``: ``BENCH_W6_RECORDS`` trades (default 1,000,000) of
``BENCH_W6_CLIENTS`` clients (default 5,000) are produced to a fresh topic of W1's partition
count, keyed by client (JSON ``{"client", "amount"}``), one every :data:`STEP_MS` of event time
(the record timestamp) and up to :data:`JITTER_MS` out of order, never later than the 10-second
grace, so every trade counts. Over it, at_least_once with W1's commit interval and cache, each
implementation counts and sums the trades per client and window (bench/w6_topology.py,
W6Topology in bench/reference, bench/peers/quixstreams_w6.py), in its own process with a fresh
application id, timed from the spawn until its consumer group has committed the input to its
end. Its CPU seconds and peak RSS are read then; its two output topics are read back (the last
value per client and window) and compared with the oracle computed here from the generated
trades. A failed or wrong run is reported as such, without figures.
"""

from __future__ import annotations

import inspect
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.datagen import produce_records
from bench.harness import STATE_ROOT, Ctx, Impl, log, tree_cpu_s, tree_peak_rss_mb
from bench.oracle import read_topic, verdict
from bench.peer_env import PEERS, code_lines, ensure_venv
from bench.peer_run import VENVS
from bench.results import CORRECT
from bench.results_w6 import W6Result, W6Run
from bench.settings import env_int
from bench.w6_topology import HOPPING_SUFFIX, w6_topology

MINUTE_MS = 60_000
HOP_WINDOWS = 5  # a hopping window spans 5 minutes, so each trade is in 5 of them
STEP_MS = 6
"""Event time between consecutive trades: 1M trades span 100 minutes."""
JITTER_MS = 3_000
"""A trade's time is up to this much before its turn (less than the grace: never late)."""
SEED = 11
QUIX = PEERS["quixstreams"]
QUIX_W6 = Path(__file__).resolve().parent / "peers" / "quixstreams_w6.py"

Totals = dict[tuple[str, int], tuple[int, int]]
"""(client, window start) -> (count, sum of amounts)."""


@dataclass(frozen=True)
class Trades:
    """The generated trades: same settings, same trades."""

    records: int
    clients: int
    start_ms: int  # a whole minute

    def __iter__(self) -> Iterator[tuple[str, int, int]]:
        """(client, amount, timestamp) in production order."""
        rng = random.Random(SEED)
        for i in range(self.records):
            client, amount = f"c{rng.randrange(self.clients)}", rng.randrange(1, 1000)
            yield client, amount, self.start_ms + i * STEP_MS + JITTER_MS - rng.randrange(JITTER_MS)


def expected(trades: Trades) -> tuple[Totals, Totals]:
    """The oracle: every (client, window)'s count and sum, tumbling and hopping."""
    tumbling: dict[tuple[str, int], list[int]] = {}
    hopping: dict[tuple[str, int], list[int]] = {}
    for client, amount, ts in trades:
        start = ts - ts % MINUTE_MS
        for table, first in ((tumbling, start), (hopping, start - (HOP_WINDOWS - 1) * MINUTE_MS)):
            for window in range(max(first, 0), start + 1, MINUTE_MS):
                totals = table.setdefault((client, window), [0, 0])
                totals[0] += 1
                totals[1] += amount
    return (
        {k: (c, t) for k, (c, t) in tumbling.items()},
        {k: (c, t) for k, (c, t) in hopping.items()},
    )


def produce_trades(bootstrap: str, topic: str, trades: Trades) -> int:
    """``trades`` to ``topic``, keyed by client (partitioned like Java's default); the count."""
    return produce_records(
        bootstrap,
        topic,
        (
            (client, orjson.dumps({"client": client, "amount": amount}), ts)
            for client, amount, ts in trades
        ),
    )


def windowed_key(key: bytes | None, value: dict[str, int]) -> tuple[str, int]:
    """Kafka Streams' time-windowed key (streamtable writes the same): key bytes + 8-byte start."""
    if key is None or len(key) < 8:
        raise ValueError(f"not a time-windowed key: {key!r}")
    return key[:-8].decode(), int.from_bytes(key[-8:], "big", signed=True)


def quix_key(key: bytes | None, value: dict[str, int]) -> tuple[str, int]:
    """Quix's window results: the client as the key, the window's start in the value."""
    if key is None:
        raise ValueError("a window result without a key")
    return key.decode(), value["start"]


KeyOf = Callable[[bytes | None, dict[str, int]], tuple[str, int]]


def read_totals(bootstrap: str, topic: str, key_of: KeyOf) -> tuple[Totals, int]:
    """The last value per (client, window) in ``topic``, and how many records it holds."""
    totals: Totals = {}
    seen = [0]

    def apply(key: bytes | None, raw: bytes | None) -> None:
        seen[0] += 1
        if raw is None:
            raise ValueError(f"{topic}: a tombstone for {key!r}")
        value = orjson.loads(raw)
        totals[key_of(key, value)] = (value["count"], value["total"])

    read_topic(bootstrap, topic, apply, timeout_s=300)
    return totals, seen[0]


def check(
    bootstrap: str, output: str, truth: tuple[Totals, Totals], key_of: KeyOf
) -> tuple[str | None, int]:
    """``None`` (or what differs) for both outputs, read again while wrong (records produced
    just before the run was seen done may still be on their way); the records read."""
    wrong, written = None, 0
    for attempt in range(3):
        if attempt:
            time.sleep(2)
        tumbling, n = read_totals(bootstrap, output, key_of)
        hopping, m = read_totals(bootstrap, output + HOPPING_SUFFIX, key_of)
        wrong = verdict(truth[0], tumbling, "tumbling windows") or verdict(
            truth[1], hopping, "hopping windows"
        )
        written = n + m
        if wrong is None:
            break
    return wrong, written


def run_w6(ctx: Ctx) -> W6Result:
    """W6 in ``ctx``'s run: the input, the oracle, then each implementation once."""
    records = env_int("BENCH_W6_RECORDS", 1_000_000)
    clients = env_int("BENCH_W6_CLIENTS", 5_000)
    partitions = ctx.settings.data.partitions
    span_ms = records * STEP_MS + JITTER_MS
    now_ms = time.time_ns() // 1_000_000
    start = (now_ms - span_ms - 10 * MINUTE_MS) // MINUTE_MS * MINUTE_MS
    trades = Trades(records, clients, start)
    topic = f"{ctx.run_id}-w6-trades"
    ctx.offsets.create(topic, partitions)
    log(f"W6: producing {records:,} trades of {clients:,} clients to {topic}")
    produced = produce_trades(ctx.bootstrap, topic, trades)
    truth = expected(trades)
    runs = [
        _run_one(ctx, topic, truth, name) for name in ("streamtable", "kstreams", "quixstreams")
    ]
    return W6Result(
        records=produced,
        clients=clients,
        partitions=partitions,
        span_s=round(span_ms / 1000, 1),
        tumbling_windows=len(truth[0]),
        hopping_windows=len(truth[1]),
        quixstreams_pin=QUIX.pins[0],
        runs=runs,
    )


def _argv(ctx: Ctx, name: str, topic: str, app_id: str, output: str, state: Path) -> list[str]:
    s = ctx.settings
    if name == "quixstreams":
        python = ensure_venv(QUIX, VENVS, ctx.logs / "w6-quixstreams.pip.log")
        return [
            str(python), str(QUIX_W6),
            "--bootstrap", ctx.bootstrap, "--input", topic, "--output", output,
            "--app-id", app_id, "--state-dir", str(state),
            "--commit-interval-ms", str(s.commit_ms_alos),
        ]  # fmt: skip
    classpath = ctx.kstreams.java_classpath if name == "kstreams" else ""
    impl = Impl(name, classpath, ("--topology", "w6"))
    return impl.argv(
        ctx.bootstrap, app_id, topic, output, state, "at_least_once", s.commit_ms_alos,
        s.cache_bytes,
    )  # fmt: skip


def _run_one(ctx: Ctx, topic: str, truth: tuple[Totals, Totals], name: str) -> W6Run:
    """One implementation's run; a failure is its verdict, not an exception."""
    app_id = f"{ctx.run_id}-w6-{name}"
    output = f"{app_id}-out"
    state = STATE_ROOT / app_id
    key_of = quix_key if name == "quixstreams" else windowed_key
    lines = {
        "streamtable": code_lines(inspect.getsource(w6_topology)),
        "quixstreams": code_lines(QUIX_W6.read_text()),
    }.get(name)
    base = W6Run(
        implementation=name, label=f"w6-{name}", oracle="failed: not run", code_lines=lines
    )
    try:
        for out in (output, output + HOPPING_SUFFIX):
            ctx.offsets.create(out, ctx.settings.data.partitions)
        argv = _argv(ctx, name, topic, app_id, output, state)
        # a peer's own interpreter and packages only: nothing of this repository's
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        run = _measure(ctx, base, argv, env if name == "quixstreams" else None, topic, app_id)
        wrong, written = check(ctx.bootstrap, output, truth, key_of)
        oracle = CORRECT if wrong is None else f"wrong: {wrong}"
        run = run.model_copy(update={"oracle": oracle, "output_records": written})
    except Exception as exc:  # reported as this run's failure; the others still run
        log(f"W6 {name} failed: {exc!r}")
        return base.model_copy(update={"oracle": f"failed: {exc!r}"[:500]})
    finally:
        shutil.rmtree(state, ignore_errors=True)
    log(f"W6 {name}: {run.rps} records/s, {run.cpu_s} CPU s, {run.oracle[:200]}")
    return run


def _measure(
    ctx: Ctx, base: W6Run, argv: list[str], env: dict[str, str] | None, topic: str, group: str
) -> W6Run:
    """Run ``argv`` until ``group`` committed ``topic`` to its end; its figures."""
    ends = ctx.offsets.ends(topic) or {}
    records = sum(ends.values())
    child = ctx.child(argv, base.label, env)
    try:
        while True:
            child.check_alive()
            committed = ctx.offsets.committed(group)
            if all(committed.get((topic, p), 0) >= end for p, end in ends.items()):
                break
            if time.monotonic() - child.started > ctx.settings.timeout_s:
                raise RuntimeError(f"not done after {ctx.settings.timeout_s:.0f}s")
            time.sleep(0.1)
        elapsed = time.monotonic() - child.started
        cpu, rss = tree_cpu_s(child.proc.pid), tree_peak_rss_mb(child.proc.pid)
    finally:
        code = child.stop()
    return base.model_copy(
        update={
            "elapsed_s": round(elapsed, 3),
            "rps": round(records / elapsed, 1),
            "cpu_s": None if cpu is None else round(cpu, 2),
            "cpu_us_per_record": None if cpu is None else round(cpu / records * 1e6, 2),
            "peak_rss_mb": None if rss is None else round(rss, 1),
            "exit_code": code,
        }
    )
