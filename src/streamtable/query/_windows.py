"""Window stores' queries answered from this instance, and their bodies.

* ``fetch``: one key's windows starting in a time range, from the task of the key's partition
  (the record key's partition: the partitioner placed the key's records by its bytes). As a
  key-value read, an empty answer is checked against the ownership this instance had before the
  read: a key of a partition hosted elsewhere is ``NOT_OWNER``, never an empty list.
* ``fetch_all``: a page of every key's windows starting in a time range, in the order of
  serialized windowed keys (the key's bytes, then the window start as 8 big-endian bytes: by key,
  then window start), the order the cursor (the last item's windowed key bytes) resumes in.
  ``all()`` is ``fetch_all`` over all time: the default bounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streamtable.errors import StoreNotFound, StoreNotReady
from streamtable.query._codec import cursor_key, encode_cursor, render
from streamtable.query._local import QueryableApp, ScanPage, owned_read, read_failure
from streamtable.query._responses import page_envelope
from streamtable.query._result import FailureReason, QueryResult, failed
from streamtable.query._stored import entries_for_json
from streamtable.serde import TimeWindowedSerde
from streamtable.windowing import Window, Windowed

MAX_TIME_MS = 2**63 - 1
"""The latest time a window store knows (its window starts are 8-byte signed integers)."""

Body = dict[str, Any]


@dataclass(frozen=True)
class WindowRequest:
    """Windows starting in ``[time_from, time_to]`` (epoch milliseconds, both inclusive; the
    defaults cover all time). A page of ``fetch_all`` also has ``after`` (the windowed key bytes
    of the last item of the previous page: a cursor) and ``limit``; ``fetch`` of one key uses
    the times only. Build one from query parameters with
    :func:`~streamtable.query.parse_window_params`."""

    time_from: int = 0
    time_to: int = MAX_TIME_MS
    after: bytes | None = None
    limit: int = 100


def local_fetch(
    app: QueryableApp, store: str, key: Any, request: WindowRequest, allow_stale: bool
) -> QueryResult[list[Body]]:
    """``key``'s windows ``{"start_ms", "end_ms", "value"}`` in window-start order, if this
    instance hosts its partition; a failure value otherwise."""

    def fetch() -> Iterable[tuple[int, Any]]:
        view = app.window_store(store, allow_stale=allow_stale)
        return view.fetch(key, request.time_from, request.time_to)

    found = owned_read(app, store, "window", key, fetch)
    if not found.is_ok:
        return failed(found)
    size = app.topology.stores[store].window_size_ms or 0  # a window store's spec has it
    return QueryResult.ok(
        [{"start_ms": s, "end_ms": s + size, "value": render(v)} for s, v in found.unwrap()]
    )


def local_window_scan(
    app: QueryableApp, store: str, request: WindowRequest, allow_stale: bool
) -> QueryResult[ScanPage]:
    """One page of this instance's part of window store ``store`` (every partition it hosts):
    items ``(windowed key bytes, Windowed, value)``."""
    spec = app.topology.stores.get(store)
    if spec is None or spec.window_size_ms is None:
        return QueryResult.failure(FailureReason.UNKNOWN_STORE, f"no window store {store!r}")
    keys = TimeWindowedSerde(spec.key_serde, spec.window_size_ms)
    try:
        before = app.local_metadata()
        # Each partition reads at most limit + 1 windows in the range (one to know there is
        # more), from just after the cursor.
        raw = app.window_store(store, allow_stale=allow_stale).raw_fetch_all(
            request.time_from, request.time_to, after=request.after, limit=request.limit + 1
        )
        after = app.local_metadata()
    except (StoreNotFound, StoreNotReady) as exc:
        return read_failure(exc)
    if after.generation != before.generation:
        return QueryResult.failure(FailureReason.NOT_READY, "tasks moved during the scan; retry")
    rows = list(entries_for_json(raw, spec, keys.deserialize))  # JSON values as stored
    partitions = tuple(before.active.get(store, ()))
    return QueryResult.ok(ScanPage(rows[: request.limit], partitions, len(rows) > request.limit))


def window_page_body(store: str, page: ScanPage, *, with_cursors: bool) -> Body:
    """A page of windows as a response body; keys and values are rendered when it is dumped."""
    items: list[Body] = []
    for wkb, windowed, value in page.items:
        item = {
            "key": windowed.key,
            "start_ms": windowed.window.start_ms,
            "end_ms": windowed.window.end_ms,
            "value": value,
        }
        if with_cursors:
            item["cursor"] = encode_cursor(wkb)
        items.append(item)
    return page_envelope(store, items, page)


def window_page_of(body: Body) -> ScanPage:
    """A peer's page of windows (its items carry their cursors); raises KeyError, TypeError or
    ValueError if it is malformed."""
    rows = [
        (
            cursor_key(item["cursor"]),
            Windowed(item["key"], Window(int(item["start_ms"]), int(item["end_ms"]))),
            item["value"],
        )
        for item in body["items"]
    ]
    return ScanPage(rows, tuple(int(p) for p in body["partitions"]), bool(body["has_more"]))


def window_params(request: WindowRequest) -> dict[str, str]:
    """What a cluster ``fetch_all`` asks each other instance for: its part of the same page."""
    params = {
        "time_from": str(request.time_from),
        "time_to": str(request.time_to),
        "limit": str(request.limit),
        "local": "true",
    }
    if request.after is not None:
        params["cursor"] = encode_cursor(request.after)
    return params
