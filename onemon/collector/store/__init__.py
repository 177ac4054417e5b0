"""The collector's store: current state, monitoring history, state-change journal, progress.

``StoreWriter`` takes submissions from the event loop and commits them in batches in one
thread; ``StoreReader`` reads the snapshot at start-up and history for the APIs.
"""

from onemon.collector.store.config import StoreConfig
from onemon.collector.store.errors import SchemaError, StoreClosed, StoreError
from onemon.collector.store.migrations import LATEST as SCHEMA_VERSION
from onemon.collector.store.migrations import migrate
from onemon.collector.store.reader import StoreReader
from onemon.collector.store.records import ProgressRow, Sample, Snapshot, StateChange
from onemon.collector.store.writer import StoreWriter

__all__ = [
    "SCHEMA_VERSION",
    "ProgressRow",
    "Sample",
    "SchemaError",
    "Snapshot",
    "StateChange",
    "StoreClosed",
    "StoreConfig",
    "StoreError",
    "StoreReader",
    "StoreWriter",
    "migrate",
]
