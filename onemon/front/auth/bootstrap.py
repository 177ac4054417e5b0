"""First start: create ``oneadmin`` and write its password to ``one_auth`` (mode 600)."""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

from onemon.front.auth.passwords import generate_password, hash_password
from onemon.front.db.users import UserStore

log = logging.getLogger("onemon.front")

ONEADMIN = "oneadmin"


def read_one_auth(path: Path) -> tuple[str, str] | None:
    """``(user, password)`` from an existing ``one_auth`` file, if it holds one."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    user, colon, password = text.partition(":")
    return (user, password) if colon and user and password else None


def write_one_auth(path: Path, user: str, password: str, owner: str) -> None:
    """Write ``user:password`` atomically, mode 600, owned by ``owner`` when we are root."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{user}:{password}\n")
        if os.geteuid() == 0:
            _give_to(temporary, path, owner)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _give_to(file: Path, final: Path, owner: str) -> None:
    """chown the file (and its directory) to the service user, when that user exists."""
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        log.warning("service user %r does not exist: %s stays owned by root", owner, final)
        return
    os.chown(file, entry.pw_uid, entry.pw_gid)
    os.chown(final.parent, entry.pw_uid, entry.pw_gid)


class BootstrapError(RuntimeError):
    """oneadmin cannot be created (the message says why)."""


def ensure_oneadmin(users: UserStore, one_auth: Path, owner: str) -> bool:
    """Create uid 0 ``oneadmin`` if no user exists (password from one_auth, else generated)."""
    if users.count() > 0:
        return False
    found = read_one_auth(one_auth)
    if found is not None and found[0] != ONEADMIN:
        raise BootstrapError(f"{one_auth} holds credentials of {found[0]!r}, not {ONEADMIN}")
    password = found[1] if found is not None else generate_password()
    users.create(0, ONEADMIN, hash_password(password), gid=0)
    if found is not None:
        log.info("oneadmin created with the password of %s", one_auth)
        return True
    try:
        write_one_auth(one_auth, ONEADMIN, password, owner)
    except OSError:
        users.delete(0)
        raise
    log.info("oneadmin created; its password is in %s", one_auth)
    return True
