"""The collector's JSON API as the driver uses it: read hosts, report start outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from onemon.front.im.node import Host


class ApiError(Exception):
    """The collector could not be asked (down, refused, or an unexpected answer)."""


@dataclass(frozen=True)
class HostView:
    """What liveness and sync need to know about a host."""

    id: int
    name: str
    im_mad: str
    state: str
    last_seen: float
    version: str = ""
    error: str = ""

    @property
    def host(self) -> Host:
        """The driver's view of it."""
        return Host(self.id, self.name, self.im_mad)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostView:
        """From one entry of ``GET /api/v1/hosts``."""
        template = data.get("template") or {}
        version = template.get("VERSION", "") if isinstance(template, dict) else ""
        return cls(
            id=int(data["id"]),
            name=str(data["name"]),
            im_mad=str(data.get("im_mad") or "kvm"),
            state=str(data["state"]),
            last_seen=float(data.get("last_seen") or 0.0),
            version=str(version),
            error=str(data.get("error") or ""),
        )


class CollectorApi:
    """An HTTP session to the collector (use ``async with``)."""

    def __init__(self, endpoint: str, token: str, timeout: float = 10.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CollectorApi:
        self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self._session is not None, "use CollectorApi in 'async with'"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with self._session.request(
                method, self.endpoint + path, json=body, headers=headers
            ) as response:
                if response.status >= 400:
                    return response.status, (await response.text()).strip()
                return response.status, await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ApiError(f"{self.endpoint}{path}: {exc or type(exc).__name__}") from None

    async def hosts(self) -> list[HostView]:
        """Every host."""
        status, data = await self._call("GET", "/api/v1/hosts")
        if status != 200 or not isinstance(data, list):
            raise ApiError(f"GET /api/v1/hosts: {status} {data}")
        try:
            return [HostView.from_json(entry) for entry in data]
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiError(f"GET /api/v1/hosts: unexpected answer: {exc}") from None

    async def report(self, host_id: int, action: str, message: str = "") -> bool:
        """``error`` (with the failure text) or ``monitored``; False when the host is gone."""
        body = {"action": action, "message": message}
        status, data = await self._call("POST", f"/api/v1/hosts/{host_id}/status", body)
        if status in (200, 404) or (status == 400 and "no host" in str(data)):
            return status == 200
        raise ApiError(f"POST /api/v1/hosts/{host_id}/status: {status} {data}")
