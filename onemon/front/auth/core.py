"""The ``core`` driver: user name and password against the front's users table."""

from __future__ import annotations

from onemon.front.auth.passwords import DUMMY_HASH, verify_password
from onemon.front.auth.session import Identity
from onemon.front.db.users import UserStore


class CoreAuthenticator:
    """Checks passwords against stored scrypt hashes (constant time, also for unknown users)."""

    def __init__(self, users: UserStore) -> None:
        self.users = users

    def authenticate(self, username: str, secret: str) -> Identity | None:
        """The user's identity when ``secret`` is its password and the user is enabled."""
        user = self.users.by_name(username)
        if user is None or user.driver != "core":
            verify_password(secret, DUMMY_HASH)
            return None
        if not verify_password(secret, user.password) or not user.enabled:
            return None
        return Identity(user.id, user.name, user.gid)
