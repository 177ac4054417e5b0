"""``one.host.*``: allocate, delete, status, update, rename, info, monitoring."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from onemon.collector.model import HostState
from onemon.front.collector_api import CollectorRefused
from onemon.front.db.overrides import HostOverride
from onemon.front.docs.host import host_template, host_xml
from onemon.front.docs.monitoring import host_record, monitoring_data
from onemon.front.docs.share import holds_capacity
from onemon.front.docs.xml import scalar_text
from onemon.front.methods.context import Context, get_host, require_admin
from onemon.front.methods.names import driver_problem, name_problem
from onemon.front.rpc.dispatch import Call, Method
from onemon.front.rpc.errors import action, allocate, api, internal, no_exists
from onemon.front.rpc.params import Param, opt
from onemon.front.template_in import TemplateSyntaxError, parse
from onemon.front.view import Snapshot

log = logging.getLogger("onemon.front.host")

STATUS_ACTIONS = {0: "enable", 1: "disable", 2: "offline"}
"""``one.host.status`` argument (pyone HOST_STATUS) → collector action."""


def methods(ctx: Context) -> list[Method]:
    """The ``one.host.*`` methods."""
    hosts = HostMethods(ctx)
    return [
        Method("one.host.allocate", (Param("name", "str"), Param("im_mad", "str"),
               Param("vm_mad", "str"), opt("cluster_id", "int", -1)), hosts.allocate),
        Method("one.host.delete", (Param("id", "int"),), hosts.delete),
        Method("one.host.status", (Param("id", "int"), Param("status", "int")), hosts.status),
        Method("one.host.update", (Param("id", "int"), Param("template", "str"),
               opt("type", "int", 0)), hosts.update),
        Method("one.host.rename", (Param("id", "int"), Param("name", "str")), hosts.rename),
        Method("one.host.info", (Param("id", "int"), opt("decrypt", "bool", False)), hosts.info),
        Method("one.host.monitoring", (Param("id", "int"),), hosts.monitoring),
    ]  # fmt: skip


class HostMethods:
    """Host changes go to the collector's API, then wait until the store shows them."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def allocate(self, call: Call, name: str, im_mad: str, vm_mad: str, cluster: int) -> int:
        """Register a host (INIT); its id."""
        require_admin(call, "CREATE HOST")
        if cluster not in (-1, 0):
            raise no_exists("cluster", cluster)
        problem = (name_problem(name) or driver_problem("IM_MAD_NAME", im_mad)
                   or driver_problem("VMM_MAD_NAME", vm_mad))  # fmt: skip
        if problem:
            raise allocate("host", problem)
        ctx = self.ctx
        async with ctx.changes:
            taken = (await ctx.view.snapshot()).host_by_name(name)
            if taken is not None:
                raise allocate("host", f"NAME is already taken by HOST {taken.id}.")
            try:
                host_id = await ctx.admin.create_host(name, im_mad)
            except CollectorRefused as exc:
                log.warning("collector refused host %r: %s", name, exc)
                raise allocate("host", "The monitoring collector refused it.") from None
            await _in_thread(ctx.overrides.delete, host_id)  # a stale one of a reused id
            if not await ctx.view.wait_for(lambda s: host_id in s.hosts, ctx.write_wait):
                log.warning("host %d created but not in the store after %.1f s", host_id,
                            ctx.write_wait)  # fmt: skip
        await ctx.hooks.host_created(host_id)
        return host_id

    async def delete(self, call: Call, host_id: int) -> int:
        """Forget a host (refused while VMs run on it)."""
        require_admin(call, f"ADMIN HOST [{host_id}]")
        ctx = self.ctx
        async with ctx.changes:
            snapshot = await ctx.view.snapshot()
            get_host(snapshot, host_id)
            if any(holds_capacity(vm) for vm in snapshot.vms_by_host.get(host_id, ())):
                raise action("Cannot delete host. Can not remove a host with running VMs", host_id)
            try:
                await ctx.admin.delete_host(host_id)
            except CollectorRefused as exc:
                if exc.status == 404:
                    raise no_exists("host", host_id) from None
                log.warning("collector refused deleting host %d: %s", host_id, exc)
                raise action("The monitoring collector refused it.", host_id) from None
            await _in_thread(ctx.overrides.delete, host_id)
            await ctx.view.wait_for(lambda s: host_id not in s.hosts, ctx.write_wait)
        await ctx.hooks.host_deleted(host_id)
        return host_id

    async def status(self, call: Call, host_id: int, status: int) -> int:
        """enable (0), disable (1), offline (2)."""
        require_admin(call, f"ADMIN HOST [{host_id}]")
        ctx = self.ctx
        async with ctx.changes:
            get_host(await ctx.view.snapshot(), host_id)
            verb = STATUS_ACTIONS.get(status)
            if verb is None:
                raise internal("Wrong status code", host_id)
            try:
                await ctx.admin.set_status(host_id, verb)
            except CollectorRefused as exc:
                if exc.status == 404:
                    raise no_exists("host", host_id) from None
                log.warning("collector refused %s of host %d: %s", verb, host_id, exc)
                raise action("The monitoring collector refused it.", host_id) from None
            await ctx.view.wait_for(lambda s: _shows(s, host_id, verb), ctx.write_wait)
        await ctx.hooks.host_status(host_id, verb)
        return host_id

    async def update(self, call: Call, host_id: int, text: str, kind: int) -> int:
        """Replace (0) or merge (1) the host's user attributes."""
        require_admin(call, f"ADMIN HOST [{host_id}]")
        ctx = self.ctx
        async with ctx.changes:
            snapshot = await ctx.view.snapshot()
            host = get_host(snapshot, host_id)
            if kind not in (0, 1):
                raise api("Wrong update type", host_id)
            try:
                given = parse(text)
            except TemplateSyntaxError as exc:
                raise internal(f"Cannot update template. {exc}", host_id) from None
            current = snapshot.override(host_id)
            derived = host_template(host, {})
            changed = {k: v for k, v in given.items() if not _same(derived.get(k), v)}
            template = changed if kind == 0 else {**current.template, **changed}
            await _in_thread(ctx.overrides.put, HostOverride(host_id, current.name, template))
            ctx.view.invalidate()
        return host_id

    async def rename(self, call: Call, host_id: int, name: str) -> int:
        """Give the host another name."""
        require_admin(call, f"ADMIN HOST [{host_id}]")
        ctx = self.ctx
        async with ctx.changes:
            snapshot = await ctx.view.snapshot()
            host = get_host(snapshot, host_id)
            if snapshot.host_name(host) == name:
                return host_id
            problem = name_problem(name)
            if problem:
                raise action(problem, host_id)
            other = snapshot.host_by_name(name)
            if other is not None:
                raise action(f"host cannot be renamed to {name} because it collides with "
                             f"host {other.id}", host_id)  # fmt: skip
            current = snapshot.override(host_id)
            new_name = None if name == host.name else name
            await _in_thread(ctx.overrides.put, HostOverride(host_id, new_name, current.template))
            ctx.view.invalidate()
        return host_id

    async def info(self, call: Call, host_id: int, decrypt: bool) -> str:
        """The HOST document with its latest monitoring record."""
        require_admin(call, f"USE HOST [{host_id}]")
        snapshot = await self.ctx.view.snapshot()
        host = get_host(snapshot, host_id)
        latest = await self.ctx.view.host_latest(host_id)
        vms = snapshot.vms_by_host.get(host_id, [])
        override = snapshot.override(host_id).template
        return host_xml(host, snapshot.host_name(host), vms, override, latest)

    async def monitoring(self, call: Call, host_id: int) -> str:
        """Every stored record of the host, oldest first."""
        require_admin(call, f"USE HOST [{host_id}]")
        get_host(await self.ctx.view.snapshot(), host_id)
        rows = await self.ctx.view.host_history(host_id)
        return monitoring_data(host_record(host_id, ts, sample) for ts, sample in rows)


def _shows(snapshot: Snapshot, host_id: int, verb: str) -> bool:
    """True when the store shows the status change (or the host is gone)."""
    host = snapshot.hosts.get(host_id)
    if host is None:
        return True
    if verb == "disable":
        return host.state is HostState.DISABLED
    if verb == "offline":
        return host.state is HostState.OFFLINE
    return host.state not in (HostState.DISABLED, HostState.OFFLINE)


def _same(derived: Any, given: Any) -> bool:
    """True when a given attribute only repeats what the probes reported (not pinned)."""
    return derived is not None and _plain(derived) == _plain(given)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return scalar_text(value)


async def _in_thread(function: Callable[..., None], *args: Any) -> None:
    await asyncio.to_thread(function, *args)
