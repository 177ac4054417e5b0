"""Bytes and µs per VM record, native envelope vs OpenNebula's legacy line, same VM data.

Run: ``python -m bench.wire``. Native reports are split into 1400-byte datagrams as the agent
sends them; legacy reports are one line as OpenNebula's agent sends them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from bench.payloads import monitor_vm
from onemon.wire import legacy, native
from onemon.wire.keys import Key, KeyRing
from onemon.wire.limits import DEFAULT_DATAGRAM_BUDGET
from onemon.wire.model import Message
from onemon.wire.split import split

KEY = Key("cluster", b"b" * 32)
RING = KeyRing.single(KEY)
BOOT = bytes(16)


def best_of(runs: int, action: Callable[[], object]) -> float:
    """Fastest of ``runs`` timings of ``action``, in seconds."""
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def native_encode(message: Message) -> list[bytes]:
    """Split and sign as the agent does."""
    sizing = native.DatagramSizer(KEY, BOOT)
    parts = split(message, sizing, DEFAULT_DATAGRAM_BUDGET).datagrams
    return [native.encode(part, KEY, BOOT, seq) for seq, part in enumerate(parts)]


def native_decode(datagrams: list[bytes]) -> None:
    """Authenticate and decode every datagram."""
    for data in datagrams:
        native.decode(data, RING)


def main() -> None:
    """Print the comparison table."""
    print(f"{'VMs':>5} {'wire':>7} {'msgs':>5} {'B/VM':>7} {'enc µs/VM':>10} {'dec µs/VM':>10}")
    for count in (1, 50, 500):
        message = monitor_vm(3, count)
        runs = 5 if count == 500 else 20
        datagrams = native_encode(message)
        native_bytes = sum(len(d) for d in datagrams) / count
        n_enc = best_of(runs, partial(native_encode, message)) / count * 1e6
        n_dec = best_of(runs, partial(native_decode, datagrams)) / count * 1e6
        line = legacy.encode(message)
        assert legacy.decode(line).payload["VM"] is not None
        legacy_bytes = len(line) / count
        l_enc = best_of(runs, partial(legacy.encode, message)) / count * 1e6
        l_dec = best_of(runs, partial(legacy.decode, line)) / count * 1e6
        print(
            f"{count:>5} {'native':>7} {len(datagrams):>5} {native_bytes:>7.1f} "
            f"{n_enc:>10.1f} {n_dec:>10.1f}"
        )
        print(f"{count:>5} {'legacy':>7} {1:>5} {legacy_bytes:>7.1f} {l_enc:>10.1f} {l_dec:>10.1f}")
        print(f"{count:>5} native/legacy bytes = {native_bytes / legacy_bytes:.2f} (goal <= 0.5)")


if __name__ == "__main__":
    main()
