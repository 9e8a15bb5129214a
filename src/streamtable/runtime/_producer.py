"""``StreamsProducer``: the app's one Kafka producer and its transaction state.

The record collector sends through it and the committer begins and ends its transactions; both
hold this one object, so replacing the client (after a fatal error, or one given up inside a call
that never returned) is one assignment that both see at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Producer

from streamtable.errors import KafkaError

log = logging.getLogger("streamtable.runtime.producer")


class TransactionAborted(KafkaError):
    """The transaction was aborted (EOS): local state of active tasks must be rebuilt.
    ``fatal`` means the producer was fenced or failed and must be replaced."""

    def __init__(self, message: str, fatal: bool) -> None:
        super().__init__(message)
        self.fatal = fatal


class StreamsProducer:
    """Wraps the producer that ``make`` creates (transactional under exactly once).

    ``lost`` is True once a transactional call overran its deadline (or a replacement failed):
    that client may still be inside librdkafka and is never used again, not even to flush at
    shutdown. :meth:`replace` makes a new one with the same ``transactional.id``, whose
    ``init_transactions`` fences the old one and aborts its open transaction.
    """

    def __init__(self, make: Callable[[], Producer], *, transactional: bool) -> None:
        self._make = make
        self.transactional = transactional
        self.client: Producer = make()
        self.lost = False
        self.in_transaction = False

    def begin(self) -> None:
        """Begin a transaction unless one is open (exactly once; a no-op otherwise)."""
        if self.transactional and not self.in_transaction:
            if self.lost:
                raise TransactionAborted("the producer was given up; it needs replacing", True)
            self.client.begin_transaction()
            self.in_transaction = True

    def give_up(self) -> None:
        """A call of the client never returned: never use it again."""
        self.lost = True
        self.in_transaction = False

    def replace(self) -> None:
        """A new client in place of this one; the old one is dropped unflushed (it may still
        be inside a call that never returns)."""
        try:
            client = self._make()
        except BaseException:
            # The old one had failed (or was given up): it is never to be used again.
            self.give_up()
            raise
        self.client = client
        self.lost = False
        self.in_transaction = False

    def undelivered(self) -> bool:
        """Whether the client still holds records it has not delivered (queued or in flight);
        a client given up counts as holding some."""
        if self.lost:
            return True
        self.client.poll(0)  # delivery reports that have arrived
        return len(self.client) > 0

    def close(self, timeout_s: float) -> None:
        """Deliver what is queued (up to ``timeout_s``), unless the client was given up."""
        if not self.lost:
            self.client.flush(timeout_s)
