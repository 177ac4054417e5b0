"""``one-agent``: the daemon, ``--once`` for admins debugging probes, ``--opennebula`` drop-in."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from onemon.agent.config import DEFAULT_PATH, AgentConfig
from onemon.agent.daemon import AgentDaemon
from onemon.settings import ConfigError, Loaded, load_or_default
from onemon.wire.keys import KeyFileError

log = logging.getLogger("onemon.agent")


def help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's formatter at the terminal's width, found as ``shutil.get_terminal_size`` does.

    argparse would import shutil for it (with bz2 and lzma), into the daemon for good.
    """
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return argparse.HelpFormatter(prog, width=(columns or 80) - 2)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="one-agent", description=__doc__, formatter_class=help_formatter
    )
    parser.add_argument(
        "-c", "--config", type=Path, default=None,
        help=f"TOML configuration (default {DEFAULT_PATH} if it exists)",
    )  # fmt: skip
    parser.add_argument(
        "--once", action="store_true",
        help="run every probe group once, print the messages, send nothing",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="with --once: print JSON")
    parser.add_argument("--opennebula", nargs=3, metavar=("HV", "HOST_ID", "HOST_NAME"),
                        help="start as OpenNebula's IM driver starts its agent "
                             "(MONITOR_CONFIGURATION XML on stdin)")  # fmt: skip
    return parser.parse_args(argv)


def load_config(path: Path | None) -> Loaded[AgentConfig]:
    """The configuration from ``path``, the default file, or the built-in defaults."""
    return load_or_default(AgentConfig, path, DEFAULT_PATH)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``one-agent``."""
    args = parse_args(argv)
    if args.opennebula:
        # Imported here, as --once's code below: the daemon keeps only the modules it runs
        # (tests/agent/test_footprint.py).
        from onemon.agent import opennebula  # noqa: PLC0415

        return opennebula.main(list(args.opennebula), sys.stdin.buffer.read())
    try:
        loaded = load_config(args.config)
    except ConfigError as exc:
        print(f"one-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    config = loaded.config
    logging.basicConfig(level=config.log_level, format="%(levelname)s %(name)s: %(message)s")
    for warning in loaded.warnings:
        log.warning("%s", warning)
    if args.once:
        from onemon.agent.once import as_json, describe, run_once  # noqa: PLC0415

        results = asyncio.run(run_once(config))
        if args.json:
            print(as_json(results))
        else:
            print("\n".join(describe(m, s) for m, s in results))
        return 0 if all(m.ok for m, _ in results) else 1
    daemon = AgentDaemon(config, args.config or (DEFAULT_PATH if DEFAULT_PATH.exists() else None))
    try:
        asyncio.run(daemon.run())
    except (KeyFileError, OSError) as exc:
        print(f"one-agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
