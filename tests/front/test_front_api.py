"""Each method's behaviour and OpenNebula's errors: credentials, methods, types, unknown ids."""

from __future__ import annotations

import asyncio
import xmlrpc.client
from typing import Any

import pytest

from onemon.collector.model import HostState
from onemon.wire.model import MessageType
from tests.front.harness import Stack

AUTHENTICATION, AUTHORIZATION, NO_EXISTS, ACTION = 0x100, 0x200, 0x400, 0x800
RPC_API, INTERNAL, ALLOCATE = 0x1000, 0x2000, 0x4000


async def failure(stack: Stack, method: str, *params: Any, session: str | None = None) -> list[Any]:
    answer = await stack.call(method, *params, session=session)
    assert answer[0] is False and len(answer) == 5 and answer[4] == -1, answer
    assert answer[1].startswith(f"[{method}] ")
    return list(answer[1:4])


async def fault(stack: Stack, method: str, *params: Any) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as raised:
        await stack.call(method, *params)
    return raised.value


@pytest.mark.parametrize(
    "session",
    ["oneadmin:wrong", "oneadmin", "nobody:x", "", "oneadmin:", "bad name:x", "a" * 5000],
)
async def test_bad_credentials_are_authentication_errors(stack: Stack, session: str) -> None:
    assert await failure(stack, "one.hostpool.info", session=session) == [
        "[one.hostpool.info] User couldn't be authenticated, aborting call.",
        AUTHENTICATION,
        -1,
    ]


async def test_protocol_faults_as_xmlrpc_c(stack: Stack) -> None:
    unknown = await fault(stack, "one.vm.deploy", 1, 2)
    assert (unknown.faultCode, unknown.faultString) == (-506, "Method 'one.vm.deploy' not defined")
    missing = await fault(stack, "one.host.info")
    assert (missing.faultCode, missing.faultString) == (-501, "Not enough parameters")
    wrong = await fault(stack, "one.host.info", "3")
    assert wrong.faultString == "Parameter that is supposed to be integer is not"
    boolean = await fault(stack, "one.host.info", True)
    assert boolean.faultCode == -501
    text = await fault(stack, "one.host.rename", 3, 5)
    assert text.faultString == "Parameter that is supposed to be a string is not"
    flag = await fault(stack, "one.host.info", 3, 1)
    assert flag.faultString == "Parameter that is supposed to be boolean is not"
    pool = await fault(stack, "one.vmpool.info", -2, -1, -1)
    assert pool.faultString == "Not enough parameters"

    def no_session() -> Any:
        return getattr(xmlrpc.client.ServerProxy(stack.url), "one.hostpool.info")()

    with pytest.raises(xmlrpc.client.Fault) as raised:
        await asyncio.to_thread(no_session)
    assert raised.value.faultCode == -501


async def test_unknown_ids_are_no_exists(stack: Stack) -> None:
    for method, params, text in [
        ("one.host.info", (99,), "Error getting host [99]."),
        ("one.host.monitoring", (99,), "Error getting host [99]."),
        ("one.host.delete", (99,), "Error getting host [99]."),
        ("one.host.status", (99, 1), "Error getting host [99]."),
        ("one.host.update", (99, "A=1"), "Error getting host [99]."),
        ("one.host.rename", (99, "x1"), "Error getting host [99]."),
        ("one.vm.info", (99,), "Error getting virtual machine [99]."),
        ("one.vm.monitoring", (99,), "Error getting virtual machine [99]."),
    ]:
        assert await failure(stack, method, *params) == [f"[{method}] {text}", NO_EXISTS, 99]


async def test_allocate_registers_with_the_collector(stack: Stack) -> None:
    host_id = await stack.ok("one.host.allocate", "node5.example.com", "kvm", "kvm", -1)
    assert host_id == 5 and stack.collector.state.hosts[5].name == "node5.example.com"
    info = await stack.ok("one.host.info", host_id)
    assert "<NAME>node5.example.com</NAME><STATE>0</STATE>" in info
    assert await failure(stack, "one.host.allocate", "node5.example.com", "kvm", "kvm") == [
        "[one.host.allocate] Error allocating a new host. NAME is already taken by HOST 5.",
        ALLOCATE, -1,
    ]  # fmt: skip
    for name, im, vm, reason in [
        ("x", "kvm", "kvm", "Invalid NAME, it must be a host name"),
        ("a/b", "kvm", "kvm", "Invalid NAME, char '/' is not allowed"),
        ("a\tb", "kvm", "kvm", "Invalid NAME, char '\\x09' is not allowed"),
        ("-node", "kvm", "kvm", "Invalid NAME, it must be a host name"),
        ("node6", "", "kvm", "IM_MAD_NAME cannot be empty."),
        ("node6", "kvm", "", "VMM_MAD_NAME cannot be empty."),
        ("node6", "k m", "kvm", "IM_MAD_NAME must be"),
    ]:
        message, code, _ = await failure(stack, "one.host.allocate", name, im, vm, -1)
        assert code == ALLOCATE and reason in message, message
    assert await failure(stack, "one.host.allocate", "node6", "kvm", "kvm", 100) == [
        "[one.host.allocate] Error getting cluster [100].",
        NO_EXISTS,
        100,
    ]
    assert 6 not in stack.collector.state.hosts


async def test_status_changes_what_the_collector_expects(stack: Stack) -> None:
    hosts = stack.collector.state.hosts
    assert await stack.ok("one.host.status", 3, 1) == 3
    assert hosts[3].state is HostState.DISABLED
    assert "<STATE>4</STATE>" in await stack.ok("one.host.info", 3)
    assert await stack.ok("one.host.status", 3, 2) == 3
    assert hosts[3].state is HostState.OFFLINE
    await stack.send(3, MessageType.BEACON_HOST, {})
    assert stack.collector.health.rejected["host_offline"] >= 1
    assert await stack.ok("one.host.status", 3, 0) == 3
    assert hosts[3].state in (HostState.INIT, HostState.MONITORED)
    assert await failure(stack, "one.host.status", 3, 7) == [
        "[one.host.status] Wrong status code",
        INTERNAL,
        3,
    ]


async def test_delete_refused_with_running_vms_then_done(stack: Stack) -> None:
    assert await failure(stack, "one.host.delete", 3) == [
        "[one.host.delete] Cannot delete host. Can not remove a host with running VMs",
        ACTION, 3,
    ]  # fmt: skip
    await stack.send(3, MessageType.STATE_VM, {"VM": [{"ID": 12, "STATE": "POWEROFF"}]})
    assert await stack.ok("one.host.delete", 3) == 3
    assert 3 not in stack.collector.state.hosts
    assert (await failure(stack, "one.host.info", 3))[1] == NO_EXISTS
    assert "<ID>3</ID>" not in await stack.ok("one.hostpool.info")


async def test_update_keeps_user_attributes_over_probe_values(stack: Stack) -> None:
    assert await stack.ok("one.host.update", 3, 'LABELS="gpu,ssd"\nRESERVED_CPU="100"', 0) == 3
    info = await stack.ok("one.host.info", 3)
    assert "<LABELS><![CDATA[gpu,ssd]]></LABELS>" in info
    assert "<MAX_CPU>700</MAX_CPU>" in info
    xml = "<TEMPLATE><NOTE><![CDATA[hi]]></NOTE><ARCH><![CDATA[x86_64]]></ARCH></TEMPLATE>"
    assert await stack.ok("one.host.update", 3, xml, 1) == 3
    info = await stack.ok("one.host.info", 3)
    assert "<LABELS>" in info and "<NOTE><![CDATA[hi]]></NOTE>" in info
    system = {"ARCH": "aarch64", "TOTALCPU": 800, "TOTALMEMORY": 16303048}
    await stack.send(3, MessageType.SYSTEM_HOST, system)
    info = await stack.ok("one.host.info", 3)
    assert "<ARCH><![CDATA[aarch64]]></ARCH>" in info  # ARCH was not pinned by the update
    assert await stack.ok("one.host.update", 3, "NOTE=bye", 0) == 3
    info = await stack.ok("one.host.info", 3)
    assert "LABELS" not in info and "<NOTE><![CDATA[bye]]></NOTE>" in info
    assert "<MAX_CPU>800</MAX_CPU>" in info
    assert await failure(stack, "one.host.update", 3, "A=1", 2) == [
        "[one.host.update] Wrong update type",
        RPC_API,
        3,
    ]
    message, code, _ = await failure(stack, "one.host.update", 3, 'A="unterminated', 0)
    assert code == INTERNAL and message.startswith("[one.host.update] Cannot update template. ")
    message, code, _ = await failure(stack, "one.host.update", 3, "<!DOCTYPE x><T/>", 0)
    assert code == INTERNAL


async def test_rename(stack: Stack) -> None:
    assert await stack.ok("one.host.rename", 3, "node3") == 3
    assert await stack.ok("one.host.rename", 3, "compute3") == 3
    assert "<NAME>compute3</NAME>" in await stack.ok("one.host.info", 3)
    assert "<HOSTNAME><![CDATA[compute3]]></HOSTNAME>" in await stack.ok(
        "one.vmpool.info", -2, -1, -1, -1
    )
    assert await failure(stack, "one.host.rename", 3, "node4") == [
        "[one.host.rename] host cannot be renamed to node4 because it collides with host 4",
        ACTION, 3,
    ]  # fmt: skip
    assert (await failure(stack, "one.host.rename", 3, "a;b"))[1] == ACTION
    message, code, _ = await failure(stack, "one.host.allocate", "compute3", "kvm", "kvm")
    assert code == ALLOCATE and "taken by HOST 3" in message
    assert await stack.ok("one.host.rename", 3, "node3") == 3
    assert "<NAME>node3</NAME>" in await stack.ok("one.host.info", 3)


async def test_vmpool_filters_ranges_and_states(stack: Stack) -> None:
    async def ids(*params: Any) -> list[int]:
        body = await stack.ok("one.vmpool.info", *params)
        return [int(part.split("</ID>")[0]) for part in body.split("<VM><ID>")[1:]]

    assert await ids(-2, -1, -1, -1) == [12, 13, 20]
    assert await ids(-1, -1, -1, -1) == [12, 13, 20]
    assert await ids(-3, -1, -1, -1) == [12, 13, 20]
    assert await ids(0, -1, -1, -1) == [12, 13, 20]
    assert await ids(7, -1, -1, -1) == []
    assert await ids(-2, 13, -1, -1) == [13, 20]
    assert await ids(-2, 12, 13, -1) == [12, 13]
    assert await ids(-2, 1, -2, -1) == [13, 20]  # offset 1, page size 2
    assert await ids(-2, 0, -1, 8) == [13]
    assert await ids(-2, -1, -1, 3) == [12, 20]
    assert await ids(-2, -1, -1, -2) == [12, 13, 20]
    assert await failure(stack, "one.vmpool.info", -5, -1, -1, -1) == [
        "[one.vmpool.info] Incorrect filter_flag",
        RPC_API,
        -1,
    ]
    assert await failure(stack, "one.vmpool.info", -2, -1, -1, 12) == [
        "[one.vmpool.info] Incorrect state filter 12",
        RPC_API,
        -1,
    ]
    assert (await failure(stack, "one.vmpool.info", -2, -1, -1, -1, "NAME=x"))[1] == INTERNAL
    assert await stack.ok("one.vmpool.info", -2, -1, -1, -1, "") is not None


async def test_pool_monitoring_windows(stack: Stack) -> None:
    await stack.send(3, MessageType.MONITOR_VM, {"VM": [{"ID": 12, "MONITOR": {"CPU": 50}}]})
    await stack.send(3, MessageType.MONITOR_HOST, {"FREECPU": 600})

    async def count(method: str, *params: int) -> int:
        return str(await stack.ok(method, *params)).count("<MONITORING>")

    assert await count("one.vmpool.monitoring", -2) == 3  # 12 twice, 13 once
    assert await count("one.vmpool.monitoring", -2, -1) == 3
    assert await count("one.vmpool.monitoring", -2, 0) == 2
    assert await count("one.vmpool.monitoring", -2, 3600) == 3
    assert await count("one.vmpool.monitoring", -2, -7) == 0
    assert await count("one.vmpool.monitoring", 5) == 0
    assert await count("one.hostpool.monitoring") == 2
    assert await count("one.hostpool.monitoring", 0) == 1
    assert await count("one.hostpool.monitoring", 3600) == 2
    assert await count("one.hostpool.monitoring", -3) == 0
    assert (await failure(stack, "one.vmpool.monitoring", -9))[1] == RPC_API


async def test_failures_never_leak_internals(stack: Stack) -> None:
    await stack.stop_collector()  # its API is gone: host changes cannot be made
    message, code, _ = await failure(stack, "one.host.status", 3, 1)
    assert (message, code) == ("[one.host.status] Cannot reach the monitoring collector.", INTERNAL)
    (stack.tmp / "c.db").rename(stack.tmp / "moved.db")
    stack.front_cache_clear()
    message, code, _ = await failure(stack, "one.hostpool.info")
    assert (message, code) == ("[one.hostpool.info] Cannot read the monitoring store.", INTERNAL)


async def test_users_outside_group_zero_see_nothing(stack: Stack) -> None:
    from onemon.front.auth.passwords import hash_password
    from onemon.front.db.users import UserStore

    assert stack.front.context is not None
    users = UserStore(stack.front.context.overrides.engine)
    await asyncio.to_thread(users.create, 5, "alice", hash_password("secret"), 100)
    session = "alice:secret"
    answer = await stack.call("one.hostpool.info", session=session)
    assert answer == [True, "<HOST_POOL></HOST_POOL>", 0]
    answer = await stack.call("one.vmpool.info", -2, -1, -1, -1, session=session)
    assert answer == [True, "<VM_POOL></VM_POOL>", 0]
    assert await failure(stack, "one.host.info", 3, session=session) == [
        "[one.host.info] User [5] : Not authorized to perform USE HOST [3].",
        AUTHORIZATION,
        -1,
    ]
    assert (await stack.call("one.system.version", session=session))[0] is True
