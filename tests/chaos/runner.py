"""One seed of the fault harness, start to verdict.

1. Create the input topics on the harness's own broker and pre-load them (malformed records at
   the end, as an operator's topic would have them), then start N instances at once.
2. The live phase: a producer thread writes the live input at a fixed rate (malformed records
   mixed in) while the main thread applies the seed's faults at their times.
3. Every instance that should run is running again; wait until the group has committed every
   input and internal topic to its end (lag 0, through the committed offsets, as
   ``kafka-consumer-groups`` reads it) and every instance is RUNNING with the result store's
   partitions covered exactly once.
4. Check (``checks.py``): the union of the local stores equals the oracle, no key on two
   instances; output topics, changelogs (read_committed under exactly_once_v2) and the
   dead-letter topic; log lines bounded and free of record values; every clean close clean.
5. The windowed kind, then: every instance killed (kill -9), some state dirs deleted, all
   started again with nothing left to process; once restored, the stores are checked again
   (no expired window back, every live one with its count).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.chaos import checks, inputs
from tests.chaos.cluster import Broker, Instance
from tests.chaos.inputs import InputProducer, Produced
from tests.chaos.kafka_io import group_lag, partition_count
from tests.chaos.plan import Fault, Malformed, Plan
from tests.chaos.topologies import KINDS, Event
from tests.chaos.windowed import record_times, time_base
from tests.support.kafka import create_topic, delete_topics

SESSION_TIMEOUT_MS = 6000
MAX_INSTANCES = 4
CONVERGE_TIMEOUT_S = 180.0


@dataclass
class Outcome:
    plan: dict[str, Any]
    failures: list[str]
    wall_s: float
    workdir: Path
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures


class SeedRun:
    base_ms: int | None = None  # record times (windowed kind): base + each position's "at"

    def __init__(self, plan: Plan, broker: Broker, workdir: Path) -> None:
        self.plan = plan
        self.broker = broker
        self.workdir = workdir
        self.kind = KINDS[plan.kind]
        tag = f"{plan.seed}-{uuid.uuid4().hex[:8]}"
        self.app_id = f"chaos-{tag}"
        roles = ("positions", *self.kind.inputs, *(("output",) if self.kind.output else ()))
        self.topics = {role: f"chaos-in-{tag}-{role}" for role in roles}
        self.base_ms = None if plan.windows is None else time_base()
        self.instances: list[Instance] = []
        self.produced = Produced()
        self.failures: list[str] = []
        self.timeline: list[str] = []
        self._t0 = time.monotonic()

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> Outcome:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        details: dict[str, Any] = {"app_id": self.app_id, "topics": self.topics}
        if self.base_ms is not None:
            details["time_base_ms"] = self.base_ms
        try:
            self._create_topics(admin)
            self._produce(self.plan.preload, self.plan.malformed_preload, rate=None)
            self.note(f"pre-loaded {len(self.plan.preload)} records")
            for _ in range(self.plan.instances):
                self._new_instance().start()
            self._live_phase()
            self._recover_all()
            dumps, lag = self._converge(admin)
            self._read_back(admin, details)  # the broker answers again by now
            details["lag"] = {f"{t}[{p}]": n for (t, p), n in lag.items() if n}
            details["instances"] = {
                name: {k: v for k, v in d.items() if k != "store"} for name, d in dumps.items()
            }
            if dumps:
                self.failures += checks.verify(self, dumps, admin, details)
            if self.plan.windows is not None:
                self._restore_windows(admin, details)
        except Exception as exc:  # a harness step that could not complete is a failed seed
            self.failures.append(f"run aborted: {type(exc).__name__}: {exc}")
        finally:
            details["task_moves"] = checks.task_moves(self.instances)
        return self._finish(admin, started, details, lambda: [*self.topics.values()])

    def _restore_windows(self, admin: AdminClient, details: dict[str, Any]) -> None:
        """The windowed kind, after its verdict: kill -9 every instance, delete the state dirs
        of some (drawn; at least one), start them again and check their stores once restored,
        with no record left to process: windows expired before must stay hidden though nothing
        advances stream time after the restore (a restored store's stream time comes from its
        changelog, or from its disk)."""
        rng = random.Random(self.plan.seed * 7 + 1)
        live = self.live()
        wiped = [i for i in live if rng.random() < 0.5] or live[:1]
        self.note(f"kill -9 of every instance, state dirs of {[i.name for i in wiped]} deleted")
        for instance in live:
            instance.kill9()
            if instance in wiped:
                instance.wipe()
        for instance in live:
            instance.start()
        dumps, _ = self._converge(admin)
        details["instances_restored"] = {
            name: {k: v for k, v in d.items() if k != "store"} for name, d in dumps.items()
        }
        if dumps:
            exact = self.plan.guarantee == "exactly_once_v2"
            found = checks.verify_window_stores(self, dumps, checks.expected_windows(self), exact)
            self.failures += [f"after kill -9 and restore: {f}" for f in found]

    def _finish(
        self,
        admin: AdminClient,
        started: float,
        details: dict[str, Any],
        topics: Callable[[], list[str]],
    ) -> Outcome:
        """Close every instance, check the logs, delete ``topics()`` after a correct run and
        write ``report.json``: the end of every kind of seed run."""
        self._close_all()
        self.failures += checks.verify_logs(self.instances, self.plan.marker, details)
        details["timeline"] = self.timeline
        details["instance_events"] = {i.name: i.events for i in self.instances}
        if not self.failures:
            delete_topics(admin, topics(), timeout=30)
        outcome = Outcome(
            self.plan.describe(), self.failures, time.monotonic() - started, self.workdir, details
        )
        (self.workdir / "report.json").write_text(
            json.dumps(
                {"plan": outcome.plan, "failures": outcome.failures, "details": details},
                indent=1,
                default=str,
            )
        )
        return outcome

    def note(self, what: str) -> None:
        self.timeline.append(f"{time.monotonic() - self._t0:7.1f}s {what}")

    def _create_topics(self, admin: AdminClient) -> None:
        for role, topic in self.topics.items():
            partitions = self.plan.partitions
            if role == "clients" and self.kind.static_clients:
                partitions = 2  # a global table's topic need not match anything
            create_topic(admin, topic, partitions)

    def _new_instance(self) -> Instance:
        plan = self.plan
        spec = {
            "kind": plan.kind,
            "topics": self.topics,
            "app_id": self.app_id,
            "bootstrap": self.broker.bootstrap,
            "guarantee": plan.guarantee,
            "commit_interval_ms": plan.commit_interval_ms,
            "standbys": plan.standbys,
            "cache_max_bytes": plan.cache_max_bytes,
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "windows": None if plan.windows is None else asdict(plan.windows),
        }
        instance = Instance(len(self.instances), self.workdir, spec)
        self.instances.append(instance)
        return instance

    def live(self) -> list[Instance]:
        return [i for i in self.instances if i.alive()]

    # -- input -------------------------------------------------------------------------------
    def _produce(self, events: list[Event], malformed: list[Malformed], rate: int | None) -> None:
        """Produce ``events`` (at ``rate`` per second, or at once) with ``malformed`` records
        spread among them (at the end when pre-loading), and wait for every delivery."""
        producer = InputProducer(self.broker.bootstrap, self.produced)
        times = record_times(events, self.base_ms)
        inputs.produce(producer, self.topics, (events, malformed, rate), times, self.plan.seed)

    def _read_back(self, admin: AdminClient, details: dict[str, Any]) -> None:
        """Replace the input as planned by the input the topics hold (``inputs.py``)."""
        roles = ["positions", *self.kind.inputs]
        back = inputs.read_back(self.broker.bootstrap, self.topics, roles,
                                lambda topic: partition_count(admin, topic))  # fmt: skip
        self.produced.events, self.produced.malformed = back.events, back.malformed
        self.produced.read_back = True
        details["input"] = self.produced.summary()
        if self.produced.errors:
            self.note(f"input: {len(self.produced.errors)} delivery errors (the oracle reads "
                      "the topics back)")  # fmt: skip

    # -- faults ------------------------------------------------------------------------------
    def _live_phase(self) -> None:
        producer = threading.Thread(
            target=self._produce,
            args=(self.plan.live, self.plan.malformed_live, self.plan.rate),
            name="chaos-input",
        )
        self.note(f"live input: {len(self.plan.live)} records at {self.plan.rate}/s")
        start = time.monotonic()
        producer.start()
        try:
            for fault in self.plan.faults:
                wait = start + fault.at_s - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # the schedule's next fault time
                self._apply(fault)
        finally:
            producer.join()
        self.note("live input done")

    def _pick(self, fault: Fault) -> Instance | None:
        live = [i for i in self.live() if not i.paused]
        return live[fault.instance % len(live)] if live else None

    def _apply(self, fault: Fault) -> None:
        target = self._pick(fault)
        if fault.kind in ("kill9", "kill9_wipe") and target is not None:
            self.note(f"{fault.kind} {target.name}, down {fault.delay_s:.1f}s")
            target.kill9()
            if fault.kind == "kill9_wipe":
                target.wipe()
            time.sleep(fault.delay_s)  # the fault: the process stays dead this long
            target.start()
        elif fault.kind == "pause" and target is not None:
            seconds = SESSION_TIMEOUT_MS / 1000 + 3.0
            self.note(f"pause {target.name} for {seconds:.0f}s (past the session timeout)")
            target.pause()
            time.sleep(seconds)  # the fault: a process frozen past its session timeout
            target.resume()
        elif fault.kind == "broker":
            self.note(f"broker stopped for {fault.seconds:.0f}s")
            self.broker.stop()
            time.sleep(fault.seconds)  # the fault: the broker is down this long
            self.broker.start()
            self.note("broker started again")
        elif fault.kind == "scale_up" and len(self.live()) < MAX_INSTANCES:
            instance = self._new_instance()
            self.note(f"scale up: {instance.name}")
            instance.start()
        elif fault.kind == "scale_down" and target is not None and len(self.live()) > 1:
            self.note(f"scale down: {target.name} closes")
            self._clean_close(target)
        elif fault.kind == "restart" and target is not None:
            self.note(f"restart {target.name} (clean close, same state dir)")
            self._clean_close(target)
            target.start()
        else:
            self.note(f"{fault.kind}: not applicable now, skipped")

    def _clean_close(self, instance: Instance) -> None:
        code = instance.terminate()
        if code is None:
            self.failures.append(f"{instance.name} did not close within 90 s of SIGTERM")
        elif code != 0:
            self.failures.append(f"{instance.name} closed with exit code {code}")

    def _revive_crashed(self) -> None:
        for instance in self.instances:
            if instance.proc is not None and instance.proc.poll() not in (None, 0):
                # Died on its own (not one of ours): that is a finding, and it runs again.
                self.failures.append(
                    f"{instance.name} exited by itself with {instance.proc.returncode}"
                )
                self.note(f"{instance.name} had exited by itself: started again")
                instance.start()

    def _recover_all(self) -> None:
        for instance in self.instances:
            if instance.paused:
                instance.resume()
        self._revive_crashed()
        if not self.live():
            self._new_instance().start()

    # -- convergence -------------------------------------------------------------------------
    def group_topics(self, admin: AdminClient) -> dict[str, int]:
        topology = self.kind.build(self.topics, self.plan.windows)
        names = {t for sub in topology.subtopologies for t in sub.source_topics(self.app_id)}
        return {t: partition_count(admin, t) for t in sorted(names)}

    def _converge(
        self, admin: AdminClient
    ) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, int], int]]:
        """Wait until lag is 0 everywhere and every instance RUNNING with the result store's
        partitions covered once; return the instances' dumps and the last lag seen."""
        topics = self.group_topics(admin)
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        lag: dict[tuple[str, int], int] = {}
        dumps: dict[str, dict[str, Any]] = {}
        why = "nothing checked yet"
        while time.monotonic() < deadline:
            self._revive_crashed()
            try:
                lag = group_lag(self.broker.bootstrap, self.app_id, topics)
            except KafkaException as exc:  # the coordinator moving or loading: ask again
                why = f"committed offsets not readable: {exc}"
                time.sleep(1.0)
                continue
            behind = {tp: n for tp, n in lag.items() if n}
            if behind:
                why = f"lag on {len(behind)} partitions, e.g. {sorted(behind.items())[:4]}"
                time.sleep(1.0)  # polling the group's progress
                continue
            dumps = {i.name: i.dump() for i in self.live()}
            problem = checks.coverage_problem(dumps, self.plan.partitions, self.kind)
            if problem is None and not any(
                group_lag(self.broker.bootstrap, self.app_id, topics).values()
            ):
                self.note("converged: lag 0, every instance RUNNING")
                return dumps, lag
            why = problem or "lag moved again"
            time.sleep(1.0)  # polling the instances' state
        self.failures.append(f"did not converge within {CONVERGE_TIMEOUT_S:.0f}s: {why}")
        try:
            dumps = {i.name: i.dump() for i in self.live()}
        except AssertionError as exc:
            self.failures.append(f"final dump failed: {exc}")
            return {}, lag
        return dumps, lag

    def _close_all(self) -> None:
        for instance in self.instances:
            if instance.alive():
                self._clean_close(instance)
