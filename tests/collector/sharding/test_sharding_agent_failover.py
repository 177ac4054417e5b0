"""The agent's side of redirects: where it goes next, and when it gives up following."""

from __future__ import annotations

from onemon.agent.sender.address import Address
from onemon.agent.sender.failover import Failover
from onemon.agent.sender.redirect import MAX_REDIRECTS


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_redirect_is_tried_first_until_it_fails_then_the_list_in_order() -> None:
    clock = Clock()
    failover = Failover(["a:1", "b:2"], backoff=(1, 2), clock=clock)
    leader = Address("c", 3)
    index = failover.redirect_to(leader)
    assert index == 2 and failover.collectors[2].address == leader
    assert failover.choose() == (2, 0.0)
    failover.use(2)
    assert failover.address == leader
    failover.failed(2)
    assert failover.redirect is None and failover.choose() == (0, 0.0)
    assert failover.redirect_to(Address("d", 4)) == 2  # one extra entry, replaced
    assert len(failover.collectors) == 3
    assert failover.redirect_to(Address("b", 2)) == 1  # a listed one is used as it is
    assert len(failover.collectors) == 2 and failover.choose() == (1, 0.0)
    assert failover.listed(1) and not failover.listed(2)


def test_redirects_in_a_circle_stop_after_a_few_and_an_ok_resets_the_count() -> None:
    failover = Failover(["a:1", "b:2"], clock=Clock())
    for _ in range(MAX_REDIRECTS):
        assert failover.redirect_to(Address("b", 2)) is not None
    assert failover.redirect_to(Address("a", 1)) is None and failover.redirect is None
    failover.succeeded(0)
    assert failover.redirect_to(Address("b", 2)) == 1


def test_no_leader_pauses_a_collector_without_growing_its_back_off() -> None:
    clock = Clock()
    failover = Failover(["a:1", "b:2"], backoff=(1, 2, 4), clock=clock)
    for _ in range(5):
        assert failover.pause(0) == 1
    assert failover.collectors[0].backoff.failures == 0
    assert failover.choose() == (1, 0.0)
    failover.pause(1)
    index, wait = failover.choose()
    assert index in (0, 1) and 0 < wait <= 1
    clock.now += 1
    assert failover.choose() == (0, 0.0)
