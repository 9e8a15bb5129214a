"""us-shareholders with two instances, kill -9 during the digest and during updates.

Every eligible client gets exactly one job and at least one email (a duplicate email is
possible only if a crash fell between SMTP acceptance and the job's commit, and then has the
same Message-ID); a restart does not run the week again; ``/holders`` from every instance
equals the oracle after a crash during position updates.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError
from confluent_kafka.admin import AdminClient

from tests.support.kafka import WaitTimeout, delete_topics, unique_name, wait_until
from tests.support.positions import produce
from tests.support.smtp import smtp_sink as smtp_sink
from us_shareholders.demo import expected_emails, generate
from us_shareholders.holder_pages import HolderListingError, all_holders
from us_shareholders.kafka_topics import create_topics, service_topics
from us_shareholders.mailsink import SmtpSink
from us_shareholders.venues import VenueMatcher

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Instance:
    def __init__(self, env: dict[str, str], workdir: Path, index: int) -> None:
        self.port = free_port()
        self.env = {**env, "USH_HTTP_PORT": str(self.port),
                    "USH_STATE_DIR": str(workdir / f"state-{index}")}  # fmt: skip
        self.log = workdir / f"instance-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "us_shareholders.cli", "run"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def get(self, path: str) -> httpx.Response | None:
        assert self.proc is not None
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(self.base + path, timeout=10)
        except httpx.HTTPError:
            return None

    def ready(self) -> bool:
        reply = self.get("/readyz")
        return reply is not None and reply.status_code == 200

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    name = unique_name("ushsys")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)


def read_jobs(bootstrap: str, topic: str) -> Counter[str]:
    """Committed digest jobs per client (``read_committed``, to the end of every partition)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("jobs"),
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "enable.partition.eof": True})  # fmt: skip
    try:
        consumer.subscribe([topic])
        partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        done: set[int] = set()
        jobs: Counter[str] = Counter()

        def drained() -> bool:
            for msg in consumer.consume(500, timeout=0.5):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        done.add(msg.partition() or 0)
                    continue
                value = msg.value()
                assert value is not None
                jobs[json.loads(value)["client"]] += 1
            return len(done) == partitions

        wait_until(drained, f"the end of {topic}", TIMEOUT_S)
        return jobs
    finally:
        consumer.close()


def diagnose(instances: list[Instance]) -> str:
    """Each instance's ``/digests`` and the tail of its log, for a failure message."""
    parts = []
    for i, instance in enumerate(instances):
        reply = instance.get("/digests") if instance.proc and instance.proc.poll() is None else None
        digests = reply.text if reply is not None else "(no answer)"
        log_tail = instance.log.read_text(errors="replace")[-4000:]
        parts.append(f"--- instance {i}: /digests {digests}\n{log_tail}")
    return "\n".join(parts)


def encoded(records: list[tuple[str, Any]]) -> list[tuple[str, bytes | None]]:
    return [(k, None if v is None else json.dumps(v).encode()) for k, v in records]


def holders_oracle(records: list[tuple[str, Any]]) -> dict[str, list[str]]:
    table: dict[str, Any] = {}
    for pid, pos in records:
        if pos is None:
            table.pop(pid, None)
        else:
            table[pid] = pos
    venues = VenueMatcher()
    holders: dict[str, list[str]] = {}
    for pid, pos in table.items():
        if venues.is_us(pos["exchange"]):
            holders.setdefault(pos["client"], []).append(pid)
    return {client: sorted(ids) for client, ids in holders.items()}


def test_kill9_during_digest_and_updates_keeps_jobs_exactly_once(
    bootstrap_servers: str, app_id: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    positions, clients = f"{app_id}-positions", f"{app_id}-clients"
    create_topics({"bootstrap.servers": bootstrap_servers},
                  service_topics(positions, clients, None, app_id, partitions=6))  # fmt: skip
    data = generate(clients=300, positions=1500, seed=11)
    produce(bootstrap_servers, positions, encoded(data["positions"]))
    produce(bootstrap_servers, clients, [(k, json.dumps(v).encode()) for k, v in data["clients"]])
    expected = expected_emails(data, VenueMatcher())
    env = {**os.environ, "USH_BOOTSTRAP_SERVERS": bootstrap_servers, "USH_APPLICATION_ID": app_id,
           "USH_POSITIONS_TOPIC": positions, "USH_CLIENTS_TOPIC": clients,
           "USH_SMTP_PORT": str(smtp_sink.port), "USH_COMMIT_INTERVAL_MS": "200"}  # fmt: skip
    instances = [Instance(env, tmp_path, i) for i in range(2)]
    try:
        for instance in instances:
            instance.start()
        wait_until(lambda: all(i.ready() for i in instances), "both instances ready", TIMEOUT_S)

        # kill -9 of one instance right after the digest was asked for, then a restart.
        assert httpx.post(instances[0].base + "/digests/run", timeout=10).status_code == 202
        instances[1].kill9()
        instances[1].start()
        try:
            wait_until(
                lambda: len({m["To"] for m in smtp_sink.messages()}) >= expected,
                f"{expected} recipients",
                TIMEOUT_S,
            )
        except WaitTimeout as exc:
            got = len({m["To"] for m in smtp_sink.messages()})
            raise AssertionError(f"{exc}; got {got}\n{diagnose(instances)}") from exc
        jobs = read_jobs(bootstrap_servers, f"{app_id}-digests")
        assert len(jobs) == expected
        assert set(jobs.values()) == {1}, "a client got more than one job"
        ids_by_recipient: dict[str, set[str]] = {}
        for message in smtp_sink.messages():
            ids_by_recipient.setdefault(message["To"], set()).add(message["Message-ID"])
        assert all(len(ids) == 1 for ids in ids_by_recipient.values())
        duplicates = len(smtp_sink.messages()) - len(ids_by_recipient)
        print(f"{expected} clients, {duplicates} duplicate emails (same Message-ID)")

        # A restarted instance does not run the week again; neither does a second request.
        wait_until(lambda: all(i.ready() for i in instances), "both instances ready", TIMEOUT_S)
        assert httpx.post(instances[0].base + "/digests/run", timeout=10).status_code == 202

        def answered() -> bool:
            replies = [i.get("/digests") for i in instances]
            if any(r is None or r.status_code != 200 for r in replies):
                return False
            parts = [p for r in replies if r is not None for p in r.json()["partitions"]]
            week = replies[0].json()["current_week"] if replies[0] is not None else None
            return len(parts) == 6 and all(p["request_answered"] == week for p in parts)

        wait_until(answered, "every partition to answer the second request", TIMEOUT_S)
        assert read_jobs(bootstrap_servers, f"{app_id}-digests") == jobs

        # kill -9 during position updates, restart: /holders everywhere equals the oracle.
        updates = generate(clients=300, positions=1500, seed=12)["positions"][-600:]
        instances[0].kill9()
        produce(bootstrap_servers, positions, encoded(updates))
        instances[0].start()
        oracle = holders_oracle(data["positions"] + updates)

        def agrees() -> bool:
            for instance in instances:
                try:
                    listed = all_holders(instance.get, limit=100)  # several pages
                except HolderListingError:
                    return False
                got = {h["client"]: [p["id"] for p in h["positions"]] for h in listed}
                if got != oracle:
                    return False
            return True

        wait_until(agrees, "/holders from every instance to equal the oracle", TIMEOUT_S)
        for instance in instances:
            assert instance.stop() == 0, instance.log.read_text()[-3000:]
    finally:
        for instance in instances:
            if instance.proc is not None and instance.proc.poll() is None:
                instance.kill9()
