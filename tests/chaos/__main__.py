"""``python -m tests.chaos``: run seeds of the fault harness and print the verdict.

    python -m tests.chaos --seeds 16            # 16 random seeds (printed, so each replays)
    python -m tests.chaos --seed 1234 --seed 99  # exactly these
    python -m tests.chaos --seed 7 --kind reduce --guarantee exactly_once_v2 --faults kill9,broker
    python -m tests.chaos --service --seed 7     # the us-shareholders service (``service.py``)

The harness runs its own broker (kafka-local, port CHAOS_KAFKA_PORT, default 19392, home
CHAOS_KAFKA_HOME, default .cache/kafka-chaos) because it stops and starts it; a lock file in that
home keeps a second run from sharing (and bouncing) it. The last line is
``chaos: K/N seeds correct``; the exit code is 0 only if every seed was.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from tests.chaos.cluster import Broker
from tests.chaos.plan import FAULTS, GUARANTEES, Size, draw
from tests.chaos.runner import Outcome, SeedRun
from tests.chaos.service import ServiceRun, draw_service
from tests.chaos.topologies import KINDS
from tests.support.kafka import REPO_ROOT


def default_broker() -> Broker:
    port = int(os.environ.get("CHAOS_KAFKA_PORT", "19392"))
    home = Path(os.environ.get("CHAOS_KAFKA_HOME", str(REPO_ROOT / ".cache" / "kafka-chaos")))
    return Broker(port, home)


def summary(outcome: Outcome) -> str:
    p = outcome.plan
    faults = ",".join(f["kind"] for f in p["faults"])
    verdict = "correct" if outcome.ok else "WRONG"
    return (
        f"seed {p['seed']}: {verdict} in {outcome.wall_s:.0f}s ({p['kind']}, {p['guarantee']}, "
        f"{p['instances']} instances, {p['partitions']} partitions, standbys {p['standbys']}, "
        f"faults {faults or '-'})"
    )


SIZE_FLAGS = {
    "instances": "app processes started together",
    "partitions": "partitions of every input topic",
    "commit-interval-ms": "the apps' commit interval",
    "rate": "live records per second",
    "events": "live records in all",
    "positions": "distinct position ids",
    "clients": "distinct clients",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=0, help="how many random seeds")
    parser.add_argument("--seed", type=int, action="append", default=[], help="a seed to run")
    parser.add_argument("--kind", choices=sorted(KINDS))
    parser.add_argument("--guarantee", choices=GUARANTEES)
    parser.add_argument("--faults", help=f"comma-separated, of {','.join(FAULTS)}")
    parser.add_argument("--standbys", type=int, choices=(0, 1))
    parser.add_argument("--service", action="store_true", help="run us-shareholders processes")
    sizes = parser.add_argument_group("size (library topologies; drawn from the seed if not given)")
    for flag, what in SIZE_FLAGS.items():
        sizes.add_argument(f"--{flag}", type=int, metavar="N", help=what)
    parser.add_argument("--workdir", type=Path, default=REPO_ROOT / ".cache" / "chaos-runs")
    args = parser.parse_args(argv)
    seeds = list(args.seed) + [random.SystemRandom().randrange(10**6) for _ in range(args.seeds)]
    if not seeds:
        parser.error("give --seeds N or --seed S")
    if args.service and args.kind:
        parser.error("--kind is a library topology; --service runs the service's own")
    size = Size(**{f.replace("-", "_"): getattr(args, f.replace("-", "_")) for f in SIZE_FLAGS})
    if args.service and size != Size():
        parser.error("the size options apply to library topologies, not --service")
    faults = args.faults.split(",") if args.faults else None
    for name in faults or []:
        if name not in FAULTS:
            parser.error(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    broker = default_broker()
    broker.lock()
    started_here = not broker.running()
    broker.start()
    stamp = time.strftime("%Y%m%dT%H%M%S")
    correct = 0
    try:
        for seed in seeds:
            workdir = args.workdir / stamp / f"seed-{seed}"
            if args.service:
                plan = draw_service(seed, guarantee=args.guarantee, faults=faults,
                                    standbys=args.standbys)  # fmt: skip
                outcome = ServiceRun(plan, broker, workdir).run()
            else:
                plan = draw(seed, kind=args.kind, guarantee=args.guarantee, faults=faults,
                            standbys=args.standbys, size=size)  # fmt: skip
                outcome = SeedRun(plan, broker, workdir).run()
            print(summary(outcome), flush=True)
            if outcome.ok:
                correct += 1
            else:
                for failure in outcome.failures:
                    print(f"    {failure}", flush=True)
                pins = {"service": "" if args.service else None, "kind": args.kind,
                        "guarantee": args.guarantee, "faults": args.faults,
                        "standbys": args.standbys}  # fmt: skip
                pins.update({f: getattr(args, f.replace("-", "_")) for f in SIZE_FLAGS})
                flags = "".join(f" --{k} {v}".rstrip() for k, v in pins.items() if v is not None)
                print(f"    replay: python -m tests.chaos --seed {seed}{flags}", flush=True)
                print(f"    report: {outcome.workdir / 'report.json'}", flush=True)
                timeline = outcome.details.get("timeline", [])
                print("    timeline: " + json.dumps(timeline), flush=True)
    finally:
        if started_here:
            broker.stop()
    print(f"chaos: {correct}/{len(seeds)} seeds correct", flush=True)
    return 0 if correct == len(seeds) else 1


if __name__ == "__main__":
    sys.exit(main())
