"""Shared builders for the store tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

from onemon.collector.model import (
    Host,
    HostCapacity,
    HostState,
    LcmState,
    Vm,
    VmReport,
    VmState,
)
from onemon.collector.store import StoreConfig

if TYPE_CHECKING:
    from conftest import Backend

T0 = 1_700_000_000.25


def full_host(host_id: int = 3) -> Host:
    """A host with every field away from its default."""
    return Host(
        id=host_id,
        name=f"node-{host_id}.example — ü",
        state=HostState.ERROR,
        prev_state=HostState.MONITORED,
        error="Error executing monitor.rb: timeout",
        im_mad="lxc",
        vm_mad="lxc-custom",
        cluster_id=101,
        last_seen=T0 + 0.123456,
        last_monitored=T0 - 7.5,
        system={
            "ARCH": "x86_64",
            "TOTALCPU": 800,
            "CPUSPEED": 2400,
            "MODELNAME": 'Intel "Xeon"',
            "DS": [{"ID": 0, "USED_MB": 10, "TOTAL_MB": 100, "FREE_MB": 90}, {"ID": 1}],
            "RATIO": 0.1,
            "FLAG": True,
        },
        capacity=HostCapacity(
            free_cpu=712.5,
            used_cpu=87.5,
            free_memory=16_000_000,
            used_memory=8_000_000,
            netrx=2**40,
            nettx=12345,
            cpu_speed=2400,
            numa=[{"NODE_ID": 0, "MEMORY": {"FREE": 1, "USED": 2}, "HUGEPAGE": [{"SIZE": 2048}]}],
        ),
        wilds=[{"ID": -1, "DEPLOY_ID": "uuid-1", "VM_NAME": "wild"}],
        zombies=[17, 23],
        agent={"VERSION": "0.1", "PROBES_FAILED": 2},
    )


def full_vm(vm_id: int = 42, host_id: int = 3) -> Vm:
    """A VM with every field away from its default."""
    return Vm(
        id=vm_id,
        host_id=host_id,
        deploy_id="0f5e3ad0-1c6e-4a6b-9fcb-6a2b5d6f2e11",
        report=VmReport.SUSPENDED,
        state=VmState.SUSPENDED,
        lcm_state=LcmState.LCM_INIT,
        last_poll=T0 + 1.5,
        state_changed=T0 - 60.0,
        monitoring={"CPU": 12.5, "MEMORY": 524288, "DISK_SIZE": [{"ID": 0, "SIZE": 10}]},
        exec_result={"PID": 77, "STATUS": "DONE", "RETURN_CODE": 0, "STDOUT": "b2s="},
    )


def config(backend: Backend, **changes: object) -> StoreConfig:
    """Test settings: small retries so outages are short."""
    base = {
        "url": backend.url,
        "batch_delay": 0.01,
        "retry_min": 0.02,
        "retry_max": 0.2,
        "busy_timeout": 0.2,
        "stop_timeout": 5.0,
    }
    base.update(changes)
    return StoreConfig(**base)  # type: ignore[arg-type]
