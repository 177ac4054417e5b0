"""Which executables of a probe group run, and in which order (reference §3.2 steps 1-2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

_SKIPPED_SUFFIXES = (".rpmnew", ".rpmsave", ".rpmorig", "~")
_SKIPPED_MARKERS = (".dpkg-", ".ucf-")


def group_dir(tree: Path, hypervisor: str, group: str) -> Path:
    """``<tree>/<hv>-probes.d/<group>``; ValueError if a name could leave the tree."""
    if not hypervisor or "/" in hypervisor or hypervisor.startswith("."):
        raise ValueError(f"bad hypervisor name {hypervisor!r}")
    parts = PurePosixPath(group).parts
    if not parts or group.startswith("/") or any(p in (".", "..") for p in parts):
        raise ValueError(f"bad probe group {group!r}")
    return tree.joinpath(f"{hypervisor}-probes.d", *parts)


def wanted(name: str) -> bool:
    """False for hidden files and package-manager or editor leftovers."""
    return not (
        name.startswith(".")
        or name.endswith(_SKIPPED_SUFFIXES)
        or any(marker in name for marker in _SKIPPED_MARKERS)
    )


def discover(tree: Path, hypervisor: str, group: str) -> list[Path]:
    """The group's probes in byte order: executable regular files (symlinks followed), read now.

    A missing group directory has no probes; any other error reading it is raised.
    """
    directory = group_dir(tree, hypervisor, group)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    probes = []
    for name in sorted(names, key=os.fsencode):
        if not wanted(name):
            continue
        path = directory / name
        try:
            mode = path.stat().st_mode
        except OSError:  # dangling symlink, or removed meanwhile
            continue
        if stat.S_ISREG(mode) and os.access(path, os.X_OK):
            probes.append(path)
    return probes
