"""The store's exceptions."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's errors."""


class SchemaError(StoreError):
    """The database's schema cannot be used by this code (too new, or not created yet)."""


class StoreClosed(StoreError):
    """The writer stopped before the awaited rows were committed."""


class Fenced(StoreClosed):
    """This collector no longer leads a shard it wrote for: the rows are dropped, not retried."""
