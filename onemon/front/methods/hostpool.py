"""``one.hostpool.info`` and ``one.hostpool.monitoring``."""

from __future__ import annotations

from onemon.front.docs.host import host_pool_xml, host_xml
from onemon.front.docs.monitoring import host_record, monitoring_data
from onemon.front.methods.context import Context
from onemon.front.methods.samples import Window, host_current, window
from onemon.front.rpc.dispatch import Call, Method
from onemon.front.rpc.params import opt


def methods(ctx: Context) -> list[Method]:
    """The ``one.hostpool.*`` methods."""
    pool = HostPoolMethods(ctx)
    return [
        Method("one.hostpool.info", (), pool.info),
        Method("one.hostpool.monitoring", (opt("seconds", "int", -1),), pool.monitoring),
    ]


class HostPoolMethods:
    """Pools in ascending id; users outside group 0 see no host (no ACLs yet)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def info(self, call: Call) -> str:
        """HOST_POOL; each MONITORING is the host's latest figures from its row (no query)."""
        snapshot = await self.ctx.view.snapshot()
        if not call.identity.is_admin:
            return host_pool_xml([])
        return host_pool_xml(
            host_xml(
                host, snapshot.host_name(host), snapshot.vms_by_host.get(host.id, []),
                snapshot.override(host.id).template, host_current(host),
            )
            for host in sorted(snapshot.hosts.values(), key=lambda h: h.id)
        )  # fmt: skip

    async def monitoring(self, call: Call, seconds: int) -> str:
        """MONITORING_DATA of every host: latest (0), all (-1) or the last N seconds."""
        snapshot = await self.ctx.view.snapshot()
        selected = window(seconds)
        if not call.identity.is_admin or selected is Window.NOTHING:
            return monitoring_data([])
        hosts = sorted(snapshot.hosts)
        if selected is Window.LATEST:
            current = ((h, host_current(snapshot.hosts[h])) for h in hosts)
            return monitoring_data(host_record(h, *s) for h, s in current if s is not None)
        rows = await self.ctx.view.hosts_history(selected)
        return monitoring_data(
            host_record(h, ts, sample) for h in hosts for ts, sample in rows.get(h, [])
        )
