"""One us-shareholders instance end to end: real Kafka, a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from tests.support.kafka import delete_topics, first_record, header, unique_name, wait_until
from tests.support.positions import produce
from tests.support.smtp import smtp_sink as smtp_sink
from us_shareholders.config import ServiceSettings
from us_shareholders.holder_pages import HolderListingError, all_holders
from us_shareholders.mailsink import SmtpSink
from us_shareholders.service import Service

pytestmark = pytest.mark.integration

TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def names(kafka_admin: AdminClient) -> Iterator[dict[str, str]]:
    app = unique_name("ush")
    found = {"app": app, "positions": f"{app}-positions", "clients": f"{app}-clients"}
    yield found
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(app)]
    delete_topics(kafka_admin, topics)


def position(pid: str, client: str, exchange: str) -> bytes:
    pos = {"id": pid, "client": client, "ticker": "AAPL", "exchange": exchange, "amount": 5}
    return json.dumps(pos).encode()


def test_one_instance_serves_holders_and_emails_this_weeks_digest(
    bootstrap_servers: str, names: dict[str, str], tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    port = free_port()
    settings = ServiceSettings(
        bootstrap_servers=bootstrap_servers,
        application_id=names["app"],
        state_dir=tmp_path / "state",
        http_port=port,
        positions_topic=names["positions"],
        clients_topic=names["clients"],
        smtp_port=smtp_sink.port,
        commit_interval_ms=200,
        mail_from="Digest <digest@example.com>",
    )
    service = Service(settings)
    service.ensure_topics(partitions=2)
    produce(bootstrap_servers, names["positions"], [
        ("1", position("1", "client1", "NASDAQ")), ("2", position("2", "client1", "LON")),
        ("3", position("3", "client1", "nyse")), ("4", position("4", "client2", "XNAS")),
        ("5", position("5", "client3", "LON")), ("6", b"not json"),
    ])  # fmt: skip
    produce(bootstrap_servers, names["clients"], [
        ("client1", json.dumps({"name": "Ada", "email": "ada@example.com"}).encode()),
        ("client2", json.dumps({"name": "Bob", "email": "bob@example.com"}).encode()),
    ])  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    service.start()
    try:

        def get(path: str) -> httpx.Response | None:
            try:
                return httpx.get(base + path, timeout=5)
            except httpx.HTTPError:
                return None

        def holders() -> list[dict[str, Any]] | None:
            try:
                listed = all_holders(get, limit=1)  # one holder a page: the cursor is followed
            except HolderListingError:
                return None
            return listed if len(listed) >= 2 else None

        listed = wait_until(holders, "GET /holders to list both US holders", TIMEOUT_S)
        assert [h["client"] for h in listed] == ["client1", "client2"]
        assert [p["id"] for p in listed[0]["positions"]] == ["1", "3"]
        one = get("/holders/client2")
        assert one is not None
        assert one.json() == {
            "client": "client2",
            "positions": [{"id": "4", "ticker": "AAPL", "exchange": "XNAS", "amount": 5}],
        }
        missing = get("/holders/client3")
        assert missing is not None
        assert missing.status_code == 404
        ready = get("/readyz")
        assert ready is not None
        assert ready.status_code == 200

        reply = httpx.post(base + "/digests/run", timeout=10)
        assert reply.status_code == 202
        wait_until(lambda: len(smtp_sink.messages()) >= 2, "two emails", TIMEOUT_S)
        emails = {m["To"]: m for m in smtp_sink.messages()}
        assert sorted(emails) == ["Ada <ada@example.com>", "Bob <bob@example.com>"]
        week = str(settings.digest_schedule.week_of(datetime.now(UTC)))
        assert week in emails["Ada <ada@example.com>"]["Subject"]
        assert emails["Ada <ada@example.com>"]["Message-ID"].startswith("<digest.")

        digests = get("/digests")
        assert digests is not None
        done = [p for p in digests.json()["partitions"] if p["last_week"]]
        assert sum(r["jobs"] for p in done for r in p["runs"].values()) == 2

        metrics = get("/metrics")
        assert metrics is not None
        assert "streamtable_dlq_records_total 1.0" in metrics.text
        assert "ush_emails_delivered_total 2.0" in metrics.text

        health = get("/healthz")
        assert health is not None
        assert (health.status_code, health.json()["delivery"]) == (200, "running")
        service.worker.stop()  # a delivery worker that is gone makes the instance unhealthy
        health = get("/healthz")
        assert health is not None
        assert (health.status_code, health.json()["delivery"]) == (503, "stopped")
    finally:
        service.close()

    msg = first_record(bootstrap_servers, f"{names['app']}-dlq", TIMEOUT_S)
    assert msg.value() == b"not json"
    assert b"not JSON" in header(msg, "x-error")
