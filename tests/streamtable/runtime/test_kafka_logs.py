"""librdkafka's own messages go through Python logging (``streamtable.kafka``), never straight
to standard error: checked with every kind of client the runtime creates, against a port where
no broker listens (librdkafka then logs connection failures at error level)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from streamtable.runtime import StreamsConfig, _clients
from streamtable.runtime._logs import RepeatFilter
from streamtable.runtime.config import KAFKA_LOGGER
from tests.support.kafka import wait_until
from tests.support.offline import closed_port
from us_shareholders.config import KAFKA_LOGGER as SERVICE_KAFKA_LOGGER
from us_shareholders.config import ServiceSettings

pytestmark = pytest.mark.unit


def _serve(client: Any) -> Callable[[], None]:
    if hasattr(client, "consume"):
        return lambda: client.consume(num_messages=1, timeout=0.2)
    return lambda: client.poll(0.2)


@pytest.mark.parametrize("kind", ["main_consumer", "restore_consumer", "producer", "admin"])
def test_client_library_messages_reach_the_logger_not_stderr(
    kind: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the repeat filter: another test's identical messages must not hold these back.
    monkeypatch.setattr(logging.getLogger(KAFKA_LOGGER), "filters", [])
    config = StreamsConfig(application_id="logs", bootstrap_servers=f"127.0.0.1:{closed_port()}")
    caplog.set_level(logging.DEBUG, logger=KAFKA_LOGGER)
    if kind == "admin":
        client: Any = AdminClient(config.client_config())
    elif kind == "producer":
        client = _clients.producer(config, uuid.uuid4())
    else:
        client = getattr(_clients, kind)(config)
    serve = _serve(client)

    def logged() -> bool:
        serve()
        return any(r.name == KAFKA_LOGGER and r.levelno >= logging.ERROR for r in caplog.records)

    wait_until(logged, f"an error from librdkafka on the {KAFKA_LOGGER} logger", timeout=30)
    if hasattr(client, "close"):
        client.close()
    del client
    raw = [line for line in capfd.readouterr().err.splitlines() if line.startswith("%")]
    assert raw == []


def test_the_services_own_clients_log_to_its_logger() -> None:
    settings = ServiceSettings(bootstrap_servers="127.0.0.1:9", kafka={"client.id": "x"})
    config = settings.client_config()
    assert config["logger"] is logging.getLogger(SERVICE_KAFKA_LOGGER)
    assert config["logger"].filters  # repeats held back
    assert (config["bootstrap.servers"], config["client.id"]) == ("127.0.0.1:9", "x")


def test_repeats_are_held_back_for_a_window_then_counted() -> None:
    repeat = RepeatFilter(window_s=60)

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord(KAFKA_LOGGER, logging.ERROR, __file__, 1, msg, (), None)

    first = record("FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:9 failed (after 3ms)")
    assert repeat.filter(first)
    again = [record(f"FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:9 failed (after {n}ms)")
             for n in range(50)]  # fmt: skip
    assert not any(repeat.filter(r) for r in again)
    assert repeat.filter(record("FAIL [rdkafka#consumer-1] Disconnected"))  # another kind
    repeat.window_s = 0  # the window has passed
    later = record("FAIL [rdkafka#consumer-1] Connect to 127.0.0.1:9 failed (after 7ms)")
    assert repeat.filter(later)
    assert later.getMessage().endswith("(50 similar held back in 0s)")
