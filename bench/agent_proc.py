"""Process footprint helpers for ``bench.agent``: RSS, PSS and CPU from /proc, RSS by mapping.

All figures come from the kernel (``/proc/<pid>/status``, ``stat``, ``smaps``,
``smaps_rollup``), so they mean the same for our Python daemons and for a Go peer. PSS charges
each shared page to its sharers in proportion: libvirt.so, libc, the interpreter's own file pages
are shared with libvirtd and other Python processes, so PSS is the fairer per-process figure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident set size (VmRSS) of pid, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no VmRSS for pid {pid} (a zombie?)")


def pss_bytes(pid: int) -> int:
    """Proportional set size (``Pss`` of ``/proc/<pid>/smaps_rollup``), in bytes."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    raise ValueError(f"no Pss for pid {pid} (a zombie?)")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime+stime, cutime+cstime) of pid in seconds: its own CPU and its reaped children's."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    # After the comm: state(0) ppid … utime(11) stime(12) cutime(13) cstime(14).
    own = (int(fields[11]) + int(fields[12])) / CLK_TCK
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    return own, children


@dataclass
class Sample:
    """One reading of a process."""

    at: float
    rss: int
    cpu: float
    children_cpu: float
    pss: int = 0


@dataclass
class Footprint:
    """Readings of one process over a window (``mark`` starts the steady window)."""

    name: str
    pid: int
    samples: list[Sample] = field(default_factory=list)
    window_start: int = 0

    def read(self) -> Sample:
        """Take (and keep) one reading."""
        own, children = cpu_seconds(self.pid)
        sample = Sample(time.monotonic(), rss_bytes(self.pid), own, children, pss_bytes(self.pid))
        self.samples.append(sample)
        return sample

    def mark(self) -> None:
        """Take a reading and start the steady window at it."""
        self.read()
        self.window_start = len(self.samples) - 1

    @property
    def window(self) -> list[Sample]:
        """Readings since ``mark``."""
        return self.samples[self.window_start :]

    def rss_start(self) -> float:
        """RSS at the start of the window, MiB."""
        return self.window[0].rss / MIB

    def rss_end(self) -> float:
        """RSS at the last reading, MiB."""
        return self.samples[-1].rss / MIB

    def rss_max(self) -> float:
        """Largest RSS seen (whole life, startup included), MiB."""
        return max(s.rss for s in self.samples) / MIB

    def pss_end(self) -> float:
        """PSS at the last reading, MiB."""
        return self.samples[-1].pss / MIB

    def pss_max(self) -> float:
        """Largest PSS seen (whole life, startup included), MiB."""
        return max(s.pss for s in self.samples) / MIB

    def cpu_percent(self, children: bool = False) -> float:
        """CPU over the window as percent of one core (own, or own + reaped children)."""
        first, last = self.window[0], self.window[-1]
        wall = last.at - first.at
        used = last.cpu - first.cpu
        if children:
            used += last.children_cpu - first.children_cpu
        return 100.0 * used / wall if wall > 0 else 0.0

    def startup_cpu(self) -> float:
        """CPU seconds (own + children) spent before the window started."""
        first = self.window[0]
        return first.cpu + first.children_cpu

    def window_seconds(self) -> float:
        """Length of the window, seconds."""
        return self.window[-1].at - self.window[0].at


def rss_by_mapping(pid: int, top: int = 8) -> list[tuple[str, float]]:
    """The largest RSS contributors of pid by mapping (file, [heap], [anon]), MiB, biggest first."""
    sizes: dict[str, int] = defaultdict(int)
    current = "[anon]"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if head and "-" in head[0] and len(head) >= 5 and ":" in head[3]:
            path = head[5].strip() if len(head) == 6 else ""
            current = _short(path) if path else "[anon]"
        elif line.startswith("Rss:"):
            sizes[current] += int(line.split()[1]) * 1024
    ranked = sorted(sizes.items(), key=lambda kv: kv[1], reverse=True)
    out = [(name, size / MIB) for name, size in ranked[:top]]
    rest = ranked[top:]
    if rest:
        out.append((f"{len(rest)} other mappings", sum(size for _, size in rest) / MIB))
    return out


def rss_split(pid: int) -> dict[str, float]:
    """RssAnon / RssFile / RssShmem, then Pss / Pss_Anon / Pss_File of pid, MiB.

    Anon is heaps and stacks; file is mapped code and data, shareable (PSS divides it by its
    number of sharers).
    """
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("RssAnon", "RssFile", "RssShmem"):
            out[key] = int(line.split()[1]) / 1024
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in ("Pss", "Pss_Anon", "Pss_File"):
            out[key] = int(line.split()[1]) / 1024
    return out


def _short(path: str) -> str:
    """A mapping's path, shortened to what identifies it."""
    if path.startswith("["):
        return path
    name = Path(path).name
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[0] + "/…/" + name
    return name


IMPORT_LADDER: tuple[tuple[str, str], ...] = (
    ("bare python", "pass"),
    ("+ asyncio (imports ssl: libssl+libcrypto)", "import asyncio"),
    ("+ logging, sqlite3, concurrent.futures", "import logging, sqlite3, concurrent.futures"),
    ("+ libvirt (binding + libvirt.so)", "import libvirt"),
    ("+ cbor2", "import cbor2"),
    ("+ onemon.agent.cli (all agent code)", "import onemon.agent.cli"),
    ("+ open libvirt ro connection", "libvirt.openReadOnly('qemu:///system').getAllDomainStats()"),
    ("+ cryptography (only with a legacy RSA key)",
     "import cryptography.hazmat.primitives.serialization, "
     "cryptography.hazmat.primitives.asymmetric.rsa"),
)  # fmt: skip
"""Cumulative steps: what each import adds to a fresh interpreter's RSS (psutil is not a step:
no agent code imports it)."""

ALONE: tuple[tuple[str, str], ...] = (
    ("ssl alone", "import ssl"),
    ("asyncio without ssl", "import sys; sys.modules['ssl'] = None; import asyncio"),
)
"""Single steps from a bare interpreter, to tell what asyncio's ssl import costs."""


@dataclass(frozen=True)
class Rung:
    """RSS and PSS (MiB) of a fresh interpreter after some imports."""

    label: str
    rss: float
    pss: float


_REPORT = """
def _kib(path, key):
    for line in open(path):
        if line.startswith(key + ':'):
            return line.split()[1]
print(_kib('/proc/self/status', 'VmRSS'), _kib('/proc/self/smaps_rollup', 'Pss'))
"""


def _measure(repo: Path, label: str, code: str) -> Rung:
    proc = subprocess.run(
        [sys.executable, "-c", code + "\n" + _REPORT],
        capture_output=True,
        text=True,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        return Rung(f"{label} (failed: {proc.stderr.strip().splitlines()[-1:]})", 0.0, 0.0)
    rss, pss = proc.stdout.split()
    return Rung(label, int(rss) / 1024, int(pss) / 1024)


def import_ladder(repo: Path) -> list[Rung]:
    """RSS/PSS of a fresh interpreter after each cumulative step of ``IMPORT_LADDER``, then
    the ``ALONE`` single steps."""
    out: list[Rung] = []
    code: list[str] = []
    for label, statement in IMPORT_LADDER:
        code.append(statement)
        out.append(_measure(repo, label, "\n".join(code)))
        if "failed" in out[-1].label:
            break
    out += [_measure(repo, label, statement) for label, statement in ALONE]
    return out
