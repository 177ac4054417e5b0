"""Liveness: when agents are started, restarted and stopped, and what the collector is told."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from onemon.front.im.api import ApiError, HostView
from onemon.front.im.driver import Result
from onemon.front.im.liveness import Action, Manager, Track, decide, silent_since_start
from onemon.front.im.node import Host
from onemon.front.im.reply import StartReply

INTERVAL = 180.0


def view(state: str = "MONITORED", last_seen: float = 1000.0, host_id: int = 1) -> HostView:
    return HostView(host_id, f"node{host_id}", "kvm", state, last_seen)


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (None, view("INIT", 0), (Action.START, "new host")),
        (view("DISABLED"), view("INIT"), (Action.START, "host enabled")),
        (view("ERROR"), view("INIT"), (Action.START, "host enabled")),
        (view("OFFLINE"), view("INIT"), (Action.START, "host enabled")),
        (view("OFFLINE"), view("DISABLED"), (Action.START, "host back from offline")),
        (view("MONITORED"), view("OFFLINE"), (Action.STOP, "host is offline")),
        (view("OFFLINE"), view("OFFLINE", 0), None),
        (None, view("OFFLINE", 0), None),
        (view("MONITORED"), view("MONITORED", 1000), None),
        (None, view("MONITORED", 1000), None),  # the front restarted: nothing to do yet
        (view("INIT"), view("INIT", 0), None),  # started already, waiting for its report
    ],
)
def test_state_transitions(
    previous: HostView | None, current: HostView, expected: tuple[Action, str] | None
) -> None:
    assert decide(current, previous, Track(last_attempt=1000.0), 1100.0, INTERVAL) == expected


def test_a_silent_host_is_restarted_counting_from_its_last_message_or_attempt() -> None:
    host = view("MONITORED", last_seen=1000)
    assert decide(host, host, Track(), 1179, INTERVAL) is None
    assert decide(host, host, Track(), 1180, INTERVAL) == (Action.START, "no message for 180 s")
    assert decide(host, host, Track(last_attempt=1100), 1200, INTERVAL) is None
    disabled = view("DISABLED", last_seen=1000)  # OpenNebula monitors disabled hosts too
    assert decide(disabled, disabled, Track(), 2000, INTERVAL) is not None
    error = view("ERROR", last_seen=0)
    assert decide(error, error, Track(last_attempt=1000), 1180, INTERVAL) == (
        Action.START, "no message for ever",
    )  # fmt: skip


def test_silent_since_start() -> None:
    assert not silent_since_start(view(last_seen=10), Track())
    assert silent_since_start(view(last_seen=10), Track(started_at=20))
    assert not silent_since_start(view(last_seen=30), Track(started_at=20))


class FakeDriver:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.fail: dict[int, str] = {}

    async def start(self, host: Host) -> Result:
        self.calls.append(("start", host.id))
        if host.id in self.fail:
            return Result(host, "start", False, self.fail[host.id])
        return Result(host, "start", True, reply=StartReply(1, {"SYSTEM_HOST": {"VERSION": "1"}}))

    async def stop(self, host: Host) -> Result:
        self.calls.append(("stop", host.id))
        return Result(host, "stop", True)


class FakeApi:
    def __init__(self, *hosts: HostView) -> None:
        self.hosts_now = list(hosts)
        self.reports: list[tuple[int, str, str]] = []
        self.down = False

    async def hosts(self) -> list[HostView]:
        if self.down:
            raise ApiError("connection refused")
        return list(self.hosts_now)

    async def report(self, host_id: int, action: str, message: str = "") -> bool:
        self.reports.append((host_id, action, message))
        return True

    def set(self, host_id: int, **changes: Any) -> None:
        self.hosts_now = [replace(h, **changes) if h.id == host_id else h for h in self.hosts_now]


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def manager(api: FakeApi, driver: FakeDriver, clock: Clock) -> Manager:
    return Manager(driver, api, INTERVAL, 15, clock)  # type: ignore[arg-type]


async def check(m: Manager) -> None:
    await m.check()
    await m.wait_idle()


async def test_new_host_is_started_and_reported_monitored() -> None:
    api, driver, clock = FakeApi(view("INIT", 0)), FakeDriver(), Clock()
    m = manager(api, driver, clock)
    await check(m)
    assert driver.calls == [("start", 1)] and api.reports == [(1, "monitored", "")]
    await check(m)  # still INIT until its SYSTEM_HOST arrives: not started twice
    assert driver.calls == [("start", 1)]


async def test_failed_start_reports_error_with_the_driver_text_and_is_retried_later() -> None:
    api, driver, clock = FakeApi(view("INIT", 0)), FakeDriver(), Clock()
    driver.fail[1] = "Cannot start the agent on node1: Connection refused"
    m = manager(api, driver, clock)
    await check(m)
    assert api.reports == [(1, "error", "Cannot start the agent on node1: Connection refused")]
    api.set(1, state="ERROR")
    clock.now += INTERVAL - 1
    await check(m)
    assert driver.calls == [("start", 1)]
    clock.now += 1
    del driver.fail[1]
    await check(m)
    assert driver.calls == [("start", 1), ("start", 1)] and api.reports[-1][1] == "monitored"


async def test_silent_host_is_restarted_and_stays_monitored() -> None:
    clock = Clock()
    api, driver = FakeApi(view("MONITORED", clock.now)), FakeDriver()
    m = manager(api, driver, clock)
    await check(m)
    assert driver.calls == []
    clock.now += INTERVAL
    await check(m)
    assert driver.calls == [("start", 1)] and api.reports == [(1, "monitored", "")]


async def test_agent_that_starts_but_never_reaches_the_collector_goes_to_error() -> None:
    clock = Clock()
    api, driver = FakeApi(view("MONITORED", clock.now - INTERVAL)), FakeDriver()
    m = manager(api, driver, clock)
    await check(m)  # silent: restarted, reported monitored
    clock.now += INTERVAL  # still nothing from it
    await check(m)
    kinds = [r[1] for r in api.reports]
    assert kinds == ["monitored", "error"] and "none of its messages" in api.reports[1][2]
    assert driver.calls == [("start", 1), ("start", 1)]  # restarts go on, never "monitored" again
    api.set(1, last_seen=clock.now + 1)  # its messages arrive at last
    clock.now += INTERVAL + 2
    await check(m)
    assert [r[1] for r in api.reports][-1] == "monitored"


async def test_offline_and_deleted_hosts_get_their_agent_stopped() -> None:
    clock = Clock()
    api, driver = (
        FakeApi(view("MONITORED", clock.now), view("MONITORED", clock.now, 2)),
        FakeDriver(),
    )
    m = manager(api, driver, clock)
    await check(m)
    api.set(1, state="OFFLINE")
    api.hosts_now = [h for h in api.hosts_now if h.id != 2]
    await check(m)
    assert sorted(driver.calls) == [("stop", 1), ("stop", 2)]
    clock.now += 10 * INTERVAL
    await check(m)  # offline hosts are left alone however long they are silent
    assert len(driver.calls) == 2
    api.set(1, state="INIT")
    await check(m)
    assert driver.calls[-1] == ("start", 1)


async def test_a_change_during_a_running_action_is_seen_when_it_ends() -> None:
    api, driver, clock = FakeApi(view("INIT", 0)), FakeDriver(), Clock()
    m = manager(api, driver, clock)
    await m.check()  # start launched, still running
    api.set(1, state="OFFLINE")
    await m.check()  # busy: judged later against the old reading
    await m.wait_idle()
    await check(m)
    assert driver.calls == [("start", 1), ("stop", 1)]


async def test_collector_down_means_no_action() -> None:
    api, driver = FakeApi(view("INIT", 0)), FakeDriver()
    api.down = True
    m = manager(api, driver, Clock())
    await check(m)
    assert driver.calls == []
