"""Merging a cluster page: the instances' parts must cover every partition of the store exactly
once (else ``not_ready``: rebalancing, retry), and their items, each part sorted by key bytes,
merge into the first ``limit``."""

from __future__ import annotations

from operator import itemgetter

from streamtable.query._local import ScanPage
from streamtable.query._result import FailureReason, QueryResult
from streamtable.runtime._metadata import StreamsMetadata


def coverage(store: str, instances: list[StreamsMetadata]) -> QueryResult[int]:
    """The store's partition count, if the live instances own each partition exactly once."""
    local = next((m for m in instances if m.is_local), None)
    count = None if local is None else local.partition_counts.get(store)
    if count is None:
        return QueryResult.failure(FailureReason.NOT_READY, "the app has not started")
    advertised = sorted(p for m in instances for p in m.active.get(store, ()))
    if advertised != list(range(count)):
        return QueryResult.failure(
            FailureReason.NOT_READY,
            f"the live instances do not cover the {count} partitions of {store!r} "
            "exactly once (rebalancing); retry",
        )
    return QueryResult.ok(count)


def merge_parts(store: str, parts: list[ScanPage], count: int, limit: int) -> QueryResult[ScanPage]:
    """Merge the instances' parts (each sorted by key bytes) into the first ``limit`` items."""
    served = sorted(p for part in parts for p in part.partitions)
    if served != list(range(count)):
        return QueryResult.failure(
            FailureReason.NOT_READY, f"partitions of {store!r} moved during the scan; retry"
        )
    rows = sorted((row for part in parts for row in part.items), key=itemgetter(0))
    more = len(rows) > limit or any(part.has_more for part in parts)
    return QueryResult.ok(ScanPage(rows[:limit], tuple(served), more))
