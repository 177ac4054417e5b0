"""The kernel's UDP error counters (``/proc/net/snmp`` and ``/proc/net/snmp6``).

They count for the whole network namespace, not only the collector's sockets: a datagram the
kernel dropped for a full receive buffer is counted nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class UdpErrors:
    """UDP receive errors, IPv4 and IPv6 summed."""

    rcvbuf_errors: int
    """Datagrams dropped because the socket's receive buffer was full."""
    in_errors: int
    """Datagrams not delivered for any reason (includes ``rcvbuf_errors``)."""


def _snmp(text: str) -> dict[str, int]:
    """``Udp:`` counters from /proc/net/snmp (a header line, then a value line)."""
    rows = [line.split() for line in text.splitlines() if line.startswith("Udp:")]
    if len(rows) < 2 or len(rows[0]) != len(rows[1]):
        return {}
    return {name: int(value) for name, value in zip(rows[0][1:], rows[1][1:], strict=True)}


def _snmp6(text: str) -> dict[str, int]:
    """``Udp6*`` counters from /proc/net/snmp6 (one ``name value`` per line)."""
    found = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0].startswith("Udp6"):
            found[fields[0].removeprefix("Udp6")] = int(fields[1])
    return found


def _read(path: Path) -> str | None:
    """The file's text, or None when it cannot be read."""
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None


def udp_errors(procfs: Path = Path("/proc")) -> UdpErrors | None:
    """The counters now, or None when neither file is readable or parsable."""
    v4, v6 = _read(procfs / "net" / "snmp"), _read(procfs / "net" / "snmp6")
    if v4 is None and v6 is None:
        return None
    try:
        found = [_snmp(v4 or ""), _snmp6(v6 or "")]
    except ValueError:
        return None
    if not any(found):
        return None
    return UdpErrors(
        sum(f.get("RcvbufErrors", 0) for f in found), sum(f.get("InErrors", 0) for f in found)
    )
