"""Method signatures: mandatory and optional parameters, type-checked as xmlrpc-c does (-501)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from onemon.front.rpc.errors import TYPE_ERROR, Fault

Kind = Literal["int", "str", "bool"]
_NAMES = {"int": "integer", "str": "a string", "bool": "boolean"}
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter after the session; ``default`` makes it optional (oned's defaults)."""

    name: str
    kind: Kind
    default: Any = None
    optional: bool = False


def opt(name: str, kind: Kind, default: Any) -> Param:
    """An optional trailing parameter."""
    return Param(name, kind, default, optional=True)


def bind(values: tuple[Any, ...], signature: tuple[Param, ...]) -> list[Any]:
    """The call's values after the session, typed, defaults filled; extra values are ignored."""
    bound: list[Any] = []
    for index, param in enumerate(signature):
        if index >= len(values):
            if not param.optional:
                raise Fault(TYPE_ERROR, "Not enough parameters")
            bound.append(param.default)
            continue
        bound.append(check(values[index], param.kind))
    return bound


def check(value: Any, kind: Kind) -> Any:
    """``value`` when it has XML-RPC type ``kind``, else the -501 fault."""
    ok = (
        (kind == "int" and type(value) is int and INT_MIN <= value <= INT_MAX)
        or (kind == "str" and type(value) is str)
        or (kind == "bool" and type(value) is bool)
    )
    if not ok:
        raise Fault(TYPE_ERROR, f"Parameter that is supposed to be {_NAMES[kind]} is not")
    return value
