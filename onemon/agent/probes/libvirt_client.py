"""The only code touching the (untyped) libvirt binding: one read-only connection, bulk stats.

``LibvirtClient`` keeps one read-only connection, reuses it across cycles, reopens it after a
failure and returns typed ``Domain`` records; a single ``getAllDomainStats`` call per cycle
(with ``NOWAIT`` where the daemon has it, so a domain holding a job does not stall the rest)
lists only *active* domains, as OpenNebula's ``virsh list``. A daemon that cannot be reached
raises ``HypervisorUnreachable``; any other libvirt failure ``HypervisorError``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .vm_state import vm_id_of

DEFAULT_URI: Final = "qemu:///system"

# virDomainStatsTypes and virConnectGetAllDomainStatsFlags, as in libvirt-domain.h (stable ABI).
STATS_STATE: Final = 0x1
STATS_CPU_TOTAL: Final = 0x2
STATS_BALLOON: Final = 0x4
STATS_VCPU: Final = 0x8
STATS_INTERFACE: Final = 0x10
STATS_BLOCK: Final = 0x20
STATS_ALL: Final = (
    STATS_STATE | STATS_CPU_TOTAL | STATS_BALLOON | STATS_VCPU | STATS_INTERFACE | STATS_BLOCK
)
LIST_ACTIVE: Final = 0x1
STATS_NOWAIT: Final = 0x20000000

# virErrorNumber / virErrorDomain values that mean "the daemon is not there".
_CONN_ERRORS: Final = frozenset({5, 6, 38, 39, 45, 79, 94})  # NO_CONNECT … AUTH_UNAVAILABLE
_CONN_ERROR_DOMAINS: Final = frozenset({7, 13})  # VIR_FROM_RPC, VIR_FROM_REMOTE
_ERR_INVALID_ARG: Final = 8

Opener = Callable[[str], Any]
"""Opens a libvirt connection for a URI (default: ``libvirt.openReadOnly``)."""


class HypervisorError(Exception):
    """libvirt answered with an error: no data this cycle."""


class HypervisorUnreachable(HypervisorError):
    """libvirt cannot be reached (daemon down, refused, auth): report UNKNOWN, never POWEROFF."""


@dataclass(frozen=True, slots=True)
class Domain:
    """One domain as a bulk stats call returned it."""

    name: str
    uuid: str
    stats: Mapping[str, Any]

    @property
    def vm_id(self) -> int:
        """OpenNebula VM id from ``one-<id>``; -1 for a wild domain."""
        return vm_id_of(self.name)


def _binding() -> Any:
    """The libvirt module, with its default print-to-stderr error handler silenced."""
    try:
        import libvirt  # noqa: PLC0415  (optional: LXC-only nodes run without it)
    except ImportError as exc:
        raise HypervisorUnreachable(f"libvirt-python is not installed: {exc}") from exc
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


class LibvirtClient:
    """One read-only libvirt connection, reused across cycles and reopened after a failure."""

    def __init__(self, uri: str = DEFAULT_URI, opener: Opener | None = None) -> None:
        self.uri = uri
        self._opener = opener
        self._conn: Any = None
        self._nowait = STATS_NOWAIT
        self._lock = threading.Lock()

    def domains(self, *, state_only: bool = False) -> list[Domain]:
        """All active domains with their stats, in one ``getAllDomainStats`` call."""
        groups = STATS_STATE if state_only else STATS_ALL
        with self._lock:
            conn = self._connect()
            try:
                raw = self._bulk(conn, groups)
            except HypervisorUnreachable:  # the connection died (libvirtd restarted?): retry once
                raw = self._bulk(self._connect(), groups)
        return [Domain(dom.name(), dom.UUIDString(), stats) for dom, stats in raw]

    def domain_xml(self, uuid: str) -> str:
        """One domain's XML (used for wild domains only)."""
        with self._lock:
            conn = self._connect()
            try:
                return str(conn.lookupByUUIDString(uuid).XMLDesc(0))
            except Exception as exc:
                raise self._error(exc) from exc

    def close(self) -> None:
        """Close the connection (the next call reopens it)."""
        with self._lock:
            self._drop()

    def _bulk(self, conn: Any, groups: int) -> list[tuple[Any, dict[str, Any]]]:
        """The bulk call, with NOWAIT unless this daemon rejected it once."""
        flags = LIST_ACTIVE | self._nowait
        try:
            return list(conn.getAllDomainStats(groups, flags))
        except Exception as exc:
            if self._nowait and _code(exc) == _ERR_INVALID_ARG:
                self._nowait = 0  # libvirt < 4.5: no NOWAIT
                return self._bulk(conn, groups)
            raise self._error(exc) from exc

    def _connect(self) -> Any:
        """The open connection, opening it when there is none (or it died)."""
        if self._conn is not None and self._alive(self._conn):
            return self._conn
        self._drop()
        libvirt = _binding()
        opener = self._opener or libvirt.openReadOnly
        try:
            self._conn = opener(self.uri)
        except Exception as exc:
            raise HypervisorUnreachable(f"cannot connect to {self.uri}: {exc}") from exc
        if self._conn is None:
            raise HypervisorUnreachable(f"cannot connect to {self.uri}")
        return self._conn

    def _drop(self) -> None:
        """Forget (and close) the current connection."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                conn.close()

    @staticmethod
    def _alive(conn: Any) -> bool:
        """libvirt's own (local) view of whether the connection still works."""
        try:
            return bool(conn.isAlive())
        except Exception:
            return False

    def _unreachable(self, exc: BaseException) -> bool:
        """True when ``exc`` means the daemon went away rather than a per-call error."""
        if self._conn is not None and not self._alive(self._conn):
            return True
        domain = getattr(exc, "get_error_domain", lambda: None)()
        return _code(exc) in _CONN_ERRORS or domain in _CONN_ERROR_DOMAINS

    def _error(self, exc: BaseException) -> HypervisorError:
        """The typed error for a failed call; an unreachable daemon also drops the connection."""
        if self._unreachable(exc):
            self._drop()
            return HypervisorUnreachable(f"{self.uri}: {exc}")
        return HypervisorError(f"{self.uri}: {exc}")


def _code(exc: BaseException) -> int | None:
    """A libvirtError's error number (None for other exceptions)."""
    get = getattr(exc, "get_error_code", None)
    return get() if callable(get) else None
