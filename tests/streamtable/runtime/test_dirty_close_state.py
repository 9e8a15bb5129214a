"""At least once, a dirty close (lost partitions, a restart after a freeze or a delivery timeout)
used to keep each running task's stores and checkpoint its source tables at the committed
offsets: the next owner on this instance then replays from the values the stores hold, which
is right only when every change they forwarded reaches downstream. Chaos seed 653252: a process
whose records timed out during a broker outage started its tasks again, but was killed while
that restart waited for the broker, after the checkpoint was written and before its stores were
wiped; restarted, it replayed from values whose subtractions had been dropped, and 44 of 181
clients kept positions they had left. Now a restart wipes the stores before it waits for
anything, and a dirty close keeps them only when the producer holds no undelivered record."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import TopicPartition

import streamtable as st
from streamtable.runtime.state import TaskState
from tests.support.offline import offline_app

pytestmark = pytest.mark.unit


class Killed(Exception):
    """Stands for a SIGKILL while the restart waits for the broker."""


class FakeProducer:
    def __init__(self, queued: int) -> None:
        self.queued = queued

    def poll(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return self.queued


class WaitingConsumer:
    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        raise Killed


def make_app(queued: int) -> tuple[st.StreamsApp, list[str]]:
    app = offline_app("dirty")
    app._collector = SimpleNamespace(  # type: ignore[assignment]
        producer=FakeProducer(queued), changelog_offsets={}
    )
    app._restorer = SimpleNamespace(remove=lambda task: None)  # type: ignore[assignment]
    checkpoints: list[str] = []
    for p in (0, 1):
        task_id = f"0_{p}"
        directory = app._state_dir.task_dir(task_id)
        directory.mkdir(parents=True)
        (directory / ".checkpoint").write_text("events 0 40\n")

        def close(task: Any) -> None:
            task.state = TaskState.CLOSED

        task = SimpleNamespace(
            task_id=task_id,
            partition=p,
            topics=["events"],
            state=TaskState.RUNNING,
            core=SimpleNamespace(discard_caches=lambda: None),
            write_checkpoint=lambda written, task_id=task_id: checkpoints.append(task_id),
        )
        task.close = lambda task=task: close(task)
        app._tasks[task_id] = task  # type: ignore[assignment]
    return app, checkpoints


def task_dirs(app: st.StreamsApp) -> list[str]:
    return sorted(d for d in ("0_0", "0_1") if app._state_dir.task_dir(d).exists())


def test_a_restart_wipes_the_stores_before_it_waits_for_the_broker() -> None:
    app, checkpoints = make_app(queued=0)
    app._consumer = WaitingConsumer()  # type: ignore[assignment]
    app._restart_tasks()
    with pytest.raises(Killed):
        app._resume_restart()  # the wait for the committed offsets
    assert task_dirs(app) == []  # were both kept, with a fresh checkpoint, before
    assert checkpoints == []


def test_a_dirty_close_with_undelivered_records_wipes_the_stores() -> None:
    app, checkpoints = make_app(queued=3)
    app._close_tasks(list(app._tasks.values()))
    assert task_dirs(app) == []
    assert checkpoints == []


def test_a_dirty_close_with_everything_delivered_keeps_and_checkpoints_the_stores() -> None:
    app, checkpoints = make_app(queued=0)
    app._close_tasks(list(app._tasks.values()))
    assert task_dirs(app) == ["0_0", "0_1"]
    assert checkpoints == ["0_0", "0_1"]
