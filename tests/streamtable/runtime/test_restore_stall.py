"""A restore that has not moved for a while is named in a warning, with the last stable offset
of each stalled partition, or why the restore consumer could not read it: after a broker restart
a restore sat at "0/5723 records" for 3 minutes and its consumer's own offset queries failed
too (chaos seeds 341488, 714731). The error says which way it failed."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamtable.runtime import _restore
from streamtable.runtime._restore import ChangelogRestorer, _Pending

pytestmark = pytest.mark.unit


class Unreachable:
    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get watermark offsets"))


def test_a_stalled_restore_says_why_its_consumer_cannot_read_the_offsets(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_restore, "STALL_WARN_S", 1.0)
    restorer = ChangelogRestorer(cast(Consumer, Unreachable()))
    unused: Any = None
    restorer._pending[("app-store-changelog", 0)] = _Pending(
        unused, unused, unused, False, -2, 186, 0, time.monotonic() - 5.0
    )
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.restore"):
        restorer._warn_stalled()
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        "restore has not moved on 1 changelog partition(s): app-store-changelog[0] at beginning "
        "of 186 (last stable offset: not readable: KafkaError{code=_TIMED_OUT"
    )
    assert message.endswith("5s without a record)")
