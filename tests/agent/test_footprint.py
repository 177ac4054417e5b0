"""The daemon's resident memory: what importing it loads, glibc malloc tuning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from onemon.agent import memory

REPO = Path(__file__).resolve().parents[2]

NOT_IN_DAEMON = (
    "cryptography",  # legacy RSA only (wire.rsa imports it when a key is loaded)
    "libvirt",  # at the first connection: an LXC node never loads it
    "onemon.agent.once",  # --once
    "onemon.agent.opennebula",  # --opennebula
    "onemon.agent.remote",
    "onemon.collector",
    "onemon.front",
    "json",  # --once --json
    "xml.etree.ElementTree",  # MONITOR_CONFIGURATION parsing, wild domains' XML
    "pyexpat",
    "fractions",  # imports decimal
    "decimal",
    "random",  # through secrets; keys only read here
    "secrets",
    "ctypes",  # imported by the running daemon only (memory.py)
    "psutil",
    "shutil",  # argparse's help width (with bz2, lzma): cli.help_formatter finds it without
    "encodings.idna",  # getaddrinfo of a str host (with stringprep, unicodedata)
    "unicodedata",
)
"""Modules the agent's entry point must not import: each costs resident memory for good."""


def loaded_by(statement: str) -> set[str]:
    """Modules in sys.modules of a fresh interpreter after ``statement``."""
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(out.stdout.split())


def test_daemon_entry_point_leaves_heavy_modules_out() -> None:
    loaded = loaded_by(
        "import asyncio\n"
        "import onemon.agent.cli\n"
        "from onemon.agent.sender.address import parse_address, resolve\n"
        "onemon.agent.cli.parse_args(['-c', 'agent.toml'])\n"
        "asyncio.run(resolve(parse_address('127.0.0.1:4124')))\n"
        "asyncio.run(resolve(parse_address('localhost:4124')))"
    )
    assert "onemon.agent.daemon" in loaded  # the check itself works
    offenders = sorted(
        name
        for name in loaded
        if any(name == bad or name.startswith(bad + ".") for bad in NOT_IN_DAEMON)
    )
    assert offenders == []


def test_the_lazy_modules_still_load_where_they_are_used() -> None:
    loaded = loaded_by(
        "import onemon.agent.cli\n"
        "from onemon.agent import monitor_config\n"
        "monitor_config.parse(monitor_config.build(3))\n"
        "from onemon.wire.keys import generate_secret\n"
        "generate_secret()"
    )
    assert {"xml.etree.ElementTree", "pyexpat", "secrets"} <= loaded


def test_limit_arenas_leaves_an_explicit_setting_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert memory.limit_arenas() is False


@pytest.mark.skipif(memory._libc() is None, reason="not glibc")
def test_trim_and_arena_limit_run_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_arenas() is True
    assert memory.trim() in (True, False)
