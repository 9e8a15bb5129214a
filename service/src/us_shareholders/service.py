"""One instance of the service: stream processing, the HTTP API and the delivery worker."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import orjson
import uvicorn
from confluent_kafka import KafkaError, KafkaException, Message, Producer

import streamtable as st
from streamtable.runtime import check_connection
from us_shareholders.api import create_api
from us_shareholders.config import ServiceSettings
from us_shareholders.delivery import SmtpSender, deliver_with_retry
from us_shareholders.digest import REQUEST_KEY, DigestControl, request_record, requests_topic
from us_shareholders.kafka_topics import create_topics, service_topics
from us_shareholders.mail import DigestRenderer
from us_shareholders.metrics import DigestProgressCollector
from us_shareholders.progress import restore_progress
from us_shareholders.schedule import WeekId
from us_shareholders.topology import TopologySettings, build_topology
from us_shareholders.venues import VenueMatcher
from us_shareholders.worker import DeliveryMetrics, DeliveryWorker

log = logging.getLogger("us_shareholders.service")


def digests_topic(settings: ServiceSettings) -> str:
    return f"{settings.application_id}-digests"


def topology_settings(settings: ServiceSettings) -> TopologySettings:
    return TopologySettings(
        positions_topic=settings.positions_topic,
        clients_topic=settings.clients_topic,
        instruments_topic=settings.instruments_topic,
        digests_topic=digests_topic(settings),
        requests_topic=requests_topic(settings.application_id),
        venues=VenueMatcher(settings.us_exchanges),
        schedule=settings.digest_schedule,
    )


class DigestRequests:
    """Writes ``POST /digests/run`` to the compacted requests topic and waits for the ack."""

    def __init__(self, kafka: dict[str, Any], topic: str, timeout_s: float = 10.0) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self._producer = Producer({**kafka, "enable.idempotence": True})
        self._lock = threading.Lock()

    def write(self, week: WeekId, now: datetime) -> None:
        """Raises KafkaException if the broker did not acknowledge the request in time."""
        errors: list[KafkaError] = []

        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                errors.append(error)

        with self._lock:
            self._producer.produce(
                self.topic,
                key=REQUEST_KEY.encode(),
                value=orjson.dumps(request_record(week, now)),
                on_delivery=delivered,
            )
            if self._producer.flush(self.timeout_s) > 0:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "no ack from the broker"))
        if errors:
            raise KafkaException(errors[0])

    def serve(self) -> None:
        """Serve the producer's events (delivery reports, log lines) without waiting."""
        self._producer.poll(0)

    def close(self) -> None:
        self._producer.flush(self.timeout_s)


class Service:
    """``run()`` blocks until SIGTERM/SIGINT, then commits, leaves the group and returns 0."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.control = DigestControl()
        self.app = st.StreamsApp(
            build_topology(topology_settings(settings), self.control),
            st.StreamsConfig(**settings.streams_config_kwargs()),
        )
        self.app.set_restore_listener(restore_progress())
        registry = self.app.metrics.registry
        registry.register(DigestProgressCollector(self.app, settings.digest_schedule))
        renderer = DigestRenderer.from_settings(settings)
        sender = SmtpSender.from_settings(settings)
        self.worker = DeliveryWorker(
            settings.client_config(),
            settings.application_id,
            renderer.render,
            lambda message: deliver_with_retry(sender, message),
            DeliveryMetrics(registry),
            on_exit=sender.close,
        )
        self.requests = DigestRequests(
            settings.client_config(), requests_topic(settings.application_id)
        )
        # Its producer is used once in a while: serve its events (log lines) every second.
        self.app.schedule(1000, lambda _: self.requests.serve())
        api = create_api(
            self.app,
            self.control,
            settings.digest_schedule,
            registry,
            self.requests.write,
            delivery_alive=self.worker.is_alive,
        )
        self.http = uvicorn.Server(
            uvicorn.Config(
                api,
                host=settings.http_host,
                port=settings.http_port,
                log_level="warning",
                lifespan="on",
            )
        )
        self._http_thread = threading.Thread(target=self.http.run, name="ush-http", daemon=True)

    def ensure_topics(self, partitions: int) -> list[str]:
        s = self.settings
        return create_topics(
            s.client_config(),
            service_topics(
                s.positions_topic,
                s.clients_topic,
                s.instruments_topic,
                s.application_id,
                partitions,
            ),
        )

    def input_partitions(self) -> int:
        """Partitions of the positions topic; it must exist (the service never guesses)."""
        from confluent_kafka.admin import AdminClient

        s = self.settings
        admin = AdminClient(s.client_config())
        topic = admin.list_topics(s.positions_topic, timeout=30).topics.get(s.positions_topic)
        admin.poll(0)  # its log lines, if any
        if topic is None or topic.error is not None or not topic.partitions:
            raise st.TopologyError(
                f"the positions topic {s.positions_topic!r} does not exist: create it "
                "(us-shareholders topics create) or set USH_POSITIONS_TOPIC"
            )
        return len(topic.partitions)

    def _start_sidecars(self) -> None:
        # Refused credentials: a clear ConfigError within a second, not a metadata timeout.
        check_connection(self.settings.client_config())
        created = self.ensure_topics(self.input_partitions())
        if created:
            log.info("created topics %s", ", ".join(created))
        self._http_thread.start()
        self.worker.start()

    def _stop_sidecars(self) -> None:
        self.worker.stop()
        self.http.should_exit = True
        self._http_thread.join(10)
        self.requests.close()

    def start(self) -> None:
        """Start everything and return (for tests and embedding; ``run`` for a process)."""
        self._start_sidecars()
        self.app.start()

    def close(self) -> None:
        self.app.close()
        self._stop_sidecars()

    def run(self) -> int:
        """Run until SIGTERM/SIGINT (main thread only); the exit code of the process."""
        self._start_sidecars()
        try:
            code = self.app.run_until_signal()
        finally:
            self._stop_sidecars()
        log.info("stopped (exit code %d)", code)
        return code
