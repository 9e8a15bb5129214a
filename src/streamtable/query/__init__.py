"""Interactive queries: key routing to the owning instance, cluster-wide scans, instance
metadata, over HTTP (a mountable ASGI app).

Example::

    import uvicorn
    import streamtable as st
    from streamtable.query import create_query_app

    app = st.StreamsApp(topology, st.StreamsConfig(application_id="holders",
                        bootstrap_servers="kafka:9092", application_server="10.0.0.5:8080"))
    app.start()
    uvicorn.run(create_query_app(app), host="0.0.0.0", port=8080)
    # GET /stores/us-share-holders/keys/"c1"  -> {"store": ..., "key": "c1", "value": [...]}
    # GET /stores/trades-per-minute/windows/c1?time_from=0&time_to=3600000
    #     -> {"store": ..., "key": "c1", "windows": [{"start_ms", "end_ms", "value"}, ...]}
    # GET /stores/visits/sessions/alice?time_from=0&time_to=3600000  (find_sessions)
    #     -> {"store": ..., "key": "alice", "sessions": [{"start_ms", "end_ms", "value"}, ...]}

The same queries from an application's own routes (one implementation: the server uses it)::

    from streamtable.query import ClusterQueries, parse_scan_params, parse_window_params, render

    queries = ClusterQueries(app, mount="/query")   # where every instance serves the server
    request = parse_scan_params({"limit": "500", "cursor": c}, spec.key_serde)
    page = await queries.scan("us-share-holders", request.unwrap())  # every partition, merged
    rows = [(key, render(value)) for _, key, value in page.unwrap().items]
    cursor = page.unwrap().next_cursor                # None on the last page
    hour = parse_window_params({"time_from": "0", "time_to": "3600000"}).unwrap()
    windows = await queries.fetch_all("trades-per-minute", hour)  # (bytes, Windowed, value)
    visits = await queries.find_sessions("visits", "alice")  # ("alice", [{"start_ms", ...}])

Needs the ``query`` extra (starlette, uvicorn, httpx): ``pip install 'streamtable[query]'``.
"""

import streamtable.query._requires  # noqa: F401  # first: a clear error without the extra
from streamtable.query._cluster import ClusterQueries
from streamtable.query._codec import parse_key, render
from streamtable.query._local import QueryableApp, ScanPage, ScanRequest
from streamtable.query._openapi import ErrorBody, openapi_document
from streamtable.query._params import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    parse_flag,
    parse_limit,
    parse_scan_params,
    parse_window_params,
)
from streamtable.query._peers import FORWARDED_HEADER
from streamtable.query._responses import error_response
from streamtable.query._result import FailureReason, QueryResult
from streamtable.query._server import create_query_app
from streamtable.query._windows import WindowRequest
from streamtable.runtime._metadata import HostInfo, KeyQueryMetadata, StreamsMetadata

__all__ = [
    "DEFAULT_LIMIT",
    "FORWARDED_HEADER",
    "MAX_LIMIT",
    "ClusterQueries",
    "ErrorBody",
    "FailureReason",
    "HostInfo",
    "KeyQueryMetadata",
    "QueryResult",
    "QueryableApp",
    "ScanPage",
    "ScanRequest",
    "StreamsMetadata",
    "WindowRequest",
    "create_query_app",
    "error_response",
    "openapi_document",
    "parse_flag",
    "parse_key",
    "parse_limit",
    "parse_scan_params",
    "parse_window_params",
    "render",
]
