"""``onemon`` over XML-RPC (flags, $ONE_XMLRPC/$ONE_AUTH, ~/.one/one_auth) and over --endpoint."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from onemon.front import cli
from onemon.front.cli_render import Cell, table
from tests.front.harness import Stack


class Run:
    """Runs the CLI in a thread, returning (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    async def __call__(self, *argv: str) -> tuple[int, str, str]:
        try:
            code, message = await asyncio.to_thread(cli.main, list(argv)), ""
        except SystemExit as exc:  # what the shell sees: status 1, the message on stderr
            code, message = 1, f"{exc.code}\n"
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err + message


@pytest.fixture
def onemon(capsys: pytest.CaptureFixture[str]) -> Run:
    return Run(capsys)


def flags(stack: Stack) -> list[str]:
    user, password = stack.session.split(":", 1)
    # "--password=…": a session token may start with "-", which argparse would take for a flag
    return ["--xmlrpc", stack.url, f"--user={user}", f"--password={password}"]


async def test_host_commands_over_xmlrpc(stack: Stack, onemon: Run) -> None:
    code, out, err = await onemon(*flags(stack), "host", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "ID", "NAME", "CLUSTER", "TVM", "ALLOCATED_CPU", "ALLOCATED_MEM", "REAL_CPU",
        "REAL_MEM", "STAT",
    ], err  # fmt: skip
    assert lines[1].split()[:4] == ["3", "node3", "default", "1"] and lines[1].endswith("on")
    assert "100 / 800 (12%)" in lines[1]
    code, out, _ = await onemon(*flags(stack), "host", "show", "3")
    assert "HOST 3 INFORMATION" in out and "MONITORED" in out and "wild1" in out
    assert "CPU TOTAL                 : 800" in out
    code, out, _ = await onemon(*flags(stack), "--json", "host", "show", "3")
    assert json.loads(out)["HOST"]["HOST_SHARE"]["TOTAL_CPU"] == "800"
    code, out, _ = await onemon(*flags(stack), "host", "create", "node9")
    assert (code, out) == (0, "ID: 5\n")
    for action in ("disable", "offline", "enable"):
        assert (await onemon(*flags(stack), "host", action, "5"))[:2] == (0, "")
    code, out, _ = await onemon(*flags(stack), "--json", "host", "delete", "5")
    assert (code, json.loads(out)) == (0, {"ID": 5})
    code, out, err = await onemon(*flags(stack), "host", "show", "5")
    assert (code, out, err) == (1, "", "[one.host.info] Error getting host [5].\n")
    code, out, _ = await onemon(*flags(stack), "host", "monitoring", "3")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["TIME", "FREE_CPU", "USED_CPU"]
    assert out.splitlines()[1].split()[2:4] == ["700", "100"]


async def test_vm_commands_and_watch(stack: Stack, onemon: Run) -> None:
    code, out, _ = await onemon(*flags(stack), "vm", "list")
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["ID", "USER", "GROUP", "NAME", "STAT", "CPU", "MEM", "HOST"]
    assert rows[1] == ["12", "oneadmin", "oneadmin", "one-12", "runn", "12.5", "512M", "node3"]
    assert rows[2][4] == "poff"
    code, out, _ = await onemon(*flags(stack), "vm", "show", "12")
    assert "DEPLOY ID" in out and "uuid-12" in out and "NETTX" in out
    code, out, _ = await onemon(*flags(stack), "vm", "monitoring", "12")
    assert out.splitlines()[1].split()[2:4] == ["12.50", "512M"]
    code, out, _ = await onemon(*flags(stack), "vm", "list", "--watch", "0.05", "--count", "2")
    assert code == 0 and out.count("one-12") == 2
    code, out, _ = await onemon(*flags(stack), "--json", "vm", "list")
    assert [vm["ID"] for vm in json.loads(out)["VM_POOL"]["VM"]] == ["12", "13", "20"]


async def test_credentials_from_env_and_home(
    stack: Stack, onemon: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = tmp_path / "auth"
    auth.write_text(stack.session + "\n")
    monkeypatch.setenv("ONE_XMLRPC", stack.url)
    monkeypatch.setenv("ONE_AUTH", str(auth))
    monkeypatch.delenv("ONEMON_ENDPOINT", raising=False)
    assert (await onemon("host", "list"))[0] == 0
    monkeypatch.delenv("ONE_AUTH")
    home = tmp_path / "home"
    (home / ".one").mkdir(parents=True)
    (home / ".one" / "one_auth").write_text("oneadmin:wrong\n")
    monkeypatch.setenv("HOME", str(home))
    code, _, err = await onemon("host", "list")
    assert (code, err) == (
        1,
        "[one.hostpool.info] User couldn't be authenticated, aborting call.\n",
    )
    (home / ".one" / "one_auth").write_text(stack.session)
    assert (await onemon("vm", "list"))[0] == 0
    (home / ".one" / "one_auth").unlink()
    code, _, err = await onemon("host", "list")
    assert code == 1 and "no credentials" in err
    code, _, err = await onemon("--xmlrpc", "http://127.0.0.1:1/RPC2", "--user", "a",
                                "--password", "b", "host", "list")  # fmt: skip
    assert code == 1 and "cannot reach" in err


async def test_json_api_fallback_and_health(stack: Stack, onemon: Run) -> None:
    endpoint = ["--endpoint", f"http://127.0.0.1:{stack.collector.http_port}"]
    code, out, _ = await onemon(*endpoint, "--json", "host", "list")
    assert code == 0 and [h["id"] for h in json.loads(out)] == [3, 4]
    code, out, _ = await onemon(*endpoint, "host", "monitoring", "3")
    assert code == 0 and "FREE_CPU" in out.splitlines()[0]
    code, out, _ = await onemon(*endpoint, "health")
    assert code == 0 and json.loads(out)["hosts"] == 2


def test_colour_only_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    rows = [[1, Cell("on", "green")], [10, Cell("err", "red")]]
    plain = table(rows, ["ID", "STAT"], io.StringIO())
    assert plain == "ID  STAT\n 1  on\n10  err"
    coloured = table(rows, ["ID", "STAT"], Tty())
    assert "\033[32mon  \033[0m" in coloured and "\033[1mID\033[0m" in coloured
