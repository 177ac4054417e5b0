"""``onemon``: the admin CLI over the collector's JSON API (XML-RPC comes with the front)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:9925"


DEFAULT_TOKEN_FILE = Path("/var/lib/onemon/admin.token")


def fetch(endpoint: str, path: str, method: str = "GET", body: Any = None, token: str = "") -> Any:
    """Call a JSON API path; raises SystemExit with a clear message on failure."""
    url = endpoint.rstrip("/") + path
    if not url.startswith(("http://", "https://")):
        raise SystemExit(f"onemon: the endpoint must be an http(s) URL, not {endpoint!r}")
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
        raise SystemExit(f"onemon: {url}: {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SystemExit(f"onemon: cannot reach {endpoint}: {exc}") from None


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """Rows aligned under their header (bold header on a terminal)."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in cells]  # fmt: skip
    if sys.stdout.isatty():
        lines[0] = f"\033[1m{lines[0]}\033[0m"
    return "\n".join(line.rstrip() for line in lines)


def host_rows(hosts: list[dict[str, Any]]) -> list[list[object]]:
    """onehost list's columns: id, name, VMs, used/total CPU, used/total memory, state."""
    rows: list[list[object]] = []
    for host in hosts:
        cap = host["capacity"]
        total_cpu = host.get("template", {}).get("TOTALCPU", "-")
        total_mem = cap["USED_MEMORY"] + cap["FREE_MEMORY"]
        rows.append([
            host["id"], host["name"], len(host["vms"]),
            f"{cap['USED_CPU']:.0f} / {total_cpu}",
            f"{cap['USED_MEMORY'] / 1048576:.1f}G / {total_mem / 1048576:.1f}G",
            host["state"],
        ])  # fmt: skip
    return rows


def vm_rows(vms: list[dict[str, Any]]) -> list[list[object]]:
    """onevm list-like columns from what the monitoring knows."""
    rows: list[list[object]] = []
    for vm in vms:
        mon = vm["monitoring"]
        memory = float(mon.get("MEMORY", 0) or 0)
        rows.append([vm["id"], vm["host_id"], vm["report"], vm["lcm_state"],
                     mon.get("CPU", "-"), f"{memory / 1024:.0f}M"])  # fmt: skip
    return rows


def admin_token(path: Path) -> str:
    """The admin token: $ONEMON_TOKEN, else the token file."""
    token = os.environ.get("ONEMON_TOKEN", "")
    if token:
        return token
    try:
        return path.read_text().strip()
    except OSError as exc:
        detail = f"{path}: {exc.strerror}"
        raise SystemExit(f"onemon: no admin token ({detail}); set ONEMON_TOKEN") from None


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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``onemon``."""
    parser = argparse.ArgumentParser(prog="onemon", description=__doc__)
    parser.add_argument("--endpoint", default=os.environ.get("ONEMON_ENDPOINT", DEFAULT_ENDPOINT),
                        help="collector API (env ONEMON_ENDPOINT)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="object", required=True)
    parser.add_argument("--token-file", type=Path, default=DEFAULT_TOKEN_FILE,
                        help="admin token for changes (env ONEMON_TOKEN wins)")  # fmt: skip
    host = sub.add_parser("host").add_subparsers(dest="action", required=True)
    host.add_parser("list")
    host.add_parser("show").add_argument("id", type=int)
    create = host.add_parser("create")
    create.add_argument("name")
    create.add_argument("--id", type=int, dest="host_id")
    create.add_argument("--im-mad", default="kvm", choices=["kvm", "qemu", "lxc"])
    for action in ("delete", "enable", "disable", "offline"):
        host.add_parser(action).add_argument("id", type=int)
    vm = sub.add_parser("vm").add_subparsers(dest="action", required=True)
    vm.add_parser("list")
    vm.add_parser("show").add_argument("id", type=int)
    sub.add_parser("health")
    args = parser.parse_args(argv)

    if args.object == "host" and args.action in (
        "create",
        "delete",
        "enable",
        "disable",
        "offline",
    ):
        print(json.dumps(change_host(args), indent=2, sort_keys=True))
        return 0
    if args.object == "health":
        data = fetch(args.endpoint, "/api/v1/health")
    elif args.action == "list":
        data = fetch(args.endpoint, f"/api/v1/{args.object}s")
    else:
        data = fetch(args.endpoint, f"/api/v1/{args.object}s/{args.id}")
    if args.json or args.object == "health" or args.action == "show":
        print(json.dumps(data, indent=2, sort_keys=True))
    elif args.object == "host":
        print(table(host_rows(data), ["ID", "NAME", "VMS", "CPU", "MEMORY", "STATE"]))
    else:
        print(table(vm_rows(data), ["ID", "HOST", "REPORT", "LCM", "CPU%", "MEMORY"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
