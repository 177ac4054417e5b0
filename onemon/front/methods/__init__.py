"""The API methods, grouped by object; :func:`all_methods` lists them for the dispatcher."""

from __future__ import annotations

from onemon.front.methods import host as host
from onemon.front.methods import hostpool as hostpool
from onemon.front.methods import system as system
from onemon.front.methods import vm as vm
from onemon.front.methods import vmpool as vmpool
from onemon.front.methods.context import Context
from onemon.front.rpc.dispatch import Method


def all_methods(ctx: Context) -> list[Method]:
    """Every method served, bound to ``ctx``."""
    return [
        *system.methods(ctx),
        *host.methods(ctx),
        *hostpool.methods(ctx),
        *vm.methods(ctx),
        *vmpool.methods(ctx),
    ]
