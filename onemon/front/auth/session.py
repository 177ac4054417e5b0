"""The authentication step: a session string in, an identity out; drivers plug in here."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

ONEADMIN_GROUP = 0
MAX_SESSION_CHARS = 4096
_USERNAME = re.compile(r"[^\s:&|\\\"';/#{}$<>\x00-\x1f]{1,128}")
"""OpenNebula's user name rule: no blanks, no ``: & | \\ " ' ; / # { } $ < >``, 1..128 chars."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request runs as."""

    uid: int
    name: str
    gid: int

    @property
    def is_admin(self) -> bool:
        """Members of group 0 (oneadmin) pass every authorization check."""
        return self.uid == 0 or self.gid == ONEADMIN_GROUP


class Authenticator(Protocol):
    """One authentication driver (``core`` now; ldap, x509, server_cipher… later)."""

    def authenticate(self, username: str, secret: str) -> Identity | None:
        """The identity for a valid (username, secret), else None. May block."""


def split_session(session: str) -> tuple[str, str] | None:
    """``user:secret`` split at the first colon, as oned (None when malformed)."""
    if len(session) > MAX_SESSION_CHARS:
        return None
    username, colon, secret = session.partition(":")
    if not colon or not secret or _USERNAME.fullmatch(username) is None:
        return None
    return username, secret


class SessionCache:
    """Sessions checked recently (SESSION_EXPIRATION_TIME), keyed by a keyed hash, bounded."""

    def __init__(self, seconds: float, size: int = 4096) -> None:
        self.seconds = seconds
        self.size = size
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, tuple[float, Identity]] = OrderedDict()

    def _digest(self, session: str) -> bytes:
        return hmac.new(
            self._key, session.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).digest()

    def get(self, session: str) -> Identity | None:
        """The identity of a session checked less than ``seconds`` ago."""
        digest = self._digest(session)
        entry = self._entries.get(digest)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return entry[1]

    def put(self, session: str, identity: Identity) -> None:
        """Remember a session that authenticated."""
        if self.seconds <= 0:
            return
        self._entries[self._digest(session)] = (time.monotonic() + self.seconds, identity)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
