"""Query parameters as the HTTP layer reads them: true/false flags, a scan's bounds, prefix,
cursor and limit, a window query's time range (epoch milliseconds); anything malformed is a
``bad_request`` (or ``bad_key``) failure value.

Example::

    >>> from streamtable.serde import STRING
    >>> parse_scan_params({"limit": "10", "prefix": "c"}, STRING).unwrap().limit
    10
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from streamtable.query._codec import decode_cursor, parse_key, prefix_bytes
from streamtable.query._local import ScanRequest
from streamtable.query._result import FailureReason, QueryResult
from streamtable.query._windows import MAX_TIME_MS, WindowRequest
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
    page = _cursor_and_limit(params, default_limit, max_limit)
    if not page.is_ok:
        return QueryResult.failure(FailureReason.BAD_REQUEST, page.message)
    after, limit = page.unwrap()
    lo = bounds.get("from")
    return QueryResult.ok(
        ScanRequest(
            lo=lo,
            hi=bounds.get("to"),
            lo_bytes=None if lo is None else key_serde.serialize(lo),
            prefix=prefix,
            after=after,
            limit=limit,
            bounds_text=tuple(
                (name, params[name]) for name in ("from", "to", "prefix") if name in params
            ),
        )
    )


def _cursor_and_limit(
    params: Mapping[str, str], default_limit: int, max_limit: int
) -> QueryResult[tuple[bytes | None, int]]:
    """A page's ``cursor`` (None: the first page) and ``limit``."""
    after = None
    if params.get("cursor"):
        decoded = decode_cursor(params["cursor"])
        if not decoded.is_ok:
            return QueryResult.failure(FailureReason.BAD_REQUEST, decoded.message)
        after = decoded.unwrap()
    limit = parse_limit(params.get("limit"), default=default_limit, maximum=max_limit)
    if not limit.is_ok:
        return QueryResult.failure(FailureReason.BAD_REQUEST, limit.message)
    return QueryResult.ok((after, limit.unwrap()))


# ASCII digits only: int() also takes "1_0", " 1" and other scripts' digits.
_EPOCH_MS = re.compile(r"[0-9]{1,19}")


def parse_time_range(params: Mapping[str, str]) -> QueryResult[tuple[int, int]]:
    """``time_from`` and ``time_to``: window starts in epoch milliseconds, integers in
    ``[0, MAX_TIME_MS]``, ``time_from <= time_to``; absent, all time."""
    times: list[int] = []
    for name, default in (("time_from", 0), ("time_to", MAX_TIME_MS)):
        text = params.get(name)
        if text is None:
            times.append(default)
        elif _EPOCH_MS.fullmatch(text):
            times.append(int(text))
        else:
            return _not_epoch_ms(name, repr(text[:40]))
    return check_time_range(times[0], times[1])


def check_time_range(
    time_from: int, time_to: int, names: tuple[str, str] = ("time_from", "time_to")
) -> QueryResult[tuple[int, int]]:
    """``(time_from, time_to)`` if both are epoch milliseconds in ``[0, MAX_TIME_MS]`` and
    ``time_from <= time_to``; else a ``bad_request`` naming the first bad one (as ``names``)."""
    for name, value in zip(names, (time_from, time_to), strict=True):
        if not 0 <= value <= MAX_TIME_MS:
            return _not_epoch_ms(name, str(value))
    if time_from > time_to:
        return QueryResult.failure(
            FailureReason.BAD_REQUEST,
            f"{names[0]} ({time_from}) must not be after {names[1]} ({time_to})",
        )
    return QueryResult.ok((time_from, time_to))


def _not_epoch_ms(name: str, got: str) -> QueryResult[Any]:
    return QueryResult.failure(
        FailureReason.BAD_REQUEST,
        f"{name} must be an integer of epoch milliseconds in [0, {MAX_TIME_MS}] (got {got})",
    )


def parse_window_params(
    params: Mapping[str, str],
    *,
    default_limit: int = DEFAULT_LIMIT,
    max_limit: int = MAX_LIMIT,
) -> QueryResult[WindowRequest]:
    """A window query from ``time_from``/``time_to`` (epoch ms, see :func:`parse_time_range`),
    ``cursor`` (a ``next_cursor`` given earlier) and ``limit``; a ``bad_request`` failure value
    names the first bad one.

    Example::

        >>> parse_window_params({"time_from": "60000"}).unwrap().time_from
        60000
        >>> parse_window_params({"time_from": "-1"}).message[:40]
        'time_from must be an integer of epoch mi'
    """
    times = parse_time_range(params)
    if not times.is_ok:
        return QueryResult.failure(FailureReason.BAD_REQUEST, times.message)
    page = _cursor_and_limit(params, default_limit, max_limit)
    if not page.is_ok:
        return QueryResult.failure(FailureReason.BAD_REQUEST, page.message)
    (time_from, time_to), (after, limit) = times.unwrap(), page.unwrap()
    return QueryResult.ok(WindowRequest(time_from, time_to, after, limit))
