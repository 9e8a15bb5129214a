"""Building a store's stack from its :class:`StoreSpec`: the one place the layers are assembled,
for the driver and the runtime alike.

    engine (bytes) <- changelogging (bytes) <- serde <- record cache <- metered

The engine comes from :func:`~streamtable.state.open_engine`; the layers above it are added only
where they do something (no changelog, no cache, no meter: no layer, no call).
"""

from __future__ import annotations

from typing import Any

from streamtable.errors import TopologyError
from streamtable.state import (
    BytesStore,
    CacheBudget,
    CachingStore,
    ChangeLoggingBytesStore,
    ChangelogWriter,
    MeteredStore,
    SerdeStore,
)
from streamtable.topology._nodes import StoreSpec


def build_store(
    spec: StoreSpec,
    engine: BytesStore,
    application_id: str,
    partition: int,
    changelog: ChangelogWriter | None,
    budget: CacheBudget | None,
    *,
    metered: bool = False,
) -> tuple[SerdeStore, Any]:
    """``(serde store, store processors use)``.

    Writes are logged to ``<application.id>-<store>-changelog`` (partition ``partition``) when
    ``changelog`` is given, unless the store's changelog is its source topic or it is not
    logged. The serde store is wrapped in a record cache when the spec is cached and ``budget``
    allows any bytes, and the result in a :class:`MeteredStore` when ``metered``. The serde
    store is what restores write through (:meth:`SerdeStore.restore_batch`: to the engine,
    not logged), flush and close.
    """
    if spec.store_type != "key_value":
        raise TopologyError(
            f"store {spec.name!r}: {spec.store_type} stores cannot be built yet "
            "(only key-value stores)"
        )
    topic = spec.changelog_topic(application_id)
    inner: BytesStore = engine
    if changelog is not None and topic is not None and spec.source_topic is None:
        inner = ChangeLoggingBytesStore(engine, changelog, topic, partition)
    serde_store = SerdeStore(spec.name, inner, spec.key_serde, spec.value_serde)
    store: Any = serde_store
    if spec.cached and budget is not None and budget.max_bytes > 0:
        store = CachingStore(serde_store, budget)
    if metered:
        store = MeteredStore(store)
    return serde_store, store
