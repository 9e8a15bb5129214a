"""W1 (and W4): the seed topology from empty state, timed until the group committed the input.

One run starts one implementation (streamtable's ``python -m bench.runner`` or Kafka Streams'
BenchApp; ``processes`` > 1 starts that many instances of one application, each its own state
directory, sharing the input's partitions) with a fresh application id, and stops the clock when
the group's committed offsets reach the end of the input and of the repartition topic (see
:func:`w1_done`); its output topic is then checked against the oracle (bench/oracle.py). W4 is
the process's peak RSS at that moment. The :class:`Restart` it returns is what W2
(bench/restore.py) needs to restart the same application.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness import STATE_ROOT, Child, Ctx, Impl, cpu_seconds, delta, log
from bench.oracle import check
from bench.results import CORRECT, W1Run


@dataclass(frozen=True)
class Restart:
    """What W2 needs to restart a finished W1 run."""

    impl: Impl
    argv: list[str]
    app_id: str
    state_dir: Path
    label: str


def w1_done(ctx: Ctx, app_id: str, input_ends: dict[int, int], eos: bool) -> tuple[bool, int]:
    """Whether the group's committed offsets reached the end of the input and repartition topics.

    Under exactly-once every transaction ends with a commit marker, which takes an offset but is
    no record: there a repartition partition counts as done at end - 1 (a committed offset can
    reach end - 1 only once the last record before the final marker has been processed).
    Returns (done, input records committed so far).
    """
    repartition = [t for t in ctx.offsets.topics(app_id + "-") if t.endswith("-repartition")]
    return group_done(ctx, app_id, input_ends, repartition, slack=1 if eos else 0)


def group_done(
    ctx: Ctx, group: str, input_ends: dict[int, int], internal: list[str], slack: int = 0
) -> tuple[bool, int]:
    """Whether ``group`` committed the input to ``input_ends`` and every non-empty partition of
    the ``internal`` topics (none yet: not done) to its end, less ``slack``.
    Returns (done, input records committed so far)."""
    committed = ctx.offsets.committed(group)
    consumed = sum(
        min(committed.get((ctx.input_topic, p), 0), end) for p, end in input_ends.items()
    )
    if any(committed.get((ctx.input_topic, p), 0) < end for p, end in input_ends.items()):
        return False, consumed
    if not internal:
        return False, consumed
    for topic in internal:
        ends = ctx.offsets.ends(topic)
        if ends is None:
            return False, consumed
        for p, end in ends.items():
            if end > 0 and committed.get((topic, p), 0) < end - slack:
                return False, consumed
    return True, consumed


def run_w1(
    ctx: Ctx, impl: Impl, guarantee: str, label: str, processes: int = 1
) -> tuple[W1Run, Restart]:
    """One W1 run; ``processes`` > 1 starts that many instances of the same application (each
    its own state dir), which share the input's partitions through the consumer group."""
    s = ctx.settings
    app_id = f"{ctx.run_id}-{label}"
    output = f"{app_id}-out"
    ctx.offsets.create(output, s.data.partitions)
    state_dir = STATE_ROOT / app_id
    shutil.rmtree(state_dir, ignore_errors=True)

    def argv_for(directory: Path) -> list[str]:
        return impl.argv(
            ctx.bootstrap,
            app_id,
            ctx.input_topic,
            output,
            directory,
            guarantee,
            s.commit_ms(guarantee),
            s.cache_bytes,
        )

    restart = Restart(impl, argv_for(state_dir), app_id, state_dir, label)
    input_ends = ctx.offsets.ends(ctx.input_topic)
    assert input_ends is not None
    log(f"W1 {label}: starting" + (f" {processes} processes" if processes > 1 else ""))
    broker_cpu = cpu_seconds(ctx.broker_pid)
    if processes == 1:
        children = [ctx.child(restart.argv, label)]
    else:
        children = [
            ctx.child(argv_for(state_dir / f"p{i}"), f"{label}-p{i}") for i in range(processes)
        ]
    expected = ctx.expected()  # before the clock starts
    try:
        run = _measure(ctx, children, restart, guarantee, input_ends, broker_cpu)
        wrong = check(ctx.bootstrap, output, expected)
    finally:
        codes = [child.stop() for child in children]
    if wrong is not None:
        log(f"W1 {label}: WRONG output: {wrong}")
    exit_code = next((c for c in codes if c), codes[0])
    oracle = CORRECT if wrong is None else f"wrong: {wrong}"
    return run.model_copy(update={"exit_code": exit_code, "oracle": oracle}), restart


def _measure(
    ctx: Ctx,
    children: list[Child],
    run: Restart,
    guarantee: str,
    input_ends: dict[int, int],
    broker_cpu: float | None,
) -> W1Run:
    """Poll every 0.1 s until the group is done; the figures (the exit code still to come)."""
    label, started = run.label, children[0].started
    last_report = time.monotonic()
    while True:
        for child in children:
            child.check_alive()
        done, consumed = w1_done(ctx, run.app_id, input_ends, guarantee == "exactly_once_v2")
        now = time.monotonic()
        if done:
            break
        if now - started > ctx.settings.timeout_s:
            raise RuntimeError(f"W1 {label}: not done after {ctx.settings.timeout_s:.0f}s")
        if now - last_report >= 5:
            log(
                f"W1 {label}: {consumed:,}/{ctx.records:,} input records committed "
                f"({now - started:.0f}s)"
            )
            last_report = now
        time.sleep(0.1)
    elapsed = now - started
    running = children[0].first(lambda line: line == "STATE RUNNING")
    rss = [c.peak_rss_mb() for c in children]
    cpu = [c.cpu_s() for c in children]
    log(f"W1 {label}: {elapsed:.1f}s, {ctx.records / elapsed:,.0f} records/s")
    return W1Run(
        label=label,
        app_id=run.app_id,
        guarantee=guarantee,
        processes=len(children),
        elapsed_s=round(elapsed, 3),
        rps=round(ctx.records / elapsed, 1),
        startup_to_running_s=None if running is None else round(running[0] - started, 3),
        peak_rss_mb=None if None in rss else max(r for r in rss if r is not None),
        cpu_s=None if None in cpu else sum(c for c in cpu if c is not None),
        broker_cpu_s=delta(broker_cpu, cpu_seconds(ctx.broker_pid)),
    )
