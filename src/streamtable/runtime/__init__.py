"""The runtime: runs a topology on Kafka (consumer group, tasks, restore, commits, queries)."""

from streamtable.runtime._clients import check_connection
from streamtable.runtime._logs import kafka_logger
from streamtable.runtime._restore import StateRestoreListener
from streamtable.runtime.app import StreamsApp
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.state import AppState, TaskState

__all__ = [
    "AppState",
    "StateRestoreListener",
    "StreamsApp",
    "StreamsConfig",
    "TaskState",
    "check_connection",
    "kafka_logger",
]
