"""One call: decode, find the method, check parameters, authenticate, run, encode."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from onemon.front.auth.session import Authenticator, Identity, SessionCache, split_session
from onemon.front.errors import Unavailable
from onemon.front.rpc import envelope
from onemon.front.rpc.errors import (
    NO_SUCH_METHOD,
    TYPE_ERROR,
    ErrorCode,
    Fault,
    RpcError,
    authentication,
)
from onemon.front.rpc.errors import internal as internal_error
from onemon.front.rpc.params import Param, bind

log = logging.getLogger("onemon.front.rpc")


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler knows about the call it serves."""

    method: str
    identity: Identity


Handler = Callable[..., Awaitable[Any]]
"""``handler(call, *params)`` → the success value (an int id or an XML document)."""


@dataclass(frozen=True, slots=True)
class Method:
    """An API method: its name, the parameters after the session, and its handler."""

    name: str
    signature: tuple[Param, ...]
    handler: Handler


class Dispatcher:
    """Turns request bodies into response bodies; nothing a client sends escapes as a crash."""

    def __init__(
        self, methods: Iterable[Method], authenticator: Authenticator, sessions: SessionCache
    ) -> None:
        self.methods = {m.name: m for m in methods}
        self.authenticator = authenticator
        self.sessions = sessions

    async def respond(self, body: bytes) -> bytes:
        """The response body for one request body."""
        name = "?"
        try:
            name, values = envelope.decode_call(body)
            method = self.methods.get(name)
            if method is None:
                shown = envelope.printable_method(name)
                raise Fault(NO_SUCH_METHOD, f"Method '{shown}' not defined")
            if not values or type(values[0]) is not str:
                raise Fault(TYPE_ERROR, "Not enough parameters" if not values else
                            "Parameter that is supposed to be a string is not")  # fmt: skip
            params = bind(values[1:], method.signature)
            identity = await self.authenticate(values[0])
            if identity is None:
                raise authentication()
            value = await method.handler(Call(name, identity), *params)
            return envelope.encode_success(value)
        except Fault as fault:
            return envelope.encode_fault(fault.code, fault.message)
        except RpcError as error:
            return envelope.encode_failure(f"[{name}] {error.message}", error.code, error.resp_id)
        except Unavailable as exc:
            log.warning("%s: %s", envelope.printable_method(name), exc)
            return envelope.encode_failure(f"[{name}] {exc.public}", ErrorCode.INTERNAL, -1)
        except Exception:
            log.exception("%s failed", envelope.printable_method(name))
            reason = internal_error("Internal error, see the front-end's log.")
            return envelope.encode_failure(f"[{name}] {reason.message}", reason.code, -1)

    async def authenticate(self, session: str) -> Identity | None:
        """The session's identity (cached after a successful check), or None."""
        identity = self.sessions.get(session)
        if identity is not None:
            return identity
        parts = split_session(session)
        if parts is None:
            return None
        identity = await asyncio.to_thread(self.authenticator.authenticate, *parts)
        if identity is not None:
            self.sessions.put(session, identity)
        return identity
