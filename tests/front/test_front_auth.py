"""Users and sessions: hashing, session strings, the cache, oneadmin's bootstrap and one_auth."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from onemon.front.auth import bootstrap
from onemon.front.auth.core import CoreAuthenticator
from onemon.front.auth.passwords import hash_password, verify_password
from onemon.front.auth.session import Identity, SessionCache, split_session
from onemon.front.db.engine import open_database
from onemon.front.db.users import UserStore


@pytest.fixture
def users(tmp_path: Path) -> UserStore:
    return UserStore(open_database(f"sqlite:///{tmp_path / 'db' / 'front.db'}"))


def test_password_hashes_are_salted_scrypt_and_verify() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert "s3cret" not in first
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3cret ", first)
    for malformed in ("", "scrypt$x", "sha256$1$2$3$4$5", "scrypt$16384$8$1$@@$@@", first[:-4]):
        assert not verify_password("s3cret", malformed)


def test_session_strings_split_at_the_first_colon() -> None:
    assert split_session("oneadmin:pa:ss") == ("oneadmin", "pa:ss")
    for bad in ("oneadmin", "oneadmin:", ":x", "one admin:x", "a/b:x", "x" * 5000):
        assert split_session(bad) is None


def test_session_cache_expires_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = SessionCache(seconds=10, size=2)
    me = Identity(0, "oneadmin", 0)
    cache.put("oneadmin:a", me)
    assert cache.get("oneadmin:a") == me and cache.get("oneadmin:b") is None
    cache.put("u:1", me)
    cache.put("u:2", me)
    assert cache.get("oneadmin:a") is None  # evicted, oldest first
    later = time.monotonic() + 11
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert cache.get("u:2") is None
    assert SessionCache(seconds=0).get("u:2") is None


def test_first_start_creates_oneadmin_and_a_private_one_auth(
    users: UserStore, tmp_path: Path
) -> None:
    one_auth = tmp_path / "home" / ".one" / "one_auth"
    assert bootstrap.ensure_oneadmin(users, one_auth, "oneadmin") is True
    mode = stat.S_IMODE(one_auth.stat().st_mode)
    assert mode == 0o600
    user, password = one_auth.read_text().strip().split(":", 1)
    assert user == "oneadmin" and len(password) >= 24
    auth = CoreAuthenticator(users)
    assert auth.authenticate("oneadmin", password) == Identity(0, "oneadmin", 0)
    assert auth.authenticate("oneadmin", password + "x") is None
    assert auth.authenticate("nobody", password) is None
    assert bootstrap.ensure_oneadmin(users, one_auth, "oneadmin") is False
    assert one_auth.read_text().strip() == f"oneadmin:{password}"
    stored = users.by_name("oneadmin")
    assert stored is not None and password not in stored.password


def test_an_existing_one_auth_gives_the_password(users: UserStore, tmp_path: Path) -> None:
    one_auth = tmp_path / "one_auth"
    one_auth.write_text("oneadmin:chosen-by-admin\n")
    assert bootstrap.ensure_oneadmin(users, one_auth, "oneadmin")
    assert CoreAuthenticator(users).authenticate("oneadmin", "chosen-by-admin") is not None
    other = tmp_path / "other_auth"
    other.write_text("bob:x\n")
    fresh = UserStore(open_database(f"sqlite:///{tmp_path / 'second.db'}"))
    with pytest.raises(bootstrap.BootstrapError):
        bootstrap.ensure_oneadmin(fresh, other, "oneadmin")


def test_disabled_users_fail(users: UserStore) -> None:
    users.create(3, "carol", hash_password("pw"), gid=1)
    auth = CoreAuthenticator(users)
    assert auth.authenticate("carol", "pw") == Identity(3, "carol", 1)
    assert not Identity(3, "carol", 1).is_admin
    with users.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE front_users SET enabled = 0 WHERE id = 3")
    assert auth.authenticate("carol", "pw") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to the service user needs root")
def test_as_root_one_auth_belongs_to_the_service_user(users: UserStore, tmp_path: Path) -> None:
    one_auth = tmp_path / "svc" / "one_auth"
    bootstrap.ensure_oneadmin(users, one_auth, "nobody")
    import pwd

    nobody = pwd.getpwnam("nobody")
    assert one_auth.stat().st_uid == nobody.pw_uid
    assert one_auth.parent.stat().st_uid == nobody.pw_uid
