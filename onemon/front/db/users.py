"""The users table: look-up by name, creation."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from onemon.front.db.schema import users


@dataclass(frozen=True, slots=True)
class User:
    """One user as stored."""

    id: int
    name: str
    password: str
    """The password hash (``scrypt$…``), never the password."""
    driver: str
    gid: int
    enabled: bool


class UserStore:
    """Users in the front's database (blocking calls; run them in a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def by_name(self, name: str) -> User | None:
        """The user called ``name``."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(users).where(users.c.name == name)).first()
        if row is None:
            return None
        m = row._mapping
        return User(m["id"], m["name"], m["password"], m["driver"], m["gid"], bool(m["enabled"]))

    def count(self) -> int:
        """How many users exist."""
        with self.engine.begin() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def create(self, user_id: int, name: str, password_hash: str, gid: int = 0) -> User:
        """Insert a ``core`` user."""
        user = User(user_id, name, password_hash, "core", gid, True)
        with self.engine.begin() as conn:
            conn.execute(
                users.insert().values(
                    id=user.id, name=user.name, password=user.password, driver=user.driver,
                    gid=user.gid, enabled=user.enabled, created=time.time(),
                )
            )  # fmt: skip
        return user

    def delete(self, user_id: int) -> None:
        """Remove a user."""
        with self.engine.begin() as conn:
            conn.execute(users.delete().where(users.c.id == user_id))
