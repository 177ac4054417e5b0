"""RSA for the legacy wire (reference §1.3, §4.2, §5.2): key loading and PKCS#1 v1.5 blocks.

OpenNebula encrypts the payload in blocks of ``key_bytes - 11`` plaintext bytes, each with
PKCS#1 v1.5 padding, and concatenates the ``key_bytes`` cipher blocks. Keys come in every format
its users meet: PKCS#1 and PKCS#8 PEM, the OpenSSH private key format modern ``ssh-keygen``
writes (which onemonitord cannot read), PKCS#1 / SubjectPublicKeyInfo PEM and ``ssh-rsa`` lines
for public keys, and PEM text whose line breaks were turned into spaces (how the agent receives
``NETWORK/PUBKEY``). Only APIs present in cryptography 38 (Debian 12) are used.

``cryptography`` (about 8 MiB of RSS: its Rust extension and OpenSSL bindings) is imported by
the functions that need it, never at module import: an agent or collector without an RSA key
configured never loads it.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Final

from onemon.wire.errors import WireError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

PADDING_OVERHEAD: Final = 11
"""Bytes PKCS#1 v1.5 padding takes from each block."""

_PEM: Final = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_PRIVATE_LABELS: Final = frozenset(
    {b"RSA PRIVATE KEY", b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"OPENSSH PRIVATE KEY"}
)
_PUBLIC_LABELS: Final = frozenset({b"RSA PUBLIC KEY", b"PUBLIC KEY"})
_SSH_PUBLIC: Final = re.compile(rb"^[ \t]*(ssh-[a-z0-9-]+|ecdsa-[a-z0-9-]+)[ \t]+\S+.*$", re.M)


class KeyFileError(ValueError):
    """A key file or text that is not a usable RSA key; the message says what is wrong."""


def load_private_key(data: bytes | str, password: bytes | None = None) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PKCS#1, PKCS#8 or OpenSSH PEM text."""
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415  (lazy, see above)
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    raw = data.encode() if isinstance(data, str) else data
    label, pem = _first_block(raw, _PRIVATE_LABELS, "private")
    key: object
    try:
        if label == b"OPENSSH PRIVATE KEY":
            key = serialization.load_ssh_private_key(pem, password)
        else:
            key = serialization.load_pem_private_key(pem, password)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot load {label.decode()}: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{label.decode()} is not an RSA key but {_kind(key)}")
    return key


def load_public_key(data: bytes | str) -> rsa.RSAPublicKey:
    """Load an RSA public key from PKCS#1 or SubjectPublicKeyInfo PEM, or an ``ssh-rsa`` line."""
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415  (lazy, see above)
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    raw = data.encode() if isinstance(data, str) else data
    if b"-----BEGIN " not in raw:
        return _load_ssh_public_key(raw)
    label, pem = _first_block(raw, _PUBLIC_LABELS, "public")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot load {label.decode()}: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError(f"{label.decode()} is not an RSA key but {_kind(key)}")
    return key


def load_private_key_file(
    path: str | os.PathLike[str], password: bytes | None = None
) -> rsa.RSAPrivateKey:
    """Load an RSA private key from a file (see :func:`load_private_key`)."""
    return load_private_key(_read(path), password)


def load_public_key_file(path: str | os.PathLike[str]) -> rsa.RSAPublicKey:
    """Load an RSA public key from a file (see :func:`load_public_key`)."""
    return load_public_key(_read(path))


def key_bytes(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> int:
    """Size of the modulus in bytes: the length of every cipher block."""
    return (key.key_size + 7) // 8


def encrypt(key: rsa.RSAPublicKey, plaintext: bytes) -> bytes:
    """Encrypt as the OpenNebula agent: ``key_bytes - 11`` byte blocks, PKCS#1 v1.5 each."""
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    step = key_bytes(key) - PADDING_OVERHEAD
    scheme = padding.PKCS1v15()
    return b"".join(
        key.encrypt(plaintext[start : start + step], scheme)
        for start in range(0, len(plaintext), step)
    )


def decrypt(key: rsa.RSAPrivateKey, ciphertext: bytes) -> bytes:
    """Decrypt ``key_bytes`` blocks; raise WireError("bad_key") if this is not such a ciphertext.

    Every block but the last must hold a full ``key_bytes - 11`` bytes, as every OpenNebula
    sender cuts them. Besides framing, this catches what OpenSSL ≥ 3.2 does with a block that is
    not a ciphertext for this key: PKCS#1 v1.5 "implicit rejection" returns random bytes of a
    random length instead of an error.
    """
    from cryptography.hazmat.primitives.asymmetric import padding  # noqa: PLC0415

    size = key_bytes(key)
    if len(ciphertext) % size:
        raise WireError("bad_key", f"{len(ciphertext)} bytes is not a whole number of blocks")
    full = size - PADDING_OVERHEAD
    last = len(ciphertext) - size
    scheme = padding.PKCS1v15()
    blocks: list[bytes] = []
    for start in range(0, len(ciphertext), size):
        try:
            block = key.decrypt(ciphertext[start : start + size], scheme)
        except ValueError:
            raise WireError("bad_key", f"block {start // size} does not decrypt") from None
        if not block or (start != last and len(block) != full):
            raise WireError("bad_key", f"block {start // size} does not decrypt to a full block")
        blocks.append(block)
    return b"".join(blocks)


def _read(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a key file, with a KeyFileError naming it when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {os.fspath(path)!r}: {exc.strerror}") from None


def _first_block(raw: bytes, labels: frozenset[bytes], kind: str) -> tuple[bytes, bytes]:
    """The first PEM block with one of ``labels``, re-wrapped; KeyFileError if there is none."""
    found: list[str] = []
    for block in _PEM.finditer(raw):
        label = block.group(1)
        if label in labels:
            return label, _rewrap(block)
        found.append(label.decode())
    if found:
        raise KeyFileError(f"no {kind} key here, only PEM {', '.join(found)}")
    raise KeyFileError(f"no PEM {kind} key (-----BEGIN … KEY-----) found")


def _rewrap(block: re.Match[bytes]) -> bytes:
    """The PEM block with its body's blanks and newlines normalised to 64-column lines.

    OpenNebula ships ``PUBKEY`` with the newlines of the PEM body turned into spaces. A body with
    RFC 1421 headers (``Proc-Type:``…) is left as it is.
    """
    label, body = block.group(1), block.group(2)
    if b":" in body:
        return block.group(0)
    compact = b"".join(body.split())
    lines = [compact[start : start + 64] for start in range(0, len(compact), 64)]
    armour = (b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----\n")
    return b"\n".join([armour[0], *lines, armour[1]])


def _load_ssh_public_key(raw: bytes) -> rsa.RSAPublicKey:
    """Load the first ``ssh-…`` line of OpenSSH public key text."""
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    line = _SSH_PUBLIC.search(raw)
    if line is None:
        raise KeyFileError("no PEM public key and no 'ssh-rsa …' line found")
    try:
        key = serialization.load_ssh_public_key(line.group(0).strip())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"cannot load {line.group(1).decode()} public key: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFileError(f"{line.group(1).decode()} is not an RSA key but {_kind(key)}")
    return key


def _kind(key: object) -> str:
    """A short name for the algorithm of a key that is not RSA."""
    return type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "")
