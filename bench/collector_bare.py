"""The receive ceiling: a uvloop ``DatagramProtocol`` that only counts (``bench.collector``).

Run: ``python -m bench.collector_bare`` (the benchmark starts it pinned to one CPU). It binds
UDP like one-collector (``bind_udp``, same receive buffer) on 127.0.0.1, plus a control socket
that answers any datagram with the count so far, then prints ``ready <port> <control port>``
and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
from typing import cast

import uvloop

from onemon.collector.config import ListenConfig
from onemon.collector.listeners import bind_udp


class Counter(asyncio.DatagramProtocol):
    """Counts datagrams, nothing else."""

    def __init__(self) -> None:
        self.count = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        """One more."""
        self.count += 1


class Control(asyncio.DatagramProtocol):
    """Answers every datagram with the counter's value."""

    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to answer on."""
        self.transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        """Reply with the count."""
        assert self.transport is not None
        self.transport.sendto(str(self.counter.count).encode(), addr)


async def serve() -> None:
    """Bind, announce the ports, count until SIGTERM."""
    loop = asyncio.get_running_loop()
    counter = Counter()
    sock = bind_udp("127.0.0.1", 0, ListenConfig().rcvbuf_bytes)
    control_sock = bind_udp("127.0.0.1", 0, 1 << 16)
    data, _ = await loop.create_datagram_endpoint(lambda: counter, sock=sock)
    control, _ = await loop.create_datagram_endpoint(lambda: Control(counter), sock=control_sock)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {sock.getsockname()[1]} {control_sock.getsockname()[1]}", flush=True)
    await stop.wait()
    data.close()
    control.close()


def main() -> None:
    """Entry point."""
    uvloop.run(serve())


if __name__ == "__main__":
    main()
