"""``onemon``: the admin CLI over the collector's JSON API (XML-RPC comes with the front)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:9925"


def fetch(endpoint: str, path: str) -> Any:
    """GET a JSON API path; raises SystemExit with a clear message on failure."""
    url = endpoint.rstrip("/") + path
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - admin-given URL
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``onemon``."""
    parser = argparse.ArgumentParser(prog="onemon", description=__doc__)
    parser.add_argument("--endpoint", default=os.environ.get("ONEMON_ENDPOINT", DEFAULT_ENDPOINT),
                        help="collector API (env ONEMON_ENDPOINT)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = parser.add_subparsers(dest="object", required=True)
    host = sub.add_parser("host").add_subparsers(dest="action", required=True)
    host.add_parser("list")
    host.add_parser("show").add_argument("id", type=int)
    vm = sub.add_parser("vm").add_subparsers(dest="action", required=True)
    vm.add_parser("list")
    vm.add_parser("show").add_argument("id", type=int)
    sub.add_parser("health")
    args = parser.parse_args(argv)

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
