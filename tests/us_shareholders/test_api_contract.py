"""The service's HTTP contract: one mapping from a query failure to its response, as the
library's query server answers (``not_owner``, not ``FailureReason.NOT_OWNER``), and an OpenAPI
document that matches what is served (``/metrics`` is Prometheus text; ``/holders/{client}``
answers 404 for a client without US stock)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from streamtable.query import FailureReason
from tests.streamtable.query.fakes import FakeApp
from us_shareholders.api import create_api, failure_response
from us_shareholders.schedule import parse_schedule

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("reason", list(FailureReason))
def test_a_failure_is_answered_with_its_reason_value_and_status(reason: FailureReason) -> None:
    response = failure_response(reason, "why")
    assert json.loads(bytes(response.body)) == {"error": reason.value, "message": "why"}
    assert response.status_code == reason.status
    assert ("retry-after" in response.headers) is reason.retriable


def test_no_reason_is_not_ready() -> None:
    response = failure_response(None, "rebalancing")
    assert response.status_code == 503
    assert json.loads(bytes(response.body))["error"] == "not_ready"
    assert response.headers["retry-after"] == "1"


def test_the_openapi_document_matches_what_is_served() -> None:
    unused: Any = None
    api = create_api(
        cast(Any, FakeApp("i1", "127.0.0.1:1", [0.0])),
        unused,
        parse_schedule("MON 07:00 America/New_York"),
        CollectorRegistry(),
        lambda week, now: None,
    )
    paths = api.openapi()["paths"]
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"], metrics
    holder = paths["/holders/{client}"]["get"]["responses"]
    assert {"200", "404", "503", "504"} <= set(holder), holder
    assert "error" in holder["404"]["content"]["application/json"]["schema"]["properties"]
