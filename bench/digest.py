"""W5: the weekly digest of ``us-shareholders``, streamtable only (no Kafka Streams reference).

``run_w5(ctx)`` (called by ``bench/run.py``) loads ``us_shareholders.demo.generate(clients,
positions)`` into fresh topics named after the run, starts one service instance
(``python -m us_shareholders.cli run``, its own process, exactly_once_v2, commit interval 200 ms)
delivering to an aiosmtpd sink (:class:`~us_shareholders.mailsink.SmtpSink`, a thread of the
bench process), waits until ``/readyz`` answers 200, then ``POST /digests/run`` and measures from
the POST:

The POST is sent once the service has caught up (its group's committed offsets reach the end of
the positions topic and of its repartition topics): a digest reads the holders' table as it is
when the week becomes due, so an earlier POST would digest a half-built table.

* until the ``<app>-digests`` topic holds every job (a ``read_committed`` consumer counts them;
  the expected number is ``demo.expected_emails``, checked against the ``/digests`` counts):
  jobs/s = jobs / that time;
* until the sink has accepted every email: emails/s = emails / that time.

Reads (``bench/holder_reads.py``): once caught up, a thread of the bench process sends
``IDLE_READS`` ``GET /holders/{client}`` one at a time for a seeded sample of US holders (the usual
latency), and then, from the POST until the digests topic holds every job, reads on the same way:
the latency of a read during a digest, to compare with.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from bench.harness import STATE_ROOT, Child, Ctx, Offsets, free_port, log
from bench.holder_reads import HolderReader, Read, holder_sample, read_latency
from bench.results import DigestResult, HolderReads
from us_shareholders.demo import expected_emails, generate
from us_shareholders.kafka_topics import create_topics, service_topics
from us_shareholders.mailsink import SmtpSink
from us_shareholders.venues import VenueMatcher

PARTITIONS = 4
IDLE_READS = 300
"""``GET /holders/{client}`` requests before the POST (the usual latency, to compare with)."""


def _load(bootstrap: str, topics: dict[str, str], data: dict[str, list[tuple[str, Any]]]) -> int:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 20}
    )
    total = 0
    for name, records in data.items():
        for key, value in records:
            payload = None if value is None else json.dumps(value).encode()
            while True:
                try:
                    producer.produce(topics[name], key=key.encode(), value=payload)
                    break
                except BufferError:
                    producer.poll(0.05)
            total += 1
            if total % 10_000 == 0:
                producer.poll(0)
    if producer.flush(120) != 0:
        raise RuntimeError("W5: could not load the input within 120 s")
    return total


def caught_up(offsets: Offsets, group: str, positions: str) -> bool:
    """Whether ``group`` committed the positions topic and its repartition topics to the end
    (exactly-once: a repartition partition's last offset is a transaction marker)."""
    done = offsets.committed(group)
    wanted = [(positions, 0)] + [
        (t, 1) for t in offsets.topics(group + "-") if t.endswith("-repartition")
    ]
    for topic, slack in wanted:
        found = offsets.ends(topic)
        if found is None:
            return False
        for p, end in found.items():
            if end > 0 and done.get((topic, p), 0) < end - slack:
                return False
    return True


def run_w5(ctx: Ctx) -> DigestResult:
    """W5 in ``ctx``'s run (``BENCH_W5_CLIENTS`` / ``_POSITIONS``), 300 s at most per phase."""
    mail = ctx.logs / "w5-mail"
    try:
        return measure(
            ctx, mail_dir=mail, port=free_port(), timeout_s=min(ctx.settings.timeout_s, 300)
        )
    finally:
        shutil.rmtree(mail, ignore_errors=True)


@dataclass(frozen=True)
class _Delivered:
    """When the digests topic held every job, and the sink every email (monotonic seconds)."""

    jobs: int
    jobs_at: float
    emails_at: float


@dataclass(frozen=True)
class _DigestRun:
    """What one digest run measured: deliveries from ``posted`` (monotonic seconds), the jobs
    ``/digests`` reported, and the holder reads before and during the digest."""

    posted: float
    delivered: _Delivered
    reported: int
    reads_idle: HolderReads
    reads_during: HolderReads


@dataclass(frozen=True)
class _Service:
    """The running service instance: its process, HTTP base address and application id."""

    ctx: Ctx
    child: Child
    base: str
    app_id: str
    timeout_s: float


def measure(ctx: Ctx, *, mail_dir: Path, port: int, timeout_s: float = 300.0) -> DigestResult:
    """See the module docstring; the service's HTTP API on ``port``, its mail in ``mail_dir``."""
    clients, positions = ctx.settings.w5_clients, ctx.settings.w5_positions
    app_id = f"{ctx.run_id}-w5"
    topics = {
        "positions": f"{app_id}-positions",
        "clients": f"{app_id}-clients",
        "instruments": f"{app_id}-instruments",
    }
    create_topics(
        {"bootstrap.servers": ctx.bootstrap},
        service_topics(
            topics["positions"], topics["clients"], topics["instruments"], app_id, PARTITIONS
        ),
    )
    data = generate(clients, positions)
    venues = VenueMatcher()
    expected = expected_emails(data, venues)
    sample = holder_sample(data, venues)
    loaded = _load(ctx.bootstrap, topics, data)
    log(f"W5: loaded {loaded:,} records ({clients:,} clients); {expected:,} digests expected")
    consumer = _digests_reader(ctx.bootstrap, app_id)
    with SmtpSink(mail_dir) as sink:
        argv = [
            sys.executable, "-m", "us_shareholders.cli", "run",
            "--http-port", str(port),
            "--state-dir", str(STATE_ROOT / app_id),
        ]  # fmt: skip
        env = _service_env(ctx.bootstrap, app_id, topics, sink.port)
        child = ctx.child(argv, "w5-service", env)
        service = _Service(ctx, child, f"http://127.0.0.1:{port}", app_id, timeout_s)
        try:
            run = _digest_run(service, topics["positions"], consumer, sink, expected, sample)
        finally:
            child.stop()
            consumer.close()
        emails = len(sink.deliveries())
    return _result(clients, positions, loaded, emails, expected, run)


def _digest_run(
    service: _Service,
    positions: str,
    consumer: Consumer,
    sink: SmtpSink,
    expected: int,
    sample: list[str],
) -> _DigestRun:
    """Once caught up: the idle reads, then the POST, with reads until every job is delivered."""
    base, timeout_s = service.base, service.timeout_s
    with httpx.Client(timeout=30) as http:
        _wait_caught_up(
            service.ctx, http, base, service.child, service.app_id, positions, timeout_s
        )
        reader = HolderReader(base, sample)
        try:
            idle = reader.idle(IDLE_READS, timeout_s)
            reader.begin_digest()
            posted = time.monotonic()
            http.post(f"{base}/digests/run").raise_for_status()
            done = _until_delivered(
                service.child, consumer, sink, expected, posted, timeout_s, reader.end_digest
            )
        finally:
            during = reader.close()
        reported = _reported_jobs(http.get(f"{base}/digests").json())
    return _DigestRun(
        posted, done, reported, _read_figures("before", idle), _read_figures("during", during)
    )


def _read_figures(phase: str, reads: list[Read]) -> HolderReads:
    """The reads' figures, logged with the statuses of those not answered 200."""
    figures = read_latency(reads)
    failed = Counter(r.status for r in reads if r.status != 200)
    log(
        f"W5: GET /holders/{{client}} {phase} the digest: {figures.n} reads, p50 "
        f"{figures.p50_ms} ms, p99 {figures.p99_ms} ms, max {figures.max_ms} ms; "
        f"not 200: {dict(failed) or 'none'} (0: no answer)"
    )
    return figures


def _result(
    clients: int, positions: int, loaded: int, emails: int, expected: int, run: _DigestRun
) -> DigestResult:
    done = run.delivered
    jobs, jobs_s, emails_s = done.jobs, done.jobs_at - run.posted, done.emails_at - run.posted
    log(
        f"W5: {jobs:,} jobs in {jobs_s:.2f}s ({jobs / jobs_s:,.0f}/s), "
        f"{emails:,} emails in {emails_s:.2f}s ({emails / emails_s:,.0f}/s)"
    )
    if run.reported != expected:
        raise RuntimeError(f"W5: /digests reports {run.reported:,} jobs, expected {expected:,}")
    return DigestResult(
        clients=clients,
        positions=positions,
        input_records=loaded,
        jobs=jobs,
        jobs_reported=run.reported,
        emails=emails,
        jobs_s=round(jobs_s, 3),
        emails_s=round(emails_s, 3),
        jobs_per_s=round(jobs / jobs_s, 1),
        emails_per_s=round(emails / emails_s, 1),
        reads_idle=run.reads_idle,
        reads_during_digest=run.reads_during,
    )


def _digests_reader(bootstrap: str, app_id: str) -> Consumer:
    """A read_committed consumer of every partition of ``<app>-digests``, from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{app_id}-counter",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    digests = f"{app_id}-digests"
    consumer.assign([TopicPartition(digests, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    return consumer


def _service_env(
    bootstrap: str, app_id: str, topics: dict[str, str], smtp_port: int
) -> dict[str, str]:
    return {
        **os.environ,
        "USH_BOOTSTRAP_SERVERS": bootstrap,
        "USH_APPLICATION_ID": app_id,
        "USH_POSITIONS_TOPIC": topics["positions"],
        "USH_CLIENTS_TOPIC": topics["clients"],
        "USH_INSTRUMENTS_TOPIC": topics["instruments"],
        "USH_SMTP_HOST": "127.0.0.1",
        "USH_SMTP_PORT": str(smtp_port),
        "USH_COMMIT_INTERVAL_MS": "200",
        "USH_MAIL_FROM": "US holdings <digest@bench.example>",
    }


def _wait_caught_up(
    ctx: Ctx,
    http: httpx.Client,
    base: str,
    child: Child,
    app_id: str,
    positions: str,
    timeout_s: float,
) -> None:
    """Until ``/readyz`` answers 200 and the service's group has caught up (polled every 0.2 s)."""
    started = time.monotonic()
    while True:
        child.check_alive()
        try:
            if http.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"W5: the service is not ready after {timeout_s:.0f}s")
        time.sleep(0.2)
    ready = time.monotonic() - started
    while not caught_up(ctx.offsets, app_id, positions):
        child.check_alive()
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"W5: not caught up after {timeout_s:.0f}s")
        time.sleep(0.2)
    log(
        f"W5: service ready after {ready:.1f}s, caught up after "
        f"{time.monotonic() - started:.1f}s; POST /digests/run"
    )


def _until_delivered(
    child: Child,
    consumer: Consumer,
    sink: SmtpSink,
    expected: int,
    posted: float,
    timeout_s: float,
    on_jobs: Callable[[], None],
) -> _Delivered:
    """Count jobs on the digests topic and emails at the sink until both reach ``expected``;
    ``on_jobs()`` once every job is there."""
    jobs = 0
    jobs_at: float | None = None
    emails_at: float | None = None
    last_report = posted
    while jobs_at is None or emails_at is None:
        child.check_alive()
        if jobs_at is None:
            for msg in consumer.consume(num_messages=10_000, timeout=0.05):
                if msg.error() is None:
                    jobs += 1
            if jobs >= expected:
                jobs_at = time.monotonic()
                on_jobs()
        else:
            time.sleep(0.05)
        if emails_at is None and len(sink.deliveries()) >= expected:
            emails_at = time.monotonic()
        now = time.monotonic()
        if now - posted > timeout_s:
            raise RuntimeError(
                f"W5: after {timeout_s:.0f}s {jobs:,} jobs and "
                f"{len(sink.deliveries()):,} emails of {expected:,}"
            )
        if now - last_report >= 5:
            delivered = len(sink.deliveries())
            log(f"W5: {jobs:,} jobs, {delivered:,} emails ({now - posted:.0f}s)")
            last_report = now
    return _Delivered(jobs, jobs_at, emails_at)


def _reported_jobs(counted: Any) -> int:
    """The jobs of the current week that ``GET /digests`` reports, over all partitions."""
    return sum(
        run["jobs"]
        for part in counted["partitions"]
        for week, run in (part.get("runs") or {}).items()
        if week == counted["current_week"]
    )
