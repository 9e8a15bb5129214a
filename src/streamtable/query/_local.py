"""Queries answered from this instance's stores, with the ownership check that makes stale
routing safe.

A read is bracketed by two reads of the local metadata's ``generation`` (which grows whenever
this instance's tasks change): if it moved, the answer may mix before and after, so the result is
``NOT_READY`` (retry). Otherwise the partitions this instance owned before the read are exactly
the ones it read from, which tells an absent key (``NOT_FOUND``) from a key of a partition owned
elsewhere (``NOT_OWNER``: the caller routed on stale metadata).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol, TypeVar

from streamtable.errors import SerializationError, StoreNotFound, StoreNotReady
from streamtable.query._codec import encode_cursor
from streamtable.query._result import FailureReason, QueryResult
from streamtable.query._stored import entries_for_json
from streamtable.runtime import AppState
from streamtable.runtime._metadata import KeyQueryMetadata, StreamsMetadata
from streamtable.serde import StringSerde
from streamtable.state import ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore
from streamtable.topology import Topology


class QueryableApp(Protocol):
    """What the query layer needs of a :class:`~streamtable.StreamsApp` (a test seam)."""

    @property
    def topology(self) -> Topology: ...

    @property
    def state(self) -> AppState: ...

    def store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyKeyValueStore: ...

    def window_store(self, name: str, *, allow_stale: bool = False) -> ReadOnlyWindowStore: ...

    def session_store(self, name: str, *, allow_stale: bool = False) -> ReadOnlySessionStore: ...

    def metadata_for_key(self, store: str, key: Any) -> KeyQueryMetadata: ...

    def all_metadata(self) -> list[StreamsMetadata]: ...

    def local_metadata(self) -> StreamsMetadata: ...


@dataclass(frozen=True)
class ScanRequest:
    """A page of a scan: keys in ``[lo, hi]`` (serialized-key order), starting with ``prefix``
    (serialized), strictly after ``after`` (serialized), at most ``limit`` of them.

    ``bounds_text`` holds ``from``, ``to`` and ``prefix`` as the client wrote them: a cluster
    scan sends that text to the other instances. Build a bounded request with
    :func:`~streamtable.query.parse_scan_params`, which fills it in.
    """

    lo: Any = None
    hi: Any = None
    lo_bytes: bytes | None = None
    prefix: bytes | None = None
    after: bytes | None = None
    limit: int = 100
    bounds_text: tuple[tuple[str, str], ...] = ()


ScanItem = tuple[bytes, Any, Any]
"""``(key bytes, key, value)`` of one scanned entry."""


@dataclass(frozen=True)
class ScanPage:
    """Items in serialized-key order, the partitions they were read from, and whether more
    items follow the last one.

    Values are JSON-ready but may be ``orjson.Fragment`` (a JSON store's value as stored, not
    decoded); :func:`~streamtable.query.render` turns any of them into plain data.
    """

    items: Sequence[ScanItem]
    partitions: tuple[int, ...]
    has_more: bool

    @property
    def next_cursor(self) -> str | None:
        """The ``cursor`` of the next page, or None on the last page."""
        if not (self.has_more and self.items):
            return None
        return encode_cursor(self.items[-1][0])


def is_global(app: QueryableApp, store: str) -> bool:
    return app.topology.subtopology_of_store(store) is None


def local_get(app: QueryableApp, store: str, key: Any, allow_stale: bool) -> QueryResult[Any]:
    """The value of ``key`` if this instance owns its partition; a failure value otherwise."""
    try:
        before = app.local_metadata()
        found = app.store(store, allow_stale=allow_stale).get(key)
        where = app.metadata_for_key(store, key)
        after = app.local_metadata()
    except READ_ERRORS as exc:
        return read_failure(exc)
    if found is not None:
        return QueryResult.ok(found)  # read from a local task of the key's partition
    if where.partition is None:  # a global store: all of it is here
        return QueryResult.failure(FailureReason.NOT_FOUND, f"no key {key!r} in {store!r}")
    refused = unowned(store, where.partition, before, after)
    if refused is not None:
        return refused
    return QueryResult.failure(FailureReason.NOT_FOUND, f"no key {key!r} in {store!r}")


T = TypeVar("T")


def owned_read(
    app: QueryableApp, store: str, store_type: str, key: Any, read: Callable[[], Iterable[T]]
) -> QueryResult[list[T]]:
    """What ``read`` finds for ``key`` in this instance's task of the key's partition (a window
    or session store's entries of one key) if ``store`` is a ``store_type`` store, bracketed by
    the ownership check: an empty answer for a partition hosted elsewhere is ``NOT_OWNER``,
    never an empty list."""
    spec = app.topology.stores.get(store)
    if spec is None or spec.store_type != store_type:
        return QueryResult.failure(FailureReason.UNKNOWN_STORE, f"no {store_type} store {store!r}")
    try:
        before = app.local_metadata()
        found = list(read())
        where = app.metadata_for_key(store, key)
        after = app.local_metadata()
    except READ_ERRORS as exc:
        return read_failure(exc)
    if not found and where.partition is not None:
        refused = unowned(store, where.partition, before, after)
        if refused is not None:
            return refused
    return QueryResult.ok(found)


READ_ERRORS = (StoreNotFound, StoreNotReady, SerializationError)
"""What a local read of one key may raise: each has its failure value (:func:`read_failure`)."""


def read_failure(exc: Exception) -> QueryResult[Any]:
    """One of :data:`READ_ERRORS` as a failure value: ``unknown_store``, ``not_ready`` (retry)
    or ``bad_key``."""
    if isinstance(exc, StoreNotFound):
        return QueryResult.failure(FailureReason.UNKNOWN_STORE, str(exc))
    if isinstance(exc, StoreNotReady):
        return QueryResult.failure(FailureReason.NOT_READY, str(exc))
    return QueryResult.failure(FailureReason.BAD_KEY, str(exc))


def unowned(
    store: str, partition: int, before: StreamsMetadata, after: StreamsMetadata
) -> QueryResult[Any] | None:
    """Why a local read that found nothing for ``partition`` does not say the data is absent:
    tasks moved during it (``NOT_READY``), or another instance hosts the partition
    (``NOT_OWNER``: routed on stale metadata); None when it answered for its partition."""
    if after.generation != before.generation:
        return QueryResult.failure(FailureReason.NOT_READY, "tasks moved during the read; retry")
    if partition not in before.active.get(store, ()):
        return QueryResult.failure(
            FailureReason.NOT_OWNER,
            f"partition {partition} of {store!r} is not hosted by this instance",
        )
    return None


def local_scan(
    app: QueryableApp, store: str, request: ScanRequest, allow_stale: bool
) -> QueryResult[ScanPage]:
    """One page of this instance's part of ``store`` (every partition it hosts)."""
    spec = app.topology.stores.get(store)
    if spec is None:
        return QueryResult.failure(FailureReason.UNKNOWN_STORE, f"no store named {store!r}")
    serde = spec.key_serde
    start, start_bytes = request.lo, request.lo_bytes
    try:
        if request.after is not None and (start_bytes is None or request.after >= start_bytes):
            start = serde.deserialize(request.after)
        elif start is None and request.prefix is not None and isinstance(serde, StringSerde):
            start = request.prefix.decode(errors="ignore")
    except SerializationError as exc:
        return QueryResult.failure(FailureReason.BAD_REQUEST, f"cursor: {exc}")
    try:
        before = app.local_metadata()
        # A page reads at most limit + 2 entries per partition (the cursor's own key, the page,
        # one to know there is more), unless a prefix of a non-text key must be searched for.
        bounded = request.prefix is None or isinstance(serde, StringSerde)
        raw = app.store(store, allow_stale=allow_stale).raw_range(
            start, request.hi, limit=request.limit + 2 if bounded else None
        )
        entries = entries_for_json(raw, spec)  # JSON values as stored, not decoded and re-encoded
        after = app.local_metadata()
    except StoreNotReady as exc:
        return QueryResult.failure(FailureReason.NOT_READY, str(exc))
    if after.generation != before.generation:
        return QueryResult.failure(FailureReason.NOT_READY, "tasks moved during the scan; retry")
    rows = list(entries)  # sorted by key bytes
    first = 0 if request.after is None else bisect_right(rows, request.after, key=itemgetter(0))
    window: list[ScanItem]
    if request.prefix is None:
        window = rows[first : first + request.limit + 1]
    else:
        window = []
        for row in islice(rows, first, None):
            if not row[0].startswith(request.prefix):
                if row[0] > request.prefix:
                    break  # sorted: nothing further can match
                continue
            window.append(row)
            if len(window) > request.limit:
                break
    has_more = len(window) > request.limit
    items = window[: request.limit]
    partitions = () if is_global(app, store) else tuple(before.active.get(store, ()))
    return QueryResult.ok(ScanPage(items, partitions, has_more))
