"""The Python peers (Quix Streams, Bytewax, Pathway, Faust) on W1's input, checked by the oracle.

Once per ``make bench``, after the W1 repeats, each peer in ``BENCH_PEERS`` (default: all) runs
the seed topology (``bench/peers/<name>_seed.py``) in its own process, from its own virtualenv
(bench/peer_env.py), with a fresh application id, the at_least_once commit interval and its
own output topic. The clock runs from the spawn until the peer is done (see
:attr:`~bench.peer_env.Peer.completion`); then its process tree's CPU seconds and peak RSS are
read and its output topic is compared with the oracle (bench/oracle.py) before it is stopped.
A peer that cannot be installed, exits, times out (``BENCH_TIMEOUT_S``) or writes a wrong
result is reported as such, with the reason, and without figures.
"""

from __future__ import annotations

import inspect
import os
import shutil
import textwrap
import time
from pathlib import Path

from bench.harness import (
    REPO,
    STATE_ROOT,
    Child,
    Ctx,
    log,
    tree_cpu_s,
    tree_peak_rss_mb,
)
from bench.oracle import check
from bench.peer_env import PEERS, Peer, PeerFailure, code_lines, ensure_venv
from bench.results import CORRECT, PeerRun, PeersResult
from bench.runner import seed_topology
from bench.seed import group_done

VENVS = REPO / ".cache" / "bench-venvs"


def run_peers(ctx: Ctx) -> PeersResult:
    """Every selected peer, one after the other."""
    return PeersResult(
        records=ctx.records,
        streamtable_code_lines=code_lines(textwrap.dedent(inspect.getsource(seed_topology))),
        runs=[run_peer(ctx, PEERS[name]) for name in ctx.settings.peers],
    )


def run_peer(ctx: Ctx, peer: Peer) -> PeerRun:
    """One peer's run; a failure is its verdict, not an exception."""
    app_id = f"{ctx.run_id}-{peer.name}"
    base = PeerRun(
        peer=peer.name,
        pins=list(peer.pins),
        completion=peer.completion,
        records=ctx.records,
        code_lines=code_lines(peer.program.read_text()),
        verdict="failed: not run",
    )
    log(f"peer {peer.name}: {' '.join(peer.pins)}")
    try:
        python = ensure_venv(peer, VENVS, ctx.logs / f"{peer.name}.pip.log")
        run = _measure(ctx, peer, python, app_id, base)
    except Exception as exc:  # reported as this peer's failure; the other peers still run
        log(f"peer {peer.name} failed: {exc}")
        return base.model_copy(update={"verdict": f"failed: {exc}"})
    finally:
        for prefix in (app_id, f"repartition__{app_id}", f"changelog__{app_id}"):
            ctx.offsets.delete_with_prefix(prefix)
        shutil.rmtree(STATE_ROOT / app_id, ignore_errors=True)
    log(f"peer {peer.name}: {run.verdict}" + (f", {run.rps:,.0f} records/s" if run.rps else ""))
    return run


def _argv(ctx: Ctx, peer: Peer, python: Path, app_id: str, output: str) -> list[str]:
    argv = [
        str(python), str(peer.program),
        "--bootstrap", ctx.bootstrap,
        "--input", ctx.input_topic,
        "--output", output,
        "--app-id", app_id,
        "--state-dir", str(STATE_ROOT / app_id),
        "--commit-interval-ms", str(ctx.settings.commit_ms_alos),
    ]  # fmt: skip
    if peer.wants_partitions:
        argv += ["--partitions", str(ctx.settings.data.partitions)]
    return argv


def _measure(ctx: Ctx, peer: Peer, python: Path, app_id: str, base: PeerRun) -> PeerRun:
    output = f"{app_id}-out"
    ctx.offsets.create(output, ctx.settings.data.partitions)
    shutil.rmtree(STATE_ROOT / app_id, ignore_errors=True)
    input_ends = ctx.offsets.ends(ctx.input_topic)
    if input_ends is None:
        raise PeerFailure(f"no input topic {ctx.input_topic}")
    expected = ctx.expected()  # before the clock starts: the replay is no part of the peer
    # the peer's own interpreter and packages only: nothing of this repository's
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    child = ctx.child(_argv(ctx, peer, python, app_id, output), peer.name, env)
    try:
        elapsed = _wait_done(ctx, peer, child, app_id, input_ends)
        cpu, rss = tree_cpu_s(child.proc.pid), tree_peak_rss_mb(child.proc.pid)
        wrong = check(ctx.bootstrap, output, expected)
    finally:
        code = child.stop()
    if wrong is not None:
        return base.model_copy(update={"verdict": f"wrong: {wrong}", "exit_code": code})
    return base.model_copy(
        update={
            "verdict": CORRECT,
            "elapsed_s": round(elapsed, 3),
            "rps": round(ctx.records / elapsed, 1),
            "cpu_s": None if cpu is None else round(cpu, 2),
            "cpu_s_per_million": None if cpu is None else round(cpu / ctx.records * 1e6, 2),
            "peak_rss_mb": None if rss is None else round(rss, 1),
            "exit_code": code,
        }
    )


def _wait_done(
    ctx: Ctx, peer: Peer, child: Child, app_id: str, input_ends: dict[int, int]
) -> float:
    """Poll every 0.1 s until ``peer`` is done; the seconds from its spawn."""
    last_report = child.started
    while True:
        consumed = None
        if peer.internal_topic is None:
            done = child.first(lambda line: line == "DONE")
            if done is not None:
                return done[0] - child.started
        else:
            internal = ctx.offsets.topics(peer.internal_topic.format(app=app_id))
            finished, consumed = group_done(ctx, app_id, input_ends, internal)
            if finished:
                return time.monotonic() - child.started
        child.check_alive()
        now = time.monotonic()
        progress = "" if consumed is None else f" ({consumed:,}/{ctx.records:,} committed)"
        if now - child.started > ctx.settings.timeout_s:
            raise PeerFailure(f"not done after {ctx.settings.timeout_s:.0f}s{progress}")
        if now - last_report >= 5:
            log(f"peer {peer.name}: running for {now - child.started:.0f}s{progress}")
            last_report = now
        time.sleep(0.1)
