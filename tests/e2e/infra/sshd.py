"""A private OpenSSH server for one test: its own config, host key and client key in a tmp dir.

Installs nothing (``scripts/setup-system.sh`` installs openssh-server, openssh-client and
rsync). ``start()`` runs ``sshd -D -e -f <generated config>`` as an argument list on a free
loopback port, or inside a network namespace on the namespace's address: public-key login
only, ``PermitRootLogin prohibit-password`` (the tests run as root), no PAM, ``StrictModes
no`` (the keys live under /tmp). The client side gets a matching ``known_hosts`` (so clients
can check strictly) and an ``ssh_config`` mapping a host alias to the server. ``stop()`` ends
it by pid; ``restart()`` brings it back on the same port with the same keys.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import _proc

NETNS_PORT = 2222
"""The port sshd takes inside a namespace of its own (nothing else listens there)."""

SSHD = "/usr/sbin/sshd"
CLIENTS = ("ssh", "ssh-keygen", "rsync")
PRIVSEP_DIR = Path("/run/sshd")


def skip_reason() -> str | None:
    """None when a private sshd can run here, else why not."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not root")
    if not os.access(SSHD, os.X_OK):
        problems.append(f"{SSHD} missing")
    absent = [c for c in CLIENTS if shutil.which(c) is None]
    if absent:
        problems.append(f"missing binaries: {', '.join(absent)}")
    if not problems:
        return None
    return f"sshd e2e cannot run: {'; '.join(problems)} (scripts/setup-system.sh installs them)"


def free_tcp_port(address: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass
class Sshd:
    """A running private sshd and the client files that reach it."""

    directory: Path
    address: str
    port: int
    netns: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def host_key(self) -> Path:
        """The server's private host key."""
        return self.directory / "ssh_host_ed25519_key"

    @property
    def client_key(self) -> Path:
        """The test user's private key (its .pub is authorized)."""
        return self.directory / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """known_hosts holding this server's key for its address and port."""
        return self.directory / "known_hosts"

    @property
    def ssh_config(self) -> Path:
        """An ssh_config with a ``Host <alias>`` → this server entry per alias."""
        return self.directory / "ssh_config"

    @property
    def log(self) -> Path:
        """sshd's own log (-e)."""
        return self.directory / "sshd.log"

    def argv(self) -> list[str]:
        """The daemon's command line (inside the namespace when there is one)."""
        cmd = [SSHD, "-D", "-e", "-f", str(self.directory / "sshd_config")]
        return ["ip", "netns", "exec", self.netns, *cmd] if self.netns else cmd

    def start(self) -> None:
        """Start (or start again) and wait until it greets clients."""
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited {self.proc.returncode}: {self.output()}")
            if self._greets():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not greet on {self.address}:{self.port}: {self.output()}")

    def _greets(self) -> bool:
        """Whether sshd answers with its banner (a namespace's address is reachable from here)."""
        try:
            with socket.create_connection((self.address, self.port), timeout=1) as sock:
                return sock.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self) -> None:
        """Start again with the same port and keys."""
        self.stop()
        self.start()

    def output(self) -> str:
        """What sshd logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def add_alias(self, alias: str) -> None:
        """Let clients using :attr:`ssh_config` reach this server as ``alias``."""
        self.aliases[alias] = self.address
        self._write_client_config()

    def _write_client_config(self) -> None:
        entries = [f"Host {alias}\n    HostName {addr}\n" for alias, addr in self.aliases.items()]
        self.ssh_config.write_text("".join(entries))


def _keygen(path: Path) -> None:
    _proc.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "onemon-test", "-f", str(path)])


def _server_config(server: Sshd, authorized: Path) -> str:
    return "\n".join([
        f"ListenAddress {server.address}:{server.port}",
        f"HostKey {server.host_key}",
        f"PidFile {server.directory / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "UseDNS no",
        "X11Forwarding no",
        "AllowTcpForwarding no",
        "PrintMotd no",
        "LogLevel VERBOSE",
        "",
    ])  # fmt: skip


def start(directory: Path, *, address: str = "127.0.0.1", netns: str | None = None) -> Sshd:
    """Generate keys and configs in ``directory`` and start a private sshd on ``address``."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_tcp_port(address) if netns is None else NETNS_PORT
    server = Sshd(directory, address, port, netns)
    _keygen(server.host_key)
    _keygen(server.client_key)
    authorized = directory / "authorized_keys"
    authorized.write_text(Path(f"{server.client_key}.pub").read_text())
    (directory / "sshd_config").write_text(_server_config(server, authorized))
    fields = Path(f"{server.host_key}.pub").read_text().split()
    server.known_hosts.write_text(f"[{address}]:{port} {fields[0]} {fields[1]}\n")
    server.ssh_config.write_text("")
    server.start()
    return server
