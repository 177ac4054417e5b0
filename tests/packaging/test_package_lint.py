"""lintian and rpmlint are clean (every override justified), the units are least-privilege."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.packaging import pkgtools
from tests.packaging.pkgtools import REPO, Built

PACKAGING = REPO / "packaging"
UNITS = sorted((PACKAGING / "systemd").glob("*.service"))
MAX_EXPOSURE = 2.0
"""systemd-analyze security's scale: < 2 is "OK"; a service with no hardening scores 9.6."""


def justified(lines: list[str]) -> list[str]:
    """Entries (non-comment lines) not directly preceded by a comment line."""
    bad = []
    previous = ""
    for line in lines:
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not previous.startswith(("#", '"', "'")):
            bad.append(stripped)
        if stripped:
            previous = stripped
    return bad


def test_lintian_is_clean(built: Built) -> None:
    reason = pkgtools.tool_missing("lintian")
    if reason:
        pytest.skip(reason)
    debs = [str(p) for p in built.all("deb")]
    done = pkgtools.run(
        ["lintian", "--info", "--display-info", "--pedantic", "--fail-on", "error,warning,info",
         *debs],
        check=False, timeout=300,
    )  # fmt: skip
    tags = [line for line in done.stdout.splitlines() if re.match(r"^[EWIPX]: ", line)]
    assert tags == [], "\n".join(tags)
    assert done.returncode == 0, done.stdout + done.stderr


def test_lintian_overrides_are_justified() -> None:
    files = sorted((PACKAGING / "debian").glob("*.lintian-overrides"))
    assert files
    for path in files:
        assert justified(path.read_text().splitlines()) == [], path


def test_rpmlint_is_clean(built: Built) -> None:
    reason = pkgtools.tool_missing("rpmlint")
    if reason:
        pytest.skip(reason)
    rpms = [str(p) for p in built.all("rpm")]
    config = PACKAGING / "rpm" / "rpmlint.toml"
    done = pkgtools.run(["rpmlint", "-c", str(config), *rpms], check=False, timeout=300)
    assert re.search(r"\b0 errors, 0 warnings\b", done.stdout), done.stdout + done.stderr
    assert done.returncode == 0, done.stdout


def test_rpmlint_filters_are_justified() -> None:
    config = PACKAGING / "rpm" / "rpmlint.toml"
    tomllib.loads(config.read_text())  # valid TOML
    lines = config.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Filters"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "]")
    entries = [line for line in lines[start + 1 : end]]
    bad = [e for e in justified(entries) if not e.startswith("#")]
    assert bad == []
    for setting in ("CompressExtension", "ValidLicenses", "UsrLibBinaryException"):
        index = next(i for i, line in enumerate(lines) if line.startswith(setting))
        assert lines[index - 1].startswith("#"), setting


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file (comments left out), values by key in order."""
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_units_are_notify_services_with_least_privilege(unit: Path) -> None:
    settings = unit_settings(unit)
    required = {
        "Type": "notify",
        "Restart": "on-failure",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures": "native",
        "UMask": "0077",
    }
    for key, value in required.items():
        assert settings.get(key) == [value], f"{unit.name}: {key}={settings.get(key)}"
    assert settings["User"][0] not in ("root", "0")
    assert settings["StateDirectory"], unit.name
    assert settings["ExecStart"][0].startswith("/usr/bin/")
    assert "~@privileged" in " ".join(settings["SystemCallFilter"])


def test_every_daemon_reloads_on_sighup() -> None:
    agent = unit_settings(PACKAGING / "systemd" / "one-agent.service")
    assert agent["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert agent["ExecStart"] == ["/usr/bin/one-agent -c /etc/one/one-agent.toml"]
    assert agent["LoadCredential"] == ["cluster.key:/etc/one/onemon/cluster.key"]
    for name in ("one-collector", "one-front"):
        unit = unit_settings(PACKAGING / "systemd" / f"{name}.service")
        assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"], name


@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_systemd_analyze_security_exposure(unit: Path) -> None:
    reason = pkgtools.tool_missing("systemd-analyze")
    if reason:
        pytest.skip(reason)
    done = pkgtools.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)], check=False
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, done.stdout
