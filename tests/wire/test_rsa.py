"""RSA for the legacy wire: every key format OpenNebula users meet, and agent-style blocks."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onemon.wire import rsa
from onemon.wire.errors import WireError

SSH_KEYGEN = shutil.which("ssh-keygen")
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def key() -> crypto_rsa.RSAPrivateKey:
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> crypto_rsa.RSAPrivateKey:
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _private_pem(key: crypto_rsa.RSAPrivateKey, fmt: ser.PrivateFormat) -> bytes:
    return key.private_bytes(ser.Encoding.PEM, fmt, ser.NoEncryption())


PRIVATE_FORMATS: dict[str, Callable[[crypto_rsa.RSAPrivateKey], bytes]] = {
    "pkcs1": lambda k: _private_pem(k, ser.PrivateFormat.TraditionalOpenSSL),
    "pkcs8": lambda k: _private_pem(k, ser.PrivateFormat.PKCS8),
    "openssh": lambda k: _private_pem(k, ser.PrivateFormat.OpenSSH),
    "pkcs1 spaces": lambda k: _private_pem(k, ser.PrivateFormat.TraditionalOpenSSL).replace(
        b"\n", b" "
    ),
    "openssh spaces": lambda k: _private_pem(k, ser.PrivateFormat.OpenSSH).replace(b"\n", b" "),
    "pkcs8 after junk": lambda k: (
        b"Bag Attributes\n  junk: 1\n" + _private_pem(k, ser.PrivateFormat.PKCS8)
    ),
}

PUBLIC_FORMATS: dict[str, Callable[[crypto_rsa.RSAPublicKey], bytes]] = {
    "pkcs1": lambda p: p.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1),
    "spki": lambda p: p.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo),
    "ssh-rsa": lambda p: (
        p.public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH) + b" oneadmin@frontend\n"
    ),
    # NETWORK/PUBKEY as the agent receives it: PEM with its newlines turned into spaces.
    "pkcs1 spaces": lambda p: p.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1).replace(
        b"\n", b" "
    ),
    "pkcs1 as str": lambda p: p.public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1),
}


@pytest.mark.parametrize("fmt", PRIVATE_FORMATS)
def test_private_key_formats_load_the_same_key(fmt: str, key: crypto_rsa.RSAPrivateKey) -> None:
    loaded = rsa.load_private_key(PRIVATE_FORMATS[fmt](key))
    assert loaded.private_numbers() == key.private_numbers()


@pytest.mark.parametrize("fmt", PUBLIC_FORMATS)
def test_public_key_formats_load_the_same_key(fmt: str, key: crypto_rsa.RSAPrivateKey) -> None:
    data = PUBLIC_FORMATS[fmt](key.public_key())
    loaded = rsa.load_public_key(data.decode() if fmt.endswith("str") else data)
    assert loaded.public_numbers() == key.public_key().public_numbers()


def test_password_protected_pkcs8(key: crypto_rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.BestAvailableEncryption(b"secret")
    )
    assert rsa.load_private_key(pem, b"secret").private_numbers() == key.private_numbers()
    with pytest.raises(rsa.KeyFileError, match="ENCRYPTED PRIVATE KEY"):
        rsa.load_private_key(pem)


def test_key_files(tmp_path: Path, key: crypto_rsa.RSAPrivateKey) -> None:
    private = tmp_path / "onemonitor"
    public = tmp_path / "onemonitor_pem.pub"
    private.write_bytes(PRIVATE_FORMATS["openssh"](key))
    public.write_bytes(PUBLIC_FORMATS["pkcs1"](key.public_key()))
    assert rsa.load_private_key_file(private).private_numbers() == key.private_numbers()
    assert rsa.load_public_key_file(str(public)).public_numbers() == (
        key.public_key().public_numbers()
    )
    with pytest.raises(rsa.KeyFileError, match="cannot read key file"):
        rsa.load_private_key_file(tmp_path / "missing")


@pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen not installed")
@pytest.mark.parametrize("extra", [[], ["-m", "PEM"]], ids=["openssh-format", "pem-format"])
def test_keys_made_by_the_documented_ssh_keygen_recipe(tmp_path: Path, extra: list[str]) -> None:
    assert SSH_KEYGEN is not None
    path = tmp_path / "onemonitor"
    keygen = [SSH_KEYGEN, "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(path), *extra]
    subprocess.run(keygen, check=True)
    exported = subprocess.run(
        [SSH_KEYGEN, "-f", f"{path}.pub", "-e", "-m", "pem"],
        check=True,
        capture_output=True,
    ).stdout
    assert exported.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    private = rsa.load_private_key_file(path)
    for public in (rsa.load_public_key(exported), rsa.load_public_key_file(f"{path}.pub")):
        assert rsa.decrypt(private, rsa.encrypt(public, b"MONITOR")) == b"MONITOR"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "no PEM private key"),
        (b"not a key at all", "no PEM private key"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "only PEM CERTIFICATE"),
        (b"-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----", "cannot load"),
        (b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----", "cannot"),
    ],
)
def test_bad_private_keys_raise_key_file_error(data: bytes, words: str) -> None:
    with pytest.raises(rsa.KeyFileError, match=words):
        rsa.load_private_key(data)


def test_non_rsa_keys_are_named(key: crypto_rsa.RSAPrivateKey) -> None:
    edwards = ed25519.Ed25519PrivateKey.generate()  # what a bare `ssh-keygen` makes today
    openssh = edwards.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    with pytest.raises(rsa.KeyFileError, match="not an RSA key but Ed25519"):
        rsa.load_private_key(openssh)
    line = edwards.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    with pytest.raises(rsa.KeyFileError, match="not an RSA key"):
        rsa.load_public_key(line)
    curve = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = curve.public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(rsa.KeyFileError, match="not an RSA key"):
        rsa.load_public_key(spki)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "no PEM public key"),
        (b"ssh-rsa AAAAnotbase64", "cannot load ssh-rsa"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "cannot load"),
    ],
)
def test_bad_public_keys_raise_key_file_error(data: bytes, words: str) -> None:
    with pytest.raises(rsa.KeyFileError, match=words):
        rsa.load_public_key(data)


def test_private_key_given_as_public_key_is_refused(key: crypto_rsa.RSAPrivateKey) -> None:
    with pytest.raises(rsa.KeyFileError, match="only PEM RSA PRIVATE KEY"):
        rsa.load_public_key(PRIVATE_FORMATS["pkcs1"](key))


def test_key_file_error_is_a_value_error() -> None:
    assert issubclass(rsa.KeyFileError, ValueError)


@pytest.mark.parametrize(
    ("size", "blocks"), [(0, 0), (1, 1), (245, 1), (246, 2), (490, 2), (491, 3), (5000, 21)]
)
def test_encrypt_cuts_blocks_of_key_bytes_minus_11(
    size: int, blocks: int, key: crypto_rsa.RSAPrivateKey
) -> None:
    plaintext = bytes(range(256)) * (size // 256 + 1)
    ciphertext = rsa.encrypt(key.public_key(), plaintext[:size])
    assert rsa.key_bytes(key) == 256
    assert len(ciphertext) == blocks * 256 == math.ceil(size / 245) * 256
    assert rsa.decrypt(key, ciphertext) == plaintext[:size]


def test_each_block_is_plain_pkcs1_v15(key: crypto_rsa.RSAPrivateKey) -> None:
    ciphertext = rsa.encrypt(key.public_key(), b"a" * 245 + b"b" * 10)
    first, second = ciphertext[:256], ciphertext[256:]
    assert key.decrypt(first, padding.PKCS1v15()) == b"a" * 245
    assert key.decrypt(second, padding.PKCS1v15()) == b"b" * 10


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_cli_decrypts_a_block(tmp_path: Path, key: crypto_rsa.RSAPrivateKey) -> None:
    assert OPENSSL is not None
    (tmp_path / "key.pem").write_bytes(PRIVATE_FORMATS["pkcs1"](key))
    (tmp_path / "block").write_bytes(rsa.encrypt(key.public_key(), b"USEDCPU=8"))
    command = [OPENSSL, "pkeyutl", "-decrypt", "-inkey", str(tmp_path / "key.pem")]
    command += ["-pkeyopt", "rsa_padding_mode:pkcs1", "-in", str(tmp_path / "block")]
    assert subprocess.run(command, check=True, capture_output=True).stdout == b"USEDCPU=8"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=1200))
def test_encrypt_decrypt_round_trip(key: crypto_rsa.RSAPrivateKey, plaintext: bytes) -> None:
    assert rsa.decrypt(key, rsa.encrypt(key.public_key(), plaintext)) == plaintext


@pytest.mark.parametrize("size", [1, 255, 257, 300])
def test_decrypt_rejects_partial_blocks(size: int, key: crypto_rsa.RSAPrivateKey) -> None:
    with pytest.raises(WireError) as caught:
        rsa.decrypt(key, b"\x01" * size)
    assert caught.value.reason == "bad_key"


def test_decrypt_rejects_another_keys_ciphertext(
    key: crypto_rsa.RSAPrivateKey, other_key: crypto_rsa.RSAPrivateKey
) -> None:
    # Three blocks: with OpenSSL >= 3.2 a wrong block "decrypts" to random bytes of random
    # length, so only the full-block rule can tell (and it does, but for 1 in 245² cases).
    ciphertext = rsa.encrypt(other_key.public_key(), b"x" * 600)
    with pytest.raises(WireError) as caught:
        rsa.decrypt(key, ciphertext)
    assert caught.value.reason == "bad_key"


def test_decrypt_rejects_a_short_block_before_the_last(key: crypto_rsa.RSAPrivateKey) -> None:
    public = key.public_key()
    ciphertext = rsa.encrypt(public, b"short") + rsa.encrypt(public, b"tail")
    with pytest.raises(WireError, match="full block") as caught:
        rsa.decrypt(key, ciphertext)
    assert caught.value.reason == "bad_key"


def test_decrypt_of_nothing_is_nothing(key: crypto_rsa.RSAPrivateKey) -> None:
    assert rsa.decrypt(key, b"") == b""
