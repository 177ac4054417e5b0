"""Password hashes: salted scrypt, verified in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 1 << 14, 8, 1
"""Cost parameters (16 MiB, tens of milliseconds): checked sessions are cached, so this is rare."""
SALT_BYTES = 16
KEY_BYTES = 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024,
        dklen=KEY_BYTES,
    )  # fmt: skip


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` for ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, N, R, P)
    return f"{SCHEME}${N}${R}${P}${_b64(salt)}${_b64(key)}"


DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
"""Checked against when the user does not exist, so timing does not tell who exists."""


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; malformed hashes never match."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(key, validate=True)
        derived = _derive(password, base64.b64decode(salt, validate=True), int(n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(derived, expected)


def generate_password() -> str:
    """A random password for oneadmin (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(24)
