"""Internal topics: size them, check co-partitioning, create the missing, validate the rest.

At start the runtime reads the partition counts of the source topics from the cluster, then:

* repartition / foreign-key topics (``<app>-<suffix>``) get the largest count of their
  ``partitions_like`` topics, resolved iteratively since those may be internal topics too;
* a store's changelog (``<app>-<store>-changelog``, compacted) gets the count of its
  sub-topology's source topics (one changelog partition per task);
* the dead-letter topic ``<app>-dlq`` (delete policy) gets one partition;
* ``<app>-instances`` (compacted, one partition) carries each instance's query metadata;
* every co-partition group (joins) must have equal counts, else :class:`CoPartitioningError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError as ClientError
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streamtable.errors import ConfigError, CoPartitioningError, KafkaError, TopologyError
from streamtable.runtime._clients import (
    STARTUP_WAIT_S,
    ShutdownRequested,
    retry_transient,
    transient,
)
from streamtable.topology import Topology

log = logging.getLogger("streamtable.runtime.topics")

_TIMEOUT_S = 30.0
# One metadata request's wait before it is asked again (and a stop looked at).
_METADATA_STEP_S = 5.0
# Create-topic refusals from a broker not reached (asked again, as a timeout is).
_UNREACHED = frozenset(
    {
        ClientError._TRANSPORT,
        ClientError._TIMED_OUT,
        ClientError._ALL_BROKERS_DOWN,
        ClientError.REQUEST_TIMED_OUT,
        ClientError.NOT_CONTROLLER,
    }
)


@dataclass(frozen=True)
class TopicPlan:
    """Every topic the app reads or writes, with its partition count."""

    partitions: dict[str, int]
    internal: dict[str, dict[str, str]]  # internal topic name -> topic config

    def count(self, topic: str) -> int:
        return self.partitions[topic]


def dlq_topic(application_id: str) -> str:
    return f"{application_id}-dlq"


# -- interactive-query metadata (see _metadata.py) ---------------------------------------------
def instances_topic(application_id: str) -> str:
    """``<app>-instances``: one compacted partition where each instance advertises itself."""
    return f"{application_id}-instances"


INSTANCES_TOPIC_CONFIG = {
    "cleanup.policy": "compact",
    # Small segments and a short tombstone retention keep the topic at ~one record per instance.
    "segment.ms": "600000",
    "delete.retention.ms": "600000",
}


class InternalTopicManager:
    """Sizes and creates the internal topics of one application (see the module docstring)."""

    def __init__(
        self,
        admin: AdminClient,
        topology: Topology,
        application_id: str,
        replication_factor: int = 1,
        stop: threading.Event | None = None,
        wait_s: float = STARTUP_WAIT_S,
    ) -> None:
        self._admin = admin
        self._topology = topology
        self._app = application_id
        self._rf = replication_factor
        self._stop = stop
        self._wait_s = wait_s

    def _full(self, name: str) -> str:
        return f"{self._app}-{name}" if name in self._topology.internal_topics else name

    def _existing(self, topics: Iterable[str]) -> dict[str, int]:
        """The partition counts of those of ``topics`` the cluster has. An unreachable broker
        (``_TRANSPORT`` at once, or a timeout) is asked again for up to ``wait_s``, as the
        connection check before it waits (an instance restarted during a broker restart);
        ``stop`` ends that wait with :class:`ShutdownRequested`."""
        admin = self._admin
        try:
            metadata = retry_transient(
                lambda: admin.list_topics(timeout=_METADATA_STEP_S),
                "cluster metadata",
                deadline_s=self._wait_s,
                stop=self._stop,
            )
        except KafkaException as exc:
            raise KafkaError(f"cannot read cluster metadata: {exc}") from exc
        found: dict[str, int] = {}
        for topic in topics:
            described = metadata.topics.get(topic)
            if described is not None and described.error is None and described.partitions:
                found[topic] = len(described.partitions)
        return found

    def plan(self) -> TopicPlan:
        """Compute every topic's partition count; raise if a source topic is missing or a
        co-partition group disagrees."""
        counts = self._source_counts()
        self._size_internal_topics(counts)
        self._check_copartitioning(counts)
        internal = self._add_internal_configs(counts)
        return TopicPlan(counts, internal)

    def _source_counts(self) -> dict[str, int]:
        """The partition counts of the external source topics (global tables' too)."""
        topo = self._topology
        external = sorted(
            {s.topic for sub in topo.subtopologies for s in sub.sources if not s.internal}
            | {g.source.topic for g in topo.global_tables}
        )
        counts = self._existing(external)
        missing = [t for t in external if t not in counts]
        if missing:
            raise TopologyError(
                f"source topic(s) missing from the cluster: {', '.join(missing)}; "
                "create them before starting the app"
            )
        return counts

    def _size_internal_topics(self, counts: dict[str, int]) -> None:
        """Add the repartition and foreign-key topics' counts to ``counts``."""
        topo = self._topology
        # Co-partition groups that contain internal topics force them to the group's size.
        forced: dict[str, int] = {}
        for sub in topo.subtopologies:
            for group in sub.copartition_groups:
                sized = [counts[t] for t in group if t in counts]
                if sized:
                    for t in group:
                        if t in topo.internal_topics:
                            forced[self._full(t)] = max(sized)
        pending = dict(topo.internal_topics)
        while pending:
            progressed = False
            for suffix, spec in list(pending.items()):
                like = [self._full(t) for t in spec.partitions_like]
                if all(t in counts for t in like):
                    full = self._full(suffix)
                    counts[full] = forced.get(full, max((counts[t] for t in like), default=1))
                    del pending[suffix]
                    progressed = True
            if not progressed:
                raise TopologyError(
                    f"cannot size internal topics {sorted(pending)}: their partitions_like "
                    "topics form a cycle or are unknown"
                )

    def _check_copartitioning(self, counts: dict[str, int]) -> None:
        for sub in self._topology.subtopologies:
            for group in sub.copartition_groups:
                sizes = {self._full(t): counts[self._full(t)] for t in group}
                if len(set(sizes.values())) > 1:
                    raise CoPartitioningError(sizes)

    def _add_internal_configs(self, counts: dict[str, int]) -> dict[str, dict[str, str]]:
        """The config of every internal topic; adds the changelogs', the dead-letter topic's
        and the instances topic's counts to ``counts``."""
        topo = self._topology
        internal: dict[str, dict[str, str]] = {
            self._full(s): {"cleanup.policy": "delete"} for s in topo.internal_topics
        }
        for sub in topo.subtopologies:
            task_count = max(counts[t] for t in sub.source_topics(self._app))
            for store in sub.stores:
                store_spec = topo.stores[store]
                changelog = store_spec.changelog_topic(self._app)
                if changelog is not None and store_spec.source_topic is None:
                    counts[changelog] = task_count
                    internal[changelog] = store_spec.changelog_config()
        dlq = dlq_topic(self._app)
        counts[dlq] = 1
        internal[dlq] = {"cleanup.policy": "delete"}
        instances = instances_topic(self._app)
        counts[instances] = 1
        internal[instances] = dict(INSTANCES_TOPIC_CONFIG)
        return internal

    def ensure(self, plan: TopicPlan) -> None:
        """Create the missing internal topics; fail on an existing one with the wrong size."""
        existing = self._existing(plan.internal)
        for topic, count in existing.items():
            if count != plan.count(topic):
                raise TopologyError(
                    f"internal topic {topic} has {count} partitions but the topology needs "
                    f"{plan.count(topic)}; delete it (and the app's state) or reset the app"
                )
        new = [
            NewTopic(
                topic,
                num_partitions=plan.count(topic),
                replication_factor=self._rf,
                config=plan.internal[topic],
            )
            for topic in plan.internal
            if topic not in existing
        ]
        if not new:
            return
        self._create(new)
        self._await_metadata(plan, [t.topic for t in new])

    def _create(self, new: list[NewTopic]) -> None:
        """Create ``new``; a topic refused for a passing reason is asked for again for up to
        ``wait_s`` (``stop`` ends that wait): an unreachable broker, or, right after a broker
        restart, "Unable to replicate the partition: all brokers are currently fenced"
        (``INVALID_REPLICATION_FACTOR`` although the cluster has enough brokers: chaos seed
        462288). Too few brokers for ``replication_factor`` fails at once, naming it."""
        deadline = time.monotonic() + self._wait_s
        pause = 0.2
        pending = {t.topic: t for t in new}
        while pending:
            futures = self._admin.create_topics(
                list(pending.values()), operation_timeout=_TIMEOUT_S, request_timeout=_TIMEOUT_S
            )
            again: dict[str, NewTopic] = {}
            refusal: KafkaException | None = None
            for topic, future in futures.items():
                try:
                    future.result(timeout=_TIMEOUT_S)
                    log.info("created internal topic %s", topic)
                except KafkaException as exc:
                    error: Any = exc.args[0] if exc.args else None
                    code = error.code() if isinstance(error, ClientError) else None
                    if code == ClientError.TOPIC_ALREADY_EXISTS:  # a peer created it first
                        continue
                    if not self._passing(error):
                        raise KafkaError(f"cannot create internal topic {topic}: {exc}") from exc
                    again[topic] = pending[topic]
                    refusal = exc
            pending = again
            if not pending:
                return
            if time.monotonic() + pause > deadline:
                raise KafkaError(f"cannot create internal topics {sorted(pending)}: {refusal}")
            log.info("creating %s: %s; asking again", sorted(pending), refusal)
            if self._stop is None:
                time.sleep(pause)
            elif self._stop.wait(pause):
                raise ShutdownRequested(f"stopping while creating {sorted(pending)}")
            pause = min(pause * 2, 2.0)

    def _passing(self, error: Any) -> bool:
        if not isinstance(error, ClientError) or error.fatal():
            return False
        if error.code() == ClientError.INVALID_REPLICATION_FACTOR:
            try:
                brokers = len(self._admin.list_topics(timeout=_METADATA_STEP_S).brokers)
            except KafkaException as exc:
                if not transient(exc):
                    raise
                # The broker went away meanwhile (it was stopping: that is why it refused):
                # asked again (service chaos seed 286963 ended the instance here).
                return True
            if brokers < self._rf:
                raise ConfigError(
                    "replication_factor",
                    f"{self._rf} replicas wanted but the cluster has {brokers} broker(s)",
                )
            return True  # brokers enough but fenced: a broker (re)starting
        return error.retriable() or error.code() in _UNREACHED

    def _await_metadata(self, plan: TopicPlan, topics: list[str]) -> None:
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            found = self._existing(topics)
            if all(found.get(t) == plan.count(t) for t in topics):
                return
            if time.monotonic() > deadline:
                raise KafkaError(f"internal topics {topics} did not appear in metadata in time")
            time.sleep(0.1)
