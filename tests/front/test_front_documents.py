"""Every document the front serves is valid against OpenNebula's XSDs and parses in pyone."""

from __future__ import annotations

from decimal import Decimal

import pyone
from lxml import etree

from onemon.wire.model import MessageType
from tests.front.harness import Stack
from tests.front.schemas import errors, host_record_errors


async def test_host_documents_validate_and_carry_share_numa_pci_wilds_zombies(
    stack: Stack,
) -> None:
    pool = await stack.ok("one.hostpool.info")
    assert errors(pool, "host_pool") == []
    host = await stack.ok("one.host.info", 3)
    assert errors(host, "host") == []
    parsed = pyone.bindings.parseString(host.encode())
    share = parsed.HOST_SHARE
    assert (share.TOTAL_CPU, share.TOTAL_MEM, share.MAX_CPU) == (800, 16303048, 800)
    assert (share.RUNNING_VMS, share.CPU_USAGE, share.MEM_USAGE) == (1, 200, 1048576)
    assert [d.ID for d in share.DATASTORES.DS] == [0, 1]
    assert share.DATASTORES.DS[1].REPLICA_IMAGES == 3
    assert (share.DATASTORES.MAX_DISK, share.DATASTORES.FREE_DISK) == (102400, 51200)
    pci = share.PCI_DEVICES.PCI[0]
    assert (pci.ADDRESS, pci.DEVICE_NAME, pci.VMID) == ("0000:3b:00:0", "TU104GL [Tesla T4]", -1)
    nodes = share.NUMA_NODES.NODE
    assert [n.NODE_ID for n in nodes] == [0, 1]
    assert [c.CPUS for c in nodes[0].CORE] == ["0:-1,4:-1", "1:-1,5:-1"]
    assert (nodes[0].MEMORY.TOTAL, nodes[0].HUGEPAGE[0].PAGES) == (8151524, 16)
    template = parsed.TEMPLATE
    for moved in ("DS", "PCI", "CORE", "HUGEPAGE", "MEMORY_NODE", "1BAD"):
        assert moved not in template
    assert template["MODELNAME"] == "Xeon <E5> & co ]]> end"
    assert template["VM"]["VM_NAME"] == "wild1" and template["TOTAL_WILDS"] == "1"
    assert (template["ZOMBIES"], template["TOTAL_ZOMBIES"]) == ("20", "1")
    assert parsed.VMS.ID == [12, 13]
    mon = parsed.MONITORING
    assert (mon.ID, mon.CAPACITY.FREE_CPU, mon.CAPACITY.USED_MEMORY) == (3, 700, 8151524)
    assert (mon.SYSTEM.NETRX, mon.SYSTEM.NETTX) == (123456, 654321)
    assert mon.NUMA_NODE[0].MEMORY.USED == 4151524


async def test_offline_and_unmonitored_hosts_validate(stack: Stack) -> None:
    assert await stack.ok("one.host.status", 3, 2) == 3
    offline = await stack.ok("one.host.info", 3)
    assert errors(offline, "host") == []
    parsed = pyone.bindings.parseString(offline.encode())
    assert parsed.STATE == 8 and parsed.HOST_SHARE.TOTAL_CPU == 0
    assert "TOTALCPU" not in parsed.TEMPLATE and "ARCH" in parsed.TEMPLATE
    bare = await stack.ok("one.host.info", 4)
    assert errors(bare, "host") == []
    assert pyone.bindings.parseString(bare.encode()).MONITORING.TIMESTAMP is None


async def test_host_monitoring_records_have_oned_shape(stack: Stack) -> None:
    await stack.send(3, MessageType.MONITOR_HOST, {"FREECPU": 650.4, "USEDCPU": 149.6})
    host = await stack.ok("one.host.info", 3)
    for method, params in (("one.host.monitoring", (3,)), ("one.hostpool.monitoring", ())):
        data = await stack.ok(method, *params)
        records = etree.fromstring(data.encode()).findall("MONITORING")
        assert len(records) == 2
        for record in records:
            assert host_record_errors(host, record) == []
        parsed = pyone.bindings.parseString(data.encode())
        last = parsed.MONITORING[-1].gds_elementtree_node_
        assert last.findtext("CAPACITY/FREE_CPU") == "650"
        assert last.findtext("CAPACITY/FREE_MEMORY") == "8151524"  # merged, as onemonitord


async def test_vm_documents_validate_and_carry_what_the_node_sent(stack: Stack) -> None:
    pool = await stack.ok("one.vmpool.info", -2, -1, -1, -1)
    assert errors(pool, "vm_pool") == []
    parsed = pyone.bindings.parseString(pool.encode())
    assert [v.ID for v in parsed.VM] == [12, 13, 20]
    first = parsed.VM[0]
    assert (first.STATE, first.LCM_STATE, first.DEPLOY_ID) == (3, 3, "uuid-12")
    assert first.HISTORY_RECORDS.HISTORY[0].HOSTNAME == "node3"
    assert first.MONITORING.gds_elementtree_node_.findtext("CPU") == "12.5"
    for vm_id in (12, 13, 20):
        body = await stack.ok("one.vm.info", vm_id)
        assert errors(body, "vm") == [], vm_id
    vm = pyone.bindings.parseString((await stack.ok("one.vm.info", 12)).encode())
    assert Decimal("12.5") == vm.MONITORING.CPU and vm.MONITORING.MEMORY == 524288
    assert vm.MONITORING.DISK_SIZE[0].SIZE == 10240
    assert vm.TEMPLATE["VCPU"] == "2" and vm.TEMPLATE["MEMORY"] == "1024"
    assert vm.HISTORY_RECORDS.HISTORY[0].HID == 3
    poweroff = pyone.bindings.parseString((await stack.ok("one.vm.info", 13)).encode())
    assert (poweroff.STATE, poweroff.LCM_STATE) == (8, 0)


async def test_vm_monitoring_data_validates(stack: Stack) -> None:
    await stack.send(3, MessageType.MONITOR_VM, {"VM": [{"ID": 12, "MONITOR": {"CPU": 50}}]})
    for method, params in (
        ("one.vm.monitoring", (12,)),
        ("one.vmpool.monitoring", (-2,)),
        ("one.vmpool.monitoring", (-2, 0)),
    ):
        data = await stack.ok(method, *params)
        assert errors(data, "monitoring_data") == [], method
    history = pyone.bindings.parseString((await stack.ok("one.vm.monitoring", 12)).encode())
    assert [r.CPU for r in history.MONITORING] == [Decimal("12.5"), Decimal("50")]
    assert history.MONITORING[1].NETRX == 1000  # merged over the previous record
    assert history.MONITORING[0].DISKRDBYTES == 1048576


async def test_system_config_validates(stack: Stack) -> None:
    config = await stack.ok("one.system.config")
    assert errors(config, "opennebula_configuration") == []
    assert await stack.ok("one.system.version") == "7.5.80"
