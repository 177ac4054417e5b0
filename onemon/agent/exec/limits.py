"""Defaults and bounds for running exec probes."""

from typing import Final

DEFAULT_TIMEOUT: Final = 20.0
"""Seconds one probe may run before its process group is killed (OpenNebula has no limit)."""

DEFAULT_MAX_OUTPUT: Final = 4 * 1024 * 1024
"""Bytes kept from one probe's stdout, and separately from its stderr."""

KILL_GRACE: Final = 1.0
"""Seconds between SIGTERM and SIGKILL to a probe's process group."""

DRAIN_TIMEOUT: Final = 1.0
"""Seconds to wait for a probe's pipes to close once its process group is gone."""

POLL_INTERVAL: Final = 0.01
"""Seconds between checks that a process group has emptied."""

CHUNK: Final = 256 * 1024
"""Largest read from a probe's pipe (asyncio's own read size); bounds memory per read."""
