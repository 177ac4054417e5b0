"""Attribute-name codes of the native wire: well-known names travel as small integers.

The table is part of envelope version 1: entries may be appended, never reordered or removed.
Names not in the table travel as text, so any probe's attributes still pass unchanged.
"""

from typing import Final

NAMES_V1: Final[tuple[str, ...]] = (
    # identity and structure
    "ID", "DEPLOY_ID", "MONITOR", "VM", "STATE", "REASON", "SYNC_STATE", "MISSING_STATE",
    "VM_NAME", "IMPORT_TEMPLATE", "NAME", "TARGET", "UUID",
    # VM usage (reference §2.3)
    "CPU", "MEMORY", "NETRX", "NETTX", "DISKRDBYTES", "DISKWRBYTES", "DISKRDIOPS", "DISKWRIOPS",
    "DISK_SIZE", "SIZE", "SNAPSHOT_SIZE", "DISK_ID",
    # VM detail vectors (libvirt bulk stats)
    "NIC", "DISK", "VCPU", "BALLOON",
    "RX_BYTES", "TX_BYTES", "RX_PACKETS", "TX_PACKETS", "RX_ERRS", "TX_ERRS", "RX_DROP", "TX_DROP",
    "RD_REQS", "WR_REQS", "RD_BYTES", "WR_BYTES", "RD_TIME_NS", "WR_TIME_NS", "FL_REQS",
    "FL_TIME_NS", "CAPACITY", "ALLOCATION", "PHYSICAL", "TIME_NS", "WAIT_NS", "CURRENT",
    "MAXIMUM", "UNUSED", "AVAILABLE", "USABLE", "RSS", "SWAP_IN", "SWAP_OUT", "MAJOR_FAULT",
    "MINOR_FAULT", "CPU_TIME_NS", "CPU_USER_NS", "CPU_SYSTEM_NS",
    # host (reference §2.1, §2.2)
    "HYPERVISOR", "ARCH", "HOSTNAME", "MODELNAME", "VERSION", "CGROUPS_VERSION",
    "TOTALCPU", "CPUSPEED", "TOTALMEMORY", "USEDMEMORY", "FREEMEMORY", "USEDCPU", "FREECPU",
    "HUGEPAGE", "MEMORY_NODE", "CORE", "NODE_ID", "PAGES", "FREE", "USED", "TOTAL", "CPUS",
    "DISTANCE", "DS", "USED_MB", "TOTAL_MB", "FREE_MB", "DS_LOCATION_USED_MB",
    "DS_LOCATION_TOTAL_MB", "DS_LOCATION_FREE_MB", "PCI", "KVM_CPU_FEATURES", "KVM_MACHINES",
    "KVM_CPU_MODELS", "KVM_CPU_MODEL", "MEMORY_ENCRYPTION", "AUTONFS_MOUNT",
    # EXEC_VM (reference §2.5)
    "PID", "STATUS", "RETURN_CODE", "STDOUT", "STDERR",
    # agent self-metrics
    "AGENT",
)  # fmt: skip

CODE_OF: Final[dict[str, int]] = {name: code for code, name in enumerate(NAMES_V1, start=1)}
"""Name → code (codes start at 1)."""

NAME_OF: Final[dict[int, str]] = {code: name for name, code in CODE_OF.items()}
"""Code → name."""

assert len(CODE_OF) == len(NAMES_V1), "duplicate name in NAMES_V1"
