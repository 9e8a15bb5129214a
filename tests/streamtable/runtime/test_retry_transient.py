"""Broker calls made while a task starts are asked again while the broker answers with a
transient error: found by the fault harness, where an instance starting right after the
internal topics were created stopped in ERROR on "Not leader for partition" (chaos seed 47)."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamtable.runtime._clients import ShutdownRequested, retry_transient

pytestmark = pytest.mark.unit


def test_a_transient_error_is_asked_again_until_the_answer_comes() -> None:
    answers: list[object] = [
        KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)),
        KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION)),
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
