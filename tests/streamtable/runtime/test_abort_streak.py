"""exactly_once_v2: a commit aborted twice in a row replaces the producer. After a broker restart
and a freeze, librdkafka's connection to the transaction coordinator stayed stuck in one process
(every AddOffsetsToTxn timed out in its queue; the abort itself went through). The app rebuilt
its tasks and kept the producer, so every commit aborted the same way and the task's input never
moved again (chaos seed 743451: 17 aborts in a row over 3 minutes). A first abort keeps the
producer (a coordinator moving is worth one more try); a second one in a row replaces it."""

from __future__ import annotations

from typing import Any

import pytest

from streamtable.runtime._producer import TransactionAborted
from streamtable.runtime._thread import StreamThread
from tests.support.offline import offline_thread

pytestmark = pytest.mark.unit


class AbortingCommitter:
    """Aborts the commits listed in ``aborts`` (by call number), finds nothing to commit in
    those listed in ``empty``, lets the others through."""

    def __init__(self, aborts: set[int], empty: set[int], fatal: bool = False) -> None:
        self.aborts = aborts
        self.empty = empty
        self.fatal = fatal
        self.calls = 0

    def commit(self, tasks: Any, closing: bool = False) -> bool:
        self.calls += 1
        if self.calls in self.aborts:
            raise TransactionAborted("transaction aborted: Local: Timed out", fatal=self.fatal)
        return self.calls not in self.empty


def committing_thread(committer: AbortingCommitter) -> tuple[StreamThread, list[bool]]:
    """A thread whose commits go through ``committer``; the list gets the ``fatal`` argument
    of every recovery from an abort (True: the producer is replaced)."""
    thread = offline_thread("aborts", processing_guarantee="exactly_once_v2")
    thread.clients.committer = committer  # type: ignore[assignment]
    recoveries: list[bool] = []
    thread.commits.recover_from_abort = recoveries.append  # type: ignore[method-assign,assignment]
    return thread, recoveries


def replaced_on(aborts: set[int], commits: int, empty: frozenset[int] = frozenset()) -> list[bool]:
    thread, recoveries = committing_thread(AbortingCommitter(aborts, set(empty)))
    for _ in range(commits):
        thread.commits.commit()
    return recoveries


def test_a_second_abort_in_a_row_replaces_the_producer() -> None:
    assert replaced_on({1, 2, 3}, 3) == [False, True, True]  # [False, False, False] before


def test_a_commit_that_goes_through_ends_the_streak() -> None:
    assert replaced_on({1, 3}, 3) == [False, False]


def test_a_commit_with_nothing_to_commit_does_not_end_the_streak() -> None:
    """After an abort the tasks are rebuilt: the commits while they restore have nothing to
    commit. Counted as commits that went through, they ended every streak at one abort (chaos
    seed 695530, a replay: 17 aborts in a row, the stuck producer never replaced)."""
    assert replaced_on({1, 3, 5}, 5, empty=frozenset({2, 4})) == [False, True, True]


def test_a_fatal_abort_replaces_it_at_once() -> None:
    thread, recoveries = committing_thread(AbortingCommitter({1}, set(), fatal=True))
    thread.commits.commit()
    assert recoveries == [True]
