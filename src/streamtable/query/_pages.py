"""The pages one instance sends another in a cluster scan of a key-value store: its part of
the same page, asked for with ``local=true`` and ``format=columns`` (keys, each value's JSON
text passed on unparsed, and the keys' cursors unless the keys are text), and read back here
(a peer that does not know ``format=columns`` answers with items, which also works)."""

from __future__ import annotations

import orjson

from streamtable.query._codec import cursor_key, dumps, encode_cursor
from streamtable.query._local import QueryableApp, ScanPage, ScanRequest
from streamtable.query._peers import Body
from streamtable.query._result import FailureReason, QueryResult
from streamtable.serde import StringSerde

COLUMNS = "columns"
"""``format=columns``: the compact page one instance asks another for in a cluster scan."""


def text_keys(app: QueryableApp, store: str) -> bool:
    """STRING keys: a key's UTF-8 bytes are its serialized form (and its order)."""
    return isinstance(app.topology.stores[store].key_serde, StringSerde)


def forwarded_params(request: ScanRequest) -> QueryResult[dict[str, str]]:
    """What a cluster scan asks each other instance for: its part of the same page."""
    params = dict(request.bounds_text)
    given = {"from": request.lo, "to": request.hi, "prefix": request.prefix}
    missing = [name for name, bound in given.items() if bound is not None and name not in params]
    if missing:  # a peer parses the text; the parsed bound cannot be written back losslessly
        return QueryResult.failure(
            FailureReason.BAD_REQUEST,
            f"a cluster scan needs {missing} as text: build the request with parse_scan_params",
        )
    params.update(local="true", limit=str(request.limit), format=COLUMNS)
    if request.after is not None:
        params["cursor"] = encode_cursor(request.after)
    return QueryResult.ok(params)


def columns_body(store: str, page: ScanPage, text_keys: bool) -> Body:
    """A page for the instance merging a cluster scan (``format=columns``): keys, each value's
    JSON text (a string: the merging instance passes it on without parsing it) and, unless the
    keys are text (their UTF-8 bytes order them), each key's cursor."""
    body: Body = {
        "store": store,
        "keys": [key for _, key, _ in page.items],
        "values": [dumps(value).decode() for _, _, value in page.items],
        "partitions": list(page.partitions),
        "has_more": page.has_more,
    }
    if not text_keys:
        body["cursors"] = [encode_cursor(kb) for kb, _, _ in page.items]
    return body


def page_of(body: Body, text_keys: bool) -> ScanPage:
    """A peer's page; raises KeyError, TypeError or ValueError if it is malformed."""
    if "keys" in body:  # format=columns
        keys, values = body["keys"], [orjson.Fragment(v) for v in body["values"]]
        if len(keys) != len(values):
            raise ValueError("keys and values differ in length")
        if text_keys:
            order = [key.encode() for key in keys]
        else:
            order = [cursor_key(c) for c in body["cursors"]]
            if len(order) != len(keys):
                raise ValueError("keys and cursors differ in length")
        rows = list(zip(order, keys, values, strict=True))
    else:  # a page with items (a peer that does not know format=columns)
        rows = [(cursor_key(i["cursor"]), i["key"], i["value"]) for i in body["items"]]
    return ScanPage(rows, tuple(int(p) for p in body["partitions"]), bool(body["has_more"]))
