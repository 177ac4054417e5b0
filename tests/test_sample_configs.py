"""The shipped sample configurations load cleanly and say what the code's defaults are."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from onemon.agent.config import AgentConfig
from onemon.collector.config import CollectorConfig
from onemon.front.config import FrontConfig
from onemon.settings import load_file

SAMPLES = Path(__file__).resolve().parent.parent / "packaging" / "config"


def differences(loaded: Any, default: Any, prefix: str = "") -> list[str]:
    found = []
    for field in dataclasses.fields(loaded):
        a, b = getattr(loaded, field.name), getattr(default, field.name)
        if dataclasses.is_dataclass(a):
            found += differences(a, b, f"{prefix}{field.name}.")
        elif a != b:
            found.append(f"{prefix}{field.name}: sample {a!r} != default {b!r}")
    return found


@pytest.mark.parametrize(
    ("name", "cls", "ignore"),
    [
        ("one-agent.toml", AgentConfig, {"host_name", "probes.tree"}),
        ("one-collector.toml", CollectorConfig, set()),
        ("one-front.toml", FrontConfig, set()),
    ],
)
def test_sample_loads_without_warnings_and_matches_defaults(
    name: str, cls: type[Any], ignore: set[str]
) -> None:
    loaded = load_file(cls, SAMPLES / name)
    assert loaded.warnings == []
    diffs = [d for d in differences(loaded.config, cls()) if d.split(":")[0] not in ignore]
    assert diffs == []


def test_collector_sample_sharding_block_uncommented_is_valid(tmp_path: Path) -> None:
    """The commented [sharding] example of the collector sample, uncommented, loads as shown."""
    text = (SAMPLES / "one-collector.toml").read_text()
    start = text.index("# [sharding]")
    block = [line[2:] if line.startswith("# ") else "" for line in text[start:].splitlines()]
    sample = text[:start].replace(
        'url = "sqlite:////var/lib/onemon/collector.db"',
        'url = "postgresql+psycopg://onemon@db.example/onemon"',
    )
    path = tmp_path / "collector.toml"
    path.write_text(sample + "\n".join(block) + "\n")
    loaded = load_file(CollectorConfig, path)
    assert loaded.warnings == []
    sharding = loaded.config.sharding
    assert sharding.enabled and sharding.shards == 2
    assert sharding.home == (0,) and sharding.standby == (1,)
    assert sharding.advertise == "collector-a.example:4124"
    assert [(a.shard, a.hosts) for a in sharding.assign] == [(1, (17, 18, 19))]
    assert sharding.validate() == []
