"""Native TCP framing: length-prefixed envelopes one way, acknowledgements the other.

A native stream is a sequence of frames ``u32 big-endian length | bytes``. The first byte of a
native stream is therefore 0x00 (no frame reaches 16 MiB), while an OpenNebula legacy TCP message
starts with an upper-case letter: the collector tells them apart by that byte.

Agent → collector frames hold one envelope each (``native.encode``). Collector → agent frames hold
an acknowledgement, CBOR ``[seq, code]``: code ``"ok"`` once the message is applied and persisted
(or was already applied: a duplicate), otherwise the reject reason; either way the agent can drop
it from its spool — a rejected message will never be accepted on retry.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import cbor2

from onemon.wire.errors import WireError
from onemon.wire.limits import MAX_TCP_MESSAGE

HEADER: Final = struct.Struct(">I")
ACK_OK: Final = "ok"
MAX_ACK_BYTES: Final = 256


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its length."""
    if len(payload) > MAX_TCP_MESSAGE:
        raise ValueError(f"frame of {len(payload)} bytes exceeds {MAX_TCP_MESSAGE}")
    return HEADER.pack(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Ack:
    """The collector's answer about one sequence number."""

    seq: int
    code: str

    @property
    def accepted(self) -> bool:
        """True when the message is applied and persisted."""
        return self.code == ACK_OK


def encode_ack(ack: Ack) -> bytes:
    """A framed acknowledgement."""
    return frame(cbor2.dumps([ack.seq, ack.code]))


def decode_ack(payload: bytes) -> Ack:
    """Parse an acknowledgement frame's payload."""
    try:
        value = cbor2.loads(payload)
    except Exception as exc:  # any decoder failure is the same malformed ack
        raise WireError("malformed", f"ack: {exc}") from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or type(value[0]) is not int
        or not isinstance(value[1], str)
    ):
        raise WireError("malformed", "ack must be [seq, code]")
    return Ack(value[0], value[1])


class FrameReader:
    """Incremental splitter of a byte stream into frames, bounded in size."""

    def __init__(self, max_frame: int = MAX_TCP_MESSAGE) -> None:
        self._buffer = bytearray()
        self._max = max_frame
        self.error: WireError | None = None
        """Why the stream cannot go on (an oversize frame announced), once known."""

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every frame now complete.

        A header announcing an oversize frame ends the stream: the frames completed before it
        are still returned, and :attr:`error` says why nothing more will be.
        """
        if self.error is not None:
            raise self.error
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self._buffer)
            if length > self._max:
                self.error = WireError("too_large", f"frame of {length} bytes > {self._max}")
                if not frames:
                    raise self.error
                break
            end = HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[HEADER.size : end]))
            del self._buffer[:end]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)
