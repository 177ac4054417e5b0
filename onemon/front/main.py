"""``one-front``: OpenNebula's XML-RPC API (``/RPC2``, port 2633) over the collector's state."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from onemon.front.auth.bootstrap import BootstrapError
from onemon.front.config import DEFAULT_PATH, FrontConfig
from onemon.front.daemon import Front
from onemon.settings import ConfigError, Loaded, load_or_default
from onemon.systemd import notify

log = logging.getLogger("onemon.front")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="one-front", description=__doc__)
    parser.add_argument(
        "-c", "--config", type=Path, default=None,
        help=f"TOML configuration (default {DEFAULT_PATH} if it exists)",
    )  # fmt: skip
    return parser.parse_args(argv)


def load_config(path: Path | None) -> Loaded[FrontConfig]:
    """The configuration from ``path``, the default file, or the built-in defaults."""
    return load_or_default(FrontConfig, path, DEFAULT_PATH)


async def serve(config: FrontConfig) -> None:
    """Run until SIGTERM or SIGINT."""
    front = Front(config)
    await front.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(  # SIGHUP must not kill the daemon (systemctl reload)
        signal.SIGHUP, log.info, "SIGHUP: nothing to reload live; restart to apply changes"
    )
    notify("READY=1")
    try:
        await stop.wait()
    finally:
        notify("STOPPING=1")
        await front.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``one-front``."""
    args = parse_args(argv)
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"one-front: configuration error: {exc}", file=sys.stderr)
        return 2
    config = loaded.config
    logging.basicConfig(level=config.log_level, format="%(levelname)s %(name)s: %(message)s")
    for warning in loaded.warnings:
        log.warning("%s", warning)
    try:
        asyncio.run(serve(config))
    except (BootstrapError, OSError, SQLAlchemyError) as exc:
        print(f"one-front: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
