"""``open_clients``: every Kafka client of the processing thread, or none. A client that fails
to open (a broker refusing the producer's ``init_transactions``, a stop meanwhile) must not
leave those opened before it behind: a consumer left open stays a member of the group, and its
partitions wait for it until its session times out."""

from __future__ import annotations

from typing import Any

import pytest

from streamtable.runtime import _clients, _context
from streamtable.runtime._clients import ShutdownRequested
from streamtable.runtime._context import open_clients
from tests.support.offline import offline_context

pytestmark = pytest.mark.unit


class Client:
    """A Kafka client that writes its closing (a producer: its flush) to ``journal``."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    def close(self) -> None:
        self.journal.append(f"close {self.name}")

    def flush(self, timeout: float) -> int:
        self.journal.append(f"flush {self.name}")
        return 0


class Clients:
    """Stands in for every client factory ``open_clients`` calls; the one named ``failing``
    raises ``error`` instead. ``made`` lists what was created, ``journal`` what was closed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, failing: str, error: Exception) -> None:
        self.failing = failing
        self.error = error
        self.made: list[str] = []
        self.journal: list[str] = []
        restore_consumers = iter(["restore consumer", "standby consumer"])
        monkeypatch.setattr(_clients, "main_consumer", lambda config: self.make("consumer"))
        monkeypatch.setattr(_clients, "producer", lambda *a, **k: self.make("producer"))
        monkeypatch.setattr(
            _clients, "restore_consumer", lambda config: self.make(next(restore_consumers))
        )
        monkeypatch.setattr(
            _clients,
            "log_end_consumer",
            lambda config: self.make("log end consumer") if config.exactly_once else None,
        )
        monkeypatch.setattr(_context, "GlobalStores", lambda *args: self.make("globals"))
        monkeypatch.setattr(_context, "AdminClient", lambda settings: self.make("admin"))

    def make(self, name: str) -> Client:
        if name == self.failing:
            raise self.error
        self.made.append(name)
        return Client(name, self.journal)


def opening(
    monkeypatch: pytest.MonkeyPatch, failing: str, error: Exception | None = None, **config: Any
) -> Clients:
    """Opens the clients of a thread with standbys (every client there is), ``failing``
    failing; returns the fakes."""
    clients = Clients(monkeypatch, failing, error or RuntimeError(f"{failing} refused"))
    ctx = offline_context("open", num_standby_replicas=1, **config)
    if failing:
        with pytest.raises(type(clients.error)):
            open_clients(ctx)
    else:
        open_clients(ctx)
    return clients


def test_all_clients_open_and_none_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    clients = opening(monkeypatch, failing="", processing_guarantee="exactly_once_v2")
    assert clients.made == [
        "consumer",
        "producer",
        "restore consumer",
        "log end consumer",
        "globals",
        "admin",
        "standby consumer",
    ]
    assert clients.journal == []


@pytest.mark.parametrize(
    ("failing", "closed"),
    [
        ("producer", ["close consumer"]),
        ("restore consumer", ["flush producer", "close consumer"]),
        (
            "globals",
            ["close restore consumer", "flush producer", "close consumer"],
        ),
        (
            "standby consumer",
            ["close globals", "close restore consumer", "flush producer", "close consumer"],
        ),
    ],
)
def test_a_client_that_fails_to_open_closes_those_opened_before(
    monkeypatch: pytest.MonkeyPatch, failing: str, closed: list[str]
) -> None:
    clients = opening(monkeypatch, failing)
    assert clients.journal == closed
    every = {c.split(" ", 1)[1] for c in closed}
    assert set(clients.made) - {"admin"} == every, "every client made was closed"


def test_a_stop_while_the_producer_initialises_closes_the_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop during ``init_transactions`` (a broker away) ends the start: the group consumer
    opened before it leaves."""
    stop = ShutdownRequested("stopped while the producer was initialising")
    clients = opening(monkeypatch, "producer", stop, processing_guarantee="exactly_once_v2")
    assert clients.journal == ["close consumer"]


def test_exactly_once_closes_the_log_end_consumer_too(monkeypatch: pytest.MonkeyPatch) -> None:
    clients = opening(monkeypatch, "globals", processing_guarantee="exactly_once_v2")
    assert clients.journal == [  # in reverse order of opening
        "close log end consumer",
        "close restore consumer",
        "flush producer",
        "close consumer",
    ]


def test_a_log_end_consumer_that_fails_to_open_closes_the_restore_consumer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients = opening(monkeypatch, "log end consumer", processing_guarantee="exactly_once_v2")
    assert clients.journal == ["close restore consumer", "flush producer", "close consumer"]
