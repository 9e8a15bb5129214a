"""``us-shareholders digest --dry-run``: this week's emails, rendered, not sent.

It reads the input topics to their current end and runs the service's own topology in a
:class:`~streamtable.TopologyTestDriver` (no consumer group, no state written), asks for this
week's digest and renders each job: the same code as the service, without side effects.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

import streamtable as st
from us_shareholders.config import ServiceSettings
from us_shareholders.digest import DigestControl
from us_shareholders.mail import DigestRenderer
from us_shareholders.service import digests_topic, topology_settings
from us_shareholders.topology import build_topology


def read_topic(kafka: dict[str, Any], topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of ``topic`` up to its current end (compacted topics: the table)."""
    consumer = Consumer(
        {**kafka, "group.id": "us-shareholders-preview", "enable.auto.commit": False,
         "enable.partition.eof": True, "auto.offset.reset": "earliest"}
    )  # fmt: skip
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise st.TopologyError(f"topic {topic!r} does not exist")
        partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
        consumer.assign(partitions)
        pending = {tp.partition for tp in partitions}
        records: list[tuple[bytes | None, bytes | None]] = []
        while pending:
            for msg in consumer.consume(1000, timeout=1.0):
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition() or 0)
                    continue
                records.append((msg.key(), msg.value()))
        return records
    finally:
        consumer.close()


def preview_digest(settings: ServiceSettings, out: str | None) -> list[EmailMessage]:
    kafka = settings.client_config()
    control = DigestControl()
    now = datetime.now(UTC)
    renderer = DigestRenderer.from_settings(settings)
    topics = [settings.positions_topic, settings.clients_topic]
    if settings.instruments_topic:
        topics.append(settings.instruments_topic)
    emails: list[EmailMessage] = []
    topology = build_topology(topology_settings(settings), control)
    with st.TopologyTestDriver(topology, start_time=now) as driver:
        for topic in topics:
            source = driver.input_topic(topic)
            for key, value in read_topic(kafka, topic):
                try:
                    source.pipe_raw(key, value)
                except st.StreamTableError as exc:  # bad input: the service's DLQ would get it
                    print(f"skipped a record of {topic}: {exc}", file=sys.stderr)
        control.request(settings.digest_schedule.week_of(now))
        driver.advance_wall_clock(1)
        for _, job in driver.output_topic(digests_topic(settings)).read_key_values():
            emails.append(renderer.render(job))
    directory = Path(out) if out else None
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    for i, email in enumerate(emails):
        if directory is not None:
            (directory / f"{i:05d}.eml").write_bytes(email.as_bytes())
    if emails:
        print(emails[0].as_string())
    return emails
