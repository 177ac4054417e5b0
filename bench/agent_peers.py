"""Peers for ``bench.agent``: a naive per-domain agent, ``virsh domstats`` and Debian's
``prometheus-libvirt-exporter`` (kumina 0.2), all against the same live domains.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXPORTER_PACKAGE = "prometheus-libvirt-exporter"
APT_INSTALL = [
    "apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
    EXPORTER_PACKAGE,
]  # fmt: skip


def timings(runs: int, action: Callable[[], object], warmup: int = 1) -> list[float]:
    """Wall seconds of ``runs`` runs of ``action`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        action()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        out.append(time.perf_counter() - start)
    return out


@dataclass(frozen=True)
class Timing:
    """Best and median of a series of wall times, seconds."""

    best: float
    median: float
    runs: int

    @classmethod
    def of(cls, values: list[float]) -> Timing:
        """Summarise a series."""
        return cls(min(values), statistics.median(values), len(values))


# --- the naive per-domain agent --------------------------------------------------------------


def _devices(xml: str) -> tuple[list[str], list[str]]:
    """Disk targets and interface target devices named in a domain's XML."""
    root = ET.fromstring(xml)  # libvirt's own output
    disks = [t.get("dev", "") for t in root.findall("devices/disk/target")]
    nics = [t.get("dev", "") for t in root.findall("devices/interface/target")]
    return [d for d in disks if d], [n for n in nics if n]


def per_domain_cycle(conn: Any) -> dict[str, dict[str, Any]]:
    """What a naive agent does: list, then XML + info + memoryStats + per-device stats per domain.

    Returns per-domain figures (state, cpu time, memory, balloon, block/net counters) so the
    work is comparable with one bulk-stats cycle.
    """
    import libvirt

    out: dict[str, dict[str, Any]] = {}
    for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
        try:
            disks, nics = _devices(dom.XMLDesc(0))
            state, _max_mem, mem, vcpus, cpu_time = dom.info()
            figures: dict[str, Any] = {
                "state": state, "memory": mem, "vcpus": vcpus, "cpu_time": cpu_time,
                "balloon": dom.memoryStats(),
                "block": {d: dom.blockStats(d) for d in disks},
                "net": {n: dom.interfaceStats(n) for n in nics},
            }  # fmt: skip
        except libvirt.libvirtError:
            continue  # gone between the list and the calls
        out[dom.UUIDString()] = figures
    return out


# --- virsh domstats ----------------------------------------------------------------------------


def virsh_domstats(uri: str) -> int:
    """Run ``virsh -r domstats --list-active`` once; return the number of domains printed."""
    proc = subprocess.run(
        ["virsh", "-r", "-c", uri, "domstats", "--list-active"],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return proc.stdout.count(b"Domain: ")


# --- prometheus-libvirt-exporter ------------------------------------------------------------------


@dataclass
class ExporterResult:
    """Outcome of the exporter run: figures, or why there are none."""

    binary: str = ""
    version: str = ""
    error: str = ""
    scrape: Timing | None = None
    domains_seen: int = 0
    samples: int = 0
    body_bytes: int = 0
    rss_mib: float = 0.0
    notes: list[str] = field(default_factory=list)


def package_version() -> str:
    """Installed version of the exporter package ('' when not installed)."""
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Status} ${Version}", EXPORTER_PACKAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.startswith("install ok installed"):
        return ""
    return proc.stdout.split()[-1]


def ensure_exporter() -> tuple[str, str]:
    """(binary, version), installing the package when missing; RuntimeError says why not."""
    version = package_version()
    if not version:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(APT_INSTALL, capture_output=True, text=True, env=env, check=False,
                              timeout=900)  # fmt: skip
        version = package_version()
        if proc.returncode != 0 or not version:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"apt-get install {EXPORTER_PACKAGE} failed: {' | '.join(tail)}")
    listing = subprocess.run(["dpkg", "-L", EXPORTER_PACKAGE], capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    binaries = [p for p in listing if "/bin/" in p and os.access(p, os.X_OK)]
    if not binaries:
        raise RuntimeError(f"{EXPORTER_PACKAGE} {version} ships no executable under */bin/")
    return binaries[0], version


def _get(url: str, timeout: float = 120.0) -> bytes:
    """GET url (loopback only)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


def _domains_in(body: bytes, prefix: str) -> int:
    """Distinct ``domain="<prefix>…"`` label values in an exposition body."""
    names = set()
    marker = f'domain="{prefix}'.encode()
    for line in body.splitlines():
        start = line.find(marker)
        if start >= 0:
            start += len(b'domain="')
            names.add(line[start : line.index(b'"', start)])
    return len(names)


def run_exporter(
    uri: str, port: int, scrapes: int, log: Path, rss_of: Callable[[int], int]
) -> ExporterResult:
    """Start the exporter on 127.0.0.1:port against uri, time ``scrapes`` scrapes, stop it."""
    result = ExporterResult()
    try:
        result.binary, result.version = ensure_exporter()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        result.error = str(exc)
        return result
    argv = [result.binary, f"--web.listen-address=127.0.0.1:{port}", f"--libvirt.uri={uri}"]
    url = f"http://127.0.0.1:{port}/metrics"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)  # fmt: skip
    try:
        body = _first_scrape(proc, url, log)
        if body is None:
            result.error = f"{' '.join(argv)} did not serve {url}: " + _tail(log)
            return result
        result.domains_seen = _domains_in(body, "one-")
        result.body_bytes = len(body)
        result.samples = sum(1 for ln in body.splitlines() if ln and not ln.startswith(b"#"))
        if b"libvirt_up 0" in body:
            result.notes.append("exporter reports libvirt_up 0")
        result.scrape = Timing.of(timings(scrapes, lambda: _get(url), warmup=1))
        result.rss_mib = rss_of(proc.pid) / (1024 * 1024)
    except (OSError, urllib.error.URLError) as exc:
        result.error = f"scraping {url} failed: {exc}; " + _tail(log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return result


def _first_scrape(proc: subprocess.Popen[bytes], url: str, log: Path) -> bytes | None:
    """The first successful /metrics body, or None when the exporter died or never answered."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        with contextlib.suppress(OSError, urllib.error.URLError):
            return _get(url)
        time.sleep(0.2)
    return None


def _tail(log: Path) -> str:
    """The last lines of a log, on one line."""
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-3:]) or "(empty log)"


def have_virsh() -> bool:
    """Whether virsh is on PATH."""
    return shutil.which("virsh") is not None
