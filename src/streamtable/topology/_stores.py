"""Building a store's stack from its :class:`StoreSpec`: one place for the driver and runtime."""

from __future__ import annotations

from typing import Any

from streamtable.state import BytesStore, CacheBudget, CachingStore, ChangelogWriter, SerdeStore
from streamtable.topology._nodes import StoreSpec


def build_store(
    spec: StoreSpec,
    engine: BytesStore,
    application_id: str,
    partition: int,
    changelog: ChangelogWriter | None,
    budget: CacheBudget | None,
) -> tuple[SerdeStore, Any]:
    """``(serde store, store processors use)``.

    The serde store logs every write to ``<application.id>-<store>-changelog`` (partition
    ``partition``) when ``changelog`` is given, unless the store's changelog is its source topic.
    It is wrapped in a record cache when the spec is cached and ``budget`` allows any bytes.
    """
    topic = spec.changelog_topic(application_id)
    logged = changelog is not None and topic is not None and spec.source_topic is None
    inner = SerdeStore(
        spec.name,
        engine,
        spec.key_serde,
        spec.value_serde,
        (changelog, topic, partition) if logged and changelog and topic else None,
    )
    if spec.cached and budget is not None and budget.max_bytes > 0:
        return inner, CachingStore(inner, budget)
    return inner, inner
