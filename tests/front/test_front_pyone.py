"""pyone 7.3.80, unchanged, against the front: every method parses and shows what nodes sent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import pyone
import pytest

from tests.front.harness import Stack

T = TypeVar("T")


async def run(function: Callable[[], T]) -> T:
    return await asyncio.to_thread(function)


def client(stack: Stack, session: str | None = None) -> Any:
    return pyone.OneServer(stack.url, session=session or stack.session)


async def test_every_method_through_pyone(stack: Stack) -> None:
    one = client(stack)
    assert await run(one.system.version) == "7.5.80"
    assert (await run(one.system.config)).DEFAULT_AUTH == ["default"]
    pool = await run(one.hostpool.info)
    assert [h.NAME for h in pool.HOST] == ["node3", "node4"]
    host = await run(lambda: one.host.info(3))
    assert pyone.HOST_STATES(host.STATE).name == "MONITORED"
    assert host.MONITORING.CAPACITY.FREE_CPU == 700
    assert (await run(lambda: one.host.info(3, True))).ID == 3
    records = (await run(lambda: one.host.monitoring(3))).MONITORING
    assert records[0].ID == 3
    assert records[0].gds_elementtree_node_.findtext("SYSTEM/NETRX") == "123456"
    assert len((await run(one.hostpool.monitoring)).MONITORING) == 1
    assert len((await run(lambda: one.hostpool.monitoring(0))).MONITORING) == 1

    vms = await run(lambda: one.vmpool.info(-2, -1, -1, -1))
    assert [v.ID for v in vms.VM] == [12, 13, 20]
    assert pyone.LCM_STATE(vms.VM[0].LCM_STATE).name == "RUNNING"
    vm = await run(lambda: one.vm.info(12))
    assert pyone.VM_STATE(vm.STATE).name == "ACTIVE"
    assert Decimal("12.5") == vm.MONITORING.CPU and vm.MONITORING.NETTX == 2000
    history = await run(lambda: one.vm.monitoring(12))
    assert history.MONITORING[0].MEMORY == 524288
    latest = await run(lambda: one.vmpool.monitoring(-2, 0))
    assert [r.ID for r in latest.MONITORING] == [12, 13]

    new = await run(lambda: one.host.allocate("node7", "kvm", "kvm", -1))
    assert isinstance(new, int)
    assert await run(lambda: one.host.status(new, pyone.HOST_STATUS.DISABLED)) == new
    assert (await run(lambda: one.host.info(new))).STATE == pyone.HOST_STATES.DISABLED
    assert await run(lambda: one.host.update(new, {"LABELS": "a"}, 1)) == new
    host7 = await run(lambda: one.host.info(new))
    assert host7.TEMPLATE["LABELS"] == "a"
    assert await run(lambda: one.host.update(new, host7.TEMPLATE, 1)) == new
    assert await run(lambda: one.host.rename(new, "node8")) == new
    assert (await run(lambda: one.host.info(new))).NAME == "node8"
    assert await run(lambda: one.host.delete(new)) == new
    with pytest.raises(pyone.OneNoExistsException, match=r"\[one.host.info\] Error getting host"):
        await run(lambda: one.host.info(new))


async def test_pyone_exceptions(stack: Stack) -> None:
    with pytest.raises(pyone.OneAuthenticationException):
        await run(client(stack, "oneadmin:nope").hostpool.info)
    one = client(stack)
    with pytest.raises(pyone.OneNoExistsException):
        await run(lambda: one.vm.info(99))
    with pytest.raises(pyone.OneApiException):
        await run(lambda: one.vmpool.info(-9, -1, -1, -1))
    with pytest.raises(pyone.OneInternalException):
        await run(lambda: one.host.status(3, 9))
    with pytest.raises(pyone.OneActionException):
        await run(lambda: one.host.delete(3))
    with pytest.raises(pyone.OneException, match="-506"):
        await run(lambda: one.vm.deploy(12, 3))
