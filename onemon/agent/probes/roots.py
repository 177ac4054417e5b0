"""Filesystem roots the built-in probes read, so tests can point them at fixture trees."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Roots:
    """Where procfs, sysfs and the cgroup hierarchy are mounted."""

    procfs: str = "/proc"
    sysfs: str = "/sys"
    cgroupfs: str = "/sys/fs/cgroup"
