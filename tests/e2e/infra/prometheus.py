"""A real Prometheus server (Debian's ``prometheus`` 2.42) on 127.0.0.1, and ``promtool``.

start() writes a config (JSON, which is YAML) scraping the given targets every second into a
temporary directory, runs the server with its TSDB there, and waits for ``/-/ready`` (about
0.3 s). Queries go through the HTTP API with urllib. stop() kills only that process and
removes the directory.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _proc

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(
    targets: Sequence[str],
    *,
    job: str = "onemon",
    metrics_path: str = "/metrics",
    scrape_interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus configuration scraping targets (``host:port``) as one job."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": metrics_path,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }


@dataclass
class Prometheus:
    """A running server started by start()."""

    proc: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """The server's combined stdout/stderr."""
        return self.directory / "prometheus.log"

    def get(self, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
        """GET an API path and return the decoded JSON ``data`` (raises on API errors)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=timeout) as resp:
            body = json.load(resp)
        if body.get("status") != "success":
            msg = f"prometheus {path}: {body}"
            raise RuntimeError(msg)
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; returns the result list of ``/api/v1/query``."""
        data = self.get("/api/v1/query", {"query": expr})
        result: list[dict[str, Any]] = data["result"]
        return result

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[dict[str, Any]]], bool] = bool,
        timeout: float = 20.0,
    ) -> list[dict[str, Any]]:
        """Poll expr until predicate(result) holds; return that result."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if predicate(result):
                return result
            time.sleep(0.2)
        msg = f"prometheus: {expr!r} did not satisfy the predicate in {timeout:.0f}s: {result}"
        raise TimeoutError(msg)

    def targets(self) -> list[dict[str, Any]]:
        """The active targets with their health and last error."""
        active: list[dict[str, Any]] = self.get("/api/v1/targets")["activeTargets"]
        return active

    def stop(self, timeout: float = 10.0) -> None:
        """Stop this server (by its pid) and delete its directory."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        shutil.rmtree(self.directory, ignore_errors=True)


def _ready(url: str) -> bool:
    """Whether ``/-/ready`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1.0) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start(
    targets: Sequence[str],
    *,
    job: str = "onemon",
    metrics_path: str = "/metrics",
    scrape_interval: str = "1s",
    port: int | None = None,
    timeout: float = 30.0,
) -> Prometheus:
    """Start Prometheus on 127.0.0.1 scraping targets; return once it is ready."""
    directory = Path(tempfile.mkdtemp(prefix="onemon-prom-"))
    cfg = directory / "prometheus.yml"
    cfg.write_text(
        json.dumps(
            config(targets, job=job, metrics_path=metrics_path, scrape_interval=scrape_interval),
            indent=2,
        )
    )
    port = port or free_port()
    with (directory / "prometheus.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    server = Prometheus(proc, port, directory)
    deadline = time.monotonic() + timeout
    while not _ready(server.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            text = server.log.read_text(errors="replace")[-2000:]
            server.stop()
            msg = f"prometheus did not become ready (rc={proc.returncode}); log tail:\n{text}"
            raise RuntimeError(msg)
        time.sleep(0.05)
    return server


@dataclass(frozen=True)
class Check:
    """The outcome of a promtool check: exit code and what it printed."""

    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        """Whether promtool found nothing to complain about."""
        return self.returncode == 0


def promtool_check_metrics(body: bytes) -> Check:
    """Run ``promtool check metrics`` on an exposition body (rc 3 = lint problems)."""
    proc = _proc.run([PROMTOOL, "check", "metrics"], check=False, input_bytes=body)
    text = (proc.stdout + proc.stderr).decode(errors="replace").strip()
    return Check(proc.returncode, text)


def promtool_check_config(path: Path) -> Check:
    """Run ``promtool check config`` on a configuration file."""
    proc = _proc.run([PROMTOOL, "check", "config", str(path)], check=False)
    text = (proc.stdout + proc.stderr).decode(errors="replace").strip()
    return Check(proc.returncode, text)
