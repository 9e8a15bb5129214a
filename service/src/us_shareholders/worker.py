"""The delivery worker: sends the digest jobs of this instance's partitions over SMTP.

It consumes ``<application id>-digests`` (``read_committed``: only jobs of committed digest
runs) in the consumer group ``<application id>-delivery``, so the job partitions are shared
among the running instances. A job's offset is committed right after the SMTP server accepted
its email, so a restart does not re-send it; a crash between acceptance and that commit re-sends
the same email with the same ``Message-ID`` (recipients' servers can recognise it). Transient
failures are retried with backoff (the job stays uncommitted until it is delivered); permanent
ones go to ``<application id>-dlq`` with the reason in headers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from streamtable.errors import bounded_utf8, loggable
from us_shareholders.delivery import DeliveryResult, DeliveryStatus

log = logging.getLogger("us_shareholders.worker")

Render = Callable[[dict[str, Any]], EmailMessage]
Deliver = Callable[[EmailMessage], DeliveryResult]


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.delivered = Counter(
            "ush_emails_delivered", "Digest emails accepted by the SMTP server.", registry=registry
        )
        self.failed = Counter(
            "ush_emails_failed",
            "Digest jobs sent to the DLQ (permanent failure).",
            registry=registry,
        )
        self.retried = Counter(
            "ush_email_retries", "Deliveries retried after transient failures.", registry=registry
        )
        self.commit_failed = Counter(
            "ush_delivery_commit_failures",
            "Delivered jobs whose offset commit was refused (a rebalance): sent again, same "
            "Message-ID.",
            registry=registry,
        )


class DeliveryWorker:
    """A thread that delivers digest jobs; ``stop()`` finishes the current job and leaves."""

    def __init__(
        self,
        kafka: dict[str, Any],
        application_id: str,
        render: Render,
        deliver: Deliver,
        metrics: DeliveryMetrics,
        retry_pause_s: float = 5.0,
        on_exit: Callable[[], None] = lambda: None,
    ) -> None:
        self.topic = f"{application_id}-digests"
        self.dlq = f"{application_id}-dlq"
        self._consumer = Consumer(
            {
                # A group consumer, like the app's: its join can wait in librdkafka's
                # "wait-metadata" after a broker stop until the next periodic metadata refresh
                # (300 s by default); see docs/operations.md, Failure modes. The kafka
                # passthrough still wins.
                "topic.metadata.refresh.interval.ms": 5000,
                **kafka,
                "group.id": f"{application_id}-delivery",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": 10000,
            }
        )
        self._producer = Producer({**kafka, "enable.idempotence": True})
        self._render = render
        self._deliver = deliver
        self._metrics = metrics
        self._retry_pause_s = retry_pause_s
        self._on_exit = on_exit  # e.g. close the SMTP connection, on the thread that used it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ush-delivery", daemon=True)
        self.delivered = 0
        self._started = False

    def start(self) -> None:
        self._consumer.subscribe([self.topic])
        self._started = True
        self._thread.start()

    def is_alive(self) -> bool:
        """Running, or not started yet; False once it stopped or failed."""
        return not self._started or self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._producer.poll(0)  # its events: dead-letter acks, log lines
                for msg in self._consumer.consume(50, timeout=0.5):
                    if self._stop.is_set():
                        break
                    if msg.error() is None:
                        self._handle(msg)
        except Exception:
            log.exception("delivery worker failed")
        finally:
            self._on_exit()
            self._producer.flush(10)
            self._consumer.close()

    def _handle(self, msg: Message) -> None:
        value = msg.value()
        tp = TopicPartition(
            msg.topic() or self.topic, msg.partition() or 0, (msg.offset() or 0) + 1
        )
        if value is None:
            self._commit(tp)
            return
        try:
            job = orjson.loads(value)
            message = self._render(job)
        except Exception as exc:
            why = f"unrenderable job: {loggable(exc)}"
            self._dead_letter(msg, f"unrenderable job: {exc!r}", why)
            self._commit(tp)
            return
        while not self._stop.is_set():
            result = self._deliver(message)
            if result.delivered:
                self._metrics.delivered.inc()
                self.delivered += 1
                break
            if result.status is DeliveryStatus.PERMANENT_FAILURE:
                self._metrics.failed.inc()
                self._dead_letter(
                    msg, result.reason or "permanent delivery failure", _loggable_result(result)
                )
                break
            # Transient failures outlasted the retries: keep the job, try again later.
            self._metrics.retried.inc()
            log.warning(
                "delivery for week %s failed for now: %s", job.get("week"), _loggable_result(result)
            )
            self._stop.wait(self._retry_pause_s)
        else:
            return  # stopping: the job stays uncommitted and is delivered after a restart
        self._commit(tp)

    def _commit(self, tp: TopicPartition) -> None:
        """Commit past a handled job. A commit refused because the partition moved in a
        rebalance is not fatal: the new owner delivers the job again, with the same
        ``Message-ID``, so the worker logs it and goes on."""
        try:
            self._consumer.commit(offsets=[tp], asynchronous=False)
        except KafkaException as exc:
            self._metrics.commit_failed.inc()
            log.warning("commit of %s[%d]@%d refused: %s", tp.topic, tp.partition, tp.offset, exc)

    def _dead_letter(self, msg: Message, reason: str, loggable_reason: str) -> None:
        """``reason`` (may name the recipient) goes into the DLQ header, ``loggable_reason``
        (no personal data) into the log."""
        log.error(
            "digest job %s[%s]@%s to %s: %s",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            self.dlq,
            loggable_reason,
        )
        self._producer.produce(
            self.dlq,
            key=msg.key(),
            value=msg.value(),
            headers=[
                ("x-error", bounded_utf8(reason, 1000)),
                ("x-topic", self.topic.encode()),
                ("x-partition", str(msg.partition()).encode()),
                ("x-offset", str(msg.offset()).encode()),
            ],
        )
        self._producer.flush(10)


def _loggable_result(result: DeliveryResult) -> str:
    """Why a delivery failed, for a log line: the error's type and SMTP code, never its text
    (an SMTP server's reply may quote the recipient's address)."""
    error = result.error
    if error is None:
        return result.status.name
    code = getattr(error, "smtp_code", None)
    return f"{result.status.name}: {type(error).__name__}" + (f" (SMTP {code})" if code else "")
