"""The agent does not load what it does not use: cryptography only with an RSA key (RSS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa

REPO = Path(__file__).resolve().parents[2]


def loaded_after(code: str, modules: list[str]) -> dict[str, bool]:
    """Which of ``modules`` a fresh interpreter has in sys.modules after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(str(m in sys.modules) for m in {modules!r}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    return dict(zip(modules, (w == "True" for w in out.stdout.split()), strict=True))


def test_agent_daemon_import_loads_no_cryptography() -> None:
    out = subprocess.run(
        [sys.executable, "-c",
         "import onemon.agent.daemon, sys; print('cryptography' in sys.modules)"],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "code",
    [
        "import onemon.agent.daemon",
        "import onemon.wire.rsa, onemon.wire.legacy",
        "from onemon.agent.sender.legacy import line_encoder; line_encoder(None)",
    ],
)
def test_nothing_heavy_without_a_key(code: str) -> None:
    loaded = loaded_after(code, ["cryptography", "libvirt", "psutil"])
    assert loaded == {"cryptography": False, "libvirt": False, "psutil": False}


def test_loading_a_key_loads_cryptography() -> None:
    key = crypto_rsa.generate_private_key(public_exponent=65537, key_size=1024)
    line = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    code = (
        f"from onemon.wire import rsa\nassert rsa.key_bytes(rsa.load_public_key({line!r})) == 128"
    )
    assert loaded_after("import onemon.wire.rsa", ["cryptography"]) == {"cryptography": False}
    assert loaded_after(code, ["cryptography"]) == {"cryptography": True}
