"""``DeadLetterWriter``: a record (or a cached table change) that failed goes to
``<application.id>-dlq`` with its headers, where it came from and the full reason, cut to
``DLQ_ERROR_MAX_BYTES``; under ``on_error="fail"`` the app ends with a ``ProcessingError``
whose message (logged with its traceback) never quotes the record's data: it may be personal."""

from __future__ import annotations

import logging
from typing import Any, cast

import pytest
from confluent_kafka import Message, Producer

from streamtable.errors import ProcessingError, SerializationError
from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._deadletter import DLQ_ERROR_MAX_BYTES, DeadLetterWriter, record_headers
from streamtable.runtime._producer import StreamsProducer
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.runtime.topics import TopicPlan
from streamtable.serde import DEFAULT
from tests.support.offline import IdleProducer

pytestmark = pytest.mark.unit

SECRET = "alice@example.com"  # stands for a record's personal data


class Record:
    """A consumed record, as confluent_kafka's ``Message`` shows it."""

    def __init__(self, headers: Any = None) -> None:
        self._headers = headers

    def topic(self) -> str:
        return "events"

    def partition(self) -> int:
        return 3

    def offset(self) -> int:
        return 41

    def key(self) -> bytes:
        return b"k1"

    def value(self) -> bytes:
        return SECRET.encode()

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_700_000_000_000)

    def headers(self) -> Any:
        return self._headers


def failed(message: str = f"cannot parse {SECRET!r}") -> ValueError:
    """A user's exception whose message quotes the value it choked on."""
    try:
        raise ValueError(message)
    except ValueError as exc:
        return exc


def writer(fail: bool = False) -> tuple[DeadLetterWriter, IdleProducer, StreamsMetrics]:
    client = IdleProducer()
    producer = StreamsProducer(lambda: cast(Producer, client), transactional=False)
    collector = KafkaRecordCollector(producer, TopicPlan({"app-dlq": 1}, {}))
    metrics = StreamsMetrics("app")
    return DeadLetterWriter("app-dlq", fail, collector, metrics), client, metrics


def dlq_count(metrics: StreamsMetrics) -> float | None:
    return metrics.registry.get_sample_value("streamtable_dlq_records_total")


def test_a_failed_record_goes_to_the_dlq_with_where_it_came_from(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dlq, client, metrics = writer()
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.app"):
        dlq.record_failed(cast(Message, Record([("trace", "t-1")])), failed())
    [sent] = client.produced
    assert (sent["topic"], sent["key"], sent["value"]) == ("app-dlq", b"k1", SECRET.encode())
    assert sent["timestamp"] == 1_700_000_000_000
    assert sent["headers"] == [
        ("trace", b"t-1"),  # the record's own headers first
        ("x-error", f"ValueError: cannot parse {SECRET!r}".encode()),  # the full reason
        ("x-topic", b"events"),
        ("x-partition", b"3"),
        ("x-offset", b"41"),
    ]
    assert dlq_count(metrics) == 1.0
    [line] = [r.getMessage() for r in caplog.records]
    assert "events[3]@41" in line
    assert SECRET not in line, "the log quotes the value"


def test_the_reason_header_is_bounded() -> None:
    dlq, client, _ = writer()
    dlq.record_failed(cast(Message, Record()), failed("é" * 5000))
    headers = dict(client.produced[0]["headers"])
    reason = headers["x-error"]
    assert len(reason) <= DLQ_ERROR_MAX_BYTES
    assert reason.startswith(b"ValueError: \xc3\xa9")
    assert reason.endswith(b"...")
    reason.decode()  # cut on a character boundary


@pytest.mark.parametrize("change", [False, True], ids=["record", "change"])
def test_fail_mode_raises_a_processing_error_without_the_value(change: bool) -> None:
    dlq, client, metrics = writer(fail=True)

    def fail() -> None:
        if change:
            dlq.change_failed("KTABLE-FILTER-0000000002", "k1", {"mail": SECRET}, failed())
        else:
            dlq.record_failed(cast(Message, Record()), failed())

    with pytest.raises(ProcessingError) as raised:
        fail()
    message = str(raised.value)
    assert SECRET not in message
    assert ("KTABLE-FILTER-0000000002" if change else "events[3]@41") in message
    assert "ValueError" in message
    assert raised.value.__cause__ is None, "the cause's message would be logged with it"
    assert raised.value.__suppress_context__
    assert client.produced == []
    assert dlq_count(metrics) == 0.0


def test_fail_mode_raises_a_library_error_as_it_is() -> None:
    """Its message names no data by contract, and its type tells what went wrong."""
    dlq, _, _ = writer(fail=True)
    error = SerializationError("JSON serde: not valid JSON")
    with pytest.raises(SerializationError) as raised:
        dlq.record_failed(cast(Message, Record()), error)
    assert raised.value is error


def test_a_failed_change_goes_to_the_dlq_encoded_with_the_default_serde() -> None:
    dlq, client, metrics = writer()
    dlq.change_failed("KTABLE-FILTER-0000000002", ("c", 1), {"n": {1, 2}}, failed())
    [sent] = client.produced
    assert sent["topic"] == "app-dlq"
    assert DEFAULT.deserialize(sent["key"]) == ("c", 1)
    assert DEFAULT.deserialize(sent["value"]) == {"n": {1, 2}}
    assert sent["headers"] == [
        ("x-error", f"ValueError: cannot parse {SECRET!r}".encode()),
        ("x-processor", b"KTABLE-FILTER-0000000002"),
    ]
    assert dlq_count(metrics) == 1.0


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


def test_a_change_the_default_serde_cannot_encode_goes_as_its_repr() -> None:
    dlq, client, _ = writer()
    dlq.change_failed("node", "k", Opaque(), failed())
    [sent] = client.produced
    assert sent["value"] == b"Opaque()"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ([], None),
        ([("a", b"1"), ("b", "2"), ("c", None)], [("a", b"1"), ("b", b"2"), ("c", None)]),
        ({"a": "1"}, [("a", b"1")]),
    ],
    ids=["none", "empty", "list", "dict"],
)
def test_record_headers_as_the_producer_takes_them(raw: Any, expected: Any) -> None:
    assert record_headers(cast(Message, Record(raw))) == expected
