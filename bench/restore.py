"""W2: restore. A finished at_least_once W1 run restarted with its state directory wiped.

Records/s = records restored / restore phase, which runs from the first ``RESTORE_START`` line to
RUNNING (Kafka Streams: and its every ``RESTORED`` line); spawn to RUNNING is kept too. W2 runs
after every W1 run, once the group has no members (Kafka Streams does not leave the group on
close, so a restart right away would first wait out the old member's session timeout).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence

from bench.harness import Child, Ctx, log
from bench.render import fmt
from bench.results import RestoreRun
from bench.seed import Restart


def wait_group_empty(ctx: Ctx, group: str, timeout_s: float = 90.0) -> None:
    """Kafka Streams does not leave the group on close: wait out the old member's session."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        futures = ctx.offsets.admin.describe_consumer_groups([group])
        description = next(iter(futures.values())).result(30)
        if not description.members:
            return
        time.sleep(1)
    log(f"group {group} still has members after {timeout_s:.0f}s; restarting anyway")


def run_w2(ctx: Ctx, restart: Restart) -> RestoreRun:
    """Wipe the state dir, restart with the same application id, time until RUNNING."""
    wait_group_empty(ctx, restart.app_id)
    shutil.rmtree(restart.state_dir, ignore_errors=True)
    log(f"W2 {restart.label}: state dir wiped, restarting")
    child = ctx.child(restart.argv, f"{restart.label}-restore")
    try:
        run = _measure(ctx, child, restart)
    finally:
        exit_code = child.stop()
    return run.model_copy(update={"exit_code": exit_code})


def restored(lines: Sequence[tuple[float, str]], impl_key: str) -> tuple[int, float] | None:
    """(records restored, when RUNNING) once a child's ``lines`` say both, else None.

    streamtable's runner prints ``RESTORED_TOTAL <n>`` on RUNNING; Kafka Streams' BenchApp prints
    one ``RESTORED <store> <partition> <n>`` per ``RESTORE_START``, possibly after RUNNING.
    """
    running = next((t for t, line in lines if line == "STATE RUNNING"), None)
    if running is None:
        return None
    if impl_key == "streamtable":
        total = next((line for _, line in lines if line.startswith("RESTORED_TOTAL ")), None)
        return None if total is None else (int(total.split()[1]), running)
    ends = [(t, line) for t, line in lines if line.startswith("RESTORED ")]
    if len(ends) < sum(1 for _, line in lines if line.startswith("RESTORE_START")):
        return None
    return sum(int(line.split()[3]) for _, line in ends), max([running] + [t for t, _ in ends])


def _measure(ctx: Ctx, child: Child, restart: Restart) -> RestoreRun:
    """Poll every 0.05 s until the child restored and runs; the figures (exit code to come)."""
    while True:
        child.check_alive()
        lines = child.output()
        starts = [t for t, line in lines if line.startswith("RESTORE_START")]
        done = restored(lines, restart.impl.key)
        if done is not None:
            break
        if time.monotonic() - child.started > ctx.settings.timeout_s:
            raise RuntimeError(
                f"W2 {restart.label}: not RUNNING after {ctx.settings.timeout_s:.0f}s"
            )
        time.sleep(0.05)
    records, end = done
    elapsed = end - child.started
    phase = end - starts[0] if starts else None
    log(
        f"W2 {restart.label}: {records:,} records restored; restore phase "
        f"{fmt(phase, 1)}s, spawn to RUNNING {elapsed:.1f}s"
    )
    return RestoreRun(
        restored_records=records,
        elapsed_s=round(elapsed, 3),
        restore_phase_s=None if phase is None else round(phase, 3),
        rps=round(records / phase, 1) if phase else None,
        peak_rss_mb=child.peak_rss_mb(),
    )
