"""``us-shareholders topics create``: the service's own topics, created idempotently."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from us_shareholders.digest import requests_topic

COMPACT = {"cleanup.policy": "compact"}


def service_topics(
    positions: str, clients: str, instruments: str | None, application_id: str, partitions: int
) -> dict[str, tuple[int, dict[str, str]]]:
    """``{topic: (partitions, config)}``: inputs compacted; digest jobs as many partitions as
    positions (delete policy, they are work items); digest requests compacted, one partition."""
    topics: dict[str, tuple[int, dict[str, str]]] = {
        positions: (partitions, COMPACT),
        clients: (partitions, COMPACT),
        f"{application_id}-digests": (partitions, {"cleanup.policy": "delete"}),
        requests_topic(application_id): (1, COMPACT),
    }
    if instruments:
        topics[instruments] = (1, COMPACT)
    return topics


def create_topics(
    kafka: dict[str, Any], topics: dict[str, tuple[int, dict[str, str]]], timeout_s: float = 30
) -> list[str]:
    """Create the topics that do not exist yet; return their names."""
    admin = AdminClient(kafka)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [
        NewTopic(name, num_partitions=n, replication_factor=-1, config=config)
        for name, (n, config) in topics.items()
        if name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, operation_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return created
