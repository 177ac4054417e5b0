"""HTTP endpoint: pre-rendered ``/metrics`` and a JSON API over the state and its history."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from onemon.collector.admin import AdminError, HostAdmin, token_matches
from onemon.collector.model import Host, Vm
from onemon.collector.state import CloudState

JSON_LIMIT = 10_000
"""Most history points one API call returns."""


class RenderedMetrics(Protocol):
    """The cached exposition body, rendered off the request path."""

    def response(self, accept_encoding: str | None = None) -> tuple[bytes, str | None]:
        """The body to send and its Content-Encoding."""


class HistoryReader(Protocol):
    """Reads history from the store (blocking; run in a worker thread)."""

    def host_history(
        self, host_id: int, since: float, until: float | None = None, limit: int | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """A host's monitoring rows."""

    def vm_history(
        self, vm_id: int, since: float, until: float | None = None, limit: int | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        """A VM's monitoring rows."""


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def host_json(host: Host, vm_ids: set[int]) -> dict[str, Any]:
    """A host as the JSON API shows it."""
    cap = host.capacity
    return {
        "id": host.id,
        "name": host.name,
        "state": host.state.name,
        "error": host.error,
        "im_mad": host.im_mad,
        "last_seen": host.last_seen,
        "last_monitored": host.last_monitored,
        "capacity": {
            "FREE_CPU": cap.free_cpu,
            "USED_CPU": cap.used_cpu,
            "FREE_MEMORY": cap.free_memory,
            "USED_MEMORY": cap.used_memory,
            "NETRX": cap.netrx,
            "NETTX": cap.nettx,
        },
        "numa": cap.numa,
        "vms": sorted(vm_ids),
        "wilds": host.wilds,
        "zombies": host.zombies,
        "template": host.system,
        "agent": host.agent,
    }


def vm_json(vm: Vm) -> dict[str, Any]:
    """A VM as the JSON API shows it."""
    return {
        "id": vm.id,
        "host_id": vm.host_id,
        "deploy_id": vm.deploy_id,
        "report": str(vm.report),
        "state": vm.state.name,
        "lcm_state": vm.lcm_state.name,
        "last_poll": vm.last_poll,
        "state_changed": vm.state_changed,
        "monitoring": vm.monitoring,
    }


class Api:
    """Request handlers; they only read state and cached bytes, never render or block."""

    def __init__(
        self,
        state: CloudState,
        metrics: RenderedMetrics,
        history: HistoryReader,
        health: Callable[[], dict[str, Any]],
        admin: HostAdmin | None = None,
        admin_token: str = "",
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.history = history
        self.health = health
        self.admin = admin
        self.admin_token = admin_token

    def app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application()
        app.add_routes(
            [
                web.get("/metrics", self.get_metrics),
                web.get("/api/v1/health", self.get_health),
                web.get("/api/v1/hosts", self.list_hosts),
                web.get("/api/v1/hosts/{id}", self.get_host),
                web.get("/api/v1/hosts/{id}/monitoring", self.host_monitoring),
                web.get("/api/v1/vms", self.list_vms),
                web.get("/api/v1/vms/{id}", self.get_vm),
                web.get("/api/v1/vms/{id}/monitoring", self.vm_monitoring),
                web.post("/api/v1/hosts", self.create_host),
                web.delete("/api/v1/hosts/{id}", self.delete_host),
                web.post("/api/v1/hosts/{id}/status", self.host_status),
            ]
        )
        return app

    async def get_metrics(self, request: web.Request) -> web.Response:
        """The last rendered exposition body, gzip'ed when the scraper accepts it."""
        body, encoding = self.metrics.response(request.headers.get("Accept-Encoding"))
        headers = {"Content-Type": CONTENT_TYPE}
        if encoding:
            headers["Content-Encoding"] = encoding
        return web.Response(body=body, headers=headers)

    async def get_health(self, request: web.Request) -> web.Response:
        """The collector's own figures."""
        return web.json_response(self.health())

    async def list_hosts(self, request: web.Request) -> web.Response:
        """Every host with its latest figures."""
        state = self.state
        hosts = [
            host_json(h, state.vms_by_host.get(h.id, set()))
            for h in sorted(state.hosts.values(), key=lambda h: h.id)
        ]
        return web.json_response(hosts)

    async def get_host(self, request: web.Request) -> web.Response:
        """One host."""
        host = self.state.hosts.get(_id(request))
        if host is None:
            raise web.HTTPNotFound(text="no such host\n")
        return web.json_response(host_json(host, self.state.vms_by_host.get(host.id, set())))

    async def host_monitoring(self, request: web.Request) -> web.Response:
        """A host's monitoring history (``?since=<epoch>``, default the last hour)."""
        host_id = _id(request)
        if host_id not in self.state.hosts:
            raise web.HTTPNotFound(text="no such host\n")
        rows = await asyncio.to_thread(
            self.history.host_history, host_id, _since(request), None, JSON_LIMIT
        )
        return web.json_response([{"timestamp": ts, **data} for ts, data in rows])

    async def list_vms(self, request: web.Request) -> web.Response:
        """Every VM (``?host_id=`` filters by host)."""
        vms = sorted(self.state.vms.values(), key=lambda v: v.id)
        host = request.query.get("host_id")
        if host is not None:
            vms = [v for v in vms if str(v.host_id) == host]
        return web.json_response([vm_json(v) for v in vms])

    async def get_vm(self, request: web.Request) -> web.Response:
        """One VM."""
        vm = self.state.vms.get(_id(request))
        if vm is None:
            raise web.HTTPNotFound(text="no such vm\n")
        return web.json_response(vm_json(vm))

    async def create_host(self, request: web.Request) -> web.Response:
        """``onemon host create``: body ``{"name", "id"?, "im_mad"?}``."""
        admin = _admin(self, request)
        body = await _body(request)
        try:
            raw_id = body.get("id")
            host = admin.create(
                str(body.get("name", "")),
                None if raw_id is None else int(raw_id),
                str(body.get("im_mad", "kvm")),
            )
        except (AdminError, ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response(host_json(host, set()), status=201)

    async def delete_host(self, request: web.Request) -> web.Response:
        """``onemon host delete``."""
        admin = _admin(self, request)
        try:
            admin.delete(_id(request))
        except AdminError as exc:
            raise web.HTTPNotFound(text=f"{exc}\n") from None
        return web.json_response({"deleted": _id(request)})

    async def host_status(self, request: web.Request) -> web.Response:
        """``onemon host enable|disable|offline``, IM ``error``/``monitored``: ``{"action", …}``."""
        admin = _admin(self, request)
        body = await _body(request)
        try:
            host = admin.set_status(
                _id(request), str(body.get("action", "")), str(body.get("message", ""))
            )
        except AdminError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
        return web.json_response(host_json(host, self.state.vms_by_host.get(host.id, set())))

    async def vm_monitoring(self, request: web.Request) -> web.Response:
        """A VM's monitoring history (``?since=<epoch>``, default the last hour)."""
        vm_id = _id(request)
        if vm_id not in self.state.vms:
            raise web.HTTPNotFound(text="no such vm\n")
        rows = await asyncio.to_thread(
            self.history.vm_history, vm_id, _since(request), None, JSON_LIMIT
        )
        return web.json_response([{"timestamp": ts, **data} for ts, data in rows])


def _admin(api: Api, request: web.Request) -> HostAdmin:
    """The admin interface, once the request proved it holds the token."""
    if api.admin is None or not api.admin_token:
        raise web.HTTPForbidden(text="administration is not enabled\n")
    if not token_matches(api.admin_token, request.headers.get("Authorization")):
        raise web.HTTPUnauthorized(text="a valid admin bearer token is needed\n")
    return api.admin


def _id(request: web.Request) -> int:
    try:
        return int(request.match_info["id"])
    except ValueError:
        raise web.HTTPBadRequest(text="id must be an integer\n") from None


def _since(request: web.Request) -> float:
    raw = request.query.get("since")
    if raw is None:
        return time.time() - 3600
    try:
        return float(raw)
    except ValueError:
        raise web.HTTPBadRequest(text="since must be a number\n") from None


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON\n") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object\n")
    return data
