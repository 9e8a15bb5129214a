"""W5: the weekly digest of ``us-shareholders``, streamtable only (no Kafka Streams reference).

``measure(...)`` (called by ``bench/run.py``) loads ``us_shareholders.demo.generate(clients,
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
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from us_shareholders.demo import expected_emails, generate
from us_shareholders.kafka_topics import create_topics, service_topics
from us_shareholders.mailsink import SmtpSink
from us_shareholders.venues import VenueMatcher

PARTITIONS = 4


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


def caught_up(
    group: str, positions: str, committed: Any, ends: Any, topics_with_prefix: Any
) -> bool:
    """Whether ``group`` committed the positions topic and its repartition topics to the end
    (exactly-once: a repartition partition's last offset is a transaction marker)."""
    done = committed(group)
    wanted = [(positions, 0)] + [
        (t, 1) for t in topics_with_prefix(group + "-") if t.endswith("-repartition")
    ]
    for topic, slack in wanted:
        found = ends(topic)
        if found is None:
            return False
        for p, end in found.items():
            if end > 0 and done.get((topic, p), 0) < end - slack:
                return False
    return True


def measure(
    *,
    bootstrap: str,
    run_id: str,
    clients: int,
    positions: int,
    state_root: Path,
    mail_dir: Path,
    start_child: Any,
    committed: Any,
    ends: Any,
    topics_with_prefix: Any,
    port: int,
    timeout_s: float = 300.0,
    log: Any = print,
) -> dict[str, Any]:
    """See the module docstring. ``start_child(argv, name, env)`` spawns a ``Child`` (bench/run.py);
    ``committed(group)``, ``ends(topic)`` and ``topics_with_prefix(prefix)`` are ``Offsets``
    methods."""
    app_id = f"{run_id}-w5"
    topics = {
        "positions": f"{app_id}-positions",
        "clients": f"{app_id}-clients",
        "instruments": f"{app_id}-instruments",
    }
    kafka = {"bootstrap.servers": bootstrap}
    create_topics(
        kafka,
        service_topics(
            topics["positions"], topics["clients"], topics["instruments"], app_id, PARTITIONS
        ),
    )
    data = generate(clients, positions)
    expected = expected_emails(data, VenueMatcher())
    loaded = _load(bootstrap, topics, data)
    log(f"W5: loaded {loaded:,} records ({clients:,} clients); {expected:,} digests expected")
    digests = f"{app_id}-digests"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{app_id}-counter",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.assign([TopicPartition(digests, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    with SmtpSink(mail_dir) as sink:
        env = {
            **os.environ,
            "USH_BOOTSTRAP_SERVERS": bootstrap,
            "USH_APPLICATION_ID": app_id,
            "USH_POSITIONS_TOPIC": topics["positions"],
            "USH_CLIENTS_TOPIC": topics["clients"],
            "USH_INSTRUMENTS_TOPIC": topics["instruments"],
            "USH_SMTP_HOST": "127.0.0.1",
            "USH_SMTP_PORT": str(sink.port),
            "USH_COMMIT_INTERVAL_MS": "200",
            "USH_MAIL_FROM": "US holdings <digest@bench.example>",
        }
        argv = [
            sys.executable, "-m", "us_shareholders.cli", "run",
            "--http-port", str(port),
            "--state-dir", str(state_root / app_id),
        ]  # fmt: skip
        child = start_child(argv, "w5-service", env)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(timeout=30) as http:
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
                while not caught_up(
                    app_id, topics["positions"], committed, ends, topics_with_prefix
                ):
                    child.check_alive()
                    if time.monotonic() - started > timeout_s:
                        raise RuntimeError(f"W5: not caught up after {timeout_s:.0f}s")
                    time.sleep(0.2)
                log(
                    f"W5: service ready after {ready:.1f}s, caught up after "
                    f"{time.monotonic() - started:.1f}s; POST /digests/run"
                )
                posted = time.monotonic()
                http.post(f"{base}/digests/run").raise_for_status()
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
                counted = http.get(f"{base}/digests").json()
                reported = sum(
                    run["jobs"]
                    for part in counted["partitions"]
                    for week, run in (part.get("runs") or {}).items()
                    if week == counted["current_week"]
                )
        finally:
            child.stop()
            consumer.close()
        emails = len(sink.deliveries())
    jobs_s = jobs_at - posted
    emails_s = emails_at - posted
    log(
        f"W5: {jobs:,} jobs in {jobs_s:.2f}s ({jobs / jobs_s:,.0f}/s), "
        f"{emails:,} emails in {emails_s:.2f}s ({emails / emails_s:,.0f}/s)"
    )
    if reported != expected:
        raise RuntimeError(f"W5: /digests reports {reported:,} jobs, expected {expected:,}")
    return {
        "clients": clients,
        "positions": positions,
        "input_records": loaded,
        "jobs": jobs,
        "jobs_reported": reported,
        "emails": emails,
        "jobs_s": round(jobs_s, 3),
        "emails_s": round(emails_s, 3),
        "jobs_per_s": round(jobs / jobs_s, 1),
        "emails_per_s": round(emails / emails_s, 1),
    }
