"""The HTTP side: ``POST /RPC2`` with a bounded body and a bounded number of calls at once."""

from __future__ import annotations

import asyncio

from aiohttp import web

from onemon.front.rpc.dispatch import Dispatcher

PATH = "/RPC2"


class RpcServer:
    """An aiohttp application around a :class:`Dispatcher`."""

    def __init__(self, dispatcher: Dispatcher, max_request_bytes: int, max_calls: int) -> None:
        self.dispatcher = dispatcher
        self.max_request_bytes = max_request_bytes
        self._slots = asyncio.Semaphore(max_calls)

    def app(self) -> web.Application:
        """The application: only ``POST /RPC2``."""
        app = web.Application(client_max_size=self.max_request_bytes)
        app.add_routes([web.post(PATH, self.post)])
        return app

    async def post(self, request: web.Request) -> web.Response:
        """One XML-RPC call."""
        length = request.content_length
        if length is not None and length > self.max_request_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.max_request_bytes, actual_size=length)
        body = await request.read()  # aiohttp refuses more than client_max_size (413)
        async with self._slots:
            answer = await self.dispatcher.respond(body)
        return web.Response(body=answer, content_type="text/xml", charset="utf-8")
