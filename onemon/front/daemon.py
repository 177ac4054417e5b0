"""one-front assembled: its database and oneadmin, the store view, the collector's API, XML-RPC."""

from __future__ import annotations

import asyncio
import logging
import socket

from aiohttp import web
from sqlalchemy.engine import Engine

from onemon.collector.store import StoreReader
from onemon.front.auth.bootstrap import ensure_oneadmin
from onemon.front.auth.core import CoreAuthenticator
from onemon.front.auth.session import Authenticator, SessionCache
from onemon.front.collector_api import CollectorAdmin
from onemon.front.config import FrontConfig
from onemon.front.db.engine import dispose, open_database
from onemon.front.db.overrides import OverrideStore
from onemon.front.db.users import UserStore
from onemon.front.methods import all_methods
from onemon.front.methods.context import Context, HostHooks, NoHooks
from onemon.front.rpc.dispatch import Dispatcher
from onemon.front.rpc.server import RpcServer
from onemon.front.view import StoreView

log = logging.getLogger("onemon.front")


class Front:
    """The running front; :meth:`start` then :meth:`stop`."""

    def __init__(
        self,
        config: FrontConfig,
        hooks: HostHooks | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.config = config
        self.hooks = hooks or NoHooks()
        self.authenticator = authenticator
        self.port = 0
        self.context: Context | None = None
        self._runner: web.AppRunner | None = None
        self._admin: CollectorAdmin | None = None
        self._reader: StoreReader | None = None
        self._engine: Engine | None = None

    async def start(self) -> None:
        """Open the database (creating oneadmin at first start), then listen."""
        config = self.config
        engine = await asyncio.to_thread(open_database, config.users.url)
        self._engine = engine
        users = UserStore(engine)
        await asyncio.to_thread(
            ensure_oneadmin, users, config.users.one_auth, config.users.service_user
        )
        store = config.store
        self._reader = StoreReader(
            store.url, busy_timeout=store.busy_timeout, connect_timeout=store.connect_timeout
        )
        overrides = OverrideStore(engine)
        api = config.collector
        self._admin = CollectorAdmin(api.endpoint, api.admin_token_file, api.timeout)
        ctx = Context(
            view=StoreView(self._reader, overrides, store.url, store.cache_seconds),
            admin=self._admin,
            overrides=overrides,
            write_wait=api.write_wait,
            listen_address=config.listen.address,
            port=config.listen.port,
            session_seconds=config.users.session_seconds,
            hooks=self.hooks,
        )
        self.context = ctx
        dispatcher = Dispatcher(
            all_methods(ctx),
            self.authenticator or CoreAuthenticator(users),
            SessionCache(config.users.session_seconds),
        )
        listen = config.listen
        server = RpcServer(dispatcher, listen.max_request_bytes, listen.max_connections)
        self._runner = web.AppRunner(server.app(), access_log=None)
        await self._runner.setup()
        sock = bind(listen.address, listen.port)
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.info("XML-RPC API on http://%s:%d/RPC2", listen.address, self.port)

    async def stop(self) -> None:
        """Stop listening and close connections."""
        if self._runner is not None:
            await self._runner.cleanup()
        if self._admin is not None:
            await self._admin.close()
        if self._reader is not None:
            self._reader.close()
        if self._engine is not None:
            dispose(self._engine)


def bind(address: str, port: int) -> socket.socket:
    """A listening TCP socket; ``::`` is dual-stack (IPv4 too), as oned's ``0.0.0.0``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((address, port))
        sock.listen(512)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
