"""Interactive queries do not wait for processing: the app's lock (which a read takes to look
tasks up) is held only while tasks are created or closed, never around a commit or a
punctuator or schedule. Before, the processing thread held it around every pass of its loop: a
digest run (a punctuator of a few seconds per partition) held every ``GET /holders/{client}``
up for 13-19 s."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import TopicPartition

from streamtable.runtime._context import AppContext
from streamtable.runtime.state import AppState
from tests.streamtable.runtime.test_taskmanager import GroupConsumer, manager, running

pytestmark = pytest.mark.unit


def lock_free(lock: threading.RLock) -> bool:
    """Whether another thread (a query) gets the app's lock now, within 2 s."""
    got: list[bool] = []

    def query() -> None:
        acquired = lock.acquire(timeout=2)
        got.append(acquired)
        if acquired:
            lock.release()

    reader = threading.Thread(target=query)
    reader.start()
    reader.join(5)
    return got == [True]


class CommitWatchingConsumer(GroupConsumer):
    def __init__(self, ctx: list[AppContext]) -> None:
        super().__init__()
        self.ctx = ctx
        self.free_during_commit: list[bool] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        if self.ctx:  # once the thread exists: the start-offset commit of a task comes first
            self.free_during_commit.append(lock_free(self.ctx[0].lock))
        super().commit(offsets, asynchronous)

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:  # for the gauges
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in tps]


def test_a_commit_does_not_hold_the_lock_that_queries_take() -> None:
    ctx: list[AppContext] = []
    consumer = CommitWatchingConsumer(ctx)
    thread, _ = manager(consumer)
    running(thread, 0)
    ctx.append(thread.ctx)
    thread.tasks.tasks["0_0"].core.process("events", b"k", b"v", 1_000, 0)
    thread.tasks.tasks["0_0"].consumed["events"] = 1
    thread.commits.commit()
    assert consumer.free_during_commit == [True]


def test_a_schedule_does_not_hold_the_lock_that_queries_take() -> None:
    thread, _ = manager()
    seen: list[bool] = []
    thread.ctx.schedules.add(1, None, lambda now: seen.append(lock_free(thread.ctx.lock)), 0)
    thread.assignment_seen = True  # an assignment with nothing to restore: RUNNING
    thread.handle([])
    assert thread.ctx.state() is AppState.RUNNING
    assert seen == [True]


def test_creating_tasks_holds_it() -> None:
    """The one place a query must wait: stores being opened (or closed) under it."""
    thread, _ = manager()
    held: list[bool] = []
    create = thread.tasks.create

    def watching(assignment: list[tuple[str, int]]) -> None:
        real_lock = thread.ctx.lock

        class Watch:
            def __enter__(self) -> None:
                real_lock.acquire()
                held.append(not lock_free(real_lock))

            def __exit__(self, *exc: object) -> None:
                real_lock.release()

        thread.ctx.lock = Watch()  # type: ignore[assignment]
        try:
            create(assignment)
        finally:
            thread.ctx.lock = real_lock

    watching([("events", 0)])
    assert held == [True]
