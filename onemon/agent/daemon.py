"""one-agent as a service: groups on their periods, a sender, signals, reload, readiness."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from onemon.agent import memory
from onemon.agent.config import AgentConfig
from onemon.agent.groups import ProbeGroups
from onemon.agent.scheduler import Scheduler
from onemon.agent.sender.address import parse_address
from onemon.agent.sender.sender import Sender
from onemon.settings import ConfigError, load_file
from onemon.systemd import notify
from onemon.wire.keys import Key, load_key_file
from onemon.wire.model import Template
from onemon.wire.rsa import load_public_key_file

log = logging.getLogger("onemon.agent")

FLUSH_SECONDS = 5.0
"""How long SIGTERM waits for the spool to drain before leaving it for the next start."""


def collector_addresses(config: AgentConfig) -> list[str]:
    """The configured collectors as ``host:port``, the default port filled in."""
    return [str(parse_address(a, config.send.port)) for a in config.send.collectors]


def make_sender(config: AgentConfig) -> Sender:
    """A sender for this configuration (keys read now, so errors surface at start)."""
    send = config.send
    key: Key | None = None
    public_key = None
    if send.wire_format == "native":
        key = load_key_file(send.key_file)
    elif send.legacy_public_key is not None:
        public_key = load_public_key_file(send.legacy_public_key)
    return Sender(
        collector_addresses(config),
        config.state_dir,
        key,
        wire_format=send.wire_format,
        budget=send.datagram_budget,
        ack_timeout=send.ack_timeout,
        spool_max_bytes=send.spool_max_bytes,
        spool_max_count=send.spool_max_messages,
        public_key=public_key,
    )


class AgentDaemon:
    """Runs until SIGTERM; SIGHUP reloads, SIGUSR1 re-runs the system group."""

    def __init__(self, config: AgentConfig, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.sender: Sender | None = None
        self.groups: ProbeGroups | None = None
        self.scheduler: Scheduler | None = None
        self._stop = asyncio.Event()
        self._reload_lock = asyncio.Lock()

    async def run(self) -> None:
        """Start everything, serve until told to stop, then stop cleanly."""
        memory.limit_arenas()  # before any thread allocates
        self.sender = make_sender(self.config)
        await self.sender.start()
        self._start_groups()
        loop = asyncio.get_running_loop()
        handlers: dict[int, Callable[[], object]] = {
            signal.SIGTERM: self._stop.set,
            signal.SIGINT: self._stop.set,
            signal.SIGHUP: lambda: asyncio.ensure_future(self.reload()),
            signal.SIGUSR1: self._trigger_system,
        }
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        notify("READY=1")
        log.info(
            "one-agent started: host %d (%s), %s wire to %s",
            self.config.host_id, self.config.host_name, self.config.send.wire_format,
            ", ".join(collector_addresses(self.config)),
        )  # fmt: skip
        trimmer = asyncio.create_task(self._trim_memory(), name="trim-memory")
        await self._stop.wait()
        trimmer.cancel()
        notify("STOPPING=1")
        await self._shutdown()

    def stop(self) -> None:
        """Ask the daemon to stop (as SIGTERM does)."""
        self._stop.set()

    async def reload(self) -> None:
        """Re-read the configuration and the probe tree; keep the old config if the new is bad."""
        if self.config_path is None:
            return
        async with self._reload_lock:
            notify("RELOADING=1")
            try:
                loaded = load_file(AgentConfig, self.config_path)
            except ConfigError as exc:
                log.error("reload refused, keeping the running configuration: %s", exc)
                notify("READY=1")
                return
            for warning in loaded.warnings:
                log.warning("%s", warning)
            new = loaded.config
            old_send = self.config.send
            await self._stop_groups()
            self.config = new
            if new.send != old_send or new.state_dir != self.config.state_dir:
                assert self.sender is not None
                await self.sender.flush(FLUSH_SECONDS)
                await self.sender.close()  # the spool stays on disk and is replayed
                self.sender = make_sender(new)
                await self.sender.start()
            self._start_groups()
            log.info("configuration reloaded")
            notify("READY=1")

    def agent_metrics(self) -> Template:
        """The agent's self-metrics, sent inside MONITOR_HOST as the AGENT vector."""
        out: Template = {}
        if self.groups is not None:
            probe = self.groups.counters
            out.update(
                PROBE_FAILURES=probe.failures,
                PROBE_TIMEOUTS=probe.timeouts,
                PROBE_TRUNCATED=probe.truncated,
                HYPERVISOR_UNREACHABLE=probe.hypervisor_unreachable,
            )
        if self.scheduler is not None:
            stats = self.scheduler.stats
            out["GROUP_SKIPS"] = sum(s.skips for s in stats.values())
            out["GROUP_ERRORS"] = sum(s.errors for s in stats.values())
            for name, group in stats.items():
                out[f"CYCLE_SECONDS_{name.upper()}"] = round(group.last_seconds, 6)
        if self.sender is not None:
            sender = self.sender.stats
            out.update(
                MESSAGES_SENT=sum(sender.messages_sent.values()),
                DATAGRAMS_SENT=sender.datagrams_sent,
                BYTES_SENT=sender.bytes_sent,
                SEND_ERRORS=sender.send_errors,
                MESSAGES_DROPPED=sender.dropped_total + sender.too_large,
                SPOOL_MESSAGES=sender.spool_messages,
                SPOOL_BYTES=sender.spool_bytes,
                FAILOVERS=sender.failovers,
            )
        return out

    def _start_groups(self) -> None:
        assert self.sender is not None
        self.groups = ProbeGroups(self.config, self.agent_metrics)
        self.scheduler = Scheduler(self.groups.groups(), self.sender.send)
        self.scheduler.start()

    async def _stop_groups(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.groups is not None:
            self.groups.close()

    @staticmethod
    async def _trim_memory() -> None:
        """Hand freed heap memory back to the kernel now and then (see ``memory``)."""
        while True:
            await asyncio.sleep(memory.TRIM_SECONDS)
            memory.trim()

    def _trigger_system(self) -> None:
        if self.scheduler is not None:
            self.scheduler.trigger("system_host")

    async def _shutdown(self) -> None:
        await self._stop_groups()
        if self.sender is not None:
            drained = await self.sender.flush(FLUSH_SECONDS)
            if not drained:
                log.warning("%d message(s) left in the spool for the next start",
                            self.sender.pending)  # fmt: skip
            await self.sender.close()
        log.info("one-agent stopped")
