"""Broker calls made while a task starts are asked again while the broker answers with a
transient error: found by the fault harness, where an instance starting right after the
internal topics were created stopped in ERROR on "Not leader for partition" (chaos seed 47)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamtable.runtime import _clients
from streamtable.runtime._clients import ClientCutOff, ShutdownRequested, retry_transient

pytestmark = pytest.mark.unit


def test_a_transient_error_is_asked_again_until_the_answer_comes() -> None:
    answers: list[object] = [
        KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)),
        KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION)),
        # Pending on a broker handle librdkafka dropped after a broker restart (seed 356835).
        KafkaException(KafkaError(KafkaError._DESTROY_BROKER)),
        (0, 42),
    ]

    def call() -> tuple[int, int]:
        answer = answers.pop(0)
        if isinstance(answer, KafkaException):
            raise answer
        assert isinstance(answer, tuple)
        return answer

    assert retry_transient(call, "offsets") == (0, 42)
    assert not answers


def test_another_error_or_the_deadline_ends_the_retries() -> None:
    def denied() -> None:
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))

    with pytest.raises(KafkaException):
        retry_transient(denied, "offsets")

    calls = []

    def never() -> None:
        calls.append(1)
        raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))

    with pytest.raises(KafkaException):
        retry_transient(never, "offsets", deadline_s=0.5)
    assert 2 <= len(calls) <= 5


def test_a_stop_ends_the_retries_at_once() -> None:
    """A SIGTERM during a broker outage: the retry loop gives up at its next pause instead of
    holding the shutdown for up to its deadline (the hanging-transaction run waited minutes)."""
    stop = threading.Event()
    calls = 0

    def call() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()
        raise KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))

    started = time.monotonic()
    with pytest.raises(ShutdownRequested, match="offsets: stopping"):
        retry_transient(call, "offsets", deadline_s=60.0, stop=stop)
    assert calls == 3
    assert time.monotonic() - started < 5.0


def test_a_client_cut_off_from_every_broker_is_given_up_before_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It would fail until the deadline (300 s for a starting task) and put the app in ERROR;
    given up, the app replaces the client (librdkafka issue 5301: it never connects again)."""
    monkeypatch.setattr(_clients, "CUT_OFF_AFTER_S", 0.2)
    looks: list[float] = []

    def unreachable() -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "no usable brokers"))

    def cut_off() -> bool:
        looks.append(time.monotonic())
        return len(looks) == 2  # the first look: the cluster is down for everyone

    started = time.monotonic()
    with pytest.raises(ClientCutOff, match="offsets: failing for"):
        retry_transient(unreachable, "offsets", deadline_s=60, cut_off_check=cut_off)
    assert len(looks) == 2
    assert looks[0] - started >= 0.2, "looked at before CUT_OFF_AFTER_S of failures"
    assert looks[1] - looks[0] >= 0.2, "looked at again before the interval"
