"""``one.vmpool.info`` (filter, range, state) and ``one.vmpool.monitoring``."""

from __future__ import annotations

from onemon.collector.model import Vm, VmState
from onemon.front.auth.session import Identity
from onemon.front.docs.monitoring import VM_DATA_KEYS, monitoring_data, vm_record
from onemon.front.docs.vm import OWNER, vm_pool_xml, vm_short_xml
from onemon.front.methods.context import Context
from onemon.front.methods.samples import Window, vm_current, window
from onemon.front.rpc.dispatch import Call, Method
from onemon.front.rpc.errors import api, internal
from onemon.front.rpc.params import Param, opt
from onemon.front.view import Snapshot

ALL_BUT_DONE, ANY_STATE = -1, -2
MAX_STATE = 11


def methods(ctx: Context) -> list[Method]:
    """The ``one.vmpool.*`` methods."""
    pool = VmPoolMethods(ctx)
    return [
        Method("one.vmpool.info", (Param("filter", "int"), Param("start", "int"),
               Param("end", "int"), Param("state", "int"), opt("query", "str", "")), pool.info),
        Method("one.vmpool.monitoring", (Param("filter", "int"), opt("seconds", "int", -1)),
               pool.monitoring),
    ]  # fmt: skip


def check_filter(flag: int) -> None:
    """RPC_API for filter flags below -4."""
    if flag < -4:
        raise api("Incorrect filter_flag")


def owned(identity: Identity, flag: int) -> bool:
    """Whether the VMs (all owned by oneadmin) pass the ownership filter and the ACLs."""
    owner_uid, owner_gid = OWNER[0], OWNER[1]
    if flag >= 0:
        return flag == owner_uid and identity.is_admin
    if flag == -2:
        return identity.is_admin
    if flag == -3:
        return identity.uid == owner_uid
    return identity.uid == owner_uid or identity.gid == owner_gid  # -1 and -4


def in_range(vms: list[Vm], start: int, end: int) -> list[Vm]:
    """``PoolSQL::oid_filter``: an id range, or pagination when ``end < -1``."""
    if end < -1:
        offset = max(start, 0)
        return vms[offset : offset - end]
    if start == -1:
        return vms
    return [vm for vm in vms if vm.id >= start and (end == -1 or vm.id <= end)]


def state_matches(vm: Vm, state: int) -> bool:
    """-2 any, -1 any but DONE, otherwise exactly that STATE."""
    if state == ANY_STATE:
        return True
    if state == ALL_BUT_DONE:
        return vm.state is not VmState.DONE
    return int(vm.state) == state


class VmPoolMethods:
    """VM pools in ascending id."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def info(
        self, call: Call, flag: int, start: int, end: int, state: int, query: str
    ) -> str:
        """VM_POOL of short bodies."""
        check_filter(flag)
        if not ANY_STATE <= state <= MAX_STATE:
            raise api(f"Incorrect state filter {state}")
        if query:
            raise internal("JSON query search is not supported by the SQL backend")
        snapshot = await self.ctx.view.snapshot()
        vms = self._visible(snapshot, call.identity, flag)
        vms = in_range([vm for vm in vms if state_matches(vm, state)], start, end)
        return vm_pool_xml([self._short(snapshot, vm) for vm in vms])

    async def monitoring(self, call: Call, flag: int, seconds: int) -> str:
        """MONITORING_DATA of the filtered VMs: latest (0), all (-1) or the last N seconds."""
        check_filter(flag)
        snapshot = await self.ctx.view.snapshot()
        ids = [vm.id for vm in self._visible(snapshot, call.identity, flag)]
        selected = window(seconds)
        if selected is Window.NOTHING or not ids:
            return monitoring_data([])
        if selected is Window.LATEST:
            current = ((i, vm_current(snapshot.vms[i])) for i in ids)
            return monitoring_data(vm_record(i, *s, VM_DATA_KEYS) for i, s in current if s)
        rows = await self.ctx.view.vms_history(selected)
        return monitoring_data(
            vm_record(i, ts, sample, VM_DATA_KEYS) for i in ids for ts, sample in rows.get(i, [])
        )

    @staticmethod
    def _visible(snapshot: Snapshot, identity: Identity, flag: int) -> list[Vm]:
        if not owned(identity, flag):
            return []
        return sorted(snapshot.vms.values(), key=lambda v: v.id)

    @staticmethod
    def _short(snapshot: Snapshot, vm: Vm) -> str:
        host = snapshot.hosts.get(vm.host_id)
        return vm_short_xml(vm, host, snapshot.host_name(host) if host else "")
