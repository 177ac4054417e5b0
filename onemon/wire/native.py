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

import hashlib
import hmac
import inspect
import io
import re
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Final, NoReturn

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
_EMPTY_MAP: Final = b"\xa0"
_MAX_HOST_ID: Final = 2**31
_MAX_SEQ: Final = 2**63
_MAX_TIMESTAMP: Final = 2**40


class _UuidText(str):
    """A UUID (CBOR tag 37) decoded straight to its text; a distinct type, so that a UUID used
    as a map key is still refused as an attribute name (the walk turns values into plain str)."""

    __slots__ = ()


def _uuid_text(value: Any, immutable: bool = False) -> _UuidText:
    """Tag 37's content as ``str(uuid.UUID(bytes=value))`` gives it, without the UUID object."""
    if type(value) is not bytes or len(value) != 16:
        raise ValueError("error decoding UUID")
    h = value.hex()
    return _UuidText(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")


_BODY_OPTIONS: dict[str, Any] = dict(_DECODE_OPTIONS)
if "semantic_decoders" in _decoder_params:  # cbor2 >= 6: no uuid.UUID built to become text
    _BODY_OPTIONS["semantic_decoders"] = {37: _uuid_text}


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
    key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag = (
        _read_envelope(data, max_size)
    )
    secret = keys.lookup(key_id, host_id)
    if secret is None:
        raise WireError("bad_key", f"key {key_id!r} not valid for host {host_id}")
    if not hmac.compare_digest(_mac(secret, memoryview(data)[:-TAG_BYTES]), tag):
        raise WireError("bad_mac", f"host {host_id}")
    if flags & FLAG_ZLIB:
        body = _inflate(body)
    status = _STATUSES[status_code]
    content = {} if body == _EMPTY_MAP else _loads_exact(body, "body", _BODY_OPTIONS)
    if status is Status.FAILURE:
        if type(content) is not str:  # a UUID (_UuidText) is not error text either
            raise WireError("bad_payload", "FAILURE body must be text")
        message = Message(_TYPES[type_code], status, host_id, timestamp, {}, content)
    else:
        if type(content) is not dict:
            raise WireError("bad_payload", "payload must be a map")
        payload = _expand_template(content, 1, [MAX_ITEMS]) if content else {}
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
    """Structurally decode the envelope and type-check its fields (no authentication).

    One ``cbor2.loads``, which ignores bytes after the array: an envelope's tag must be its
    last 32 bytes, and the MAC covers every byte before them, so an envelope with anything
    after its array never authenticates (it is refused here as malformed, or as bad_mac).
    """
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
    items = _loads(data, "envelope", _DECODE_OPTIONS)
    if type(items) is not list or len(items) != FIELDS:
        raise WireError("malformed", "envelope is not an 11-item array")
    _, key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag = items
    if (  # the usual case in one test; the checks below name what is wrong otherwise
        type(tag) is bytes
        and data[-TAG_BYTES - 2 : -TAG_BYTES] == _TAG_HEADER
        and tag == data[-TAG_BYTES:]
        and type(key_id) is str
        and 0 < len(key_id) <= MAX_KEY_ID_LENGTH
        and type(host_id) is int
        and -1 <= host_id < _MAX_HOST_ID
        and type(boot_id) is bytes
        and len(boot_id) == 16
        and type(seq) is int
        and 0 <= seq < _MAX_SEQ
        and type(type_code) is int
        and type_code in _TYPES
        and type(status_code) is int
        and status_code in _STATUSES
        and (
            (type(timestamp) is int and 0 <= timestamp < _MAX_TIMESTAMP)
            or (type(timestamp) is float and 0.0 <= timestamp < _MAX_TIMESTAMP)
        )
        and type(flags) is int
        and not flags & ~KNOWN_FLAGS
        and type(body) is bytes
    ):
        return key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag
    _refuse_fields(data, items)


def _refuse_fields(data: bytes, items: list[Any]) -> NoReturn:
    """Raise the reason a decoded envelope's fields fail :func:`_read_envelope`'s test."""
    _, key_id, host_id, boot_id, seq, type_code, status_code, timestamp, flags, body, tag = items
    if (
        data[-TAG_BYTES - 2 : -TAG_BYTES] != _TAG_HEADER
        or not isinstance(tag, bytes)
        or tag != data[-TAG_BYTES:]
    ):
        _loads_exact(data, "envelope")  # bytes after the array: trailing_bytes, as ever
        raise WireError("malformed", "tag is not the last 32 bytes")
    if not isinstance(key_id, str) or not 0 < len(key_id) <= MAX_KEY_ID_LENGTH:
        raise WireError("bad_field", "key_id")
    if type(host_id) is not int or not -1 <= host_id < _MAX_HOST_ID:
        raise WireError("bad_field", "host_id")
    if not isinstance(boot_id, bytes) or len(boot_id) != 16:
        raise WireError("bad_field", "boot_id")
    if type(seq) is not int or not 0 <= seq < _MAX_SEQ:
        raise WireError("bad_field", "seq")
    if type(type_code) is not int or type_code not in _TYPES:
        raise WireError("bad_type", repr(type_code)[:32])
    if type(status_code) is not int or status_code not in _STATUSES:
        raise WireError("bad_status", repr(status_code)[:32])
    if type(timestamp) not in (int, float) or not (0 <= timestamp < _MAX_TIMESTAMP):
        raise WireError("bad_field", "timestamp")  # NaN fails the range test too
    if type(flags) is not int or flags & ~KNOWN_FLAGS:
        raise WireError("bad_field", "flags")
    if not isinstance(body, bytes):
        raise WireError("bad_field", "body")
    raise WireError("malformed", "envelope fields")  # a subclass of a field's type: never seen


_PADS: dict[bytes, tuple[Any, Any]] = {}
"""HMAC-SHA256 inner and outer hash states per secret, the key already absorbed."""
_IPAD: Final = bytes(b ^ 0x36 for b in range(256))
_OPAD: Final = bytes(b ^ 0x5C for b in range(256))


def _mac(secret: bytes, data: memoryview) -> bytes:
    """``hmac.digest(secret, data, "sha256")``, without hashing the key's pads every time."""
    pads = _PADS.get(secret)
    if pads is None:
        if len(_PADS) >= 4096:  # keys replaced by reloads: never let the cache grow for ever
            _PADS.clear()
        block = (hashlib.sha256(secret).digest() if len(secret) > 64 else secret).ljust(64, b"\0")
        pads = _PADS[secret] = (
            hashlib.sha256(block.translate(_IPAD)),
            hashlib.sha256(block.translate(_OPAD)),
        )
    inner = pads[0].copy()
    inner.update(data)
    outer = pads[1].copy()
    outer.update(inner.digest())
    return outer.digest()


def _loads(data: bytes, what: str, options: dict[str, Any]) -> Any:
    """Decode the CBOR item ``data`` starts with (bytes after it are not looked at)."""
    try:
        return cbor2.loads(data, **options)
    except Exception as exc:
        raise _decode_error(exc, what) from None


def _loads_exact(data: bytes, what: str, options: dict[str, Any] = _DECODE_OPTIONS) -> Any:
    """Decode exactly one CBOR item that spans all of ``data``."""
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream, **options).decode()
    except Exception as exc:
        raise _decode_error(exc, what) from None
    if stream.tell() != len(data):
        raise WireError("trailing_bytes", f"{len(data) - stream.tell()} after {what}")
    return value


_DECODER_ERRORS: Final = (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, MemoryError)


def _decode_error(exc: Exception, what: str) -> Exception:
    """The WireError for a CBOR decoder's exception (anything else is re-raised as it is)."""
    if isinstance(exc, cbor2.CBORDecodeEOF):
        return WireError("truncated", what)
    if isinstance(exc, RecursionError):
        return WireError("bad_payload", f"{what} nested too deeply")
    if not isinstance(exc, _DECODER_ERRORS):
        return exc
    text = str(exc)
    if "depth" in text:
        return WireError("bad_payload", f"{what} nested too deeply")
    if "excessive" in text or "premature" in text:  # cbor2 5.4: a length beyond the data
        return WireError("truncated", f"{what}: {text[:80]}")
    return WireError("malformed", f"{what}: {text[:80]}")


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
    """Validate a decoded payload map and restore attribute names (the decoder's hot loop).

    Values: str and int as they are, finite floats, maps (recursively), non-empty lists of those
    (no list in a list), UUIDs as their text; anything else is bad_payload. Every check is
    inline for scalars; only maps and lists cost a call.
    """
    if depth > MAX_DEPTH:
        raise WireError("bad_payload", "nested too deeply")
    left = budget[0] - len(coded)
    budget[0] = left
    if left < 0:
        raise WireError("too_large", "too many values")
    names = NAME_OF
    out: Template = {}
    for key, value in coded.items():
        if type(key) is int:
            name = names.get(key)
            if name is None:
                raise WireError("bad_payload", f"bad attribute name {str(key)[:40]!r}")
        elif type(key) is str and 0 < len(key) <= 256:
            name = key
        else:
            raise WireError("bad_payload", f"bad attribute name {str(key)[:40]!r}")
        kind = type(value)
        if kind is int or kind is str:  # the common case
            out[name] = value
        elif kind is float:
            if value - value != 0.0:  # inf - inf and nan - nan are nan
                raise WireError("bad_payload", "non-finite number")
            out[name] = value
        elif kind is dict:
            out[name] = _expand_template(value, depth + 1, budget)
        elif kind is list:
            out[name] = _expand_list(value, depth + 1, budget)
        elif kind is _UuidText or kind is uuid.UUID:
            out[name] = str(value)
        else:
            raise WireError("bad_payload", f"unsupported value type {kind.__name__}")
    return out


def _expand_list(value: list[Any], depth: int, budget: list[int]) -> list[Any]:
    """A repeated attribute: its items at ``depth`` (maps, or scalars as in a map)."""
    if depth > MAX_DEPTH or not value:
        raise WireError("bad_payload", "empty or too deep repeated attribute")
    left = budget[0] - len(value)
    budget[0] = left
    if left < 0:
        raise WireError("too_large", "too many values")
    items: list[Any] = []
    append = items.append
    for item in value:
        kind = type(item)
        if kind is dict:
            append(_expand_template(item, depth + 1, budget))
        elif kind is int or kind is str:
            append(item)
        elif kind is float:
            if item - item != 0.0:
                raise WireError("bad_payload", "non-finite number")
            append(item)
        elif kind is _UuidText or kind is uuid.UUID:
            append(str(item))
        elif kind is list:
            raise WireError("bad_payload", "list inside a list")
        else:
            raise WireError("bad_payload", f"unsupported value type {kind.__name__}")
    return items
