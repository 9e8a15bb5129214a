"""``GET /digests`` (per partition of this instance: last week done, counts) and
``POST /digests/run`` (run this week's digest now: durable, idempotent)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from streamtable.errors import StoreNotReady
from streamtable.query import QueryableApp
from us_shareholders.api.errors import documented, unavailable
from us_shareholders.digest import PROGRESS_STORE, DigestControl
from us_shareholders.schedule import DigestSchedule, WeekId


def digests_router(
    app: QueryableApp,
    control: DigestControl,
    schedule: DigestSchedule,
    request_digest: Callable[[WeekId, datetime], None],
    clock: Callable[[], datetime],
) -> APIRouter:
    """``request_digest(week, now)`` makes a digest request durable (the service writes it to
    the requests topic, read by every instance) and returns once the broker has it."""
    router = APIRouter()

    @router.get("/digests", responses=documented(503))
    def digests() -> Response:
        try:
            answers = control.answers()
            partitions = [
                {"partition": p, **state, "request_answered": answers.get(p)}
                for p, state in app.store(PROGRESS_STORE).all()
            ]
        except StoreNotReady as exc:
            return unavailable(str(exc))
        now = clock()
        return JSONResponse(
            {
                "schedule": str(schedule),
                "current_week": str(schedule.week_of(now)),
                "next_run": schedule.next_scheduled_at(now).isoformat(),
                "partitions": partitions,
            }
        )

    @router.post("/digests/run", status_code=202, responses=documented(503))
    def run_digest() -> Response:
        # Durable, not in memory: every instance reads the request from the requests topic, so
        # it reaches each partition even if an instance crashes or restarts right after it.
        now = clock()
        week = schedule.week_of(now)
        try:
            request_digest(week, now)
        except Exception as exc:  # the broker did not take it: nothing was requested
            return unavailable(f"the digest request could not be written: {exc}")
        return JSONResponse({"week": str(week), "status": "requested"}, 202)

    return router
