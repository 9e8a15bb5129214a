"""Session stores' queries answered from this instance, and their bodies.

``find_sessions``: one key's sessions that end at or after ``earliest_session_end`` and start at
or before ``latest_session_start`` (Kafka Streams' ``ReadOnlySessionStore.findSessions``; over
all time it is ``fetch(key)``), from the task of the key's partition (the record key's
partition, as for a window store), in the store's order: earliest end first, then earliest
start. An empty answer is checked against the ownership this instance had before the read, as
a window store's ``fetch`` is: a key of a partition hosted elsewhere is ``NOT_OWNER``, never an
empty list.

Over HTTP the bounds are ``time_from`` and ``time_to``, the window routes' names: the sessions
that overlap ``[time_from, time_to]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from streamtable.query._codec import render
from streamtable.query._local import QueryableApp, owned_read
from streamtable.query._result import QueryResult, failed
from streamtable.windowing import Windowed

Body = dict[str, Any]


def session_body(windowed: Windowed, value: Any) -> Body:
    """One session as a response item: ``{"start_ms", "end_ms", "value"}`` (both times
    inclusive, as a :class:`~streamtable.SessionWindow`'s), the value rendered as JSON data."""
    window = windowed.window
    return {"start_ms": window.start_ms, "end_ms": window.end_ms, "value": render(value)}


def local_sessions(
    app: QueryableApp,
    store: str,
    key: Any,
    earliest_session_end: int,
    latest_session_start: int,
    allow_stale: bool,
) -> QueryResult[list[Body]]:
    """``key``'s sessions (see the module docstring), if this instance hosts its partition; a
    failure value otherwise."""

    def find() -> Iterable[tuple[Windowed, Any]]:
        view = app.session_store(store, allow_stale=allow_stale)
        return view.find_sessions(key, earliest_session_end, latest_session_start)

    found = owned_read(app, store, "session", key, find)
    if not found.is_ok:
        return failed(found)
    return QueryResult.ok([session_body(windowed, value) for windowed, value in found.unwrap()])
