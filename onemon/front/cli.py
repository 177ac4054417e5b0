"""``onemon``: hosts and VMs over the front's XML-RPC API (or the collector's, ``--endpoint``).

Endpoint: ``--xmlrpc``, ``$ONE_XMLRPC``, ``~/.one/one_endpoint``, else http://localhost:2633/RPC2.
Credentials: ``--user``/``--password``, the file ``$ONE_AUTH`` names, else ``~/.one/one_auth``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onemon.front import cli_json, cli_views
from onemon.front.cli_render import watch
from onemon.front.cli_rpc import Client, CliError, endpoint, session, to_data

HOST_STATUS = {"enable": 0, "disable": 1, "offline": 2}
WATCHABLE = {"list", "monitoring"}


def parser() -> argparse.ArgumentParser:
    """The command line."""
    top = argparse.ArgumentParser(prog="onemon", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    top.add_argument("--xmlrpc", help="front's XML-RPC endpoint (env ONE_XMLRPC)")
    top.add_argument("--user", help="user name (with --password; else ONE_AUTH or ~/.one/one_auth)")
    top.add_argument("--password", help="password for --user")
    top.add_argument("--endpoint", default=os.environ.get("ONEMON_ENDPOINT"),
                     help="use the collector's JSON API instead (env ONEMON_ENDPOINT; "
                          f"health always does, default {cli_json.DEFAULT_ENDPOINT})")  # fmt: skip
    top.add_argument("--token-file", type=Path, default=cli_json.DEFAULT_TOKEN_FILE,
                     help="collector admin token for changes over --endpoint "
                          "(env ONEMON_TOKEN wins)")  # fmt: skip
    top.add_argument("--json", action="store_true", help="print JSON for scripts")
    sub = top.add_subparsers(dest="object", required=True)
    host = sub.add_parser("host", help="hosts").add_subparsers(dest="action", required=True)
    _watchable(host.add_parser("list", help="all hosts"))
    host.add_parser("show", help="one host").add_argument("id", type=int)
    create = host.add_parser("create", help="register a host")
    create.add_argument("name")
    create.add_argument("--im-mad", "-i", default="kvm")
    create.add_argument("--vm-mad", "-v", default=None, help="default: the IM driver")
    create.add_argument("--cluster", type=int, default=-1)
    create.add_argument("--id", type=int, dest="host_id", help="host id (--endpoint only)")
    for action in ("delete", "enable", "disable", "offline"):
        host.add_parser(action, help=f"{action} a host").add_argument("id", type=int)
    monitoring = host.add_parser("monitoring", help="a host's monitoring records")
    monitoring.add_argument("id", type=int)
    _watchable(monitoring)
    vm = sub.add_parser("vm", help="virtual machines").add_subparsers(dest="action", required=True)
    _watchable(vm.add_parser("list", help="all VMs"))
    vm.add_parser("show", help="one VM").add_argument("id", type=int)
    vm_mon = vm.add_parser("monitoring", help="a VM's monitoring records")
    vm_mon.add_argument("id", type=int)
    _watchable(vm_mon)
    sub.add_parser("health", help="the collector's own figures (JSON API)")
    return top


def _watchable(command: argparse.ArgumentParser) -> None:
    command.add_argument("--watch", nargs="?", type=float, const=2.0, default=None,
                         metavar="SECONDS", help="refresh every SECONDS (default 2)")  # fmt: skip
    command.add_argument("--count", type=int, default=None, help="with --watch: stop after N")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``onemon``."""
    args = parser().parse_args(argv)
    try:
        return run(args)
    except CliError as exc:
        raise SystemExit(str(exc)) from None  # the message on stderr, exit status 1


def run(args: argparse.Namespace) -> int:
    """Carry out one command."""
    if args.object == "health" and not args.endpoint:
        args.endpoint = cli_json.DEFAULT_ENDPOINT
    if args.endpoint:
        render = _json_api(args)
    else:
        render = _xmlrpc(args, Client(endpoint(args.xmlrpc), session(args.user, args.password)))
    if render is None:
        return 0
    if getattr(args, "watch", None) is not None:
        watch(render, args.watch, args.count, sys.stdout)
    else:
        print(render())
    return 0


def _json_api(args: argparse.Namespace) -> Callable[[], str] | None:
    if args.object == "host" and args.action in ("create", "delete", *HOST_STATUS):
        print(json.dumps(cli_json.change_host(args), indent=2, sort_keys=True))
        return None

    def render() -> str:
        """One refresh of the command's output."""
        data, text = cli_json.render(args)
        return json.dumps(data, indent=2, sort_keys=True) if args.json else text

    return render


def _xmlrpc(args: argparse.Namespace, client: Client) -> Callable[[], str] | None:
    action = args.action
    if args.object == "host" and action in ("create", "delete", *HOST_STATUS):
        result = _change_host(args, client)
        if args.json:
            print(json.dumps({"ID": result}))
        elif action == "create":
            print(f"ID: {result}")
        return None
    reads: dict[tuple[str, str], tuple[Callable[[], ET.Element], Callable[[ET.Element], str]]] = {
        ("host", "list"): (lambda: client.document("one.hostpool.info"), cli_views.host_list),
        ("host", "show"): (lambda: client.document("one.host.info", args.id), cli_views.host_show),
        ("host", "monitoring"): (lambda: client.document("one.host.monitoring", args.id),
                                 cli_views.host_monitoring),
        ("vm", "list"): (lambda: client.document("one.vmpool.info", -2, -1, -1, -1),
                         cli_views.vm_list),
        ("vm", "show"): (lambda: client.document("one.vm.info", args.id), cli_views.vm_show),
        ("vm", "monitoring"): (lambda: client.document("one.vm.monitoring", args.id),
                               cli_views.vm_monitoring),
    }  # fmt: skip
    fetch, view = reads[(args.object, action)]

    def render() -> str:
        """One refresh of the command's output."""
        document = fetch()
        if args.json:
            return json.dumps({document.tag: to_data(document)}, indent=2)
        return view(document)

    return render


def _change_host(args: argparse.Namespace, client: Client) -> Any:
    """host create / delete / enable / disable / offline over XML-RPC; the host id."""
    if args.action == "create":
        if args.host_id is not None:
            raise CliError("onemon: --id needs --endpoint (the front allocates ids)")
        vm_mad = args.vm_mad or args.im_mad
        return client.call("one.host.allocate", args.name, args.im_mad, vm_mad, args.cluster)
    if args.action == "delete":
        return client.call("one.host.delete", args.id)
    return client.call("one.host.status", args.id, HOST_STATUS[args.action])


if __name__ == "__main__":
    sys.exit(main())
