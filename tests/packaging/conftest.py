"""The packaging tier: packages built once per session with ``scripts/package.sh``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.packaging import pkgtools


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> pkgtools.Built:
    """python3-onemon, one-agent and one-collector as .deb and .rpm (skipped without nfpm)."""
    reason = pkgtools.nfpm_missing() or pkgtools.tool_missing("dpkg-deb", "rpm", "rpm2archive")
    if reason:
        pytest.skip(f"packaging tier cannot run: {reason}")
    out: Path = tmp_path_factory.mktemp("packages")
    return pkgtools.build(out)
