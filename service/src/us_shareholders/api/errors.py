"""Failures as the service answers them: the library query server's error body and statuses,
and their OpenAPI descriptions (the library's :class:`~streamtable.query.ErrorBody`)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from streamtable.query import ErrorBody, FailureReason, error_response

RETRY_AFTER_S = 1


def failure_response(reason: FailureReason | None, message: str) -> Response:
    """A query's failure as the library's query server answers it: the reason's value as
    ``error`` (``not_owner``, not ``FailureReason.NOT_OWNER``), its status, and ``Retry-After``
    when asking again may help. No reason is ``not_ready``."""
    return error_response(reason or FailureReason.NOT_READY, message, retry_after_s=RETRY_AFTER_S)


def unavailable(message: str) -> Response:
    """503 ``not_ready`` with ``Retry-After``: restoring, rebalancing, or not running."""
    return failure_response(FailureReason.NOT_READY, message)


def documented(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these failure statuses, each with the error body;
    ``descriptions`` override the default text per status (``s404="..."``)."""
    answers: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        answer: dict[str, Any] = {
            "model": ErrorBody,
            "description": descriptions.get(f"s{status}", _DESCRIPTIONS[status]),
        }
        if status == 503:
            answer["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        answers[status] = answer
    return answers


_DESCRIPTIONS = {
    400: "bad_request: a malformed parameter",
    404: "not_found",
    503: "not_ready (restoring, rebalancing) or not_owner: retry after Retry-After",
    504: "owner_unreachable: an instance did not answer in time",
}
