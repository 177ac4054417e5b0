"""Replay and order checks by (boot id, seq), never by wall clock (docs/protocol.md)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from onemon.wire.model import MessageType

WINDOW = 64
"""How far behind the highest seq a datagram may arrive and still be accepted once."""
MASK = (1 << WINDOW) - 1

_STRICT_TYPES = frozenset({MessageType.STATE_VM})


class Verdict(enum.Enum):
    """What to do with a message given its ordering identity."""

    APPLY = "apply"
    DUPLICATE = "duplicate"  # already applied: acknowledge, do not apply again
    REPLAY = "replay"  # outside the window or a repeat of a datagram
    OLD_BOOT = "old_boot"  # from a boot older than the host's current one


def boot_counter(boot_id: bytes) -> int:
    """The monotonic counter in the first 8 bytes of a boot id."""
    return int.from_bytes(boot_id[:8], "big")


@dataclass(slots=True)
class Progress:
    """Per host and message type: the current boot, highest seq, and the window of seen seqs."""

    boot_id: bytes
    seq: int
    window: int = 1
    """Bit i set = seq − i was seen (bit 0 is ``seq`` itself)."""


class Ordering:
    """Anti-replay and ordering state of every host's message streams."""

    def __init__(self) -> None:
        self._progress: dict[tuple[int, int], Progress] = {}

    def check(
        self, host_id: int, mtype: MessageType, boot_id: bytes, seq: int, acked: bool = False
    ) -> Verdict:
        """Decide, and on APPLY record, a message's place in its stream.

        ``acked``: it came over TCP, where the agent sends again what it saw no answer for (the
        answer lost with a connection): a seq seen inside the window is then a DUPLICATE, answered
        ``ok``, not a replay; it is not applied again either way.
        """
        key = (host_id, int(mtype))
        current = self._progress.get(key)
        if current is None or current.boot_id != boot_id:
            if current is not None and boot_counter(boot_id) <= boot_counter(current.boot_id):
                return Verdict.OLD_BOOT
            self._progress[key] = Progress(boot_id, seq)
            return Verdict.APPLY
        if seq > current.seq:
            shift = seq - current.seq
            current.window = 1 if shift >= WINDOW else ((current.window << shift) | 1) & MASK
            current.seq = seq
            return Verdict.APPLY
        if mtype in _STRICT_TYPES:
            return Verdict.DUPLICATE
        offset = current.seq - seq
        if offset >= WINDOW:
            return Verdict.REPLAY
        if current.window >> offset & 1:
            return Verdict.DUPLICATE if acked else Verdict.REPLAY
        current.window |= 1 << offset
        return Verdict.APPLY

    def get(self, host_id: int, mtype: MessageType) -> Progress | None:
        """The recorded progress of one stream (for persistence)."""
        return self._progress.get((host_id, int(mtype)))

    def restore(self, host_id: int, mtype: int, progress: Progress) -> None:
        """Load persisted progress at start-up."""
        self._progress[(host_id, mtype)] = progress

    def forget_host(self, host_id: int) -> None:
        """Drop a deleted host's streams."""
        for key in [k for k in self._progress if k[0] == host_id]:
            del self._progress[key]


class LegacyOrdering:
    """OpenNebula's per-type timestamps (reference §1.5): older messages are dropped."""

    _CHECKED = frozenset(
        {
            MessageType.MONITOR_VM,
            MessageType.SYSTEM_HOST,
            MessageType.STATE_VM,
            MessageType.EXEC_VM,
            MessageType.MONITOR_HOST,
        }
    )

    def __init__(self) -> None:
        self._last: dict[tuple[int, MessageType], float] = {}

    def accept(self, host_id: int, mtype: MessageType, timestamp: float) -> bool:
        """True unless the message is older than the last one of its type (TS 0 always passes)."""
        if timestamp == 0 or mtype not in self._CHECKED:
            return True
        key = (host_id, mtype)
        if timestamp < self._last.get(key, 0):
            return False
        self._last[key] = timestamp
        return True

    def reset_host(self, host_id: int) -> None:
        """Forget a host's timestamps, as onemonitord does on every host state change."""
        for key in [k for k in self._last if k[0] == host_id]:
            del self._last[key]
