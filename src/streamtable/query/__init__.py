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

Needs the ``query`` extra (starlette, uvicorn, httpx): ``pip install 'streamtable[query]'``.
"""

import streamtable.query._requires  # noqa: F401  # first: a clear error without the extra
from streamtable.query._codec import parse_key, render
from streamtable.query._local import QueryableApp
from streamtable.query._result import FailureReason, QueryResult
from streamtable.query._server import FORWARDED_HEADER, create_query_app
from streamtable.runtime._metadata import HostInfo, KeyQueryMetadata, StreamsMetadata

__all__ = [
    "FORWARDED_HEADER",
    "FailureReason",
    "HostInfo",
    "KeyQueryMetadata",
    "QueryResult",
    "QueryableApp",
    "StreamsMetadata",
    "create_query_app",
    "parse_key",
    "render",
]
