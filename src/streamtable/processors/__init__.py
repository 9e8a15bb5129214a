"""Operators: one module per operator, each a :class:`Node` with ``process(key, value, ts)``.

For tables ``value`` is a change ``(new, old)``. The same code runs in the test driver and on
Kafka.
"""

from streamtable.processors._api import (
    Change,
    GetterSpec,
    Node,
    PunctuationType,
    TableMaterializer,
    TaskContext,
)
from streamtable.processors.user_processor import Processor, ProcessorContext, Record

__all__ = [
    "Change",
    "GetterSpec",
    "Node",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "Record",
    "TableMaterializer",
    "TaskContext",
]
