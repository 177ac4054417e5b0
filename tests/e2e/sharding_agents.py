"""Simulated agents for the sharding tests: real agent senders for many hosts in one process.

Each host has the agent's own ``Sender`` (boot id, per-type seq, on-disk spool, acknowledged
TCP, the ordered collector list with back-off, redirects): what makes an agent survive a
collector failover is exactly this code. Each host changes its VMs' states at a steady rate
(every VM cycles RUNNING → POWEROFF → SUSPENDED, so each applied message journals exactly one
change), sends SYSTEM_HOST once and beacons as datagrams. On SIGTERM it stops making changes,
waits until every spool is empty and writes what it sent, in order, plus a timeline of
acknowledgements per host (to see how long each was left without a collector).

Run: ``python -m tests.e2e.sharding_agents <settings.json>``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from onemon.agent.sender import Sender
from onemon.wire.keys import load_key_file
from onemon.wire.model import Message, MessageType, Status

STATES = ("RUNNING", "POWEROFF", "SUSPENDED")
SAMPLE = 0.05


def message(mtype: MessageType, host: int, payload: dict[str, Any]) -> Message:
    """A successful report."""
    return Message(mtype, Status.SUCCESS, host, time.time(), payload)


async def run_host(
    sender: Sender,
    host: int,
    vms: list[int],
    rate: float,
    sent: dict[int, list[str]],
    stop: asyncio.Event,
) -> None:
    """One host: SYSTEM_HOST, then a state change every 1/rate s and a beacon every 5th."""
    loop = asyncio.get_running_loop()
    await sender.send(message(MessageType.SYSTEM_HOST, host, {"HOSTNAME": f"sim{host}",
                                                              "TOTALCPU": 400}))  # fmt: skip
    due, count = loop.time(), 0
    while not stop.is_set():
        vm = vms[count % len(vms)]
        state = STATES[len(sent[vm]) % len(STATES)]
        sent[vm].append(state)
        await sender.send(message(MessageType.STATE_VM, host, {"VM": [{"ID": vm, "STATE": state}]}))
        if count % 5 == 0:
            await sender.send(message(MessageType.BEACON_HOST, host, {}))
        count += 1
        due += 1.0 / rate
        await asyncio.sleep(max(0.0, due - loop.time()))


async def main(settings: dict[str, Any]) -> None:
    """Run until SIGTERM, flush, write the result file."""
    key = load_key_file(Path(settings["key_file"]))
    state_dir = Path(settings["state_dir"])
    hosts: list[int] = settings["hosts"]
    per = int(settings["vms_per_host"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    ack_timeout = float(settings.get("ack_timeout", 3.0))
    senders = {
        host: Sender(settings["collectors"], state_dir / str(host), key, ack_timeout=ack_timeout)
        for host in hosts
    }
    sent: dict[int, list[str]] = defaultdict(list)
    timeline: list[tuple[float, list[int], list[int]]] = []
    for sender in senders.values():
        await sender.start()

    async def sample() -> None:
        while True:
            acked = [senders[h].stats.acks["ok"] for h in hosts]
            pending = [senders[h].pending for h in hosts]
            timeline.append((time.time(), acked, pending))
            await asyncio.sleep(SAMPLE)

    sampler = asyncio.create_task(sample())
    tasks = [
        asyncio.create_task(
            run_host(senders[h], h, [h * 100 + i for i in range(per)], settings["rate"], sent, stop)
        )
        for h in hosts
    ]
    Path(settings["ready_file"]).write_text("ready\n")
    await stop.wait()
    await asyncio.gather(*tasks)
    flushed = await asyncio.gather(
        *(s.flush(float(settings.get("flush", 60))) for s in senders.values())
    )
    sampler.cancel()
    stats = [s.stats for s in senders.values()]
    result = {
        "sent": {str(vm): states for vm, states in sent.items()},
        "unflushed": sum(1 for ok in flushed if not ok),
        "acks": dict(sum((s.acks for s in stats), start=type(stats[0].acks)())),
        "redirects": sum(s.redirects for s in stats),
        "failovers": sum(s.failovers for s in stats),
        "hosts": hosts,
        "timeline": timeline,
    }
    for sender in senders.values():
        await sender.close()
    Path(settings["result"]).write_text(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
