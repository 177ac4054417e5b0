"""Datastore figures in MB, as ``df -B1M -P`` prints them, and the ``DS`` vectors."""

from __future__ import annotations

import math
import os
import random
from fractions import Fraction
from pathlib import Path

import pytest

from onemon.agent.probes.datastores import MB, collect_datastores, df_mb, du_human


def vfs(blocks: int, bfree: int, bavail: int, frsize: int = 4096) -> os.statvfs_result:
    """A statvfs result with the given block counts."""
    return os.statvfs_result((frsize, frsize, blocks, bfree, bavail, 0, 0, 0, 0, 255))


def test_df_mb_rounds_up_like_df() -> None:
    # 256 blocks of 4 KiB are exactly 1 MB; one more block makes df print 2.
    assert df_mb(vfs(blocks=257, bfree=256, bavail=0)) == (1, 2, 0)
    # used = blocks - bfree (root's reserve is neither used nor free to users)
    assert df_mb(vfs(blocks=2560, bfree=1280, bavail=1024)) == (5, 10, 4)
    assert df_mb(vfs(blocks=0, bfree=0, bavail=0)) == (0, 0, 0)
    assert df_mb(vfs(blocks=3, bfree=1, bavail=1, frsize=MB)) == (2, 3, 1)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0"),
        (512, "512"),
        (4096, "4.0K"),
        (1536, "1.5K"),
        (1537, "1.6K"),
        (10 * 1024, "10K"),
        (10 * 1024 + 1, "11K"),
        (1024 * 1024 - 1, "1.0M"),
        (9 * 1024, "9.0K"),
        (9 * 1024 + 100, "9.1K"),
        (9 * 1024 + 1000, "10K"),
        (int(9.95 * 1024) + 1, "10K"),
        (3 * 1024**3, "3.0G"),
    ],
)
def test_du_human(size: int, text: str) -> None:
    assert du_human(size) == text


def du_human_fraction(size: int) -> str:
    """The exact-fraction version du_human replaced (it imported fractions, hence decimal)."""
    units = ("", "K", "M", "G", "T", "P", "E", "Z", "Y")
    value, exp = Fraction(size), 0
    while value >= 1024 and exp < len(units) - 1:
        value, exp = value / 1024, exp + 1
    if exp == 0:
        return str(size)
    if value < 10:
        tenths = math.ceil(value * 10)
        return f"{tenths // 10}.{tenths % 10}{units[exp]}" if tenths < 100 else f"10{units[exp]}"
    whole = math.ceil(value)
    if whole == 1024 and exp < len(units) - 1:
        return f"1.0{units[exp + 1]}"
    return f"{whole}{units[exp]}"


def test_du_human_integer_arithmetic_matches_fractions() -> None:
    sizes = {0, 1, 2**90, 5 * 2**90 + 1}
    for exp in range(1, 9):
        scale = 1024**exp
        for mult in (1, 9, 10, 1023, 1024):
            for delta in (-1, 0, 1, scale // 10, scale // 20):
                sizes.add(max(0, mult * scale + delta))
    rng = random.Random(5)
    sizes.update(rng.randrange(2 ** rng.randrange(1, 90)) for _ in range(3000))
    for size in sorted(sizes):
        assert du_human(size) == du_human_fraction(size), size


@pytest.fixture
def location(tmp_path: Path) -> Path:
    """A datastore location: 0, 1, 100 monitored, 2 not, plus entries that are not datastores."""
    loc = tmp_path / "datastores"
    for name, tm in [("0", "ssh"), ("1", "shared"), ("100", "ssh"), ("2", None), ("abc", "ssh")]:
        (loc / name).mkdir(parents=True)
        if tm is not None:
            (loc / name / ".monitor").write_text(tm + "\n")
    (loc / "5").write_text("a file, not a datastore")
    return loc


def test_collect_datastores_exact(location: Path) -> None:
    figures = {str(location): vfs(2560, 1280, 1024), str(location / "100"): vfs(512, 0, 0)}

    def statvfs(path: str) -> os.statvfs_result:
        return figures.get(path, vfs(256, 256, 256))

    t = collect_datastores(str(location), statvfs=statvfs)
    assert t == {
        "DS_LOCATION_USED_MB": 5,
        "DS_LOCATION_TOTAL_MB": 10,
        "DS_LOCATION_FREE_MB": 4,
        "DS": [
            {"ID": 0, "USED_MB": 0, "TOTAL_MB": 1, "FREE_MB": 1},
            {"ID": 1, "USED_MB": 0, "TOTAL_MB": 1, "FREE_MB": 1},
            {"ID": 100, "USED_MB": 2, "TOTAL_MB": 2, "FREE_MB": 0},
        ],
    }


def test_replica_datastore(location: Path) -> None:
    ds = location / "7"
    ds.mkdir()
    (ds / ".monitor").write_text("replica")
    (ds / "0a1b2c3d4e5f").write_bytes(b"x" * 10000)
    (ds / "deadbeef-0001").write_bytes(b"")
    (ds / "image.qcow2").write_bytes(b"")  # not an image-id name
    (ds / "feed").mkdir()  # not a regular file
    t = collect_datastores(str(location), statvfs=lambda _: vfs(256, 0, 0))
    vec = next(d for d in t["DS"] if d["ID"] == 7)
    assert list(vec) == [
        "ID",
        "REPLICA_CACHE",
        "REPLICA_CACHE_SIZE",
        "REPLICA_IMAGES",
        "USED_MB",
        "TOTAL_MB",
        "FREE_MB",
    ]
    assert vec["ID"] == 7
    assert vec["REPLICA_CACHE"] == "YES"
    assert vec["REPLICA_IMAGES"] == 2
    assert vec["REPLICA_CACHE_SIZE"][-1] == "K"


def test_missing_location_uses_nearest_parent(tmp_path: Path) -> None:
    seen: list[str] = []

    def statvfs(path: str) -> os.statvfs_result:
        seen.append(path)
        return vfs(1024, 512, 256)

    t = collect_datastores(str(tmp_path / "no" / "such" / "dir"), statvfs=statvfs)
    assert seen == [str(tmp_path)]
    assert t == {"DS_LOCATION_USED_MB": 2, "DS_LOCATION_TOTAL_MB": 4, "DS_LOCATION_FREE_MB": 1}
    assert not (tmp_path / "no").exists()  # unlike monitor_ds.rb, nothing is created


def test_unreadable_filesystem_gives_zeros(location: Path) -> None:
    def statvfs(path: str) -> os.statvfs_result:
        raise PermissionError(path)

    t = collect_datastores(str(location), statvfs=statvfs)
    assert t["DS_LOCATION_TOTAL_MB"] == 0
    assert t["DS"][0] == {"ID": 0, "USED_MB": 0, "TOTAL_MB": 0, "FREE_MB": 0}
