"""Datastore usage of the node, as OpenNebula's ``monitor_ds.rb`` (figures of ``df -B1M -P``)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from math import ceil

from onemon.wire.model import Template, add

DEFAULT_LOCATION = "/var/lib/one/datastores"
"""OpenNebula's default ``DATASTORE_LOCATION``."""

MB = 1024 * 1024
"""One ``df -B1M`` block."""

StatVfs = Callable[[str], os.statvfs_result]

_IMAGE_NAME = re.compile(r"[-a-f0-9]*")
_UNITS = ("", "K", "M", "G", "T", "P", "E", "Z", "Y")


def df_mb(st: os.statvfs_result) -> tuple[int, int, int]:
    """(used, total, free) in MB rounded up, as ``df -B1M`` prints them; free is non-root."""
    frsize = st.f_frsize or st.f_bsize
    return (
        ceil(max(st.f_blocks - st.f_bfree, 0) * frsize / MB),
        ceil(st.f_blocks * frsize / MB),
        ceil(st.f_bavail * frsize / MB),
    )


def _existing(path: str) -> str:
    """``path`` or its nearest existing ancestor."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


def _usage(path: str, statvfs: StatVfs) -> tuple[int, int, int]:
    """``df_mb`` of the filesystem holding ``path``, zeros when it cannot be read."""
    try:
        return df_mb(statvfs(path))
    except OSError:
        return (0, 0, 0)


def du_human(size: int) -> str:
    """A byte count as ``du -sh`` prints it (powers of 1024, rounded up, one decimal below 10)."""
    exp, scale = 0, 1  # the value shown is size / scale, rounded up (exact integer arithmetic)
    while size >= scale * 1024 and exp < len(_UNITS) - 1:
        exp, scale = exp + 1, scale * 1024
    if exp == 0:
        return str(size)
    if size < 10 * scale:
        tenths = -(-size * 10 // scale)
        return f"{tenths // 10}.{tenths % 10}{_UNITS[exp]}" if tenths < 100 else f"10{_UNITS[exp]}"
    whole = -(-size // scale)
    if whole == 1024 and exp < len(_UNITS) - 1:
        return f"1.0{_UNITS[exp + 1]}"
    return f"{whole}{_UNITS[exp]}"


def _du_bytes(path: str) -> int:
    """Disk usage of a tree in bytes, hard links once, symlinks not followed (as ``du -s``)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [path]
    while stack:
        top = stack.pop()
        try:
            st = os.lstat(top)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
        if stat.S_ISDIR(st.st_mode):
            try:
                stack.extend(e.path for e in os.scandir(top))
            except OSError:
                continue
    return total


def _image_count(path: str) -> int:
    """Regular files directly under ``path`` named like image ids (hex digits and dashes)."""
    try:
        return sum(
            1
            for e in os.scandir(path)
            if e.is_file(follow_symlinks=False) and _IMAGE_NAME.fullmatch(e.name)
        )
    except OSError:
        return 0


def _datastore(location: str, name: str, statvfs: StatVfs) -> dict[str, int | str] | None:
    """The ``DS`` vector of ``location/name``, or None when it is not locally monitored."""
    path = f"{location}/{name}"
    try:
        with open(f"{path}/.monitor", encoding="utf-8", errors="replace") as f:
            tm = f.read().strip()
    except OSError:
        return None
    ds: dict[str, int | str] = {"ID": int(name)}
    if tm == "replica":
        ds["REPLICA_CACHE"] = "YES"
        ds["REPLICA_CACHE_SIZE"] = du_human(_du_bytes(path))
        ds["REPLICA_IMAGES"] = _image_count(path)
    ds["USED_MB"], ds["TOTAL_MB"], ds["FREE_MB"] = _usage(path, statvfs)
    return ds


def collect_datastores(
    location: str = DEFAULT_LOCATION, *, statvfs: StatVfs = os.statvfs
) -> Template:
    """``DS_LOCATION_{USED,TOTAL,FREE}_MB`` and one ``DS`` vector per monitored datastore dir.

    A missing ``location`` is not an error: the figures are those of its nearest existing
    ancestor and there are no ``DS`` vectors (``monitor_ds.rb`` would create the directory).
    """
    used, total, free = _usage(_existing(location), statvfs)
    out: Template = {
        "DS_LOCATION_USED_MB": used,
        "DS_LOCATION_TOTAL_MB": total,
        "DS_LOCATION_FREE_MB": free,
    }
    try:
        names = [
            e.name
            for e in os.scandir(location)
            if e.name.isascii() and e.name.isdigit() and e.is_dir()
        ]
    except OSError:
        return out
    for name in sorted(names, key=int):
        ds = _datastore(location, name, statvfs)
        if ds is not None:
            add(out, "DS", ds)
    return out
