"""The Processor API: custom processors with state stores and punctuators (``KStream.process``).

Example::

    class CountPerKey(st.Processor):
        def init(self, context):
            super().init(context)
            self.store = context.get_state_store("counts")
            context.schedule(60_000, st.PunctuationType.WALL_CLOCK_TIME, self.report)

        def process(self, record):
            n = (self.store.get(record.key) or 0) + 1
            self.store.put(record.key, n, record.timestamp)

        def report(self, timestamp):
            for key, n in self.store.all():
                self.context.forward(st.Record(key, n, timestamp))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamtable.processors._api import Node, PunctuationType, TaskContext


@dataclass(frozen=True, slots=True)
class Record:
    """A record as custom processors see it."""

    key: Any
    value: Any
    timestamp: int
    headers: list[tuple[str, bytes | None]] | None = field(default=None)


class ProcessorContext:
    """What a custom processor can do: forward, use its stores, schedule punctuators."""

    def __init__(self, node: Node, task: TaskContext, stores: tuple[str, ...]) -> None:
        self._node = node
        self._task = task
        self._stores = stores

    @property
    def task_id(self) -> str:
        return self._task.task_id

    @property
    def partition(self) -> int:
        return self._task.partition

    @property
    def topic(self) -> str | None:
        return self._task.topic

    @property
    def offset(self) -> int:
        return self._task.offset

    def input_offsets(self) -> dict[str, tuple[int, int]] | None:
        """``{input topic: (next offset to process, end offset)}`` of this task's partition:
        whether the task has caught up with its inputs (always, in the test driver). None
        while the end offsets are not known yet: ask again (at the next punctuation). Never
        waits on the broker: the end offsets are read on another thread, every half second."""
        return self._task.input_offsets()

    def group_offsets(self, topic: str) -> dict[int, tuple[int, int]] | None:
        """``{partition: (committed offset, end offset)}`` of ``topic`` for the whole
        application, every instance: whether everything up to the end offsets has been
        processed and committed (always, and so empty, in the test driver). None while not
        known yet: ask again. Read on another thread every half second, from the first ask
        on: never waits on the broker, and never older than the first ask."""
        return self._task.group_offsets(topic)

    def forward(self, record: Record) -> None:
        self._node.forward(record.key, record.value, record.timestamp)

    def get_state_store(self, name: str) -> Any:
        if name not in self._stores:
            from streamtable.errors import StoreNotFound

            raise StoreNotFound(name, list(self._stores))
        return self._task.store(name)

    def schedule(
        self, interval_ms: int, kind: PunctuationType, callback: Callable[[int], None]
    ) -> Callable[[], None]:
        """Call ``callback(timestamp)`` every ``interval_ms``; returns a function that cancels."""
        return self._task.schedule(interval_ms, kind, callback)


class Processor:
    """Base class for custom processors. Override ``process``; ``init`` and ``close`` optional."""

    context: ProcessorContext

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, record: Record) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class UserProcessorNode(Node):
    """Runs a user :class:`Processor` inside the topology."""

    def __init__(
        self, name: str, factory: Callable[[], Processor], stores: tuple[str, ...]
    ) -> None:
        super().__init__(name)
        self.factory = factory
        self.store_names = stores

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.user = self.factory()
        self.user.init(ProcessorContext(self, ctx, self.store_names))

    def process(self, key: Any, value: Any, timestamp: int) -> None:
        self.user.process(Record(key, value, timestamp, self.ctx.headers))

    def close(self) -> None:
        self.user.close()
