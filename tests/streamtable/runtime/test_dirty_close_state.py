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

from streamtable.runtime._thread import StreamThread
from streamtable.runtime.state import TaskState
from tests.support.offline import IdleProducer, IdleRestorer, offline_thread

pytestmark = pytest.mark.unit


class Killed(Exception):
    """Stands for a SIGKILL while the restart waits for the broker."""


class WaitingConsumer:
    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        raise Killed


def make_thread(queued: int, consumer: object | None = None) -> tuple[StreamThread, list[str]]:
    """At least once, two running tasks with state on disk (and a checkpoint); the producer
    holds ``queued`` undelivered records. The list gets the tasks that write a checkpoint."""
    thread = offline_thread(
        "dirty", consumer=consumer, producer=IdleProducer(queued), restorer=IdleRestorer()
    )
    checkpoints: list[str] = []
    for p in (0, 1):
        task_id = f"0_{p}"
        directory = thread.ctx.state_dir.task_dir(task_id)
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
        thread.tasks.tasks[task_id] = task  # type: ignore[assignment]
    return thread, checkpoints


def task_dirs(thread: StreamThread) -> list[str]:
    return sorted(d for d in ("0_0", "0_1") if thread.ctx.state_dir.task_dir(d).exists())


def test_a_restart_wipes_the_stores_before_it_waits_for_the_broker() -> None:
    thread, checkpoints = make_thread(queued=0, consumer=WaitingConsumer())
    thread.tasks.restart_all()
    with pytest.raises(Killed):
        thread.tasks.resume_restart()  # the wait for the committed offsets
    assert task_dirs(thread) == []  # were both kept, with a fresh checkpoint, before
    assert checkpoints == []


def test_a_dirty_close_with_undelivered_records_wipes_the_stores() -> None:
    thread, checkpoints = make_thread(queued=3)
    thread.tasks.close(list(thread.tasks.tasks.values()))
    assert task_dirs(thread) == []
    assert checkpoints == []


def test_a_dirty_close_with_everything_delivered_keeps_and_checkpoints_the_stores() -> None:
    thread, checkpoints = make_thread(queued=0)
    thread.tasks.close(list(thread.tasks.tasks.values()))
    assert task_dirs(thread) == ["0_0", "0_1"]
    assert checkpoints == ["0_0", "0_1"]
