"""Drop-in for OpenNebula's Ruby agent, started by its IM driver (reference §4.1, §4.2).

``one-agent --opennebula <hv> <host_id> <host_name>`` reads the MONITOR_CONFIGURATION XML on
stdin, runs every group once (beacon excluded), prints the ``<MONITOR_MESSAGES>`` reply that
onemonitord expects from START_MONITOR, then detaches and keeps pushing OpenNebula's line format
to ``MONITOR_ADDRESS`` — so an OpenNebula cloud can switch its nodes to one-agent without any
change on its front-end.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from onemon.agent import monitor_config
from onemon.agent.config import AgentConfig, ProbeConfig, SendConfig
from onemon.agent.daemon import AgentDaemon
from onemon.agent.once import run_once
from onemon.wire import template
from onemon.wire.errors import WireError
from onemon.wire.model import Message, MessageType

log = logging.getLogger("onemon.agent.opennebula")

STATE_DIR = Path("/var/tmp/one_db/onemon")  # noqa: S108 - OpenNebula's own node state dir
PID_FILE = Path("/var/tmp/one_db/.monitor_client.pid")  # noqa: S108 - read by OpenNebula's vgpu hook
FAILED = 255
"""OpenNebula's agent exits -1 when a group failed."""


def config_from(args: list[str], xml: bytes, state_dir: Path = STATE_DIR) -> AgentConfig:
    """An agent configuration from the driver's arguments and its configuration XML."""
    hv, host_id, host_name = args
    conf = monitor_config.parse(xml)
    address = conf.monitor_address
    if address in ("", "auto"):
        address = os.environ.get("SSH_CLIENT", "").split(" ")[0]
        if not address:
            raise ValueError("MONITOR_ADDRESS is auto and SSH_CLIENT is empty")
    pubkey_path = None
    if conf.pubkey.strip():
        state_dir.mkdir(parents=True, exist_ok=True)
        pubkey_path = state_dir / "monitor_pubkey.pem"
        pubkey_path.write_text(conf.pubkey)
    return AgentConfig(
        host_id=int(host_id),
        host_name=host_name,
        hypervisor="lxc" if hv == "lxc" else "kvm",
        state_dir=state_dir,
        periods=conf.periods,
        probes=ProbeConfig(datastore_location=conf.datastore_location),
        send=SendConfig(
            collectors=(address,),
            port=conf.port,
            wire_format="legacy",
            legacy_public_key=pubkey_path,
        ),
    )


def monitor_messages(results: list[Message], now: int) -> str:
    """The START_MONITOR reply: each group's template as plain base64 (§1.7)."""
    parts = ["<MONITOR_MESSAGES>"]
    for message in results:
        if message.type is MessageType.BEACON_HOST or not message.ok:
            continue
        try:
            text = template.write(message.payload)
        except WireError:
            continue
        encoded = base64.b64encode(text.encode()).decode()
        parts.append(f"<{message.type.name}>{encoded}</{message.type.name}>")
    parts.append(f"<TIMESTAMP>{now}</TIMESTAMP></MONITOR_MESSAGES>")
    return "".join(parts)


def detach() -> None:
    """Become a daemon: new session, no terminal, stdio on /dev/null, so SSH can return."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def main(args: list[str], xml: bytes) -> int:
    """Run once, reply, detach and serve."""
    try:
        config = config_from(args, xml)
    except (ValueError, monitor_config.MonitorConfigError) as exc:
        print(f"one-agent: {exc}", file=sys.stderr)
        return FAILED
    results = [m for m, _ in asyncio.run(run_once(replace(config)))]
    print(monitor_messages(results, int(time.time())), flush=True)
    if not all(m.ok for m in results if m.type is not MessageType.BEACON_HOST):
        return FAILED
    config.state_dir.mkdir(parents=True, exist_ok=True)
    detach()
    PID_FILE.parent.mkdir(parents=True, exist_ok=True)
    PID_FILE.write_text(f"{os.getpid()}\n")
    logging.basicConfig(
        level="INFO",
        filename=str(config.state_dir / "one-agent.log"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(AgentDaemon(config).run())
    except Exception:
        log.exception("one-agent stopped on an error")
        return FAILED
    return 0
