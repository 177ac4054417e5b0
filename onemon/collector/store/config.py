"""The store's settings, with OpenNebula's defaults where it has one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where the store lives, how the writer batches, and how long history is kept."""

    url: str = "sqlite:////var/lib/onemon/collector.db"
    """``sqlite:///path``, ``postgresql+psycopg://…`` or ``mysql+pymysql://…``."""
    batch_rows: int = 5000
    """Rows per transaction (coalesced state may add to it)."""
    batch_delay: float = 0.05
    """Longest a row waits for companions before its batch is written (``persisted()`` skips it)."""
    max_backlog_rows: int = 100_000
    """Rows held in memory while the database lags; beyond it, the oldest history is dropped."""
    host_retention: float = 43_200
    """Seconds of ``host_monitoring`` kept; 0 records none (HOST_MONITORING_EXPIRATION_TIME)."""
    vm_retention: float = 43_200
    """Seconds of ``vm_monitoring`` kept; 0 records none (VM_MONITORING_EXPIRATION_TIME)."""
    journal_retention: float = 43_200
    """Seconds of ``state_changes`` kept; 0 records none."""
    retention_interval: float = 15.0
    """Seconds between retention passes (MANAGER_TIMER)."""
    retention_chunk: int = 5000
    """Rows deleted per retention transaction."""
    busy_timeout: float = 5.0
    """How long a write waits for another session's lock before it fails and is retried
    (SQLite busy timeout, PostgreSQL lock_timeout, MySQL lock_wait_timeout)."""
    connect_timeout: float = 5.0
    """PostgreSQL/MySQL: how long a connection attempt may take."""
    retry_min: float = 0.1
    """First back-off after a failed write; doubles up to ``retry_max``."""
    retry_max: float = 10.0
    stop_timeout: float = 10.0
    """How long ``stop()`` keeps trying to write what is pending."""
    error_log_interval: float = 60.0
    """A given kind of database error is logged at most once per this many seconds."""
