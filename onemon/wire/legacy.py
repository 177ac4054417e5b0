"""OpenNebula's legacy wire (reference §1.2–1.4): ``TYPE STATUS OID TS base64(zlib([RSA]text))``.

A frame is one line, sent by the Ruby agent without a trailing LF and by ``send_to_monitor``
with one. Fields are separated by runs of whitespace, as ``istream >>`` reads them; the payload
is the rest of the line: strict base64, then a zlib stream (bounded inflate), then, only when a
private key is configured, RSA PKCS#1 v1.5 blocks. As onemonitord, a payload that does not
decrypt is kept as inflated, so plain and encrypting agents can share one collector.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from onemon.wire import rsa, template
from onemon.wire.errors import TemplateError, WireError
from onemon.wire.model import Message, MessageType, Status, Template, values

if TYPE_CHECKING:  # cryptography is loaded only when a key is (onemon.wire.rsa)
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

MAX_FRAME_SIZE: Final = 4 * 1024 * 1024
"""Default bound on a frame's bytes and, separately, on its inflated payload."""

TYPE_NAMES: Final = frozenset(member.name for member in MessageType)
"""Message types an agent may send (``INIT``, ``START_MONITOR``… are driver-pipe only)."""

STATUS_NAMES: Final = frozenset(member.name for member in Status)
"""Statuses an agent sends; OpenNebula's internal default ``-`` is not one."""

ZLIB_LEVEL: Final = 9
"""``Zlib::BEST_COMPRESSION``, as the Ruby agent."""

_OID: Final = re.compile(rb"-?[0-9]{1,10}")
_TIMESTAMP: Final = re.compile(rb"[0-9]{1,19}")
_INT32: Final = range(-(2**31), 2**31)
_TIME_T: Final = range(0, 2**63)


@dataclass(frozen=True, slots=True)
class LegacyFrame:
    """One legacy line with its fields as sent; ``payload`` is the decoded plaintext."""

    type_name: str
    status: str
    oid: int
    timestamp: int
    payload: bytes


def decode_frame(
    data: bytes, private_key: RSAPrivateKey | None = None, max_size: int = MAX_FRAME_SIZE
) -> LegacyFrame:
    """Decode one line into a frame; any failure is a WireError with its reason."""
    if len(data) > max_size:
        raise WireError("too_large", f"frame of {len(data)} bytes, limit {max_size}")
    fields = _line(data).split(None, 4)
    if len(fields) < 4:
        raise WireError("malformed", f"{len(fields)} fields, need TYPE STATUS OID TS [PAYLOAD]")
    return LegacyFrame(
        type_name=_type_name(fields[0]),
        status=_status_name(fields[1]),
        oid=_integer(fields[2], _OID, _INT32, "OID"),
        timestamp=_integer(fields[3], _TIMESTAMP, _TIME_T, "TIMESTAMP"),
        payload=_unpack(fields[4], private_key, max_size) if len(fields) == 5 else b"",
    )


def encode_frame(frame: LegacyFrame, public_key: RSAPublicKey | None = None) -> bytes:
    """Encode a frame as the Ruby agent does (no trailing LF): [RSA] → zlib 9 → base64."""
    _check_frame(frame)
    data = frame.payload if public_key is None else rsa.encrypt(public_key, frame.payload)
    packed = base64.b64encode(zlib.compress(data, ZLIB_LEVEL))
    head = f"{frame.type_name} {frame.status} {frame.oid} {frame.timestamp} "
    return head.encode("ascii") + packed


def to_message(frame: LegacyFrame, max_size: int = MAX_FRAME_SIZE) -> Message:
    """Map a frame onto the message model, parsing its template text."""
    mtype = MessageType[_known(frame.type_name, TYPE_NAMES, "bad_type", "message type")]
    status = Status[_known(frame.status, STATUS_NAMES, "bad_status", "status")]
    text = frame.payload.decode("utf-8", errors="replace")
    timestamp = float(frame.timestamp)
    if status is Status.FAILURE:
        return Message(mtype, status, frame.oid, timestamp, {}, text)
    if mtype is MessageType.BEACON_HOST:
        return Message(mtype, status, frame.oid, timestamp)
    payload = template.parse(text, max_size)
    if mtype is MessageType.MONITOR_VM:
        decode_monitors(payload, max_size)
    return Message(mtype, status, frame.oid, timestamp, payload)


def from_message(msg: Message) -> LegacyFrame:
    """Map a message onto a frame: template text, a FAILURE's error, a beacon's epoch."""
    if msg.status is Status.FAILURE:
        text = msg.error
    elif msg.type is MessageType.BEACON_HOST:
        text = str(_timestamp(msg.timestamp))  # what host/beacon/date.sh prints
    else:
        text = template.write(_encode_monitors(msg.payload))
    return LegacyFrame(
        msg.type.name, msg.status.name, msg.host_id, _timestamp(msg.timestamp), text.encode()
    )


def decode(
    data: bytes, private_key: RSAPrivateKey | None = None, max_size: int = MAX_FRAME_SIZE
) -> Message:
    """Decode one legacy line into a Message."""
    return to_message(decode_frame(data, private_key, max_size), max_size)


def encode(msg: Message, public_key: RSAPublicKey | None = None) -> bytes:
    """Encode a Message as one legacy line (no trailing LF)."""
    return encode_frame(from_message(msg), public_key)


# --------------------------------------------------------------------------- line fields


def _line(data: bytes) -> bytes:
    """The line without its optional LF or CRLF; malformed if more than one line."""
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if b"\n" in data:
        raise WireError("malformed", "more than one line")
    return data


def _type_name(field: bytes) -> str:
    """The TYPE field, one of :data:`TYPE_NAMES`."""
    name = field.decode("ascii", errors="replace")
    return _known(name, TYPE_NAMES, "bad_type", "message type")


def _status_name(field: bytes) -> str:
    """The STATUS field, one of :data:`STATUS_NAMES`."""
    name = field.decode("ascii", errors="replace")
    return _known(name, STATUS_NAMES, "bad_status", "status")


def _known(name: str, names: frozenset[str], reason: str, what: str) -> str:
    """``name`` if it is in ``names``, else WireError(``reason``)."""
    if name not in names:
        raise WireError(reason, f"unknown {what} {name[:32]!r}")
    return name


def _integer(field: bytes, shape: re.Pattern[bytes], bounds: range, what: str) -> int:
    """A decimal field of the given shape within ``bounds``, else WireError("bad_field")."""
    if shape.fullmatch(field) is None:
        raise WireError("bad_field", f"{what} {field[:32]!r} is not a decimal integer")
    value = int(field)
    if value not in bounds:
        raise WireError("bad_field", f"{what} {value} out of range")
    return value


# --------------------------------------------------------------------------- payload


def _unpack(token: bytes, private_key: RSAPrivateKey | None, max_size: int) -> bytes:
    """base64 → zlib → (RSA if a key is given, keeping the inflated bytes if it fails)."""
    try:
        compressed = binascii.a2b_base64(token, strict_mode=True)
    except binascii.Error as exc:
        raise WireError("bad_encoding", f"payload is not strict base64: {exc}") from None
    inflated = _inflate(compressed, max_size)
    if private_key is None:
        return inflated
    return _decrypt_or_keep(private_key, inflated)


def _inflate(compressed: bytes, limit: int) -> bytes:
    """Inflate one whole zlib stream of at most ``limit`` bytes."""
    stream = zlib.decompressobj()
    try:
        inflated = stream.decompress(compressed, limit + 1)
    except zlib.error as exc:
        raise WireError("bad_compression", str(exc)) from None
    if len(inflated) > limit:
        raise WireError("too_large", f"payload inflates beyond {limit} bytes")
    if not stream.eof:
        raise WireError("bad_compression", "zlib stream is truncated")
    if stream.unused_data:
        raise WireError("bad_compression", "bytes after the end of the zlib stream")
    return inflated


def _decrypt_or_keep(private_key: RSAPrivateKey, data: bytes) -> bytes:
    """The decrypted payload, or ``data`` itself when it is not a ciphertext for this key.

    Text is never decrypted: a ciphertext block is uniformly random bytes and is valid UTF-8
    with probability far below 2^-100, while a plain template always is. This keeps the
    plaintext fallback exact under OpenSSL ≥ 3.2, whose implicit rejection turns a failed
    single-block decryption into random bytes instead of an error.
    """
    if not data or len(data) % rsa.key_bytes(private_key) or _is_text(data):
        return data
    try:
        return rsa.decrypt(private_key, data)
    except WireError:
        return data


def _is_text(data: bytes) -> bool:
    """True when ``data`` is valid UTF-8."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------- nested MONITOR


def decode_monitors(payload: Template, max_size: int = MAX_FRAME_SIZE) -> None:
    """Replace each ``VM`` vector's base64 ``MONITOR`` text by the Template it encodes."""
    for vm in values(payload, "VM"):
        if isinstance(vm, dict) and isinstance(vm.get("MONITOR"), str):
            vm["MONITOR"] = _monitor_template(vm["MONITOR"], str(vm.get("ID", "?"))[:32], max_size)


def _monitor_template(text: str, vm_id: str, max_size: int) -> Template:
    """Parse one nested MONITOR (base64, possibly wrapped by Ruby's ``encode64``)."""
    try:
        raw = binascii.a2b_base64("".join(text.split()).encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise WireError("bad_encoding", f"MONITOR of VM {vm_id} is not base64: {exc}") from None
    try:
        return template.parse(raw.decode("utf-8", errors="replace"), max_size)
    except TemplateError as exc:
        raise TemplateError(f"MONITOR of VM {vm_id}: {exc.detail}") from None


def _encode_monitors(payload: Template) -> Template:
    """A copy of ``payload`` whose ``VM`` vectors carry MONITOR Templates as base64 text."""
    vms = payload.get("VM")
    if vms is None:
        return payload
    if isinstance(vms, list):
        return {**payload, "VM": [_encode_monitor(vm) for vm in vms]}
    return {**payload, "VM": _encode_monitor(vms)}


def _encode_monitor(vm: Any) -> Any:
    """``vm`` with a dict MONITOR written as base64 template text."""
    if not isinstance(vm, dict) or not isinstance(vm.get("MONITOR"), dict):
        return vm
    text = template.write(vm["MONITOR"])
    return {**vm, "MONITOR": base64.b64encode(text.encode()).decode("ascii")}


# --------------------------------------------------------------------------- checks


def _timestamp(value: float) -> int:
    """A message timestamp as the whole epoch seconds the legacy line carries."""
    if not math.isfinite(value) or int(value) not in _TIME_T:
        raise WireError("bad_field", f"timestamp {value!r} has no legacy form")
    return int(value)


def _check_frame(frame: LegacyFrame) -> None:
    """Refuse to encode a frame that :func:`decode_frame` would reject."""
    _known(frame.type_name, TYPE_NAMES, "bad_type", "message type")
    _known(frame.status, STATUS_NAMES, "bad_status", "status")
    if frame.oid not in _INT32:
        raise WireError("bad_field", f"OID {frame.oid} out of range")
    if frame.timestamp not in _TIME_T:
        raise WireError("bad_field", f"TIMESTAMP {frame.timestamp} out of range")
