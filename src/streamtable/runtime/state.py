"""Lifecycles of an app and of its tasks, as enums with allowed transitions (Kafka ``State``).

App::

    CREATED -> REBALANCING <-> RUNNING
    any live state -> PENDING_SHUTDOWN -> NOT_RUNNING
    REBALANCING / RUNNING -> ERROR (terminal: close() releases resources, the state stays)

Task::

    CREATED -> RESTORING -> RUNNING -> CLOSED   (and CREATED/RESTORING -> CLOSED)
"""

from __future__ import annotations

from enum import Enum

from streamtable.errors import StreamTableError


class IllegalStateTransition(StreamTableError):
    """A lifecycle was asked to move along an edge its table does not allow (a bug)."""


class AppState(Enum):
    CREATED = "CREATED"
    REBALANCING = "REBALANCING"
    RUNNING = "RUNNING"
    PENDING_SHUTDOWN = "PENDING_SHUTDOWN"
    NOT_RUNNING = "NOT_RUNNING"
    ERROR = "ERROR"

    def can_move_to(self, new: AppState) -> bool:
        return new in _APP_TRANSITIONS[self]

    def is_alive(self) -> bool:
        return self in (AppState.REBALANCING, AppState.RUNNING)


_APP_TRANSITIONS: dict[AppState, frozenset[AppState]] = {
    AppState.CREATED: frozenset({AppState.REBALANCING, AppState.PENDING_SHUTDOWN}),
    AppState.REBALANCING: frozenset(
        {AppState.RUNNING, AppState.REBALANCING, AppState.PENDING_SHUTDOWN, AppState.ERROR}
    ),
    AppState.RUNNING: frozenset({AppState.REBALANCING, AppState.PENDING_SHUTDOWN, AppState.ERROR}),
    AppState.PENDING_SHUTDOWN: frozenset({AppState.NOT_RUNNING}),
    AppState.NOT_RUNNING: frozenset(),
    AppState.ERROR: frozenset(),
}


class TaskState(Enum):
    CREATED = "CREATED"
    RESTORING = "RESTORING"
    RUNNING = "RUNNING"
    CLOSED = "CLOSED"

    def can_move_to(self, new: TaskState) -> bool:
        return new in _TASK_TRANSITIONS[self]


_TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.CREATED: frozenset({TaskState.RESTORING, TaskState.CLOSED}),
    TaskState.RESTORING: frozenset({TaskState.RUNNING, TaskState.CLOSED}),
    TaskState.RUNNING: frozenset({TaskState.CLOSED}),
    TaskState.CLOSED: frozenset(),
}


def check_app_transition(old: AppState, new: AppState) -> None:
    if not old.can_move_to(new):
        raise IllegalStateTransition(f"app state cannot change from {old.name} to {new.name}")


def check_task_transition(task_id: str, old: TaskState, new: TaskState) -> None:
    if not old.can_move_to(new):
        raise IllegalStateTransition(
            f"task {task_id} state cannot change from {old.name} to {new.name}"
        )
