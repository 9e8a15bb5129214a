"""The service topology and the digest's exactly-once bookkeeping, with the TopologyTestDriver
and its wall clock: "a week passes" without sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import streamtable as st
from us_shareholders.digest import DigestControl, request_record
from us_shareholders.schedule import WeekId, parse_schedule
from us_shareholders.topology import TopologySettings, build_topology
from us_shareholders.venues import VenueMatcher

pytestmark = pytest.mark.unit

SCHEDULE = parse_schedule("MON 07:00 America/New_York")
# Sunday 22 Nov 2026, noon UTC: the day before the first scheduled run (Mon 23 Nov, 12:00 UTC).
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MONDAY_RUN = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def position(pid: str, client: str, ticker: str, exchange: str, amount: int = 10) -> dict[str, Any]:
    return {"id": pid, "client": client, "ticker": ticker, "exchange": exchange, "amount": amount}


class Service:
    def __init__(self, start: datetime, instruments: bool = True) -> None:
        self.control = DigestControl()
        settings = TopologySettings(
            positions_topic="share-holders",
            clients_topic="clients",
            instruments_topic="instruments" if instruments else None,
            digests_topic="digests",
            requests_topic="digest-requests",
            venues=VenueMatcher(),
            schedule=SCHEDULE,
        )
        self.driver = st.TopologyTestDriver(
            build_topology(settings, self.control), start_time=start
        )
        self.positions = self.driver.input_topic("share-holders")
        self.clients = self.driver.input_topic("clients")
        self.jobs = self.driver.output_topic("digests")
        self.requests = self.driver.input_topic("digest-requests")
        self.now = start

    def at(self, instant: datetime) -> None:
        self.driver.advance_wall_clock((instant - self.now).total_seconds())
        self.now = instant

    def progress(self) -> dict[str, Any]:
        value: dict[str, Any] = self.driver.key_value_store("digest-progress").get(0)
        return value


@pytest.fixture
def service() -> Iterator[Service]:
    svc = Service(SUNDAY)
    svc.positions.pipe("1", position("1", "client1", "AAPL", "NASDAQ"))
    svc.positions.pipe("2", position("2", "client1", "VOD", "LON"))
    svc.positions.pipe("3", position("3", "client1", "FB", "xnas"))
    svc.positions.pipe("4", position("4", "client2", "AAPL", "nyse arca"))
    svc.positions.pipe("5", position("5", "client3", "VOD", "LON"))
    svc.positions.pipe("6", position("6", "client4", "IBM", "NYSE"))
    svc.clients.pipe("client1", {"name": "Ada", "email": "ada@example.com"})
    svc.clients.pipe("client2", {"name": "Bob", "email": "bob@example.com", "unsubscribed": True})
    svc.clients.pipe("client3", {"name": "Cy", "email": "cy@example.com"})
    svc.clients.pipe("client4", {"name": "Di", "email": None})
    svc.driver.input_topic("instruments").pipe("AAPL", {"name": "Apple Inc."})
    yield svc
    svc.driver.close()


def test_holders_keep_only_us_positions_per_client(service: Service) -> None:
    holders = dict(service.driver.key_value_store("us-share-holders").all())
    assert sorted(holders) == ["client1", "client2", "client4"]
    assert sorted(holders["client1"]) == ["1", "3"]
    assert holders["client2"] == {"4": {"ticker": "AAPL", "exchange": "nyse arca", "amount": 10}}


def test_closing_the_last_us_position_removes_the_holder(service: Service) -> None:
    service.positions.pipe("4", None)
    assert service.driver.key_value_store("us-share-holders").get("client2") is None


def test_bad_records_are_rejected_and_the_table_keeps_its_value(service: Service) -> None:
    with pytest.raises(st.SerializationError, match="not JSON"):
        service.positions.pipe_raw(b"1", b"{nope")
    with pytest.raises(st.SerializationError, match="lacks field 'exchange'"):
        service.positions.pipe("1", {"id": "1", "client": "client1", "ticker": "A", "amount": 1})
    with pytest.raises(st.SerializationError, match="'amount' must be a number"):
        service.positions.pipe("1", {**position("1", "client1", "AAPL", "NASDAQ"), "amount": "x"})
    with pytest.raises(st.errors.ProcessingError, match="null key"):
        service.positions.pipe(None, position("9", "client9", "AAPL", "NASDAQ"))
    assert sorted(service.driver.key_value_store("us-share-holders").get("client1")) == ["1", "3"]


def test_weekly_run_emits_one_job_per_eligible_client_at_the_scheduled_time(
    service: Service,
) -> None:
    service.at(MONDAY_RUN - timedelta(seconds=5))
    assert service.jobs.read_key_values() == []
    service.at(MONDAY_RUN + timedelta(seconds=1))
    jobs = service.jobs.read_key_values()
    assert [client for client, _ in jobs] == ["client1"]  # client2 unsubscribed, client4 no email
    job = jobs[0][1]
    assert job["week"] == "2026-W48"
    assert job["email"] == "ada@example.com"
    assert [(p["id"], p["ticker"], p["company"]) for p in job["positions"]] == [
        ("1", "AAPL", "Apple Inc."),
        ("3", "FB", None),
    ]
    run = service.progress()
    assert run["last_week"] == "2026-W48"
    assert run["runs"]["2026-W48"] == {
        "jobs": 1,
        "skipped_unsubscribed": 1,
        "skipped_no_email": 1,
        "finished_at": run["runs"]["2026-W48"]["finished_at"],
    }
    service.at(MONDAY_RUN + timedelta(hours=5))  # later that week: nothing more
    assert service.jobs.read_key_values() == []
    service.at(MONDAY_RUN + timedelta(days=7, seconds=1))  # a week passes
    assert [job["week"] for _, job in service.jobs.read_key_values()] == ["2026-W49"]


def test_downtime_catches_up_only_the_current_week(service: Service) -> None:
    service.at(MONDAY_RUN + timedelta(seconds=1))
    service.jobs.read_key_values()
    # Down for two weeks and a day: W49 is skipped, W50 runs once on Tuesday.
    service.at(MONDAY_RUN + timedelta(days=15))
    assert [job["week"] for _, job in service.jobs.read_key_values()] == ["2026-W50"]
    assert service.progress()["last_week"] == "2026-W50"


def test_new_deployment_waits_for_the_next_scheduled_time_unless_asked() -> None:
    svc = Service(MONDAY_RUN + timedelta(hours=3), instruments=False)  # deployed after 07:00
    svc.positions.pipe("1", position("1", "client1", "AAPL", "NASDAQ"))
    svc.clients.pipe("client1", {"name": "Ada", "email": "ada@example.com"})
    svc.at(svc.now + timedelta(hours=1))
    assert svc.jobs.read_key_values() == []
    svc.requests.pipe("run", request_record(WeekId.parse("2026-W48"), svc.now))  # POST
    svc.at(svc.now + timedelta(seconds=1))
    assert [job["week"] for _, job in svc.jobs.read_key_values()] == ["2026-W48"]
    svc.requests.pipe("run", request_record(WeekId.parse("2026-W48"), svc.now))  # idempotent
    svc.control.request(WeekId.parse("2026-W48"))  # in-process (the dry run): done, too
    svc.at(svc.now + timedelta(seconds=1))
    assert svc.jobs.read_key_values() == []
    svc.driver.close()


def test_a_request_for_a_past_week_runs_nothing() -> None:
    svc = Service(MONDAY_RUN + timedelta(hours=3), instruments=False)
    svc.positions.pipe("1", position("1", "client1", "AAPL", "NASDAQ"))
    svc.clients.pipe("client1", {"name": "Ada", "email": "ada@example.com"})
    svc.requests.pipe("run", request_record(WeekId.parse("2026-W47"), svc.now))
    svc.at(svc.now + timedelta(seconds=1))
    assert svc.jobs.read_key_values() == []
    svc.driver.close()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "digest request is not JSON"),
        (b'{"week": 48}', "digest request field 'week' must be a str"),
        (b'{"week": "next monday"}', "digest request field 'week' must be YYYY-Www"),
    ],
)
def test_a_malformed_request_is_rejected_with_its_reason(raw: bytes, reason: str) -> None:
    svc = Service(MONDAY_RUN + timedelta(hours=3), instruments=False)
    with pytest.raises(st.StreamTableError, match=reason):
        svc.requests.pipe_raw(b"run", raw)
    svc.at(svc.now + timedelta(seconds=1))
    assert svc.jobs.read_key_values() == []
    svc.driver.close()
