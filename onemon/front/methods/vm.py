"""``one.vm.info`` and ``one.vm.monitoring``."""

from __future__ import annotations

from onemon.collector.model import Vm
from onemon.front.docs.monitoring import VM_DATA_KEYS, monitoring_data, vm_record
from onemon.front.docs.vm import vm_xml
from onemon.front.methods.context import Context, require_admin
from onemon.front.rpc.dispatch import Call, Method
from onemon.front.rpc.errors import no_exists
from onemon.front.rpc.params import Param, opt
from onemon.front.view import Snapshot

OBJECT = "virtual machine"


def methods(ctx: Context) -> list[Method]:
    """The ``one.vm.*`` methods."""
    vms = VmMethods(ctx)
    return [
        Method("one.vm.info", (Param("id", "int"), opt("decrypt", "bool", False)), vms.info),
        Method("one.vm.monitoring", (Param("id", "int"),), vms.monitoring),
    ]


def get_vm(snapshot: Snapshot, vm_id: int) -> Vm:
    """The VM, or NO_EXISTS."""
    vm = snapshot.vms.get(vm_id)
    if vm is None:
        raise no_exists(OBJECT, vm_id)
    return vm


class VmMethods:
    """One VM's body and history."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def info(self, call: Call, vm_id: int, decrypt: bool) -> str:
        """The full VM body with its latest monitoring record."""
        require_admin(call, f"USE VM [{vm_id}]")
        snapshot = await self.ctx.view.snapshot()
        vm = get_vm(snapshot, vm_id)
        latest = await self.ctx.view.vm_latest(vm_id)
        host = snapshot.hosts.get(vm.host_id)
        name = snapshot.host_name(host) if host is not None else ""
        return vm_xml(vm, host, name, latest)

    async def monitoring(self, call: Call, vm_id: int) -> str:
        """Every stored record of the VM, oldest first."""
        require_admin(call, f"USE VM [{vm_id}]")
        get_vm(await self.ctx.view.snapshot(), vm_id)
        rows = await self.ctx.view.vm_history(vm_id)
        return monitoring_data(vm_record(vm_id, ts, s, VM_DATA_KEYS) for ts, s in rows)
