"""Query outcomes as values: :class:`QueryResult` is either ``ok(value)`` or
``failure(reason, message)``; the HTTP layer maps each :class:`FailureReason` to a status code.

Example::

    >>> QueryResult.failure(FailureReason.NOT_READY, "restoring").status
    503
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class FailureReason(Enum):
    """Why a query has no answer. ``retriable`` reasons come with a ``Retry-After`` header."""

    NOT_READY = "not_ready"
    """The store is restoring or the app is rebalancing (or no live owner is known yet)."""
    NOT_OWNER = "not_owner"
    """The routing metadata was stale: this instance does not own the key's partition."""
    NOT_FOUND = "not_found"
    """The key is absent from the store (its owner answered)."""
    UNKNOWN_STORE = "unknown_store"
    """No store of that name in the topology."""
    BAD_KEY = "bad_key"
    """The key (or a range bound) cannot be parsed with the store's key serde."""
    BAD_REQUEST = "bad_request"
    """A malformed parameter: ``limit``, ``cursor``, ``prefix``."""
    OWNER_UNREACHABLE = "owner_unreachable"
    """The owning instance did not answer within the forwarding timeout."""

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def retriable(self) -> bool:
        return self in (FailureReason.NOT_READY, FailureReason.NOT_OWNER)


_STATUS = {
    FailureReason.NOT_READY: 503,
    FailureReason.NOT_OWNER: 503,
    FailureReason.NOT_FOUND: 404,
    FailureReason.UNKNOWN_STORE: 404,
    FailureReason.BAD_KEY: 400,
    FailureReason.BAD_REQUEST: 400,
    FailureReason.OWNER_UNREACHABLE: 504,
}


@dataclass(frozen=True)
class QueryResult(Generic[T]):
    """``ok(value)`` or ``failure(reason, message)``; never both."""

    value: T | None = None
    reason: FailureReason | None = None
    message: str = ""

    @classmethod
    def ok(cls, value: T) -> QueryResult[T]:
        return cls(value=value)

    @classmethod
    def failure(cls, reason: FailureReason, message: str) -> QueryResult[T]:
        return cls(reason=reason, message=message)

    @property
    def is_ok(self) -> bool:
        return self.reason is None

    @property
    def status(self) -> int:
        return 200 if self.reason is None else self.reason.status

    def unwrap(self) -> T:
        """The value of an ``ok`` result; a failure raises ``ValueError`` (a bug to call)."""
        if self.reason is not None:
            raise ValueError(f"{self.reason.value}: {self.message}")
        return self.value  # type: ignore[return-value]


def failed(result: QueryResult[Any]) -> QueryResult[Any]:
    """A failure passed on as a result of another type."""
    assert result.reason is not None
    return QueryResult.failure(result.reason, result.message)
