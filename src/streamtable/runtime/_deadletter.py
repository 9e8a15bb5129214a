"""The dead-letter writer: what to do with a record, or a cached table change, that failed.

Under ``on_error="dlq"`` it goes to ``<application.id>-dlq`` with the full reason in an
``x-error`` header (and where it came from); under ``on_error="fail"`` the app ends with a
:class:`ProcessingError`. Logs name the record and a value-free reason
(:func:`~streamtable.errors.loggable`), never the record's data: it may be personal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import Message

from streamtable.errors import ProcessingError, StreamTableError, bounded_utf8, loggable
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.serde import DEFAULT

log = logging.getLogger("streamtable.runtime.app")

DLQ_ERROR_MAX_BYTES = 1000
"""Longest ``x-error`` header of a dead-letter record (the full reason, cut to this size)."""

Headers = list[tuple[str, bytes | None]]


class DeadLetterWriter:
    """Sends failed records and changes through the app's record collector to ``topic``."""

    def __init__(
        self, topic: str, fail: bool, collector: KafkaRecordCollector, metrics: StreamsMetrics
    ) -> None:
        self.topic = topic
        self.fail = fail  # on_error="fail"
        self._collector = collector
        self._metrics = metrics

    def record_failed(self, msg: Message, exc: Exception) -> None:
        """An input record whose processing raised ``exc``: to the DLQ (value, key, headers
        and full reason) or, under ``on_error="fail"``, the end of the app."""
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        if self.fail:
            if isinstance(exc, StreamTableError):
                raise exc
            # from None: the cause's message may quote the value, and the app logs this error
            # with its traceback; the cause stays reachable as __context__.
            raise ProcessingError(f"processing {where} failed: {loggable(exc)}") from None
        log.warning("record %s to %s: %s", where, self.topic, loggable(exc))
        headers = record_headers(msg) or []
        headers += [
            ("x-error", dlq_reason(exc)),
            ("x-topic", (msg.topic() or "").encode()),
            ("x-partition", str(msg.partition()).encode()),
            ("x-offset", str(msg.offset()).encode()),
        ]
        self._collector.send(self.topic, msg.key(), msg.value(), msg.timestamp()[1], None, headers)
        self._metrics.dlq_records.inc()

    def change_failed(self, node: str, key: Any, value: Any, exc: Exception) -> None:
        """A cached table change failed downstream at commit time (e.g. a filter reading a
        missing field): the row goes to the DLQ, encoded with the DEFAULT serde."""
        if self.fail:
            reason = loggable(exc)
            raise ProcessingError(f"processing a change of {node} failed: {reason}") from None
        log.warning("change of %s for a key to %s: %s", node, self.topic, loggable(exc))
        headers: Headers = [("x-error", dlq_reason(exc)), ("x-processor", node.encode())]
        self._collector.send(
            self.topic, _encode(key), _encode(value), int(time.time() * 1000), None, headers
        )
        self._metrics.dlq_records.inc()


def dlq_reason(exc: Exception) -> bytes:
    """The ``x-error`` header: the exception's type and full message (the dead-letter record
    carries the data anyway), bounded."""
    return bounded_utf8(f"{type(exc).__name__}: {exc}", DLQ_ERROR_MAX_BYTES)


def _encode(value: Any) -> bytes | None:
    if value is None:
        return None
    try:
        return DEFAULT.serialize(value)
    except StreamTableError:
        return repr(value).encode()


def record_headers(msg: Message) -> Headers | None:
    """A consumed record's headers as the producer takes them (None if it has none)."""
    raw = msg.headers()
    if not raw:
        return None
    items = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), v.encode() if isinstance(v, str) else v) for k, v in items]
