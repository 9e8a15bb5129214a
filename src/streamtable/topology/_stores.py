"""Building a store's stack from its :class:`StoreSpec`: the one place the layers are assembled,
for the driver and the runtime alike.

    engine (bytes) <- changelogging (bytes) <- serde <- record cache <- metered

A window store has its time segments between the engine and the changelogging layer
(:class:`~streamtable.state.SegmentedWindowBytesStore`) and serializes its
:class:`~streamtable.Windowed` keys with a :class:`~streamtable.serde.TimeWindowedSerde`; a
session store has them too, by session end, and a
:class:`~streamtable.serde.SessionWindowedSerde`.

The engine comes from :func:`~streamtable.state.open_engine`; the layers above it are added only
where they do something (no changelog, no cache, no meter: no layer, no call).
"""

from __future__ import annotations

from typing import Any

from streamtable.errors import TopologyError
from streamtable.serde import SessionWindowedSerde, TimeWindowedSerde
from streamtable.serde._windowed import session_end_of
from streamtable.state import (
    BytesStore,
    CacheBudget,
    CachingStore,
    ChangeLoggingBytesStore,
    ChangelogWriter,
    MeteredStore,
    SegmentedWindowBytesStore,
    SerdeStore,
    WindowCachingStore,
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
    or a window or session store's segments, not logged), flush and close.
    """
    key_serde = spec.key_serde
    if spec.store_type == "window":
        assert spec.retention_ms is not None  # a window store's spec checks both
        assert spec.window_size_ms is not None
        engine = SegmentedWindowBytesStore(engine, spec.retention_ms)
        key_serde = TimeWindowedSerde(key_serde, spec.window_size_ms)
    elif spec.store_type == "session":
        assert spec.retention_ms is not None  # a session store's spec checks it
        engine = SegmentedWindowBytesStore(engine, spec.retention_ms, session_end_of)
        key_serde = SessionWindowedSerde(key_serde)
    elif spec.store_type != "key_value":
        raise TopologyError(f"store {spec.name!r}: unknown store type {spec.store_type!r}")
    topic = spec.changelog_topic(application_id)
    inner: BytesStore = engine
    if changelog is not None and topic is not None and spec.source_topic is None:
        inner = ChangeLoggingBytesStore(engine, changelog, topic, partition)
    serde_store = SerdeStore(spec.name, inner, key_serde, spec.value_serde)
    store: Any = serde_store
    if spec.cached and budget is not None and budget.max_bytes > 0:
        cache = WindowCachingStore if spec.store_type == "window" else CachingStore
        store = cache(serde_store, budget)
    if metered:
        store = MeteredStore(store)
    return serde_store, store
