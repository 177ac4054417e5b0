"""ssh/rsync argument lists: batch mode, host-key policy, quoting, hostile host names refused."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onemon.front.im.config import SshConfig
from onemon.front.im.ssh import (
    BadHostName,
    destination,
    remote_command,
    rsync_argv,
    rsync_host,
    ssh_argv,
)

HOSTILE = [
    "", "-oProxyCommand=touch /tmp/pwned", "-p", "node1 -oX=y", "node1;reboot", "$(reboot)",
    "`reboot`", "root@node1", "node1\nreboot", "node1'", 'node1"', "nöde", "../x", "a/b",
    "node1:/etc", "x" * 300, ".hidden",
]  # fmt: skip


@pytest.mark.parametrize(
    "name", ["node1", "node-1.example.org", "n_1", "10.0.0.7", "::1", "fe80::1"]
)
def test_host_names_and_addresses_are_accepted(name: str) -> None:
    assert destination(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_host_names_are_refused_before_any_command(name: str) -> None:
    with pytest.raises(BadHostName):
        destination(name)
    with pytest.raises(BadHostName):
        ssh_argv(SshConfig(), name, ["true"], 10)
    with pytest.raises(BadHostName):
        rsync_argv(SshConfig(), name, "/var/tmp/one", 10)


def test_ssh_argv_is_batch_mode_with_the_policy_and_the_host_after_double_dash() -> None:
    cfg = SshConfig(
        user="oneadmin", port=2222, identity_file=Path("/k/id"),
        known_hosts_file=Path("/k/known"), host_key_checking="yes", config_file=Path("/k/cfg"),
    )  # fmt: skip
    argv = ssh_argv(cfg, "node1", ["python3", "-m", "x", "start", "/a b"], 90)
    assert argv[0] == "ssh" and argv[1:3] == ["-F", "/k/cfg"]
    options = " ".join(argv)
    for wanted in ("BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=/k/known",
                   "ConnectTimeout=10", "-i /k/id", "IdentitiesOnly=yes", "-p 2222", "-l oneadmin"):  # fmt: skip
        assert wanted in options
    assert argv[-3:] == ["--", "node1", "python3 -m x start '/a b'"]


def test_connect_timeout_never_exceeds_the_command_timeout() -> None:
    assert "ConnectTimeout=3" in ssh_argv(SshConfig(connect_timeout=10), "n", ["true"], 3)


def test_default_policy_is_accept_new() -> None:
    assert "StrictHostKeyChecking=accept-new" in ssh_argv(SshConfig(), "n", ["true"], 9)


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
    )
)
def test_remote_command_words_survive_the_nodes_shell_parsing(words: list[str]) -> None:
    assert shlex.split(remote_command(words)) == words


def test_remote_command_runs_hostile_words_as_plain_arguments(tmp_path: Path) -> None:
    words = ["printf", "%s|", "$(touch pwned)", "; touch pwned", "`touch pwned`", "it's", "a\nb"]
    done = subprocess.run(["sh", "-c", remote_command(words)], cwd=tmp_path,
                          capture_output=True, check=True, text=True)  # fmt: skip
    assert done.stdout == "|".join(words[2:]) + "|"
    assert not (tmp_path / "pwned").exists()


def test_rsync_argv_is_opennebulas_with_the_same_ssh_options() -> None:
    cfg = SshConfig(port=2222, known_hosts_file=Path("/k/known"), host_key_checking="yes")
    argv = rsync_argv(cfg, "node1", "/var/tmp/one", 90)
    assert argv[:3] == ["rsync", "-LRaz", "--delete"]
    assert "--timeout=90" in argv
    shell = shlex.split(argv[argv.index("-e") + 1])
    assert shell[0] == "ssh" and "BatchMode=yes" in shell and "StrictHostKeyChecking=yes" in shell
    assert "--rsync-path=mkdir -p /var/tmp/one && rsync" in argv
    assert argv[-3:] == ["--", ".", "node1:/var/tmp/one/"]


def test_ipv6_destinations_are_bracketed_for_rsync() -> None:
    assert rsync_host("fe80::1") == "[fe80::1]"
    assert rsync_argv(SshConfig(), "::1", "/r", 5)[-1] == "[::1]:/r/"
