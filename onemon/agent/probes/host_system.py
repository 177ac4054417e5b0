"""SYSTEM_HOST figures, as OpenNebula's ``host/system`` probes (KVM and LXC), read in-process.

Covers ``architecture.sh``, ``cpu.sh``, ``linux_host.rb``, ``monitor_ds.rb``, ``name.sh``,
``numa_host.rb`` and ``version.sh``; libvirt-, PCI- and NFS-specific probes live elsewhere.
Units: memory in KB, CPU in percent x cores, CPU speed in MHz, datastores in MB.

Differences from the Ruby probes: ``TOTALCPU`` counts online CPUs (``lscpu``'s ``CPU(s)``
also counts offline ones, which cannot run anything); ``CPUSPEED`` falls back to cpufreq's
maximum when ``/proc/cpuinfo`` has no ``cpu MHz`` (aarch64), where OpenNebula reports 0.
"""

from __future__ import annotations

import contextlib
import os

from onemon.agent.probes import numa
from onemon.agent.probes.datastores import DEFAULT_LOCATION, collect_datastores
from onemon.agent.probes.host_monitor import read_cpu, read_meminfo
from onemon.agent.probes.roots import Roots
from onemon.wire.model import Template


def cpu_model(procfs: str) -> tuple[str, float | None]:
    """The first CPU's model name (``model name``, else ``cpu``) and ``cpu MHz``."""
    model = fallback = ""
    mhz: float | None = None
    try:
        with open(f"{procfs}/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # end of the first processor's block
                key, _, value = line.partition(":")
                key, value = key.rstrip(), value.strip()
                if key == "model name" and not model:
                    model = value
                elif key == "cpu" and not fallback:
                    fallback = value
                elif key == "cpu MHz" and mhz is None:
                    with contextlib.suppress(ValueError):
                        mhz = float(value)
    except OSError:
        pass
    return model or fallback, mhz


def cpu_speed(sysfs: str, mhz: float | None) -> int:
    """CPU speed in MHz: ``cpu MHz`` rounded half up (as Ruby), else cpufreq's maximum, else 0."""
    if mhz is not None:
        return int(mhz + 0.5)
    path = f"{sysfs}/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
    try:
        with open(path, encoding="ascii") as f:
            return (int(f.read()) + 500) // 1000  # kHz
    except (OSError, ValueError):
        return 0


def cgroups_version(cgroupfs: str) -> int | None:
    """2 for a pure unified hierarchy, 1 for v1 or hybrid (as OpenNebula), None if not mounted."""
    if os.path.exists(f"{cgroupfs}/cgroup.controllers"):
        return 2
    try:
        return 1 if os.listdir(cgroupfs) else None
    except OSError:
        return None


def hostname(procfs: str) -> str:
    """The kernel's node name (``uname -n``)."""
    try:
        with open(f"{procfs}/sys/kernel/hostname", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return os.uname().nodename


def collect_system(
    roots: Roots = Roots(),  # noqa: B008
    hypervisor: str = "kvm",
    datastore_location: str = DEFAULT_LOCATION,
    version: str = "",
) -> Template:
    """The SYSTEM_HOST template; ``VERSION`` is left out when ``version`` is empty."""
    model, mhz = cpu_model(roots.procfs)
    out: Template = {"ARCH": os.uname().machine}
    if model:
        out["MODELNAME"] = model
    out["HYPERVISOR"] = hypervisor
    out["TOTALCPU"] = read_cpu(roots.procfs).cpus * 100
    out["CPUSPEED"] = cpu_speed(roots.sysfs, mhz)
    out["TOTALMEMORY"] = read_meminfo(roots.procfs)["MemTotal"]
    cgroups = cgroups_version(roots.cgroupfs)
    if cgroups is not None:
        out["CGROUPS_VERSION"] = cgroups
    out.update(collect_datastores(datastore_location))
    out["HOSTNAME"] = hostname(roots.procfs)
    out.update(numa.topology(roots.sysfs))
    if version:
        out["VERSION"] = version
    return out
