"""HMAC keys: one per cluster by default, optional per-host keys bound to their host id."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field
from pathlib import Path

MIN_KEY_BYTES = 16
CLUSTER_KEY_ID = "cluster"


class KeyFileError(ValueError):
    """A key file that cannot be read or does not hold a usable key."""


@dataclass(frozen=True, slots=True)
class Key:
    """A named HMAC-SHA256 secret."""

    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not self.key_id or len(self.key_id) > 64:
            raise KeyFileError(f"key id must be 1..64 characters, got {self.key_id!r}")
        if len(self.secret) < MIN_KEY_BYTES:
            raise KeyFileError(f"key {self.key_id!r} is shorter than {MIN_KEY_BYTES} bytes")


@dataclass(frozen=True)
class KeyRing:
    """Which secret verifies a message: cluster keys by id, or the host's own key if it has one."""

    cluster: dict[str, bytes] = field(default_factory=dict)
    per_host: dict[int, Key] = field(default_factory=dict)

    def lookup(self, key_id: str, host_id: int) -> bytes | None:
        """The secret for ``key_id`` used by ``host_id``; None when that pairing is not allowed."""
        own = self.per_host.get(host_id)
        if own is not None:
            return own.secret if own.key_id == key_id else None
        return self.cluster.get(key_id)

    @classmethod
    def single(cls, key: Key) -> KeyRing:
        """A ring holding one cluster key."""
        return cls(cluster={key.key_id: key.secret})


def generate_secret() -> bytes:
    """A fresh 32-byte random secret."""
    import secrets  # noqa: PLC0415  (lazy: the agent only reads keys, and secrets imports random)

    return secrets.token_bytes(32)


def format_key_file(key: Key) -> str:
    """Key file text: ``<key id> <base64 secret>`` on one line."""
    return f"{key.key_id} {base64.b64encode(key.secret).decode()}\n"


def parse_key_file(text: str) -> Key:
    """Read ``<key id> <base64 secret>`` (a bare base64 secret means the cluster key)."""
    fields = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(fields) != 1:
        raise KeyFileError("key file must hold exactly one key line")
    parts = fields[0].split()
    if len(parts) == 1:
        parts = [CLUSTER_KEY_ID, parts[0]]
    if len(parts) != 2:
        raise KeyFileError("key line must be '<key id> <base64 secret>'")
    try:
        secret = base64.b64decode(parts[1], validate=True)
    except binascii.Error as exc:
        raise KeyFileError(f"key secret is not base64: {exc}") from None
    return Key(parts[0], secret)


def load_key_file(path: Path) -> Key:
    """Read a key file, refusing one that other users can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise KeyFileError(f"{path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyFileError(
            f"{path}: readable by group or others (mode {mode & 0o777:o}); chmod 600"
        )
    return parse_key_file(text)


def write_key_file(path: Path, key: Key) -> None:
    """Write a key file readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(format_key_file(key))
