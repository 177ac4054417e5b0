"""Realistic report payloads shared by the benchmarks and the fleet simulator."""

from __future__ import annotations

import random
import uuid
from typing import Any

from onemon.wire.model import Message, MessageType, Status


def vm_record(vm_id: int, rng: random.Random) -> dict[str, Any]:
    """One VM as OpenNebula's KVM poll probe reports it (reference §2.3 keys and units)."""
    return {
        "ID": vm_id,
        "DEPLOY_ID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "MONITOR": {
            "CPU": round(rng.uniform(0, 400), 2),
            "MEMORY": rng.randrange(131_072, 16_777_216),
            "NETRX": rng.randrange(0, 10**12),
            "NETTX": rng.randrange(0, 10**12),
            "DISKRDBYTES": rng.randrange(0, 10**12),
            "DISKWRBYTES": rng.randrange(0, 10**12),
            "DISKRDIOPS": rng.randrange(0, 10**9),
            "DISKWRIOPS": rng.randrange(0, 10**9),
            "DISK_SIZE": [{"ID": 0, "SIZE": rng.randrange(1, 100_000)}],
        },
    }


def monitor_vm(host_id: int, count: int, seed: int = 1, timestamp: float = 1716200040.0) -> Message:
    """A MONITOR_VM report about ``count`` VMs."""
    rng = random.Random(seed)
    records = [vm_record(host_id * 100_000 + i, rng) for i in range(count)]
    return Message(MessageType.MONITOR_VM, Status.SUCCESS, host_id, timestamp, {"VM": records})
