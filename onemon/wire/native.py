"""The native wire: a signed, versioned CBOR envelope (DESIGN §3).

Layout, one CBOR array of 11 items::

    [version=1, key_id, host_id, boot_id(16 bytes), seq, type, status, timestamp, flags,
     body(bytes), tag(32 bytes)]

``body`` is the CBOR of the payload (a map whose well-known names are integer codes, see
``names.py``), or of the error text for FAILURE; zlib-compressed when ``flags`` has ``ZLIB``.
``tag`` is HMAC-SHA256 over every byte of the envelope before the tag's own 32 bytes.
Ordering and duplicate detection use (boot_id, seq), never the timestamp.
"""

from __future__ import annotations

import hmac
import inspect
import io
import math
import re
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from onemon.wire.errors import WireError
from onemon.wire.keys import Key, KeyRing
from onemon.wire.limits import (
    MAX_DEPTH,
    MAX_ITEMS,
    MAX_KEY_ID_LENGTH,
    MAX_PAYLOAD_BYTES,
    MAX_TCP_MESSAGE,
)
from onemon.wire.model import Message, MessageType, Status, Template
from onemon.wire.names import CODE_OF, NAME_OF

VERSION: Final = 1
FIELDS: Final = 11
FLAG_ZLIB: Final = 0x01
KNOWN_FLAGS: Final = FLAG_ZLIB
TAG_BYTES: Final = 32
_TAG_HEADER: Final = b"\x58\x20"  # CBOR byte string of length 32
_ARRAY_HEAD: Final = 0x80 | FIELDS
MIN_SIZE: Final = 1 + 1 + 1 + 1 + 17 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + TAG_BYTES
COMPRESS_ABOVE: Final = 160
"""Bodies shorter than this are never worth a zlib header."""

_DECODE_OPTIONS: dict[str, Any] = {}
try:
    _decoder_params = inspect.signature(cbor2.CBORDecoder).parameters
except (TypeError, ValueError):  # cbor2 5.4's C extension has no introspectable signature
    _decoder_params = {}  # type: ignore[assignment]
if "max_depth" in _decoder_params:  # cbor2 >= 5.7; older versions fall back to RecursionError
    _DECODE_OPTIONS["max_depth"] = MAX_DEPTH + 2
_TYPES: Final = {int(t): t for t in MessageType}
_UUID_TEXT: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_STATUSES: Final = {int(s): s for s in Status}


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decoded, authenticated native message with its ordering identity."""

    message: Message
    key_id: str
    boot_id: bytes
    seq: int


def encode(
    message: Message, key: Key, boot_id: bytes, seq: int, compress: bool | None = None
) -> bytes:
    """Sign and encode ``message``; ``compress=None`` compresses only when it saves bytes."""
    body = encode_body(message)
    flags = 0
    if compress or (compress is None and len(body) >= COMPRESS_ABOVE):
        packed = zlib.compress(body, 6)
        if compress or len(packed) < len(body):
            body, flags = packed, FLAG_ZLIB
    return seal(message, key, boot_id, seq, flags, body)


def encode_body(message: Message) -> bytes:
    """The CBOR body of ``message``: its coded payload, or its error text on FAILURE."""
    if message.status is Status.FAILURE:
        return cbor2.dumps(message.error)
    return cbor2.dumps(_code_template(message.payload))


def seal(message: Message, key: Key, boot_id: bytes, seq: int, flags: int, body: bytes) -> bytes:
    """Frame an already-encoded body and append its HMAC tag."""
    if len(boot_id) != 16:
        raise ValueError("boot_id must be 16 bytes")
    head = cbor2.dumps(
        [
            VERSION,
            key.key_id,
            message.host_id,
            boot_id,
            seq,
            int(message.type),
            int(message.status),
            message.timestamp,
            flags,
            body,
            b"\x00" * TAG_BYTES,
        ]
    )[:-TAG_BYTES]
    return head + hmac.digest(key.secret, head, "sha256")


def decode(data: bytes, keys: KeyRing, max_size: int = MAX_TCP_MESSAGE) -> Envelope:
    """Authenticate and decode one envelope; any defect raises :class:`WireError`."""
    fields = _read_envelope(data, max_size)
    key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag = fields
    secret = keys.lookup(key_id, host_id)
    if secret is None:
        raise WireError("bad_key", f"key {key_id!r} not valid for host {host_id}")
    expected = hmac.digest(secret, memoryview(data)[:-TAG_BYTES], "sha256")
    if not hmac.compare_digest(expected, tag):
        raise WireError("bad_mac", f"host {host_id}")
    if flags & FLAG_ZLIB:
        body = _inflate(body)
    status = _STATUSES[status_code]
    content = _loads_exact(body, "body")
    if status is Status.FAILURE:
        if not isinstance(content, str):
            raise WireError("bad_payload", "FAILURE body must be text")
        message = Message(_TYPES[type_code], status, host_id, timestamp, {}, content)
    else:
        if not isinstance(content, dict):
            raise WireError("bad_payload", "payload must be a map")
        budget = [MAX_ITEMS]
        payload = _expand_template(content, 1, budget)
        message = Message(_TYPES[type_code], status, host_id, timestamp, payload)
    return Envelope(message, key_id, boot_id, seq)


def peek_seq(data: bytes) -> int | None:
    """The seq an envelope claims, unauthenticated: to answer a rejected TCP frame."""
    try:
        fields = _read_envelope(data, MAX_TCP_MESSAGE)
    except WireError:
        return None
    return int(fields[3])


def _read_envelope(data: bytes, max_size: int) -> tuple[Any, ...]:
    """Structurally decode the envelope and type-check its fields (no authentication)."""
    size = len(data)
    if size > max_size:
        raise WireError("too_large", f"{size} bytes > {max_size}")
    if size < 2:
        raise WireError("truncated", f"{size} bytes")
    head = data[0]
    if 0x81 <= head <= 0x97 and data[1] != VERSION and data[1] <= 0x17:
        raise WireError("bad_version", f"version {data[1]}")
    if head != _ARRAY_HEAD or data[1] != VERSION:
        raise WireError("malformed", "not a native envelope")
    if size < MIN_SIZE:
        raise WireError("truncated", f"{size} bytes")
    items = _loads_exact(data, "envelope")
    if not isinstance(items, list) or len(items) != FIELDS:
        raise WireError("malformed", "envelope is not an 11-item array")
    _, key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag = items
    if data[-TAG_BYTES - 2 : -TAG_BYTES] != _TAG_HEADER or not isinstance(tag, bytes):
        raise WireError("malformed", "tag is not the last 32 bytes")
    if not isinstance(key_id, str) or not 0 < len(key_id) <= MAX_KEY_ID_LENGTH:
        raise WireError("bad_field", "key_id")
    if type(host_id) is not int or not -1 <= host_id < 2**31:
        raise WireError("bad_field", "host_id")
    if not isinstance(boot_id, bytes) or len(boot_id) != 16:
        raise WireError("bad_field", "boot_id")
    if type(seq) is not int or not 0 <= seq < 2**63:
        raise WireError("bad_field", "seq")
    if type(type_code) is not int or type_code not in _TYPES:
        raise WireError("bad_type", repr(type_code)[:32])
    if type(status_code) is not int or status_code not in _STATUSES:
        raise WireError("bad_status", repr(status_code)[:32])
    if type(timestamp) not in (int, float) or not (0 <= timestamp < 2**40):
        raise WireError("bad_field", "timestamp")
    if isinstance(timestamp, float) and not math.isfinite(timestamp):
        raise WireError("bad_field", "timestamp")
    if type(flags) is not int or flags & ~KNOWN_FLAGS:
        raise WireError("bad_field", "flags")
    if not isinstance(body, bytes):
        raise WireError("bad_field", "body")
    return key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag


def _loads_exact(data: bytes, what: str) -> Any:
    """Decode exactly one CBOR item that spans all of ``data``."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream, **_DECODE_OPTIONS).decode()
    except cbor2.CBORDecodeEOF:
        raise WireError("truncated", what) from None
    except RecursionError:
        raise WireError("bad_payload", f"{what} nested too deeply") from None
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, MemoryError) as exc:
        text = str(exc)
        if "depth" in text:
            raise WireError("bad_payload", f"{what} nested too deeply") from None
        if "excessive" in text or "premature" in text:  # cbor2 5.4: a length beyond the data
            raise WireError("truncated", f"{what}: {text[:80]}") from None
        raise WireError("malformed", f"{what}: {text[:80]}") from None
    if stream.tell() != len(data):
        raise WireError("trailing_bytes", f"{len(data) - stream.tell()} after {what}")
    return value


def _inflate(body: bytes) -> bytes:
    """Decompress a zlib body, refusing output over the payload bound."""
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(body, MAX_PAYLOAD_BYTES)
    except zlib.error as exc:
        raise WireError("bad_compression", str(exc)) from None
    if inflater.unconsumed_tail:
        raise WireError("too_large", f"body inflates beyond {MAX_PAYLOAD_BYTES} bytes")
    if not inflater.eof:
        raise WireError("bad_compression", "zlib stream incomplete")
    if inflater.unused_data:
        raise WireError("trailing_bytes", "after zlib stream")
    return out


def _code_template(template: Template) -> dict[Any, Any]:
    """Replace well-known names by their integer codes, at every level."""
    return {CODE_OF.get(name, name): _code_value(value) for name, value in template.items()}


def _code_value(value: Any) -> Any:
    if isinstance(value, dict):
        return _code_template(value)
    if isinstance(value, list):
        return [_code_value(item) for item in value]
    if type(value) is str and len(value) == 36 and _UUID_TEXT.fullmatch(value):
        return uuid.UUID(value)  # 16 bytes under CBOR tag 37 instead of 36 characters
    return value


class DatagramSizer:
    """Sizes split parts of one report fast: each VM record is CBOR-encoded once, then reused.

    Produces exactly the bytes ``encode`` would (CBOR maps keep insertion order), with the
    largest sequence number, so a part that fits here fits when sent.
    """

    def __init__(self, key: Key, boot_id: bytes) -> None:
        self._key = key
        self._boot_id = boot_id
        self._records: dict[int, bytes] = {}

    def __call__(self, message: Message) -> bytes:
        """The encoded envelope of ``message`` as the sender will build it (worst-case seq)."""
        body = self._body(message)
        flags = 0
        if len(body) >= COMPRESS_ABOVE:
            packed = zlib.compress(body, 6)
            if len(packed) < len(body):
                body, flags = packed, FLAG_ZLIB
        return seal(message, self._key, self._boot_id, 2**63 - 1, flags, body)

    def _body(self, message: Message) -> bytes:
        payload = message.payload
        records = payload.get("VM")
        if message.status is Status.FAILURE or not isinstance(records, list):
            return encode_body(message)
        parts = [_head(5, len(payload))]
        for name, value in payload.items():
            parts.append(cbor2.dumps(CODE_OF.get(name, name)))
            if value is records:
                parts.append(_head(4, len(records)))
                parts.extend(self._record(record) for record in records)
            else:
                parts.append(cbor2.dumps(_code_value(value)))
        return b"".join(parts)

    def _record(self, record: Any) -> bytes:
        key = id(record)
        cached = self._records.get(key)
        if cached is None:
            cached = self._records[key] = cbor2.dumps(_code_value(record))
        return cached


def _head(major: int, length: int) -> bytes:
    """A CBOR array (major 4) or map (major 5) head for ``length`` items."""
    base = major << 5
    if length < 24:
        return bytes([base | length])
    if length < 0x100:
        return bytes([base | 24, length])
    if length < 0x10000:
        return bytes([base | 25]) + length.to_bytes(2, "big")
    return bytes([base | 26]) + length.to_bytes(4, "big")


def _expand_template(coded: dict[Any, Any], depth: int, budget: list[int]) -> Template:
    """Validate a decoded payload map and restore attribute names (the decoder's hot loop)."""
    if depth > MAX_DEPTH:
        raise WireError("bad_payload", "nested too deeply")
    budget[0] -= len(coded)
    if budget[0] < 0:
        raise WireError("too_large", "too many values")
    names = NAME_OF
    out: Template = {}
    for key, value in coded.items():
        name = names.get(key) if type(key) is int else key
        if type(name) is not str or not name or len(name) > 256:
            raise WireError("bad_payload", f"bad attribute name {str(key)[:40]!r}")
        kind = type(value)
        if kind is int or kind is str:  # the common case, inline
            out[name] = value
        else:
            out[name] = _expand_value(value, depth, budget)
    return out


def _expand_value(value: Any, depth: int, budget: list[int]) -> Any:
    kind = type(value)
    if kind is str or kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise WireError("bad_payload", "non-finite number")
        return value
    if kind is dict:
        return _expand_template(value, depth + 1, budget)
    if kind is uuid.UUID:
        return str(value)
    if kind is list:
        if depth + 1 > MAX_DEPTH or not value:
            raise WireError("bad_payload", "empty or too deep repeated attribute")
        budget[0] -= len(value)
        if budget[0] < 0:
            raise WireError("too_large", "too many values")
        items = []
        for item in value:
            if type(item) is list:
                raise WireError("bad_payload", "list inside a list")
            items.append(_expand_value(item, depth + 1, budget))
        return items
    raise WireError("bad_payload", f"unsupported value type {kind.__name__}")
