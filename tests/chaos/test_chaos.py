"""The fault harness in CI: a fixed set of seeds that, together, apply every fault kind to every
topology under both guarantees (``make chaos`` runs random seeds; see ``__main__.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.chaos.__main__ import default_broker, summary
from tests.chaos.cluster import Broker
from tests.chaos.plan import FAULTS, Fault, draw
from tests.chaos.runner import SeedRun
from tests.chaos.service import ServiceRun, draw_service

pytestmark = pytest.mark.system

# (seed, topology, guarantee, standbys or None to draw it, faults): every fault kind at least
# once, each topology. Seed 33 found the replay whose record cache collapsed a retraction after
# kill -9 under at_least_once (19 of 167 clients kept positions they had left).
CASES: list[tuple[int, str, str, int | None, list[str]]] = [
    (33, "aggregate", "at_least_once", None, ["kill9", "kill9", "kill9"]),
    # A broker bounce followed by kill -9 on an empty state dir under EOS is left to `make chaos`
    # until its open finding is fixed (this seed once left transactions open for minutes; see
    # docs/operations.md, Known gaps); EOS broker bounces stay covered by the service case.
    (101, "reduce", "exactly_once_v2", 0, ["kill9", "kill9_wipe"]),
    # A pause past the session timeout under at_least_once: once wrong here (the frozen
    # process delivered its queued repartition records late, after the new owner had replayed
    # them); fixed by the producer's delivery timeout (runtime/_clients.py, producer()).
    (102, "reduce", "at_least_once", 1, ["pause", "broker", "restart"]),
    (103, "fkjoin", "exactly_once_v2", 1, ["scale_up", "kill9", "scale_down"]),
    (104, "count", "exactly_once_v2", 0, ["pause", "kill9_wipe"]),
    (105, "join", "at_least_once", 0, ["kill9_wipe", "scale_down", "kill9"]),
    (106, "global", "exactly_once_v2", 0, ["restart", "kill9"]),
    # Hopping windows (2 s by 1 s), a 40 s retention: restores of window stores under EOS.
    (107, "windowed", "exactly_once_v2", 0, ["kill9_wipe", "kill9"]),
    # Session windows under at_least_once: merges, restores of session stores, expiry by end.
    (108, "sessions", "at_least_once", 0, ["kill9_wipe", "restart"]),
]


def test_cases_cover_every_fault_kind() -> None:
    assert {f for case in CASES for f in case[4]} == set(FAULTS)


@pytest.fixture(scope="module")
def chaos_broker() -> Iterator[Broker]:
    broker = default_broker()
    broker.lock()
    started_here = not broker.running()
    broker.start()
    try:
        yield broker
    finally:
        if started_here:
            broker.stop()


@pytest.mark.parametrize(
    ("seed", "kind", "guarantee", "standbys", "faults"),
    CASES,
    ids=[f"{case[1]}-{case[0]}" for case in CASES],
)
def test_seed_is_correct(
    chaos_broker: Broker,
    tmp_path: Path,
    seed: int,
    kind: str,
    guarantee: str,
    standbys: int | None,
    faults: list[str],
) -> None:
    plan = draw(seed, kind=kind, guarantee=guarantee, faults=faults, standbys=standbys)
    outcome = SeedRun(plan, chaos_broker, tmp_path / f"seed-{seed}").run()
    timeline = "\n  ".join(outcome.details.get("timeline", []))
    assert outcome.ok, (
        summary(outcome) + "\n" + "\n".join(outcome.failures) + f"\n  {timeline}"
        f"\nreport: {outcome.workdir / 'report.json'}"
    )


def test_service_seed_is_correct(chaos_broker: Broker, tmp_path: Path) -> None:
    """The us-shareholders service (``service.py``) under exactly_once_v2, kept short for CI: a
    14 s live phase at 300 records/s, the broker down 8 s from 2 s, then (once it is back) a
    kill -9; then /holders from every instance, the digest (one job per eligible client), DLQ
    and logs. (An instance started while the broker is down exits after 30 s without it: the
    kill -9 comes after the bounce so that a slow broker start cannot fail the case.)"""
    seed = 201
    plan = draw_service(seed, guarantee="exactly_once_v2", faults=["kill9", "broker"], standbys=0)
    faults = [Fault(2.0, "broker", 0, seconds=8.0), Fault(3.0, "kill9", 1, delay_s=1.0)]
    plan = replace(plan, instances=2, partitions=4, rate=300, live=plan.live[: 300 * 14],
                   faults=faults)  # fmt: skip
    outcome = ServiceRun(plan, chaos_broker, tmp_path / f"service-{seed}").run()
    timeline = "\n  ".join(outcome.details.get("timeline", []))
    assert outcome.ok, (
        summary(outcome) + "\n" + "\n".join(outcome.failures) + f"\n  {timeline}"
        f"\nreport: {outcome.workdir / 'report.json'}"
    )
