"""The query server's response bodies, written with orjson: pages, instances, and the one
error body every failure has (``{"error": reason, "message": ..., "store": ...}``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from streamtable.query._codec import dumps, encode_cursor
from streamtable.query._local import ScanPage
from streamtable.query._result import FailureReason
from streamtable.runtime._metadata import StreamsMetadata

Body = dict[str, Any]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    """``body`` rendered as JSON (sets as sorted lists, bytes as base64...)."""
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


def error_response(
    reason: FailureReason, message: str, *, store: str | None = None, retry_after_s: int = 1
) -> Response:
    """A failure as the query server answers it: the reason's status, the body
    ``{"error": reason.value, "message": message}`` (with ``"store"`` when given), and
    ``Retry-After`` when asking again may help.

    Example::

        >>> error_response(FailureReason.NOT_READY, "restoring").headers["retry-after"]
        '1'
    """
    body: Body = {"error": reason.value, "message": message}
    if store is not None:
        body["store"] = store
    headers = {"Retry-After": str(retry_after_s)} if reason.retriable else None
    return json_response(reason.status, body, headers)


def page_body(store: str, page: ScanPage, *, with_cursors: bool) -> Body:
    """The page as a response body; keys and values are rendered when it is dumped."""
    if with_cursors:
        items = [
            {"key": key, "value": value, "cursor": encode_cursor(kb)}
            for kb, key, value in page.items
        ]
    else:
        items = [{"key": key, "value": value} for _, key, value in page.items]
    return page_envelope(store, items, page)


def page_envelope(store: str, items: list[Body], page: ScanPage) -> Body:
    """A page's body around its ``items``: the partitions read, ``has_more``, ``next_cursor``."""
    return {
        "store": store,
        "items": items,
        "partitions": list(page.partitions),
        "has_more": page.has_more,
        "next_cursor": page.next_cursor,
    }


def instance_body(m: StreamsMetadata) -> Body:
    return {
        "instance_id": m.instance_id,
        "application_server": None if m.host_info is None else str(m.host_info),
        "is_local": m.is_local,
        "state": m.state,
        "generation": m.generation,
        "timestamp_ms": m.timestamp_ms,
        "active": {s: list(p) for s, p in sorted(m.active.items()) if p},
        "standby": {s: list(p) for s, p in sorted(m.standby.items()) if p},
        "partition_counts": dict(sorted(m.partition_counts.items())),
    }
