"""The weekly digest: one email job per (client, week), exactly once, per partition.

:class:`DigestProcessor` runs inside each task of the holders' sub-topology, so it sees exactly
the clients of the partition that task owns. A wall-clock punctuator checks, every second,
whether a week is due (``schedule.due_week``: at or after the scheduled time, catching up only
the current week, never for a brand-new deployment before its first scheduled time) or was
asked for (``POST /digests/run``, which writes the week to the compacted
``<application id>-digest-requests`` topic, read by every instance as a GlobalKTable: a request
survives a crash or restart of any instance and reaches the partitions wherever they move).
It then waits until every instance has processed and committed the positions topic up to
its end offsets seen when the week became due, and this task has read its own input (the
repartitioned holders) up to the end offsets seen after that (never a stale table). It
forwards one job per eligible client to ``<application id>-digests`` and records the
partition's progress in the changelogged ``digest-progress`` store. Jobs and progress are
written by the same task in the same commit, so under ``exactly_once_v2`` they are one
transaction: a crash before the commit re-runs the week; after it, the week is done.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import streamtable as st
from us_shareholders.schedule import DigestSchedule, WeekId, missed_weeks

log = logging.getLogger("us_shareholders.digest")

HOLDERS_STORE = "us-share-holders"
PROGRESS_STORE = "digest-progress"
CLIENTS_STORE = "clients-store"
INSTRUMENTS_STORE = "instruments-store"
REQUESTS_STORE = "digest-requests"
REQUEST_KEY = "run"
TICK_MS = 1000
KEEP_RUNS = 8


def requests_topic(application_id: str) -> str:
    """The compacted topic of digest requests (``POST /digests/run``), one key: ``run``."""
    return f"{application_id}-digest-requests"


def request_record(week: WeekId, now: datetime) -> dict[str, Any]:
    """The value ``POST /digests/run`` writes to the requests topic under ``REQUEST_KEY``."""
    return {"week": str(week), "requested_at": now.isoformat()}


class DigestControl:
    """Shared between the HTTP API and the digest processors of one instance: which partitions
    answered the latest request, and an in-process request (the dry run and tests; the HTTP API
    writes the durable requests topic instead)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requested: WeekId | None = None
        self._answered: dict[int, str] = {}  # partition -> last requested week it handled

    def answered(self, partition: int, week: WeekId) -> None:
        """A partition's processor handled the request for ``week`` (ran it, or it was done)."""
        with self._lock:
            self._answered[partition] = str(week)

    def answers(self) -> dict[int, str]:
        with self._lock:
            return dict(self._answered)

    def request(self, week: WeekId) -> None:
        with self._lock:
            if self._requested is None or week > self._requested:
                self._requested = week

    def requested(self) -> WeekId | None:
        with self._lock:
            return self._requested


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class _Target:
    """A due week: the positions topic's end offsets when it became due, and (once every
    instance has committed those) the end offsets of this task's inputs to read up to."""

    week: WeekId
    upstream: dict[int, int]
    inputs: dict[str, int] | None = None


class DigestProcessor(st.Processor):
    """See the module docstring. One instance per task (partition)."""

    def __init__(
        self,
        schedule: DigestSchedule,
        control: DigestControl,
        with_instruments: bool,
        upstream: str,
    ) -> None:
        self.schedule = schedule
        self.control = control
        self.with_instruments = with_instruments
        self.upstream = upstream  # the positions topic, read by another sub-topology
        self._target: _Target | None = None

    def init(self, context: st.ProcessorContext) -> None:
        super().init(context)
        self.holders = context.get_state_store(HOLDERS_STORE)
        self.progress = context.get_state_store(PROGRESS_STORE)
        self.clients = context.get_state_store(CLIENTS_STORE)
        self.instruments = (
            context.get_state_store(INSTRUMENTS_STORE) if self.with_instruments else None
        )
        self.requests = context.get_state_store(REQUESTS_STORE)
        context.schedule(TICK_MS, st.PunctuationType.WALL_CLOCK_TIME, self.tick)

    def process(self, record: st.Record) -> None:
        """Holder changes flow past: the digest reads the store when it runs."""

    # -- the weekly run --------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        partition = self.context.partition
        state = self.progress.get(partition)
        if state is None:
            # First sight of this partition: "armed" now; a brand-new deployment waits for
            # the next scheduled time (or an explicit request).
            state = {"last_week": None, "armed_at": now_ms, "runs": {}}
            self.progress.put(partition, state, now_ms)
        week = self._due(state, now_ms)
        if week is None:
            self._target = None
            self._answer(None)
            return
        if self._target is None or self._target.week != week:
            # The positions as they stand now, on every partition: each may feed this one.
            now_offsets = self.context.group_offsets(self.upstream)
            if now_offsets is None:
                return  # not read yet (on another thread): at the next tick
            upstream = {p: end for p, (_, end) in now_offsets.items()}
            self._target = _Target(week, upstream)
            log.info("partition %d: week %s due; waiting for %s up to %s", partition, week,
                     self.upstream, upstream)  # fmt: skip
        target = self._target
        if target.inputs is None:
            committed = self.context.group_offsets(self.upstream)
            if committed is None or any(
                committed.get(p, (0, 0))[0] < end for p, end in target.upstream.items()
            ):
                return  # some instance has not processed (and committed) those positions yet
            # They are all in this task's inputs now (committed with the offsets): read to here.
            inputs = self.context.input_offsets()
            if inputs is None:
                return
            target.inputs = {t: end for t, (_, end) in inputs.items()}
        offsets = self.context.input_offsets()
        if offsets is None or any(
            offsets.get(t, (0, 0))[0] < end for t, end in target.inputs.items()
        ):
            return  # not caught up yet: never run on a stale table
        self._run(week, state, now_ms)
        self._target = None
        self._answer(week)

    def _requested(self) -> WeekId | None:
        """The latest requested week: durable (requests topic) or in-process, whichever is later."""
        weeks = [self.control.requested()]
        durable = self.requests.get(REQUEST_KEY)  # validated by records.DIGEST_REQUEST
        if durable is not None:
            weeks.append(WeekId.parse(durable["week"]))
        known = [w for w in weeks if w is not None]
        return max(known) if known else None

    def _answer(self, ran: WeekId | None) -> None:
        """Tell the control that a pending request is handled (``GET /digests`` shows it)."""
        requested = self._requested()
        if requested is not None and (ran is None or ran == requested):
            self.control.answered(self.context.partition, requested)

    def _due(self, state: dict[str, Any], now_ms: int) -> WeekId | None:
        now = _utc(now_ms)
        last = None if state["last_week"] is None else WeekId.parse(state["last_week"])
        week = self.schedule.due_week(now, last, _utc(state["armed_at"]))
        current = self.schedule.week_of(now)
        requested = self._requested()
        if week is None and requested == current and (last is None or last < current):
            week = current
        if week is not None and last is not None:
            skipped = missed_weeks(last, week)
            if skipped:
                log.warning(
                    "partition %d: weeks %s were missed entirely and are not sent late",
                    self.context.partition,
                    ", ".join(map(str, skipped)),
                )
        return week

    def _run(self, week: WeekId, state: dict[str, Any], now_ms: int) -> None:
        jobs = unsubscribed = no_email = 0
        for client, positions in list(self.holders.all()):
            info = self.clients.get(client)
            if info is None or not info.get("email"):
                no_email += 1
                continue
            if info.get("unsubscribed"):
                unsubscribed += 1
                continue
            self.context.forward(
                st.Record(client, self._job(week, client, info, positions), now_ms)
            )
            jobs += 1
        runs = dict(state.get("runs") or {})
        runs[str(week)] = {
            "jobs": jobs,
            "skipped_unsubscribed": unsubscribed,
            "skipped_no_email": no_email,
            "finished_at": now_ms,
        }
        for old in sorted(runs)[:-KEEP_RUNS]:
            del runs[old]
        self.progress.put(
            self.context.partition,
            {"last_week": str(week), "armed_at": state["armed_at"], "runs": runs},
            now_ms,
        )
        log.info(
            "partition %d: week %s: %d jobs, %d unsubscribed, %d without email",
            self.context.partition,
            week,
            jobs,
            unsubscribed,
            no_email,
        )

    def _job(
        self, week: WeekId, client: str, info: dict[str, Any], positions: dict[str, Any]
    ) -> dict[str, Any]:
        listed = []
        for pid in sorted(positions):
            pos = positions[pid]
            company = None
            if self.instruments is not None:
                found = self.instruments.get(pos["ticker"])
                company = None if found is None else found.get("name")
            listed.append({"id": pid, **pos, "company": company})
        return {
            "week": str(week),
            "client": client,
            "name": info.get("name"),
            "email": info["email"],
            "positions": listed,
        }
