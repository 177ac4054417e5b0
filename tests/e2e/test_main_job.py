"""The README's first command: collector, agent and Prometheus on this machine, stopped cleanly."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e import stack


def test_run_sh_starts_everything_prints_where_to_look_and_stops(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ONEMON_VAR": str(tmp_path / "var"),
        "ONEMON_PORT": str(stack.free_port()),
        "ONEMON_HTTP_PORT": str(stack.free_port()),
        "ONEMON_PROM_PORT": str(stack.free_port()),
        "ONEMON_RPC_PORT": str(stack.free_port()),
        "ONEMON_RUN_SECONDS": "3",
    }
    done = subprocess.run(
        ["bash", str(stack.REPO / "scripts" / "run.sh")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"http://127.0.0.1:{env['ONEMON_HTTP_PORT']}/metrics" in out
    assert f"http://127.0.0.1:{env['ONEMON_PROM_PORT']}/graph" in out
    listing = out.split("$ onemon host list", 1)[1].splitlines()
    host_line = next(line for line in listing if line.split()[:1] == ["0"])
    assert host_line.split()[-1] == "on"  # onehost list's STAT for MONITORED
    assert f"http://127.0.0.1:{env['ONEMON_RPC_PORT']}/RPC2" in out
    assert "stopped. State and history are kept in" in out
    assert (tmp_path / "var" / "collector" / "onemon.db").exists()
