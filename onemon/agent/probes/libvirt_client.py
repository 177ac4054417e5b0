"""The only code touching the (untyped) libvirt binding: one read-only connection, bulk stats.

``LibvirtClient`` keeps one read-only connection, reuses it across cycles, reopens it after a
failure and returns typed ``Domain`` records. Only *active* domains are listed, as OpenNebula's
``virsh list``. Never one call per domain:

- the full stats cycle lists the active domains once (``listAllDomains``, answered from
  libvirtd's memory), then fetches their stats with ``domainListGetStats`` over a few chunks
  (``chunks_for``) called in parallel threads on the one connection. libvirtd serves one
  client's calls on its worker threads (``max_client_requests`` = 5 by default) and collects a
  chunk's domains one after another, each with QMP round trips to its QEMU, so chunks overlap
  that waiting. A domain that vanished or stopped since the listing is skipped by libvirtd;
- the state-only cycle (``STATE`` group, no QEMU involved) is one ``getAllDomainStats`` call.

Both use ``NOWAIT`` where the daemon has it, so a domain holding a job does not stall the rest.
A daemon that cannot be reached (by any chunk) raises ``HypervisorUnreachable`` for the whole
cycle; any other libvirt failure ``HypervisorError``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

MAX_CHUNKS: Final = 4
"""Parallel ``domainListGetStats`` calls per cycle: below libvirtd's 5 requests per client."""
CHUNK_DOMAINS: Final = 8
"""Fewest domains per chunk: a handful of domains is not worth a second call."""

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


def chunks_for(count: int, max_chunks: int = MAX_CHUNKS, chunk_domains: int = CHUNK_DOMAINS) -> int:
    """How many parallel stats calls for ``count`` domains: ``min(max, ceil(count / per))``."""
    return max(1, min(max_chunks, math.ceil(count / max(1, chunk_domains))))


def slices(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    """``items`` cut into ``parts`` contiguous slices whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    bounds = [i * size + min(i, extra) for i in range(parts + 1)]
    return [items[bounds[i] : bounds[i + 1]] for i in range(parts)]


class LibvirtClient:
    """One read-only libvirt connection, reused across cycles and reopened after a failure.

    ``vcpu`` adds the VCPU stats group (per-vCPU state and times, for the collector's
    ``opennebula_libvirt_vcpu_*`` series; OpenNebula's own probes do not report it). On by
    default: those series are part of our output and nothing else feeds them. The group costs
    QMP round trips per domain, 15-20 % of the cycle's wall time under TCG, spent waiting on
    QEMU rather than on CPU (libvirtd stays near 0.1 % of a core with the agent's periods).
    ``max_chunks`` and ``chunk_domains`` shape the parallel stats calls (see ``chunks_for``).
    """

    def __init__(
        self,
        uri: str = DEFAULT_URI,
        opener: Opener | None = None,
        *,
        vcpu: bool = True,
        max_chunks: int = MAX_CHUNKS,
        chunk_domains: int = CHUNK_DOMAINS,
    ) -> None:
        self.uri = uri
        self.groups = STATS_ALL if vcpu else STATS_ALL & ~STATS_VCPU
        self.max_chunks = max(1, max_chunks)
        self.chunk_domains = chunk_domains
        self._opener = opener
        self._conn: Any = None
        self._nowait = STATS_NOWAIT
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def domains(self, *, state_only: bool = False) -> list[Domain]:
        """All active domains with their stats (state only: one ``getAllDomainStats`` call)."""
        fetch = self._states if state_only else self._stats
        with self._lock:
            try:
                raw = fetch(self._connect())
            except HypervisorUnreachable:  # the connection died (libvirtd restarted?): retry once
                raw = fetch(self._connect())
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
        """Close the connection and stop the stats threads (the next call reopens both)."""
        with self._lock:
            self._drop()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _states(self, conn: Any) -> list[tuple[Any, dict[str, Any]]]:
        """The STATE group of every active domain in one call (NOWAIT unless refused once)."""
        try:
            return list(conn.getAllDomainStats(STATS_STATE, LIST_ACTIVE | self._nowait))
        except Exception as exc:
            if self._no_nowait(exc):
                return self._states(conn)
            raise self._error(exc) from exc

    def _stats(self, conn: Any) -> list[tuple[Any, dict[str, Any]]]:
        """List active domains, then their stats in parallel chunks; listing order is kept."""
        try:
            doms = list(conn.listAllDomains(LIST_ACTIVE))
        except Exception as exc:
            raise self._error(exc) from exc
        if not doms:
            return []
        chunks = slices(doms, chunks_for(len(doms), self.max_chunks, self.chunk_domains))
        while True:
            flags = LIST_ACTIVE | self._nowait
            results = self._run_chunks(conn, chunks, flags)
            errors = [r for r in results if isinstance(r, BaseException)]
            if not errors:
                return [item for r in results if not isinstance(r, BaseException) for item in r]
            if any(self._no_nowait(exc) for exc in errors):
                continue
            typed = [(self._error(exc), exc) for exc in errors]  # unreachable wins: whole cycle
            error, cause = next(
                (pair for pair in typed if isinstance(pair[0], HypervisorUnreachable)), typed[0]
            )
            raise error from cause

    def _run_chunks(
        self, conn: Any, chunks: list[Sequence[Any]], flags: int
    ) -> list[list[tuple[Any, dict[str, Any]]] | BaseException]:
        """Each chunk's ``domainListGetStats`` result or exception; the first runs here."""

        def call(chunk: Sequence[Any]) -> list[tuple[Any, dict[str, Any]]]:
            return list(conn.domainListGetStats(list(chunk), self.groups, flags))

        futures: list[Future[list[tuple[Any, dict[str, Any]]]]] = []
        if len(chunks) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_chunks - 1, "libvirt-stats")
            futures = [self._pool.submit(call, chunk) for chunk in chunks[1:]]
        results: list[list[tuple[Any, dict[str, Any]]] | BaseException] = []
        try:
            results.append(call(chunks[0]))
        except Exception as exc:
            results.append(exc)
        for future in futures:  # always wait for all: no call outlives the cycle
            try:
                results.append(future.result())
            except Exception as exc:
                results.append(exc)
        return results

    def _no_nowait(self, exc: BaseException) -> bool:
        """True (and NOWAIT dropped for good) when this daemon refused the NOWAIT flag."""
        if self._nowait and _code(exc) == _ERR_INVALID_ARG:
            self._nowait = 0  # libvirt < 4.5: no NOWAIT
            return True
        return False

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
