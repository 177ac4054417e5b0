"""Failures of what the front depends on; clients see only ``public``, the log sees the rest."""

from __future__ import annotations


class Unavailable(Exception):
    """A dependency (store, collector) could not serve the request."""

    public = "A service the front-end needs is not available."
