"""Suite-wide fixtures and rules.

* Every test must carry exactly one tier marker (unit / integration / system / packaging),
  normally via a module-level ``pytestmark = pytest.mark.integration``; collection fails
  otherwise.
* ``schema_registry_url`` is a real schema registry's Confluent-compatible API:
  ``SCHEMA_REGISTRY_URL`` if set, else Apicurio Registry started by
  ``tools/registry/registry-local`` (lazily, once per session, stopped at the end if this session
  started it). A registry that cannot start fails the tests that need it; they never skip.
* ``bootstrap_servers`` is the broker for integration and system tests: ``KAFKA_BOOTSTRAP_SERVERS``
  if set, else a local Apache Kafka started by ``tools/kafka/kafka-local`` (and stopped at the end
  of the session only if this session started it). It is started lazily, so ``pytest -m unit``
  never starts a broker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import pytest
from confluent_kafka.admin import AdminClient

from tests.support.kafka import (
    TopicFactory,
    admin_client,
    create_topic,
    delete_topics,
    start_kafka_local,
    unique_name,
)

TIER_MARKERS = ("unit", "integration", "system", "packaging")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything: check every collected test
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fail the run when a test has no tier marker, or more than one."""
    problems = []
    for item in items:
        tiers = [name for name in TIER_MARKERS if item.get_closest_marker(name) is not None]
        if len(tiers) != 1:
            found = ", ".join(tiers) or "none"
            problems.append(f"  {item.nodeid} (tier markers: {found})")
    if problems:
        raise pytest.UsageError(
            "every test needs exactly one tier marker ("
            + "/".join(TIER_MARKERS)
            + "), e.g. `pytestmark = pytest.mark.unit` in the module:\n"
            + "\n".join(problems)
        )


@pytest.fixture(scope="session")
def bootstrap_servers() -> Iterator[str]:
    """Bootstrap address of the broker the tests use."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    if configured:
        yield configured
        return
    try:
        broker = start_kafka_local()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def schema_registry_url() -> Iterator[str]:
    """The Confluent-compatible API of the schema registry the tests use."""
    configured = os.environ.get("SCHEMA_REGISTRY_URL", "").strip()
    if configured:
        yield configured
        return
    from tests.support.registry import start_registry_local

    try:
        registry = start_registry_local()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    print(f"\nschema registry at {registry.url} (start took {registry.start_seconds:.1f}s)")
    try:
        yield registry.url
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def kafka_admin(bootstrap_servers: str) -> AdminClient:
    return admin_client(bootstrap_servers)


@pytest.fixture
def new_topic(kafka_admin: AdminClient) -> Iterator[TopicFactory]:
    """Factory for fresh, uniquely named topics, deleted again when the test ends.

    ``new_topic(partitions=4, config={"cleanup.policy": "compact"})`` returns the topic name once
    the topic is visible in metadata with a leader for every partition.
    """
    created: list[str] = []

    def make(
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
        *,
        prefix: str = "topic",
    ) -> str:
        name = unique_name(prefix)
        created.append(name)  # before creating: a half-created topic is cleaned up too
        create_topic(kafka_admin, name, partitions, config)
        return name

    yield make
    delete_topics(kafka_admin, created)


@pytest.fixture
def app_id(kafka_admin: AdminClient) -> Iterator[str]:
    """A fresh application id; the topics it prefixes (internal ones) are deleted afterwards."""
    name = unique_name("app")
    yield name
    topics = [t for t in kafka_admin.list_topics(timeout=30).topics if t.startswith(name)]
    delete_topics(kafka_admin, topics)
