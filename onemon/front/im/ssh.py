"""ssh and rsync argument lists: batch mode, a host-key policy, timeouts, hostile names refused.

Nothing here runs a shell on the front. The one string a node's shell sees (the remote
command) is built from words each quoted with :func:`shlex.quote`; host names never reach it,
and a name that is not a plain host name or address is refused before any command is built.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Sequence

from onemon.front.im.config import SshConfig

HOST_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")
"""A DNS name or an ssh_config alias: no option-like dash, no user@, no spaces or quotes."""
KEEPALIVE_SECONDS = 5


class BadHostName(ValueError):
    """A host name that cannot be used as an SSH destination."""


def destination(name: str) -> str:
    """``name`` when it is a host name or an IP address; BadHostName otherwise."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not HOST_NAME.fullmatch(name):
        raise BadHostName(f"host name {name!r} is not a valid SSH destination")
    return name


def rsync_host(name: str) -> str:
    """The host part of an rsync ``host:path`` (IPv6 addresses bracketed)."""
    host = destination(name)
    return f"[{host}]" if ":" in host else host


def ssh_options(cfg: SshConfig, timeout: float) -> list[str]:
    """The options every connection uses."""
    connect = max(1, round(min(cfg.connect_timeout, timeout)))
    options = [
        "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={connect}",
        "-o", f"StrictHostKeyChecking={cfg.host_key_checking}",
        "-o", f"ServerAliveInterval={KEEPALIVE_SECONDS}",
        "-o", "ServerAliveCountMax=3",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    if cfg.config_file is not None:
        options[:0] = ["-F", str(cfg.config_file)]
    if cfg.known_hosts_file is not None:
        options += ["-o", f"UserKnownHostsFile={cfg.known_hosts_file}"]
    if cfg.identity_file is not None:
        options += ["-i", str(cfg.identity_file), "-o", "IdentitiesOnly=yes"]
    if cfg.port:
        options += ["-p", str(cfg.port)]
    if cfg.user:
        options += ["-l", cfg.user]
    return options


def remote_command(words: Sequence[str]) -> str:
    """The command line a node's shell runs, every word quoted."""
    return " ".join(shlex.quote(word) for word in words)


def ssh_argv(cfg: SshConfig, host: str, words: Sequence[str], timeout: float) -> list[str]:
    """``ssh <options> -- <host> '<word>' …``."""
    return ["ssh", *ssh_options(cfg, timeout), "--", destination(host), remote_command(words)]


def rsync_argv(cfg: SshConfig, host: str, remote_dir: str, timeout: float) -> list[str]:
    """OpenNebula's ``rsync -LRaz --delete . host:<dir>/`` (run in the staging dir)."""
    shell = " ".join(shlex.quote(word) for word in ["ssh", *ssh_options(cfg, timeout)])
    return [
        "rsync", "-LRaz", "--delete",
        f"--timeout={max(1, round(timeout))}",
        "-e", shell,
        f"--rsync-path=mkdir -p {shlex.quote(remote_dir)} && rsync",
        "--", ".", f"{rsync_host(host)}:{remote_dir}/",
    ]  # fmt: skip
