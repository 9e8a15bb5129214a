"""The query server's bodies as pydantic models, and its OpenAPI 3.1 document built from them
(served at ``/openapi.json``). The models only document: the server writes its bodies with
orjson, and a contract test checks that what it serves validates against this document.

Example::

    >>> sorted(openapi_document()["paths"])[:3]
    ['/instances', '/openapi.json', '/stores/{store}']
    >>> sorted(openapi_document()["paths"])[3:5]
    ['/stores/{store}/keys/{key}', '/stores/{store}/sessions/{key}']
    >>> sorted(openapi_document()["paths"])[5:]
    ['/stores/{store}/windows', '/stores/{store}/windows/{key}']
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from streamtable.query._params import DEFAULT_LIMIT, MAX_LIMIT
from streamtable.query._result import FailureReason
from streamtable.query._windows import MAX_TIME_MS


class ErrorBody(BaseModel):
    """Every failure's body: the reason (its status: see :class:`FailureReason`), why, and the
    store asked for (absent for a path or method the server does not serve)."""

    error: FailureReason
    message: str
    store: str | None = None


class KeyBody(BaseModel):
    """``GET /stores/{store}/keys/{key}``: the key and its value, rendered as JSON."""

    store: str
    key: Any
    value: Any


class ScanItem(BaseModel):
    key: Any
    value: Any
    cursor: str | None = Field(None, description="this item's cursor (local scans only)")


class ScanBody(BaseModel):
    """``GET /stores/{store}``: one page, in serialized-key order."""

    store: str
    items: list[ScanItem]
    partitions: list[int] = Field(description="the partitions the page was read from")
    has_more: bool
    next_cursor: str | None = Field(description="pass back as cursor for the next page")


class WindowValue(BaseModel):
    start_ms: int = Field(description="the window's start, epoch milliseconds (inclusive)")
    end_ms: int = Field(description="the window's end, epoch milliseconds (exclusive)")
    value: Any


class WindowsBody(BaseModel):
    """``GET /stores/{store}/windows/{key}``: the key's windows starting in the time range,
    in window-start order (empty when it has none there)."""

    store: str
    key: Any
    windows: list[WindowValue]


class SessionValue(BaseModel):
    start_ms: int = Field(description="the session's start, epoch milliseconds (inclusive)")
    end_ms: int = Field(description="the session's end, epoch milliseconds (inclusive)")
    value: Any


class SessionsBody(BaseModel):
    """``GET /stores/{store}/sessions/{key}``: the key's sessions overlapping the time range,
    earliest end first (empty when it has none there)."""

    store: str
    key: Any
    sessions: list[SessionValue]


class WindowScanItem(BaseModel):
    key: Any
    start_ms: int
    end_ms: int
    value: Any
    cursor: str | None = Field(None, description="this item's cursor (local scans only)")


class WindowScanBody(BaseModel):
    """``GET /stores/{store}/windows``: one page of windows in serialized windowed-key order
    (key bytes, then window start)."""

    store: str
    items: list[WindowScanItem]
    partitions: list[int] = Field(description="the partitions the page was read from")
    has_more: bool
    next_cursor: str | None = Field(description="pass back as cursor for the next page")


class InstanceBody(BaseModel):
    instance_id: str
    application_server: str | None
    is_local: bool
    state: str
    generation: int
    timestamp_ms: int
    active: dict[str, list[int]]
    standby: dict[str, list[int]]
    partition_counts: dict[str, int]


class InstancesBody(BaseModel):
    """``GET /instances``: the live instances and their partitions per store."""

    instances: list[InstanceBody]


_MODELS: list[type[BaseModel]] = [
    ErrorBody,
    KeyBody,
    ScanBody,
    WindowsBody,
    WindowScanBody,
    SessionsBody,
    InstancesBody,
]
_REF = "#/components/schemas/{model}"

_FAILURES = {
    400: "bad_key (the key or a bound does not parse) or bad_request (a parameter)",
    404: "unknown_store, not_found (no such key), or a path this server does not serve",
    405: "a method this server does not serve at this path",
    503: "not_ready or not_owner (restoring, rebalancing, stale routing): retry after Retry-After",
    504: "owner_unreachable: the instance that owns the data did not answer in time",
}


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


_FLAG = {"type": "boolean", "default": False}
_STORE = _param("store", "path", {"type": "string"}, "a store of the topology")
_STALE = _param("stale", "query", _FLAG, "opt in to stale reads: restoring tasks answer too "
                "(true/false, 1/0, yes/no)")  # fmt: skip


def _responses(ok: str, *failures: int) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "200": {
            "description": ok,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=ok)}}},
        }
    }
    for status in failures:
        answer: dict[str, Any] = {
            "description": _FAILURES[status],
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
        }
        if status == 503:
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        if status == 405:
            answer["headers"] = {
                "Allow": {"schema": {"type": "string"}, "description": "the methods served here"}
            }
        answers[str(status)] = answer
    return answers


_TEXT = {"type": "string"}
_LIMIT = _param(
    "limit",
    "query",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "items in the page",
)
_CURSOR = _param("cursor", "query", _TEXT, "the next_cursor of the previous page")
_LOCAL = _param(
    "local", "query", _FLAG, "this instance's partitions only (true/false, 1/0, yes/no)"
)


def _time_params(what: str, after: str, before: str) -> list[dict[str, Any]]:
    """``time_from`` and ``time_to``: ``what`` ``after`` the first, ``before`` the second."""
    return [
        _param(
            name,
            "query",
            {"type": "integer", "minimum": 0, "maximum": MAX_TIME_MS, "default": default},
            f"{what} {side}, in epoch milliseconds ({name} <= time_to)",
        )
        for name, default, side in (("time_from", 0, after), ("time_to", MAX_TIME_MS, before))
    ]


_TIMES = _time_params(
    "windows", "starting at or after this time", "starting at or before this time"
)
_SESSION_TIMES = _time_params(
    "sessions",
    "ending at or after this time (earliest_session_end)",
    "starting at or before this time (latest_session_start)",
)


def _scan_parameters() -> list[dict[str, Any]]:
    return [
        _STORE,
        _param("from", "query", _TEXT, "the lowest key (text the store's key serde parses)"),
        _param("to", "query", _TEXT, "the highest key (text the store's key serde parses)"),
        _param("prefix", "query", _TEXT, "keys starting with this text (string keys)"),
        _LIMIT,
        _CURSOR,
        _LOCAL,
        _STALE,
    ]


def _window_paths(key: dict[str, Any]) -> dict[str, Any]:
    return {
        "/stores/{store}/windows/{key}": {
            "get": {
                "summary": "A window store's windows of one key starting in a time range, "
                "from the instance that owns the key",
                "parameters": [_STORE, key, *_TIMES, _STALE],
                "responses": _responses("WindowsBody", 400, 404, 405, 503, 504),
            }
        },
        "/stores/{store}/windows": {
            "get": {
                "summary": "A page of a window store's windows starting in a time range, over "
                "every instance (or local=true: this one); without times, all of them",
                "parameters": [_STORE, *_TIMES, _LIMIT, _CURSOR, _LOCAL, _STALE],
                "responses": _responses("WindowScanBody", 400, 404, 405, 503, 504),
            }
        },
        "/stores/{store}/sessions/{key}": {
            "get": {
                "summary": "A session store's sessions of one key overlapping a time range "
                "(find_sessions; without times, fetch), from the instance that owns the key",
                "parameters": [_STORE, key, *_SESSION_TIMES, _STALE],
                "responses": _responses("SessionsBody", 400, 404, 405, 503, 504),
            }
        },
    }


def openapi_document(server_url: str = "") -> dict[str, Any]:
    """The query server's OpenAPI document; ``server_url`` is where it is mounted."""
    _, schemas = models_json_schema([(m, "serialization") for m in _MODELS], ref_template=_REF)
    key = _param("key", "path", {"type": "string"}, "the key, as text its key serde parses")
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "streamtable interactive queries", "version": "1"},
        "paths": {
            "/stores/{store}/keys/{key}": {
                "get": {
                    "summary": "One key's value, from the instance that owns it",
                    "parameters": [_STORE, key, _STALE],
                    "responses": _responses("KeyBody", 400, 404, 405, 503, 504),
                }
            },
            "/stores/{store}": {
                "get": {
                    "summary": "A page of a scan over every instance (or local=true: this one)",
                    "parameters": _scan_parameters(),
                    "responses": _responses("ScanBody", 400, 404, 405, 503, 504),
                }
            },
            **_window_paths(key),
            "/instances": {
                "get": {
                    "summary": "The live instances and their partitions per store",
                    "responses": _responses("InstancesBody", 405),
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
                    },
                }
            },
        },
        "components": {"schemas": schemas["$defs"]},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    return document
