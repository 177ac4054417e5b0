"""The CLI over the collector's JSON API (``--endpoint``): the path before the front existed."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from onemon.front.cli_render import Cell, size_kb, table, when
from onemon.front.cli_rpc import CliError

DEFAULT_ENDPOINT = "http://127.0.0.1:9925"
DEFAULT_TOKEN_FILE = Path("/var/lib/onemon/admin.token")
STATE_COLOURS = {"MONITORED": "green", "ERROR": "red", "DISABLED": "yellow", "OFFLINE": "yellow"}


def fetch(endpoint: str, path: str, method: str = "GET", body: Any = None, token: str = "") -> Any:
    """Call a JSON API path; :class:`CliError` with a clear message on failure."""
    url = endpoint.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise CliError(f"onemon: the endpoint must be an http(s) URL, not {endpoint!r}")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - checked
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise CliError(f"onemon: {url}: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError(f"onemon: cannot reach {endpoint}: {exc}") from None


def admin_token(path: Path) -> str:
    """The admin token: $ONEMON_TOKEN, else the token file."""
    token = os.environ.get("ONEMON_TOKEN", "")
    if token:
        return token
    try:
        return path.read_text().strip()
    except OSError as exc:
        detail = f"{path}: {exc.strerror}"
        raise CliError(f"onemon: no admin token ({detail}); set ONEMON_TOKEN") from None


def change_host(args: argparse.Namespace) -> Any:
    """host create / delete / enable / disable / offline."""
    token = admin_token(args.token_file)
    if args.action == "create":
        body = {"name": args.name, "id": args.host_id, "im_mad": args.im_mad}
        return fetch(args.endpoint, "/api/v1/hosts", "POST", body, token)
    if args.action == "delete":
        return fetch(args.endpoint, f"/api/v1/hosts/{args.id}", "DELETE", None, token)
    path = f"/api/v1/hosts/{args.id}/status"
    return fetch(args.endpoint, path, "POST", {"action": args.action}, token)


def host_rows(hosts: list[dict[str, Any]]) -> list[list[object]]:
    """id, name, VMs, used/total CPU, used/total memory, state."""
    rows: list[list[object]] = []
    for host in hosts:
        cap = host["capacity"]
        total_cpu = host.get("template", {}).get("TOTALCPU", "-")
        total_mem = cap["USED_MEMORY"] + cap["FREE_MEMORY"]
        rows.append([
            host["id"], host["name"], len(host["vms"]),
            f"{cap['USED_CPU']:.0f} / {total_cpu}",
            f"{size_kb(cap['USED_MEMORY'])} / {size_kb(total_mem)}",
            Cell(host["state"], STATE_COLOURS.get(host["state"], "")),
        ])  # fmt: skip
    return rows


def vm_rows(vms: list[dict[str, Any]]) -> list[list[object]]:
    """id, host, report, LCM state, CPU, memory."""
    rows: list[list[object]] = []
    for vm in vms:
        mon = vm["monitoring"]
        memory = float(mon.get("MEMORY", 0) or 0)
        rows.append([vm["id"], vm["host_id"], vm["report"], vm["lcm_state"],
                     mon.get("CPU", "-"), size_kb(memory)])  # fmt: skip
    return rows


def monitoring_rows(samples: list[dict[str, Any]], keys: list[str]) -> list[list[object]]:
    """One row per history sample: its time, then ``keys``."""
    return [[when(s.get("timestamp", 0)), *(s.get(k, "-") for k in keys)] for s in samples]


def render(args: argparse.Namespace) -> tuple[Any, str]:
    """The data of a read command and its human form."""
    if args.object == "health":
        data = fetch(args.endpoint, "/api/v1/health")
        return data, json.dumps(data, indent=2, sort_keys=True)
    if args.action == "list":
        data = fetch(args.endpoint, f"/api/v1/{args.object}s")
        if args.object == "host":
            return data, table(host_rows(data), ["ID", "NAME", "VMS", "CPU", "MEMORY", "STATE"])
        return data, table(vm_rows(data), ["ID", "HOST", "REPORT", "LCM", "CPU%", "MEMORY"])
    if args.action == "monitoring":
        data = fetch(args.endpoint, f"/api/v1/{args.object}s/{args.id}/monitoring")
        keys = (["FREE_CPU", "USED_CPU", "FREE_MEMORY", "USED_MEMORY", "NETRX", "NETTX"]
                if args.object == "host" else ["CPU", "MEMORY", "NETRX", "NETTX"])  # fmt: skip
        return data, table(monitoring_rows(data, keys), ["TIME", *keys])
    data = fetch(args.endpoint, f"/api/v1/{args.object}s/{args.id}")
    return data, json.dumps(data, indent=2, sort_keys=True)
