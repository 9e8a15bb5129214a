"""Purging repartition topics: records below the committed offset are never read again, so
after a commit they are deleted with ``AdminClient.delete_records`` (at most once per
``interval_s``, without waiting for the result), as Kafka Streams does."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

log = logging.getLogger("streamtable.runtime.purge")


class RepartitionPurger:
    def __init__(self, admin: AdminClient, topics: Iterable[str], interval_s: float = 30.0) -> None:
        self._admin = admin
        self._topics = frozenset(topics)
        self._interval = interval_s
        self._last = 0.0
        self._purged: dict[tuple[str, int], int] = {}

    def maybe_purge(self, committed: Iterable[TopicPartition]) -> None:
        self._admin.poll(0)  # the admin client's log lines: librdkafka queues them until polled
        now = time.monotonic()
        if not self._topics or now - self._last < self._interval:
            return
        wanted = [
            tp
            for tp in committed
            if tp.topic in self._topics
            and tp.offset > self._purged.get((tp.topic, tp.partition), 0)
        ]
        if not wanted:
            return
        self._last = now
        try:
            futures = self._admin.delete_records(wanted, request_timeout=30)
        except KafkaException as exc:
            log.warning("purging repartition topics failed: %s", exc)
            return
        for tp, future in futures.items():
            future.add_done_callback(self._done(tp))

    def _done(self, tp: TopicPartition) -> Any:
        def callback(future: Future[Any]) -> None:
            try:
                future.result()
                self._purged[(tp.topic, tp.partition)] = tp.offset
            except Exception as exc:  # the next commit tries again
                log.debug("purging %s[%s] failed: %s", tp.topic, tp.partition, exc)

        return callback
