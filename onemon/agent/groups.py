"""The probe groups of one-agent: built-in probes first, then the tree's executables (§3, §4.3).

Each group produces at most one message per run, as OpenNebula's agent: its template is the
built-in part merged with the exec probes' output (an admin's probe overrides a built-in
attribute of the same name); the first failing probe makes the whole group a FAILURE carrying
``Error executing <probe>: <stderr>``; an empty result is not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from onemon import __version__
from onemon.agent import monitor_config
from onemon.agent.config import AgentConfig
from onemon.agent.exec import discover, run_group, to_template
from onemon.agent.exec.runner import GroupResult
from onemon.agent.probes.host_monitor import HostMonitor
from onemon.agent.probes.host_system import collect_system
from onemon.agent.probes.libvirt_vms import (
    HypervisorError,
    LibvirtClient,
    VmSampler,
    WildVms,
)
from onemon.agent.probes.libvirt_vms import vm_states as kvm_states
from onemon.agent.probes.lxc_vms import LxcVms
from onemon.agent.probes.lxc_vms import vm_states as lxc_states
from onemon.agent.probes.roots import Roots
from onemon.agent.scheduler import Group
from onemon.agent.tracker import SeenVm, StateTracker
from onemon.wire import legacy
from onemon.wire.errors import WireError
from onemon.wire.model import Message, MessageType, Status, Template

log = logging.getLogger("onemon.agent.groups")
T = TypeVar("T")

SNAPSHOT_PERIOD = 60.0
"""vm/snapshot runs every 60 s, hard-coded as in OpenNebula."""


@dataclass
class ProbeCounters:
    """Probe outcomes the agent reports about itself."""

    failures: int = 0
    timeouts: int = 0
    truncated: int = 0
    builtin_errors: int = 0
    hypervisor_unreachable: int = 0
    durations: dict[str, float] = field(default_factory=dict)


class Hypervisor:
    """The built-in VM probes of one hypervisor, run in one worker thread with a deadline."""

    def __init__(self, config: AgentConfig, roots: Roots, timeout: float) -> None:
        self.kind = config.hypervisor
        self.timeout = timeout
        self.reachable = True
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{self.kind}-probe")
        self.libvirt: LibvirtClient | None = None
        self.lxc: LxcVms | None = None
        if self.kind == "kvm":
            self.libvirt = LibvirtClient(config.libvirt_uri)
            self.sampler = VmSampler()
            self.wild_vms = WildVms(self.libvirt.domain_xml)
        else:
            self.lxc = LxcVms(roots)

    async def call(self, function: Callable[[], T]) -> T:
        """Run ``function`` in the probe thread; a hung hypervisor counts as unreachable."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout):
                result = await loop.run_in_executor(self._pool, function)
        except TimeoutError:
            self._down(f"{self.kind} did not answer in {self.timeout:.0f} s")
            raise HypervisorError(f"{self.kind} did not answer in {self.timeout:.0f} s") from None
        except HypervisorError as exc:
            self._down(str(exc))
            raise
        if not self.reachable:
            log.warning("%s reachable again", self.kind)
            self.reachable = True
        return result

    def _down(self, why: str) -> None:
        """Log the first failure of an outage only (probes retry every few seconds)."""
        if self.reachable:
            log.warning("%s unreachable, VMs reported UNKNOWN until it is back: %s", self.kind, why)
            self.reachable = False

    def states(self) -> list[SeenVm]:
        """Every VM's OpenNebula state now (blocking)."""
        if self.libvirt is not None:
            found = kvm_states(self.libvirt.domains(state_only=True))
        else:
            assert self.lxc is not None
            found = lxc_states(self.lxc.containers())
        return [SeenVm(vm.vm_id, vm.deploy_id, vm.state) for vm in found if vm.vm_id >= 0]

    def monitor(self) -> list[Template]:
        """Every VM's MONITOR entry now (blocking)."""
        if self.libvirt is not None:
            return self.sampler.sample(self.libvirt.domains())
        assert self.lxc is not None
        return self.lxc.sample()

    def wilds(self) -> list[Template]:
        """Domains not named one-<id> (blocking)."""
        if self.libvirt is None:
            return []
        return self.wild_vms.report(self.libvirt.domains(state_only=True))

    def close(self) -> None:
        """Release the hypervisor connection and the worker thread."""
        if self.libvirt is not None:
            self.libvirt.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class ProbeGroups:
    """Builds the message of each group from built-in probes and the probe tree."""

    def __init__(
        self,
        config: AgentConfig,
        agent_metrics: Callable[[], Template],
        clock: Callable[[], float] = time.time,
        persistent: bool = True,
    ) -> None:
        self.config = config
        probes = config.probes
        self.roots = Roots(str(probes.procfs), str(probes.sysfs), str(probes.cgroupfs))
        self.host_monitor = HostMonitor(self.roots, config.hypervisor)
        self.hypervisor = Hypervisor(config, self.roots, probes.timeout)
        tracker_path = config.state_dir / "vm_state.sqlite" if persistent else None
        if tracker_path is not None:
            config.state_dir.mkdir(parents=True, exist_ok=True)
        self.tracker = StateTracker(
            tracker_path, config.periods.sync_state_vm, probes.times_missing
        )
        self.counters = ProbeCounters()
        self.agent_metrics = agent_metrics
        self.clock = clock
        self.stdin = monitor_config.build(
            config.host_id,
            monitor_address=config.send.collectors[0],
            port=config.send.port,
            datastore_location=probes.datastore_location,
            periods=config.periods,
        )

    def groups(self) -> list[Group]:
        """The scheduler's groups with the configured periods."""
        periods = self.config.periods
        return [
            Group("beacon_host", periods.beacon_host, self.beacon_host),
            Group("system_host", periods.system_host, self.system_host),
            Group("monitor_host", periods.monitor_host, self.monitor_host),
            Group("state_vm", periods.state_vm, self.state_vm),
            Group("exec_vm", periods.exec_vm, self.exec_vm),
            Group("monitor_vm", periods.monitor_vm, self.monitor_vm),
            Group("snapshot_vm", SNAPSHOT_PERIOD, self.snapshot_vm),
        ]

    def close(self) -> None:
        """Release probes' resources."""
        self.hypervisor.close()
        self.tracker.close()

    # --- the groups -------------------------------------------------------------------------

    async def beacon_host(self) -> Message | None:
        """BEACON_HOST: liveness (the legacy line carries the epoch, as date.sh)."""
        return await self._finish(MessageType.BEACON_HOST, "host/beacon", {}, always=True)

    async def system_host(self) -> Message | None:
        """SYSTEM_HOST: host capacity and topology, datastores, wild VMs."""
        probes = self.config.probes
        builtin = await asyncio.to_thread(
            collect_system,
            self.roots,
            self.config.hypervisor,
            probes.datastore_location,
            __version__,
        )
        try:
            wilds = await self.hypervisor.call(self.hypervisor.wilds)
        except HypervisorError:
            self.counters.hypervisor_unreachable += 1
            wilds = []
        if wilds:
            builtin["VM"] = wilds
        return await self._finish(MessageType.SYSTEM_HOST, "host/system", builtin)

    async def monitor_host(self) -> Message | None:
        """MONITOR_HOST: host usage, plus the agent's own figures."""
        builtin = self.host_monitor.collect()
        agent = self.agent_metrics()
        if agent:
            builtin["AGENT"] = agent
        return await self._finish(MessageType.MONITOR_HOST, "host/monitor", builtin)

    async def state_vm(self) -> Message | None:
        """STATE_VM: changed states, or all of them on a sync cycle."""
        try:
            seen: list[SeenVm] | None = await self.hypervisor.call(self.hypervisor.states)
        except HypervisorError:
            self.counters.hypervisor_unreachable += 1
            seen = None
        payload = self.tracker.cycle(seen, self.clock()) or {}
        # The tracker has taken these changes as reported: a FAILURE in their place would hide
        # them from the collector until the next sync, so they go even when a probe fails.
        return await self._finish(MessageType.STATE_VM, "vm/status", payload, keep_builtin=True)

    async def exec_vm(self) -> Message | None:
        """EXEC_VM: guest command results (exec probes only)."""
        return await self._finish(MessageType.EXEC_VM, "vm/execution", {})

    async def monitor_vm(self) -> Message | None:
        """MONITOR_VM: every VM's usage from one bulk call."""
        try:
            records = await self.hypervisor.call(self.hypervisor.monitor)
        except HypervisorError as exc:
            self.counters.hypervisor_unreachable += 1
            return self._failure(MessageType.MONITOR_VM, f"Error executing builtin: {exc}")
        return await self._finish(
            MessageType.MONITOR_VM, "vm/monitor", {"VM": records} if records else {}
        )

    async def snapshot_vm(self) -> Message | None:
        """vm/snapshot, sent as MONITOR_VM (exec probes only)."""
        return await self._finish(MessageType.MONITOR_VM, "vm/snapshot", {})

    # --- helpers ----------------------------------------------------------------------------

    async def run_exec(self, group_path: str) -> GroupResult:
        """Run the probe tree's executables of one group."""
        config = self.config
        probes = discover(config.probes.tree, config.hypervisor, group_path)
        args = [config.hypervisor, str(config.host_id), config.host_name]
        result = await run_group(
            probes, args, self.stdin, config.probes.timeout, config.probes.max_output_bytes
        )
        self.counters.timeouts += len(result.timed_out)
        self.counters.truncated += len(result.truncated)
        self.counters.durations.update(result.durations)
        if not result.ok:
            self.counters.failures += 1
        return result

    async def _finish(
        self,
        mtype: MessageType,
        group_path: str,
        builtin: Template,
        always: bool = False,
        keep_builtin: bool = False,
    ) -> Message | None:
        """Merge exec output over the built-in template; None when there is nothing to send.

        A failing exec probe makes the message a FAILURE, or, with ``keep_builtin`` and built-in
        content, leaves the built-in template to go alone (the failure counted and logged).
        """
        result = await self.run_exec(group_path)
        parsed = to_template(result, group_path)
        if not parsed.ok:
            if not (keep_builtin and builtin):
                return self._failure(mtype, parsed.error)
            log.warning("%s: %s; sending the built-in part alone", group_path, parsed.error)
        extra = parsed.template if parsed.ok else {}
        if mtype is MessageType.MONITOR_VM:
            try:  # probes print OpenNebula's VM=[…, MONITOR="<base64 template>"]
                legacy.decode_monitors(extra)
            except WireError as exc:
                return self._failure(mtype, f"Error executing {group_path}: {exc}")
        payload = _merge(builtin, extra)
        if not payload and not always:
            return None
        return Message(mtype, Status.SUCCESS, self.config.host_id, self.clock(), payload)

    def _failure(self, mtype: MessageType, error: str) -> Message:
        return Message(mtype, Status.FAILURE, self.config.host_id, self.clock(), {}, error)


def _merge(builtin: Template, extra: Template) -> Template:
    """Exec attributes replace built-in ones of the same name, except VM lists, which extend."""
    merged: dict[str, Any] = dict(builtin)
    for name, value in extra.items():
        if name == "VM" and name in merged:
            current = merged[name] if isinstance(merged[name], list) else [merged[name]]
            merged[name] = current + (value if isinstance(value, list) else [value])
        else:
            merged[name] = value
    return merged
