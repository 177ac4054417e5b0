"""``python -m onemon.front.im [-c FILE] [-r N] [-t N] [-w S] run|start|stop|sync``.

``run``: the liveness loop (agents started on create/enable, stopped on offline/delete,
restarted when silent, ERROR only when that fails) until SIGTERM. ``start``/``stop``: act on
the given host ids now. ``sync [--force]``: ``onehost sync``. -r, -t and -w override the
file's retries, threads and timeout, as the ``IM_MAD`` ARGUMENTS of monitord.conf.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

from onemon.front.im.api import ApiError, CollectorApi
from onemon.front.im.config import DEFAULT_PATH
from onemon.front.im.driver import ImDriver
from onemon.front.im.liveness import Manager
from onemon.front.im.runtime import Runtime, load_runtime
from onemon.front.im.sync import sync
from onemon.settings import ConfigError
from onemon.wire.keys import KeyFileError

log = logging.getLogger("onemon.front.im")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m onemon.front.im", description=__doc__)
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help=f"driver configuration (default {DEFAULT_PATH} if it exists)",
    )
    parser.add_argument("-r", "--retries", type=int, help="extra tries of a failed command")
    parser.add_argument("-t", "--threads", type=int, help="hosts worked on at once")
    parser.add_argument("-w", "--timeout", type=float, help="seconds a command may take")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="keep agents running (the liveness loop)")
    for name in ("start", "stop"):
        sub.add_parser(name, help=f"{name} the agents of these hosts now").add_argument(
            "host_ids", type=int, nargs="+", metavar="HOST_ID"
        )
    sync_cmd = sub.add_parser("sync", help="push the probe tree to nodes with an older VERSION")
    sync_cmd.add_argument("-f", "--force", action="store_true", help="push to every host")
    sync_cmd.add_argument("host_ids", type=int, nargs="*", metavar="HOST_ID")
    return parser.parse_args(argv)  # fmt: skip


def runtime_from(args: argparse.Namespace) -> Runtime:
    """The runtime settings with the command line's overrides."""
    runtime = load_runtime(args.config)
    overrides = {
        name: getattr(args, name)
        for name in ("retries", "threads", "timeout")
        if getattr(args, name) is not None
    }
    problems = replace(runtime.config, **overrides).validate() if overrides else []
    if problems:
        raise ConfigError(problems)
    return replace(runtime, config=replace(runtime.config, **overrides))


async def serve(runtime: Runtime) -> None:
    """The liveness loop until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    async with CollectorApi(runtime.endpoint, runtime.token) as api:
        manager = Manager(ImDriver(runtime), api, runtime.interval, runtime.timer)
        task = asyncio.create_task(manager.run())
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        log.info("IM driver: %s, interval %g s, timer %g s, -r %d -t %d -w %g",
                 runtime.endpoint, runtime.interval, runtime.timer, runtime.config.retries,
                 runtime.config.threads, runtime.config.timeout)  # fmt: skip
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def act(runtime: Runtime, command: str, host_ids: list[int]) -> int:
    """start or stop these hosts' agents now, reporting outcomes as the loop does."""
    driver = ImDriver(runtime)
    async with CollectorApi(runtime.endpoint, runtime.token) as api:
        hosts = {h.id: h for h in await api.hosts()}
        missing = [i for i in host_ids if i not in hosts]
        if missing:
            print(f"no host {', '.join(map(str, missing))}", file=sys.stderr)
            return 1
        todo = [hosts[i].host for i in host_ids]
        action = driver.start if command == "start" else driver.stop
        results = await asyncio.gather(*(action(h) for h in todo))
        for result in results:
            if command == "start":
                await api.report(result.host.id, "monitored" if result.ok else "error",
                                 result.message)  # fmt: skip
            state = "ok" if result.ok else f"failed: {result.message}"
            print(f"host {result.host.id} ({result.host.name}): {command} {state}")
    return 0 if all(r.ok for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        runtime = runtime_from(args)
    except ConfigError as exc:
        print(f"onemon-im: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=runtime.config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")  # fmt: skip
    try:
        if args.command == "run":
            asyncio.run(serve(runtime))
            return 0
        if args.command == "sync":
            lines = asyncio.run(sync(runtime, args.force, args.host_ids))
            for line in lines:
                print(line)
            return 1 if any(line.outcome == "failed" for line in lines) else 0
        return asyncio.run(act(runtime, args.command, args.host_ids))
    except (ApiError, KeyFileError) as exc:
        print(f"onemon-im: {exc}", file=sys.stderr)
        return 1
