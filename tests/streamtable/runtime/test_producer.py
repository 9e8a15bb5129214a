"""``StreamsProducer``: the one producer client and its transaction state, which the record
collector and the committer share. A client given up (a transactional call that never
returned) is never used again: not to begin a transaction, not to flush at shutdown, and it
counts as holding undelivered records; a replacement that fails leaves it given up."""

from __future__ import annotations

from typing import cast

import pytest
from confluent_kafka import Producer

from streamtable.runtime._producer import StreamsProducer, TransactionAborted

pytestmark = pytest.mark.unit


class Client:
    """A producer client that lists its calls; ``queued`` records stay undelivered."""

    def __init__(self, name: str, queued: int = 0) -> None:
        self.name = name
        self.queued = queued
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin_transaction")

    def poll(self, timeout: float) -> int:
        self.calls.append("poll")
        return 0

    def flush(self, timeout: float) -> int:
        self.calls.append(f"flush {timeout}")
        return self.queued

    def __len__(self) -> int:
        return self.queued


class Refused(Exception):
    """Stands for ``init_transactions`` refused by the broker."""


def producer(*clients: Client | None, transactional: bool = True) -> StreamsProducer:
    """Makes ``clients`` in turn; a None among them is a client whose creation fails."""
    made = iter(clients)

    def make() -> Producer:
        client = next(made)
        if client is None:
            raise Refused
        return cast(Producer, client)

    return StreamsProducer(make, transactional=transactional)


def test_begin_opens_one_transaction_until_it_ends() -> None:
    client = Client("first")
    p = producer(client)
    p.begin()
    p.begin()  # every record of the transaction asks: one begin_transaction
    assert p.in_transaction
    assert client.calls == ["begin_transaction"]
    p.in_transaction = False  # the committer ended it
    p.begin()
    assert client.calls == ["begin_transaction", "begin_transaction"]


def test_begin_is_a_no_op_at_least_once() -> None:
    client = Client("first")
    p = producer(client, transactional=False)
    p.begin()
    assert not p.in_transaction
    assert client.calls == []


def test_a_given_up_producer_begins_nothing_and_flushes_nothing() -> None:
    client = Client("first")
    p = producer(client)
    p.begin()
    p.give_up()
    assert p.lost
    assert not p.in_transaction
    with pytest.raises(TransactionAborted) as raised:
        p.begin()
    assert raised.value.fatal, "it needs replacing"
    p.close(10)
    assert client.calls == ["begin_transaction"]  # no second begin, no flush


def test_replace_puts_a_new_client_in_place_for_every_holder() -> None:
    first, second = Client("first"), Client("second")
    p = producer(first, second)
    p.begin()
    p.give_up()
    p.replace()
    assert p.client is cast(Producer, second)
    assert not p.lost
    assert not p.in_transaction
    p.begin()
    assert second.calls == ["begin_transaction"]
    assert first.calls == ["begin_transaction"], "the old client is dropped unflushed"


def test_a_failing_replacement_marks_it_lost() -> None:
    """The old client had failed (or was given up): it must not be flushed at the shutdown
    that follows the failed replacement."""
    first = Client("first")
    p = producer(first, None)
    p.begin()
    with pytest.raises(Refused):
        p.replace()
    assert p.lost
    assert not p.in_transaction
    assert p.undelivered()
    p.close(10)
    assert first.calls == ["begin_transaction"]


def test_undelivered_counts_what_the_client_still_holds() -> None:
    holding, empty = Client("holding", queued=2), Client("empty")
    assert producer(holding).undelivered()
    assert holding.calls == ["poll"], "delivery reports that arrived are served first"
    assert not producer(empty).undelivered()


def test_a_given_up_client_counts_as_holding_records() -> None:
    client = Client("first")
    p = producer(client)
    p.give_up()
    assert p.undelivered()
    assert client.calls == [], "a given-up client is not polled"


def test_close_delivers_what_is_queued() -> None:
    client = Client("first", queued=1)
    producer(client, transactional=False).close(7)
    assert client.calls == ["flush 7"]
