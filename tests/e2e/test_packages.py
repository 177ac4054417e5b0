"""The built packages installed for real.

On this machine: ``dpkg -i`` of python3-onemon and one-agent plus ``apt-get -f install`` of
their Debian dependencies, then the installed ``/usr/bin/one-agent`` with Debian's Python and
Python packages: ``--once``, then as a daemon under its own user against a collector (READY=1,
MONITORED, a probe dropped in while it runs, SIGHUP, SIGTERM); everything is purged afterwards,
the dependencies apt pulled in and the user included.

Under systemd: a container (systemd-nspawn, private network) booted from a throw-away overlay
of this machine's root, where the three packages are installed with systemd running, so the
units start for real: Type=notify, the service users, LoadCredential=, the sandbox, reload,
stop, purge. This machine's own files are never written.

Needs root and Debian 12; skipped with the reason elsewhere (ONEMON_E2E=0 skips too).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import stack
from tests.packaging import pkgtools

HOST = 31
PROBE_DIR = Path("/etc/one/one-agent/probes/kvm-probes.d/host/system")
DROPIN = PROBE_DIR / "zz-onemon-e2e"
STATE = Path("/var/lib/one-agent")
OURS = ("one-agent", "one-collector", "python3-onemon")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": pkgtools.SYSTEM_PATH, "LC_ALL": "C.UTF-8"}
APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q"]


def skip_reason() -> str | None:
    """Why the packages cannot be installed here, or None."""
    if os.environ.get("ONEMON_E2E", "1") == "0":
        return "ONEMON_E2E=0"
    if os.geteuid() != 0:
        return "not root"
    try:
        debian = Path("/etc/debian_version").read_text().strip()
    except OSError:
        return "not a Debian system"
    if not debian.startswith("12"):
        return f"Debian 12 packages, this is Debian {debian}"
    return pkgtools.nfpm_missing() or pkgtools.tool_missing("dpkg", "apt-get", "setpriv")


def system(argv: list[str], timeout: float = 600, check: bool = True) -> str:
    """Run a system command (apt/dpkg environment); its output."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **APT_ENV},
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"{argv}: {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


def installed(package: str) -> bool:
    """Whether dpkg knows the package (installed or with its conffiles left)."""
    done = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package],
        capture_output=True, text=True, check=False, env={**os.environ, **APT_ENV},
    )  # fmt: skip
    return done.returncode == 0 and done.stdout.strip() not in ("", "un")


def exists(name: str, database: str) -> bool:
    """Whether a user (passwd) or group exists."""
    return (
        subprocess.run(["getent", database, name], capture_output=True, check=False).returncode == 0
    )


@dataclass
class Node:
    """This machine with python3-onemon and one-agent installed by the fixture."""

    built: pkgtools.Built
    pulled: list[str] = field(default_factory=list)
    """Dependencies apt-get installed for them (purged at the end)."""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pkgtools.Built:
    """The packages, built by scripts/package.sh."""
    reason = skip_reason()
    if reason:
        pytest.skip(f"package e2e cannot run: {reason}")
    return pkgtools.build(tmp_path_factory.mktemp("packages"))


@pytest.fixture(scope="module")
def node(built: pkgtools.Built) -> Iterator[Node]:
    """python3-onemon + one-agent installed with dpkg -i and apt-get -f install; purged after."""
    busy = [p for p in OURS if installed(p)] + [
        str(p) for p in (STATE, Path("/etc/one/one-agent.toml")) if p.exists()
    ]
    if busy:
        pytest.skip(f"onemon is already installed here ({', '.join(busy)}); not touching it")
    had_user, had_group = exists("one-agent", "passwd"), exists("one-agent", "group")
    had_etc_one = Path("/etc/one").exists()
    debs = [str(built.path(n, "deb")) for n in ("python3-onemon", "one-agent")]
    result = Node(built)
    try:
        # dpkg -i leaves them unconfigured while a dependency is missing; apt-get -f install
        # then installs the dependencies (Debian's python3-* packages) and configures them.
        subprocess.run(["dpkg", "-i", *debs], capture_output=True, check=False,
                       env={**os.environ, **APT_ENV}, timeout=600)  # fmt: skip
        plan = system([*APT, "--simulate", "-f", "install"])
        result.pulled = [p for p in re.findall(r"^Inst (\S+)", plan, re.M) if p not in OURS]
        system([*APT, "--no-install-recommends", "-f", "install"])
        assert installed("one-agent") and installed("python3-onemon")
        yield result
    finally:
        DROPIN.unlink(missing_ok=True)
        system(["dpkg", "--purge", "one-agent", "python3-onemon"], check=False)
        if result.pulled:
            system([*APT, "purge", *result.pulled], check=False)
        if not had_user and exists("one-agent", "passwd"):
            system(["userdel", "one-agent"], check=False)
        if not had_group and exists("one-agent", "group"):
            system(["groupdel", "one-agent"], check=False)
        if not had_etc_one:
            with contextlib.suppress(OSError):
                Path("/etc/one").rmdir()
    # Left as it was: nothing of the packages, nor the user they made.
    assert not installed("one-agent") and not installed("python3-onemon")
    leftovers = [str(p) for p in (STATE, Path("/usr/lib/python3/dist-packages/onemon"),
                                  Path("/usr/lib/onemon"), Path("/etc/one/one-agent"),
                                  Path("/etc/one/one-agent.toml")) if p.exists()]  # fmt: skip
    assert leftovers == []
    assert had_user or not exists("one-agent", "passwd")


def test_installed_with_its_user_state_and_unit(node: Node) -> None:
    status = system(["dpkg-query", "-W", "-f", "${Package} ${Version} ${Status}\n",
                     "one-agent", "python3-onemon"])  # fmt: skip
    version = node.built.version
    assert f"one-agent {version}-1 install ok installed" in status
    assert f"python3-onemon {version}-1 install ok installed" in status
    agent_user = system(["id", "-nG", "one-agent"]).split()
    if exists("libvirt", "group"):
        assert "libvirt" in agent_user
    assert "kvm" not in agent_user and "root" not in agent_user
    stat = STATE.stat()
    assert (stat.st_mode & 0o777, stat.st_uid) == (0o750, int(system(["id", "-u", "one-agent"])))
    if shutil.which("systemd-analyze"):
        man = [] if shutil.which("man") else ["--man=no"]
        out = system(["systemd-analyze", "verify", *man, "/lib/systemd/system/one-agent.service"])
        assert "one-agent.service" not in out, out  # no complaint about our unit


def test_installed_agent_once_runs_on_debians_python(node: Node, tmp_path: Path) -> None:
    assert Path("/usr/bin/one-agent").read_text().startswith("#!/usr/bin/python3 -I\n")
    where = json.loads(system([
        "/usr/bin/python3", "-I", "-c",
        "import json, onemon, cbor2, cryptography, libvirt;"
        "print(json.dumps({m.__name__: m.__file__ for m in (onemon, cbor2, cryptography, libvirt)}))",
    ]))  # fmt: skip
    for module, path in where.items():  # Debian's packages, not a virtualenv's
        assert path.startswith("/usr/lib/python3/dist-packages/"), (module, path)
    config = tmp_path / "one-agent.toml"
    packaged = Path("/etc/one/one-agent.toml").read_text()
    config.write_text(
        re.sub(r"(?m)^libvirt_uri = .*$", 'libvirt_uri = "test:///default"', packaged)
    )
    DROPIN.write_text("#!/bin/sh\necho 'ONEMON_E2E_DROPIN = \"once\"'\n")
    DROPIN.chmod(0o755)
    try:
        done = subprocess.run(
            ["/usr/bin/one-agent", "-c", str(config), "--once", "--json"],
            capture_output=True, text=True, timeout=120, check=False, cwd="/",
            env={"PATH": pkgtools.SYSTEM_PATH, "HOME": "/root"},
        )  # fmt: skip
    finally:
        DROPIN.unlink()
    assert done.returncode == 0, done.stdout + done.stderr
    by_type = {m["type"]: m for m in json.loads(done.stdout)}
    assert {"BEACON_HOST", "SYSTEM_HOST", "MONITOR_HOST"} <= by_type.keys()
    assert all(m["status"] == "SUCCESS" for m in by_type.values())
    system_host = by_type["SYSTEM_HOST"]["payload"]
    assert system_host["VERSION"] == Path("/usr/lib/onemon/probes/VERSION").read_text().strip()
    assert system_host["ONEMON_E2E_DROPIN"] == "once"  # the drop-in tree from the conffile


@contextlib.contextmanager
def notify_socket(path: Path) -> Iterator[socket.socket]:
    """A $NOTIFY_SOCKET the one-agent user can send to."""
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    shutil.chown(path, "one-agent", "one-agent")
    try:
        yield sock
    finally:
        sock.close()
        path.unlink(missing_ok=True)


def notified(sock: socket.socket, wanted: str, timeout: float) -> list[str]:
    """Notifications received until ``wanted`` (AssertionError after timeout)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            break
        if wanted in seen:
            return seen
    raise AssertionError(f"no {wanted} in {timeout} s; got {seen}")


def test_installed_agent_daemon_is_monitored_and_picks_up_a_dropped_probe(
    node: Node, tmp_path: Path
) -> None:
    key = stack.make_key(tmp_path)
    collector = stack.collector(tmp_path / "c", key, [(HOST, "pkg-node")])
    collector.start()
    work = STATE / "e2e"  # readable by the one-agent user only, as the real state directory
    work.mkdir(mode=0o700)
    shutil.chown(work, "one-agent", "one-agent")
    agent_key = work / "cluster.key"
    shutil.copyfile(key, agent_key)
    agent_key.chmod(0o600)
    shutil.chown(agent_key, "one-agent", "one-agent")
    config = work / "one-agent.toml"
    config.write_text(stack.toml({
        "host_id": HOST, "host_name": "pkg-node", "libvirt_uri": "test:///default",
        "state_dir": str(work / "state"), "log_level": "INFO",
        "periods": {**stack.FAST_PERIODS, "system_host": 3},
        "probes": {"tree": "/etc/one/one-agent/probes", "timeout": 10},
        "send": {"collectors": [f"127.0.0.1:{collector.port}"], "key_file": str(agent_key),
                 "ack_timeout": 3},
    }))  # fmt: skip
    log = tmp_path / "agent.log"
    agent: subprocess.Popen[bytes] | None = None
    try:
        collector.wait_ready()
        with notify_socket(work / "notify.sock") as notify, log.open("wb") as out:
            # As the unit runs it: the one-agent user with its groups from the group database.
            agent = subprocess.Popen(
                ["setpriv", "--reuid", "one-agent", "--regid", "one-agent", "--init-groups",
                 "--", "/usr/bin/one-agent", "-c", str(config)],
                stdout=out, stderr=subprocess.STDOUT, cwd="/",
                env={"PATH": pkgtools.SYSTEM_PATH, "HOME": str(STATE),
                     "NOTIFY_SOCKET": str(work / "notify.sock")},
            )  # fmt: skip
            notified(notify, "READY=1", 30)
            stack.wait_until(
                lambda: collector.host(HOST)["state"] == "MONITORED", 30, "host MONITORED"
            )
            DROPIN.write_text('#!/bin/sh\necho "ONEMON_E2E_DROPIN = \\"live-$(id -un)\\""\n')
            DROPIN.chmod(0o755)
            dropped = time.monotonic()
            stack.wait_until(
                lambda: collector.host(HOST)["template"].get("ONEMON_E2E_DROPIN") == "live-one-agent",
                3 + 10, "the dropped probe's attribute at the collector (system period 3 s)",
            )  # fmt: skip
            assert time.monotonic() - dropped < 13
            agent.send_signal(signal.SIGHUP)
            assert notified(notify, "READY=1", 15)[0] == "RELOADING=1"
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(20) == 0
        output = log.read_text()
        assert "configuration reloaded" in output and "one-agent stopped" in output
        assert "Traceback" not in output
    finally:
        DROPIN.unlink(missing_ok=True)
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait()
        collector.kill()
        shutil.rmtree(work, ignore_errors=True)


# --- under systemd ---------------------------------------------------------------------------


class Container:
    """A systemd-nspawn container booted from an overlay of this machine's root."""

    MASKED = ("libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket",
              "virtlogd.socket", "virtlogd-admin.socket", "virtlockd.socket",
              "virtlockd-admin.socket")  # fmt: skip
    """Socket units of this machine that would start daemons inside the container."""

    def __init__(self) -> None:
        self.top = Path(tempfile.mkdtemp(prefix="onemon-pkg-nspawn-", dir="/var/tmp"))
        self.root = self.top / "root"
        self.rw = self.top / "rw"
        self.mounted: list[Path] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.init_pid = 0

    def mount(self) -> None:
        """tmpfs for the writes, overlayfs over / for the tree."""
        self.rw.mkdir()
        self.root.mkdir()
        system(["mount", "-t", "tmpfs", "-o", "size=2g,mode=0755", "tmpfs", str(self.rw)])
        self.mounted.append(self.rw)
        (self.rw / "upper").mkdir()
        (self.rw / "work").mkdir()
        options = f"lowerdir=/,upperdir={self.rw}/upper,workdir={self.rw}/work"
        system(["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)])
        self.mounted.append(self.root)
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)  # services may start here
        system(["systemctl", f"--root={self.root}", "mask", *self.MASKED])

    def chroot(self, argv: list[str]) -> str:
        """Run a command chrooted in the tree (before boot), with /dev, /proc, /sys bound."""
        bound = []
        try:
            for fs in ("dev", "proc", "sys"):
                system(["mount", "--rbind", f"/{fs}", str(self.root / fs)])
                system(["mount", "--make-rslave", str(self.root / fs)])
                bound.append(self.root / fs)
            return system(["chroot", str(self.root), *argv])
        finally:
            for path in reversed(bound):
                system(["umount", "-R", str(path)], check=False)

    def boot(self, log: Path) -> None:
        """Boot to basic.target, private network; wait until systemd is running."""
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.root), "-b", "--register=no", "--keep-unit",
                 "--private-network", "--machine=onemon-pkg-e2e", "--",
                 "systemd.unit=basic.target"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip

        def running() -> bool:
            assert self.proc is not None and self.proc.poll() is None, log.read_text()[-3000:]
            children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True,
                                      text=True, check=False).stdout.split()  # fmt: skip
            if not children:
                return False
            self.init_pid = int(children[0])
            state = self.run(["systemctl", "is-system-running"], check=False).strip()
            return state in ("running", "degraded")

        stack.wait_until(running, 90, "systemd running in the container", step=0.5)

    def run(self, argv: list[str], check: bool = True, timeout: float = 300) -> str:
        """Run a command inside the booted container."""
        return system(["nsenter", "-t", str(self.init_pid), "-a", "--", *argv],
                      check=check, timeout=timeout)  # fmt: skip

    def close(self) -> None:
        """Power off (kill if it hangs), unmount, remove."""
        if self.proc is not None and self.proc.poll() is None:
            if self.init_pid:
                self.run(["systemctl", "poweroff"], check=False, timeout=30)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for path in reversed(self.mounted):
            system(["umount", "-l", str(path)], check=False)
        shutil.rmtree(self.top, ignore_errors=True)


def container_reason() -> str | None:
    """Why a systemd container cannot run here, or None."""
    missing = pkgtools.tool_missing("systemd-nspawn", "nsenter", "chroot", "systemctl")
    if missing:
        return missing
    if os.path.realpath("/sbin/init") != os.path.realpath("/lib/systemd/systemd"):
        return "/sbin/init is not systemd"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "no overlayfs in this kernel"
    return None


def host_json(box: Container, host_id: int) -> dict[str, Any]:
    """A host from the collector inside the container."""
    out = box.run(["onemon", "--endpoint", "http://127.0.0.1:9925", "--json", "host", "show",
                   str(host_id)], check=False)  # fmt: skip
    try:
        found: dict[str, Any] = json.loads(out)
    except ValueError:
        return {}
    return found


def test_units_run_under_systemd(built: pkgtools.Built, tmp_path: Path) -> None:
    reason = container_reason()
    if reason:
        pytest.skip(f"systemd container cannot run: {reason}")
    box = Container()
    try:
        box.mount()
        debs = box.root / "root" / "onemon-debs"
        debs.mkdir()
        for path in built.all("deb"):
            shutil.copy(path, debs / path.name)
        # Their dependencies first (the container has no network): Debian's python3-* packages.
        needed = set()
        for path in built.all("deb"):
            for item in pkgtools.deb_field(path, "Depends").split(","):
                name = item.strip().split()[0].removesuffix(":any")
                if name not in OURS:
                    needed.add(name)
        box.chroot([*APT, "install", "--no-install-recommends", *sorted(needed)])
        box.boot(tmp_path / "nspawn.log")
        names = {p: f"/root/onemon-debs/{built.path(p, 'deb').name}" for p in OURS}
        # The front-end first: its postinst makes the key, so the agent's then starts it too.
        box.run(["dpkg", "-i", names["python3-onemon"], names["one-collector"]])
        box.run(["dpkg", "-i", names["one-agent"]])
        assert box.run(["systemctl", "is-active", "one-collector", "one-agent"]).split() == [
            "active", "active",
        ]  # fmt: skip
        units = ["one-agent.service", "one-collector.service", "one-front.service"]
        verify = box.run(["systemd-analyze", "verify", *units], check=False)
        assert not [line for line in verify.splitlines() if "one-" in line], verify
        key = box.run(["stat", "-c", "%U %a", "/etc/one/onemon/cluster.key"]).strip()
        assert key == "root 600"
        for unit, user in (("one-agent", "one-agent"), ("one-collector", "onemon")):
            pid = box.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).strip()
            status = box.run(["cat", f"/proc/{pid}/status"])
            uid = box.run(["id", "-u", user]).strip()
            assert re.search(rf"^Uid:\s+{uid}\s", status, re.M), status
            assert re.search(r"^CapEff:\s+0+$", status, re.M)
            assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
            score = box.run(["systemd-analyze", "security", "--no-pager", unit])
            exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", score)
            assert exposure and float(exposure.group(1)) <= 2.0, score
        # Register this node at the collector, point the agent at libvirt's test driver, reload.
        box.run(["onemon", "--endpoint", "http://127.0.0.1:9925", "host", "create", "ct-node",
                 "--id", "0"])  # fmt: skip
        box.run(["sed", "-i", "-e", 's|^libvirt_uri = .*|libvirt_uri = "test:///default"|',
                 "-e", "s|^system_host = .*|system_host = 5|", "/etc/one/one-agent.toml"])  # fmt: skip
        box.run(["systemctl", "reload", "one-agent"])
        stack.wait_until(lambda: host_json(box, 0).get("state") == "MONITORED", 30,
                         "ct-node MONITORED under systemd")  # fmt: skip
        log = box.run(["journalctl", "--no-pager", "-u", "one-agent", "-u", "one-collector"])
        assert "configuration reloaded" in log and "Traceback" not in log, log
        box.run(["systemctl", "stop", "one-agent", "one-collector"])
        result = box.run(["systemctl", "show", "-p", "Result", "--value", "one-agent",
                          "one-collector"]).split()  # fmt: skip
        assert result == ["success", "success"]
        box.run(["dpkg", "--purge", "one-agent", "one-collector", "python3-onemon"])
        left = box.run(["sh", "-c", "ls -d /var/lib/one-agent /var/lib/onemon/collector.db "
                        "/etc/one/onemon /etc/one/one-agent* 2>/dev/null || true"])  # fmt: skip
        assert left.strip() == ""
    finally:
        box.close()
