"""One seed of the fault harness run against the us-shareholders SERVICE (``--service``).

The same plan as a library seed (``plan.draw``: positions, clients, malformed records, faults),
made the service's: venues in the spellings booking systems use (mixed case, MIC codes, market
tiers), clients with emails (some without, some unsubscribed, some deleted), no null keys (the
positions topic is compacted: the broker refuses a null key, and its whole batch with it).

1. Create the service's topics with its own helper, pre-load them (malformed records last),
   start N ``us-shareholders run`` processes (own state dir and HTTP port each, an SMTP sink).
2. The live phase: input at the plan's rate with malformed records mixed in, the plan's faults
   applied to the service processes (``runner.SeedRun``'s schedule).
3. Every instance that should run runs again; wait until the group committed the positions
   topic and the repartition topic to their ends and every instance answers ``/readyz`` 200.
4. Check: ``GET /holders`` from every instance, every page (following ``next_cursor``), equals
   the oracle (``VenueMatcher`` decides US); ``GET /holders/{client}`` from every instance
   for a sample; ``POST /digests/run``, every partition answers, every eligible client gets an
   email, and ``<app>-digests`` (read_committed) holds exactly one job per eligible client (a
   US holder with an email, not unsubscribed) with its positions; the DLQ holds each malformed
   record (once under EOS); no log line over 4 KB and no malformed value in any log.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from tests.chaos import checks
from tests.chaos.cluster import Broker, Instance
from tests.chaos.inputs import Produced
from tests.chaos.kafka_io import group_lag, partition_count, read_topic
from tests.chaos.plan import Fault, Malformed, Plan, draw
from tests.chaos.runner import CONVERGE_TIMEOUT_S, Outcome, SeedRun
from tests.chaos.topologies import KINDS, Event, snapshot
from tests.support.kafka import REPO_ROOT, WaitTimeout, wait_until
from us_shareholders.digest import DigestControl
from us_shareholders.holder_pages import HolderListingError, all_holders
from us_shareholders.kafka_topics import create_topics, service_topics
from us_shareholders.mailsink import SmtpSink
from us_shareholders.schedule import WEEKDAYS, parse_schedule
from us_shareholders.topology import TopologySettings, build_topology
from us_shareholders.venues import VenueMatcher

# The service's consumer session timeout (the runtime's default; the service does not set it):
# a pause must outlast it for the instance to be a zombie when it wakes up.
SERVICE_SESSION_TIMEOUT_S = 10.0
HTTP_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 90.0
SAMPLE_CLIENTS = 24
HOLDERS_PAGE = 50  # holders per page of GET /holders: several pages at the default size

# How the plan's exchanges are spelled in the service's input: US venues by name, MIC code or
# market tier in any case and spacing; non-US venues likewise (never counted as US).
SPELLINGS: dict[str, list[str]] = {
    "NASDAQ": ["NASDAQ", "nasdaq", "Nasdaq GS", " XNAS", "xnas", "NASDAQ  CM"],
    "NYSE": ["NYSE", "nyse", "XNYS", "NYSE Arca", "arcx", "Nyse American", "AMEX"],
    "LSE": ["LSE", "XLON", "lse", "London Stock Exchange"],
    "XETRA": ["XETRA", "Xetra", "XETR", "xetra "],
    "TSE": ["TSE", "XTKS", "tse", "NYSE Euronext"],  # not a US venue, despite the prefix
}


def draw_service(
    seed: int,
    *,
    guarantee: str | None = None,
    faults: list[str] | None = None,
    standbys: int | None = None,
) -> Plan:
    """The library plan of ``seed`` (positions and clients, as the foreign-key join's) made the
    service's input; keyword arguments pin what would otherwise be drawn."""
    base = draw(seed, kind="fkjoin", guarantee=guarantee, faults=faults, standbys=standbys)
    rng = random.Random(seed * 104729 + 17)

    def event(ev: Event) -> Event:
        role, key, value = ev
        if value is None:
            return ev
        if role == "positions":
            return role, key, {**value, "exchange": rng.choice(SPELLINGS[value["exchange"]])}
        roll = rng.random()
        email = None if roll < 0.12 else f"{key}@example.com"
        return role, key, {**value, "email": email, "unsubscribed": 0.12 <= roll < 0.22}

    def keyed(bad: Malformed) -> Malformed:
        key = bad.key if bad.key is not None else f"bad-null-{rng.randrange(10**6)}".encode()
        return Malformed(key, bad.value, bad.kind)

    return replace(
        base,
        kind="service",
        preload=[event(e) for e in base.preload],
        live=[event(e) for e in base.live],
        malformed_preload=[keyed(m) for m in base.malformed_preload],
        malformed_live=[keyed(m) for m in base.malformed_live],
    )


def holders_oracle(events: list[Event]) -> dict[str, dict[str, Any]]:
    """client -> {position id: {ticker, exchange, amount}} of the US positions standing."""
    venues = VenueMatcher()
    holders: dict[str, dict[str, Any]] = {}
    for pid, pos in snapshot(events, "positions").items():
        if venues.is_us(pos["exchange"]):
            held = {"ticker": pos["ticker"], "exchange": pos["exchange"], "amount": pos["amount"]}
            holders.setdefault(pos["client"], {})[pid] = held
    return holders


def eligible_clients(events: list[Event], holders: dict[str, Any]) -> dict[str, str]:
    """client -> email of every US holder with an email who has not unsubscribed."""
    clients = snapshot(events, "clients")
    out = {}
    for client in holders:
        info = clients.get(client)
        if info is not None and info.get("email") and not info.get("unsubscribed"):
            out[client] = info["email"]
    return out


def holder_json(client: str, positions: dict[str, Any]) -> dict[str, Any]:
    return {"client": client, "positions": [{"id": p, **positions[p]} for p in sorted(positions)]}


def quiet_schedule(now: datetime) -> str:
    """A weekly schedule not due during a run (half a week away): only the request runs."""
    later = now + timedelta(days=3, hours=12)
    return f"{WEEKDAYS[later.weekday()]} {later:%H:%M} UTC"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceInstance(Instance):
    """One ``us-shareholders run`` process; ``spec`` holds its ``USH_*`` environment. It keeps
    its HTTP port and state dir across restarts."""

    def __init__(self, number: int, workdir: Path, spec: dict[str, Any]) -> None:
        super().__init__(number, workdir, spec)
        self.port = free_port()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("USH_")}
        env.update(self.spec)
        env["USH_HTTP_PORT"] = str(self.port)
        env["USH_STATE_DIR"] = str(self.state_dir)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "us_shareholders.cli", "run"],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.note(f"started pid {self.proc.pid} on port {self.port}")

    def get(self, path: str) -> httpx.Response | None:
        """The instance's answer, or None when it does not answer (yet). Raises
        AssertionError once the process has exited: it will never answer."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited by itself with {self.proc.returncode}")
        try:
            return httpx.get(self.base + path, timeout=HTTP_TIMEOUT_S)
        except httpx.HTTPError:
            return None

    def ready(self) -> bool:
        reply = self.get("/readyz")
        return reply is not None and reply.status_code == 200

    def terminate(self) -> int | None:
        """SIGTERM once the process handles it (its HTTP server answers: the signal handlers
        are installed right after); None if it did not exit within 90 s (then it is killed)."""
        assert self.proc is not None
        if self.paused:
            self.resume()
        proc = self.proc
        wait_until(lambda: proc.poll() is not None or self.get("/healthz") is not None,
                   f"{self.name} to answer HTTP", 60.0)  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
            self.note("did not stop within 90 s of SIGTERM: killed")
            return None
        self.note(f"closed (SIGTERM), exit {code}")
        return code

    def dump(self, timeout: float = 30.0) -> dict[str, Any]:
        reply = self.get("/readyz")
        state = "RUNNING" if reply is not None and reply.status_code == 200 else "NOT_READY"
        return {"state": state, "port": self.port}


class ServiceRun(SeedRun):
    """A seed of the service: ``SeedRun``'s input and fault schedule, the service's processes
    and checks (see the module docstring)."""

    def __init__(self, plan: Plan, broker: Broker, workdir: Path) -> None:
        self.plan = plan
        self.broker = broker
        self.workdir = workdir
        self.kind = KINDS["fkjoin"]  # positions and clients: what the producer needs
        tag = f"{plan.seed}-{uuid.uuid4().hex[:8]}"
        self.app_id = f"svcchaos-{tag}"
        self.topics = {role: f"svcchaos-in-{tag}-{role}" for role in ("positions", "clients")}
        self.instances: list[Instance] = []
        self.produced = Produced()
        self.failures: list[str] = []
        self.timeline: list[str] = []
        self._t0 = time.monotonic()
        self.schedule = quiet_schedule(datetime.now(UTC))
        self.sink: SmtpSink | None = None
        self.converged = False

    # -- the run -----------------------------------------------------------------------------
    def run(self) -> Outcome:
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap})
        details: dict[str, Any] = {"app_id": self.app_id, "topics": self.topics}
        try:
            with SmtpSink(self.workdir / "mail") as sink:
                self.sink = sink
                self._create_topics(admin)
                self._produce(self.plan.preload, self.plan.malformed_preload, rate=None)
                self.note(f"pre-loaded {len(self.plan.preload)} records")
                for _ in range(self.plan.instances):
                    self._new_instance().start()
                self._live_phase()
                self._recover_all()
                lag = self._converge_service(admin)
                self._read_back(admin, details)  # the broker answers again by now
                details["lag"] = {f"{t}[{p}]": n for (t, p), n in lag.items() if n}
                if self.converged:
                    self._verify(details)
                    self.failures += checks._check_dlq(self, self.eos, details)
        except Exception as exc:  # a harness step that could not complete is a failed seed
            self.failures.append(f"run aborted: {type(exc).__name__}: {exc}")

        def topics() -> list[str]:  # the service's internal topics too: its app id prefixes them
            found = admin.list_topics(timeout=30).topics
            return [*self.topics.values(), *(t for t in found if t.startswith(self.app_id))]

        return self._finish(admin, started, details, topics)

    @property
    def eos(self) -> bool:
        return self.plan.guarantee == "exactly_once_v2"

    def _create_topics(self, admin: AdminClient) -> None:
        topics = service_topics(self.topics["positions"], self.topics["clients"], None,
                                self.app_id, partitions=self.plan.partitions)  # fmt: skip
        create_topics({"bootstrap.servers": self.broker.bootstrap}, topics)

    def _new_instance(self) -> Instance:
        plan = self.plan
        assert self.sink is not None
        env = {
            "USH_BOOTSTRAP_SERVERS": self.broker.bootstrap,
            "USH_APPLICATION_ID": self.app_id,
            "USH_POSITIONS_TOPIC": self.topics["positions"],
            "USH_CLIENTS_TOPIC": self.topics["clients"],
            "USH_PROCESSING_GUARANTEE": plan.guarantee,
            "USH_COMMIT_INTERVAL_MS": str(plan.commit_interval_ms),
            "USH_NUM_STANDBY_REPLICAS": str(plan.standbys),
            "USH_SMTP_HOST": "127.0.0.1",
            "USH_SMTP_PORT": str(self.sink.port),
            "USH_DIGEST_SCHEDULE": self.schedule,
        }
        instance = ServiceInstance(len(self.instances), self.workdir, env)
        self.instances.append(instance)
        return instance

    def _apply(self, fault: Fault) -> None:
        if fault.kind != "pause":
            super()._apply(fault)
            return
        target = self._pick(fault)
        if target is None:
            self.note("pause: not applicable now, skipped")
            return
        seconds = SERVICE_SESSION_TIMEOUT_S + 3.0
        self.note(f"pause {target.name} for {seconds:.0f}s (past the session timeout)")
        target.pause()
        time.sleep(seconds)  # the fault: a process frozen past its session timeout
        target.resume()

    # -- convergence -------------------------------------------------------------------------
    def group_topics(self, admin: AdminClient) -> dict[str, int]:
        settings = TopologySettings(
            positions_topic=self.topics["positions"],
            clients_topic=self.topics["clients"],
            instruments_topic=None,
            digests_topic=f"{self.app_id}-digests",
            requests_topic=f"{self.app_id}-digest-requests",
            venues=VenueMatcher(),
            schedule=parse_schedule(self.schedule),
        )
        topology = build_topology(settings, DigestControl())
        names = {t for sub in topology.subtopologies for t in sub.source_topics(self.app_id)}
        return {t: partition_count(admin, t) for t in sorted(names)}

    def _service_instances(self) -> list[ServiceInstance]:
        return [i for i in self.live() if isinstance(i, ServiceInstance)]

    def _converge_service(self, admin: AdminClient) -> dict[tuple[str, int], int]:
        """Wait until lag is 0 on the positions and repartition topics and every instance
        answers ``/readyz`` 200; return the last lag seen."""
        topics = self.group_topics(admin)
        deadline = time.monotonic() + CONVERGE_TIMEOUT_S
        lag: dict[tuple[str, int], int] = {}
        why = "nothing checked yet"
        while time.monotonic() < deadline:
            for instance in self.instances:
                if instance.proc is not None and instance.proc.poll() not in (None, 0):
                    # Died on its own while catching up: a finding, and it runs again.
                    self.failures.append(
                        f"{instance.name} exited by itself with {instance.proc.returncode}"
                    )
                    instance.start()
            try:
                lag = group_lag(self.broker.bootstrap, self.app_id, topics)
                behind = {tp: n for tp, n in lag.items() if n}
                if behind:
                    why = f"lag on {len(behind)} partitions, e.g. {sorted(behind.items())[:4]}"
                else:
                    not_ready = [i.name for i in self._service_instances() if not i.ready()]
                    if not not_ready and not any(
                        group_lag(self.broker.bootstrap, self.app_id, topics).values()
                    ):
                        self.note("converged: lag 0, every instance ready")
                        self.converged = True
                        return lag
                    why = f"not ready: {not_ready}" if not_ready else "lag moved again"
            except KafkaException as exc:  # e.g. NOT_COORDINATOR just after a broker restart
                why = f"the group's offsets unreadable: {exc}"
            time.sleep(1.0)  # polling the group's progress and the instances' readiness
        self.failures.append(f"did not converge within {CONVERGE_TIMEOUT_S:.0f}s: {why}")
        return lag

    # -- checks ------------------------------------------------------------------------------
    def _answer(self, instance: ServiceInstance, path: str) -> httpx.Response:
        """The first answer that is not 'not ready / owner unreachable' (503/504) within
        CHECK_TIMEOUT_S; those are retried, anything else is the answer."""

        def settled() -> httpx.Response | None:
            reply = instance.get(path)
            return None if reply is None or reply.status_code in (503, 504) else reply

        try:
            return wait_until(settled, f"{instance.name} to answer {path}", CHECK_TIMEOUT_S, 0.5)
        except WaitTimeout as exc:
            reply = instance.get(path)
            status = "nothing" if reply is None else f"{reply.status_code} {reply.text[:200]}"
            raise AssertionError(f"{exc}: last answer {status}") from exc

    def _verify(self, details: dict[str, Any]) -> None:
        events = self.produced.events
        oracle = holders_oracle(events)
        eligible = eligible_clients(events, oracle)
        details["holders"] = len(oracle)
        details["eligible"] = len(eligible)
        instances = self._service_instances()
        expected = [holder_json(c, oracle[c]) for c in sorted(oracle)]
        for instance in instances:
            try:  # every page: a few, so that the cursor is checked under faults too
                listed = all_holders(partial(self._answer, instance), limit=HOLDERS_PAGE)
            except HolderListingError as exc:
                self.failures.append(f"/holders on {instance.name}: {exc}")
                continue
            got = {h["client"]: h for h in listed}
            want = {h["client"]: h for h in expected}
            bad = sorted(c for c in set(got) | set(want) if got.get(c) != want.get(c))
            if bad:
                self.failures.append(
                    f"/holders on {instance.name}: {len(bad)} of {len(want)} holders differ from "
                    f"the oracle, e.g. "
                    + "; ".join(f"{c}: want {want.get(c)}, got {got.get(c)}" for c in bad[:3])
                )
        rng = random.Random(self.plan.seed)
        known = sorted(snapshot(events, "clients"))
        sample = rng.sample(sorted(oracle), min(len(oracle), SAMPLE_CLIENTS * 2 // 3))
        others = [c for c in known if c not in oracle]
        sample += rng.sample(others, min(len(others), SAMPLE_CLIENTS // 3))
        for instance in instances:
            wrong = []
            for client in sample:
                reply = self._answer(instance, f"/holders/{client}")
                if client in oracle:
                    if reply.status_code != 200 or reply.json() != holder_json(
                        client, oracle[client]
                    ):
                        wrong.append(f"{client}: {reply.status_code} {reply.text[:200]}")
                elif reply.status_code != 404:
                    wrong.append(f"{client} (no US holder): {reply.status_code} {reply.text[:200]}")
            if wrong:
                self.failures.append(
                    f"/holders/{{client}} on {instance.name}: {len(wrong)} of {len(sample)} "
                    f"wrong: {wrong[:3]}"
                )
        self._verify_digest(instances, oracle, eligible, details)

    def _verify_digest(
        self,
        instances: list[ServiceInstance],
        oracle: dict[str, dict[str, Any]],
        eligible: dict[str, str],
        details: dict[str, Any],
    ) -> None:
        reply = self._answer(instances[0], "/digests")
        week = reply.json()["current_week"]
        posted = httpx.post(instances[0].base + "/digests/run", timeout=HTTP_TIMEOUT_S)
        if posted.status_code != 202:
            self.failures.append(f"POST /digests/run: {posted.status_code} {posted.text[:200]}")
            return
        self.note(f"digest of {week} requested")
        partitions = self.plan.partitions
        last: dict[str, Any] = {}

        def answered() -> bool:
            seen: Counter[int] = Counter()
            last.clear()
            for instance in instances:
                got = instance.get("/digests")
                if got is None or got.status_code != 200:
                    last[instance.name] = "no answer" if got is None else got.status_code
                    continue
                for part in got.json()["partitions"]:
                    seen[part["partition"]] += 1
                    last[f"{instance.name}[{part['partition']}]"] = part.get("request_answered")
            return (
                sorted(seen) == list(range(partitions))
                and set(seen.values()) == {1}
                and all(answer == week for answer in last.values())
            )

        try:
            wait_until(answered, "every partition to answer the digest request", CHECK_TIMEOUT_S,
                       interval=0.5)  # fmt: skip
        except WaitTimeout:
            self.failures.append(f"digest: not every partition answered {week}: {last}")
            return
        self.note("every partition answered the digest request")
        # An email is sent only for a committed job (the delivery worker reads read_committed):
        # once every eligible client has one, every run's jobs are committed.
        assert self.sink is not None
        sink = self.sink
        wanted = set(eligible.values())

        def recipients() -> set[str]:
            return {to for d in sink.deliveries() for to in d.rcpt_tos}

        def mailed() -> bool:
            return wanted <= recipients()

        try:
            wait_until(mailed, "an email to every eligible client", CHECK_TIMEOUT_S, interval=1.0)
        except WaitTimeout:
            got_to = recipients()
            self.failures.append(
                f"digest: {len(wanted - got_to)} of {len(wanted)} eligible clients got no "
                f"email, e.g. {sorted(wanted - got_to)[:5]}"
            )
        self.note(f"{len(sink.deliveries())} emails for {len(wanted)} eligible clients")
        topic = f"{self.app_id}-digests"
        jobs = read_topic(self.broker.bootstrap, topic, partitions, read_committed=True)
        per_client: Counter[str] = Counter()
        wrong: list[str] = []
        for record in jobs:
            assert record.value is not None
            job = json.loads(record.value)
            per_client[job["client"]] += 1
            want = oracle.get(job["client"], {})
            listed = {p["id"]: {k: p[k] for k in ("ticker", "exchange", "amount")}
                      for p in job["positions"]}  # fmt: skip
            if job["week"] != week or listed != want or job["email"] != eligible.get(job["client"]):
                wrong.append(job["client"])
        details["digest"] = {"jobs": len(jobs), "eligible": len(eligible),
                             "emails": len(sink.deliveries())}  # fmt: skip
        missing = sorted(set(eligible) - set(per_client))
        extra = sorted(set(per_client) - set(eligible))
        repeated = sorted(c for c, n in per_client.items() if n > 1)
        if missing:
            self.failures.append(
                f"digest: {len(missing)} of {len(eligible)} eligible clients have no job: "
                f"{missing[:8]}"
            )
        if extra:
            self.failures.append(f"digest: {len(extra)} jobs for ineligible clients: {extra[:8]}")
        if repeated:
            self.failures.append(
                f"digest: {len(repeated)} clients have more than one job: {repeated[:8]}"
            )
        if wrong:
            self.failures.append(
                f"digest: {len(wrong)} jobs do not match the oracle (week, positions, email): "
                f"{wrong[:8]}"
            )
