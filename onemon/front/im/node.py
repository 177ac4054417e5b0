"""What the driver puts on a node: the layout under the remote dir and the agent's TOML.

``<remote_dir>/im/``                  the probe tree (with its ``VERSION``)
``<remote_dir>/etc/one-agent/agent.toml``  this host's agent configuration (mode 600)
``<remote_dir>/etc/one-agent/agent.key``   the wire key: the host's own, else the cluster's
``<state_dir>/<host id>/``            spool, pid file and log (outside the rsync'ed tree)

The whole remote dir is rsync'ed with ``--delete`` from a private staging directory whose
``im`` is a symlink to the tree (``-L`` copies what it points to), so one rsync pushes the
probes, the configuration and the key, and the node's copy is exactly the front's.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onemon.front.im.config import NodeConfig

HYPERVISORS = {"kvm": "kvm", "qemu": "kvm", "lxc": "lxc"}
"""IM_MAD → the agent's hypervisor."""


@dataclass(frozen=True)
class Host:
    """A host as the driver needs it."""

    id: int
    name: str
    im_mad: str = "kvm"


@dataclass(frozen=True)
class NodePaths:
    """One host's paths on its node."""

    remote_dir: str
    state_dir: str

    @property
    def tree(self) -> str:
        """The pushed probe tree."""
        return f"{self.remote_dir}/im"

    @property
    def config(self) -> str:
        """The agent's TOML."""
        return f"{self.remote_dir}/etc/one-agent/agent.toml"

    @property
    def key(self) -> str:
        """The agent's wire key."""
        return f"{self.remote_dir}/etc/one-agent/agent.key"


def paths(node: NodeConfig, host_id: int) -> NodePaths:
    """Where host ``host_id``'s files go."""
    return NodePaths(node.remote_dir.rstrip("/") or "/", f"{node.state_dir.rstrip('/')}/{host_id}")


def hypervisor(im_mad: str) -> str:
    """The agent's hypervisor for an IM_MAD; ValueError when one-agent has none."""
    found = HYPERVISORS.get(im_mad)
    if found is None:
        raise ValueError(f"IM_MAD {im_mad!r} is not one one-agent runs (kvm, qemu, lxc)")
    return found


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (any content, control characters escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return toml_string(str(value))


def agent_toml(host: Host, node: NodeConfig, port: int) -> str:
    """The agent configuration for ``host`` (``python -m onemon.agent.remote start`` reads it)."""
    where = paths(node, host.id)
    top = {
        "host_id": host.id,
        "host_name": host.name,
        "hypervisor": hypervisor(host.im_mad),
        "libvirt_uri": node.libvirt_uri,
        "state_dir": where.state_dir,
        "log_level": node.log_level,
    }
    tables = {
        "periods": vars(node.periods),
        "probes": {"tree": where.tree},
        "send": {
            "collectors": [node.collector_address],
            "port": port,
            "wire_format": "native",
            "key_file": where.key,
        },
    }
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in table.items())
    return "\n".join(lines) + "\n"


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def staged(tree: Path, config_text: str, key_text: str) -> Iterator[Path]:
    """A private directory laid out as the remote dir (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="onemon-im-") as tmp:
        root = Path(tmp)  # mode 700, and rsync -a gives the remote dir the same
        (root / "im").symlink_to(tree.resolve(), target_is_directory=True)
        etc = root / "etc" / "one-agent"
        etc.mkdir(parents=True, mode=0o700)
        _private(etc / "agent.toml", config_text)
        _private(etc / "agent.key", key_text)
        yield root
