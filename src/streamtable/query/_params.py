"""Query parameters as the HTTP layer reads them: true/false flags and a scan's bounds, prefix,
cursor and limit; anything malformed is a ``bad_request`` (or ``bad_key``) failure value.

Example::

    >>> from streamtable.serde import STRING
    >>> parse_scan_params({"limit": "10", "prefix": "c"}, STRING).unwrap().limit
    10
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamtable.query._codec import decode_cursor, parse_key, prefix_bytes
from streamtable.query._local import ScanRequest
from streamtable.query._result import FailureReason, QueryResult
from streamtable.serde import Serde

DEFAULT_LIMIT = 100
"""Items in a scan page when ``limit`` is not given."""
MAX_LIMIT = 10_000
"""The largest ``limit`` a scan page may ask for."""

_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")


def parse_flag(params: Mapping[str, str], name: str) -> QueryResult[bool]:
    """A boolean parameter: absent is false; anything but true/false (1/0, yes/no) is a bad
    request rather than quietly false (``stale=1.7e308`` was taken as false), an empty value
    (``?stale=``) included."""
    value = params.get(name)
    if value is None or value.lower() in _FALSE:
        return QueryResult.ok(False)
    if value.lower() in _TRUE:
        return QueryResult.ok(True)
    return QueryResult.failure(FailureReason.BAD_REQUEST, f"{name} must be true or false")


def parse_limit(
    text: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT
) -> QueryResult[int]:
    """``limit``: an integer in ``[1, maximum]``; ``default`` when absent."""
    try:
        limit = default if text is None else int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        return QueryResult.failure(
            FailureReason.BAD_REQUEST, f"limit must be an integer in [1, {maximum}]"
        )
    return QueryResult.ok(limit)


def parse_scan_params(
    params: Mapping[str, str],
    key_serde: Serde[Any],
    *,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
) -> QueryResult[ScanRequest]:
    """A scan page from ``from``, ``to`` (keys, parsed by ``key_serde``), ``prefix`` (text),
    ``cursor`` (a ``next_cursor`` given earlier) and ``limit``; a failure value names the first
    bad one."""
    bounds: dict[str, Any] = {}
    for name in ("from", "to"):
        text = params.get(name)
        if text is not None:
            parsed = parse_key(text, key_serde)
            if not parsed.is_ok:
                return QueryResult.failure(FailureReason.BAD_KEY, f"{name}: {parsed.message}")
            bounds[name] = parsed.value
    prefix = None
    if params.get("prefix") is not None:
        found = prefix_bytes(params["prefix"], key_serde)
        if not found.is_ok:
            return QueryResult.failure(FailureReason.BAD_REQUEST, found.message)
        prefix = found.unwrap()
    after = None
    if params.get("cursor"):
        decoded = decode_cursor(params["cursor"])
        if not decoded.is_ok:
            return QueryResult.failure(FailureReason.BAD_REQUEST, decoded.message)
        after = decoded.unwrap()
    limit = parse_limit(params.get("limit"), default=default_limit, maximum=max_limit)
    if not limit.is_ok:
        return QueryResult.failure(FailureReason.BAD_REQUEST, limit.message)
    lo = bounds.get("from")
    return QueryResult.ok(
        ScanRequest(
            lo=lo,
            hi=bounds.get("to"),
            lo_bytes=None if lo is None else key_serde.serialize(lo),
            prefix=prefix,
            after=after,
            limit=limit.unwrap(),
            bounds_text=tuple(
                (name, params[name]) for name in ("from", "to", "prefix") if name in params
            ),
        )
    )
