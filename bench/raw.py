"""The ceiling of W1: a raw confluent-kafka consumer reading the whole input, no processing.

``python -m bench.runner raw`` in its own process, assigned to every partition from the
beginning; the clock runs from its spawn to its ``DONE <records> <seconds>`` line.
"""

from __future__ import annotations

from bench.harness import PY, Ctx, log
from bench.results import RawRun


def run_raw(ctx: Ctx) -> RawRun:
    log("W1 raw consumer: starting")
    argv = [
        PY,
        "-m",
        "bench.runner",
        "raw",
        "--bootstrap",
        ctx.bootstrap,
        "--input",
        ctx.input_topic,
    ]
    child = ctx.child(argv, "raw")
    code = child.wait_exit(ctx.settings.timeout_s)
    done = child.first(lambda line: line.startswith("DONE "))
    if done is None or code != 0:
        raise RuntimeError(f"raw consumer failed (exit {code})")
    elapsed = done[0] - child.started
    read = int(done[1].split()[1])
    child.stop()
    log(f"W1 raw consumer: {elapsed:.1f}s, {read / elapsed:,.0f} records/s")
    return RawRun(
        elapsed_s=round(elapsed, 3),
        rps=round(read / elapsed, 1),
        records_read=read,
        in_process_s=float(done[1].split()[2]),
    )
