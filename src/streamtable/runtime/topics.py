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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streamtable.errors import CoPartitioningError, KafkaError, TopologyError
from streamtable.runtime._clients import STARTUP_WAIT_S, retry_transient
from streamtable.topology import Topology

log = logging.getLogger("streamtable.runtime.topics")

_TIMEOUT_S = 30.0
# One metadata request's wait before it is asked again (and a stop looked at).
_METADATA_STEP_S = 5.0


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
        for sub in topo.subtopologies:
            for group in sub.copartition_groups:
                sizes = {self._full(t): counts[self._full(t)] for t in group}
                if len(set(sizes.values())) > 1:
                    raise CoPartitioningError(sizes)
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
                    internal[changelog] = {"cleanup.policy": "compact"}
        dlq = dlq_topic(self._app)
        counts[dlq] = 1
        internal[dlq] = {"cleanup.policy": "delete"}
        instances = instances_topic(self._app)
        counts[instances] = 1
        internal[instances] = dict(INSTANCES_TOPIC_CONFIG)
        return TopicPlan(counts, internal)

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
        futures = self._admin.create_topics(
            new, operation_timeout=_TIMEOUT_S, request_timeout=_TIMEOUT_S
        )
        for topic, future in futures.items():
            try:
                future.result(timeout=_TIMEOUT_S)
                log.info("created internal topic %s", topic)
            except KafkaException as exc:
                error: Any = exc.args[0] if exc.args else None
                if error is not None and error.code() == 36:  # TOPIC_ALREADY_EXISTS: a peer won
                    continue
                raise KafkaError(f"cannot create internal topic {topic}: {exc}") from exc
        self._await_metadata(plan, [t.topic for t in new])

    def _await_metadata(self, plan: TopicPlan, topics: list[str]) -> None:
        import time

        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            found = self._existing(topics)
            if all(found.get(t) == plan.count(t) for t in topics):
                return
            if time.monotonic() > deadline:
                raise KafkaError(f"internal topics {topics} did not appear in metadata in time")
            time.sleep(0.1)
