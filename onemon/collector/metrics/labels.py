"""Label strings, built once per object and reused until the fields they come from change.

Objects are cached by ``id()``, checked against the identity fields the labels are made of
(a reused id or a changed field rebuilds them); entries not used in a render are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from onemon.collector.model import Host, Vm

from .text import label_value

_MAX_SUB: Final = 256
"""Sub-object label sets kept per object before its cache starts over."""


def pairs(names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """``a="x",b="y"`` with every value cleaned."""
    return ",".join(f'{n}="{label_value(v)}"' for n, v in zip(names, values, strict=True))


class Owner:
    """Label strings of one host or VM, plus its sub-objects' (devices, datastores, NUMA nodes)."""

    __slots__ = ("braces", "info", "inner", "sub", "version")

    def __init__(self, version: tuple[Any, ...], inner: str, info: str) -> None:
        self.version = version
        self.inner = inner
        """``one_host_id="3"`` or ``one_vm_id="12",one_host_id="3"``, to extend."""
        self.braces = f"{{{inner}}}"
        self.info = info
        """The full label set of the object's ``_info`` series."""
        self.sub: dict[tuple[tuple[str, ...], tuple[Any, ...]], str] = {}


class VmOwner(Owner):
    """A VM's label strings."""

    __slots__ = ("vm_only",)

    def __init__(self, vm: Vm, shard: int | None = None) -> None:
        vid = f'one_vm_id="{label_value(vm.id)}"' + _shard_pair(shard)
        inner = f'{vid},one_host_id="{label_value(vm.host_id)}"'
        info = f'{{{inner},deploy_id="{label_value(vm.deploy_id)}"}}'
        super().__init__((vm.id, vm.host_id, vm.deploy_id, shard), inner, info)
        self.vm_only = f"{{{vid}}}"
        """``{one_vm_id="12"}`` (OpenNebula's label set for state, lcm_state, host_id)."""


def _shard_pair(shard: int | None) -> str:
    """``,shard="N"`` when sharding is on, else nothing."""
    return "" if shard is None else f',shard="{shard}"'


def _host_owner(host: Host, shard: int | None = None) -> Owner:
    """A host's label strings."""
    inner = f'one_host_id="{label_value(host.id)}"' + _shard_pair(shard)
    info = pairs(
        ("host_name", "im_mad", "vm_mad", "one_cluster_id"),
        (host.name, host.im_mad, host.vm_mad, host.cluster_id),
    )
    version = (host.id, host.name, host.im_mad, host.vm_mad, host.cluster_id, shard)
    return Owner(version, inner, f"{{{inner},{info}}}")


class Labels:
    """The caches, one render after another; with ``shard_of`` (host id → shard, when sharding
    is on) every host and VM label set also carries ``shard``."""

    __slots__ = ("_hosts", "_old_hosts", "_old_vms", "_vms", "shard_of")

    def __init__(self, shard_of: Callable[[int], int] | None = None) -> None:
        self.shard_of = shard_of
        self._hosts: dict[int, Owner] = {}
        self._old_hosts: dict[int, Owner] = {}
        self._vms: dict[int, VmOwner] = {}
        self._old_vms: dict[int, VmOwner] = {}

    def rotate(self) -> None:
        """Start a render: entries not used since the previous rotation are dropped."""
        self._old_hosts, self._hosts = self._hosts, {}
        self._old_vms, self._vms = self._vms, {}

    def host(self, host: Host) -> Owner:
        """The label strings of ``host``."""
        key = id(host)
        found = self._hosts.get(key)
        if found is None:
            found = self._old_hosts.get(key)
            if found is not None:
                self._hosts[key] = found
        shard = None if self.shard_of is None else self.shard_of(host.id)
        if found is None or found.version != (
            host.id, host.name, host.im_mad, host.vm_mad, host.cluster_id, shard
        ):  # fmt: skip
            found = self._hosts[key] = _host_owner(host, shard)
        return found

    def vm(self, vm: Vm) -> VmOwner:
        """The label strings of ``vm``."""
        key = id(vm)
        found = self._vms.get(key)
        if found is None:
            found = self._old_vms.get(key)
            if found is not None:
                self._vms[key] = found
        shard = None if self.shard_of is None else self.shard_of(vm.host_id)
        if found is None or found.version != (vm.id, vm.host_id, vm.deploy_id, shard):
            found = self._vms[key] = VmOwner(vm, shard)
        return found


def sub(owner: Owner, names: tuple[str, ...], values: tuple[Any, ...]) -> str:
    """``{owner labels,name="value",…}`` for a sub-object (cached in ``owner`` when hashable)."""
    key = (names, values)
    try:
        found = owner.sub.get(key)
    except TypeError:
        return f"{{{owner.inner},{pairs(names, values)}}}"
    if found is None:
        if len(owner.sub) >= _MAX_SUB:
            owner.sub.clear()
        found = owner.sub[key] = f"{{{owner.inner},{pairs(names, values)}}}"
    return found
