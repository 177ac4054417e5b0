"""The collector's host administration API, through which host changes go."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp

from onemon.front.errors import Unavailable


class CollectorUnavailable(Unavailable):
    """The collector could not be asked (down, timeout, no token); details are for the log."""

    public = "Cannot reach the monitoring collector."


class CollectorRefused(Exception):
    """The collector answered the request with a client error (``status``, its text)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status} {detail}")
        self.status = status
        self.detail = detail


class CollectorAdmin:
    """``POST /api/v1/hosts``, ``DELETE /api/v1/hosts/{id}``, ``POST …/{id}/status``."""

    def __init__(self, endpoint: str, token_file: Path, timeout: float) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.token_file = token_file
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def create_host(self, name: str, im_mad: str) -> int:
        """Register a host; its id."""
        created = await self._call("POST", "/api/v1/hosts", {"name": name, "im_mad": im_mad})
        return int(created["id"])

    async def delete_host(self, host_id: int) -> None:
        """Forget a host."""
        await self._call("DELETE", f"/api/v1/hosts/{host_id}")

    async def set_status(self, host_id: int, action: str) -> None:
        """``enable``, ``disable`` or ``offline``."""
        await self._call("POST", f"/api/v1/hosts/{host_id}/status", {"action": action})

    def _token(self) -> str:
        try:
            return self.token_file.read_text().strip()
        except OSError as exc:
            raise CollectorUnavailable(f"admin token {self.token_file}: {exc.strerror}") from None

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            async with self._session.request(
                method, self.endpoint + path, json=body, headers=headers
            ) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CollectorUnavailable(f"{method} {path}: {exc!r}") from None
        if 400 <= response.status < 500:
            raise CollectorRefused(response.status, text.strip())
        if response.status >= 300:
            raise CollectorUnavailable(f"{method} {path}: HTTP {response.status} {text.strip()}")
        try:
            return json.loads(text)
        except ValueError:
            raise CollectorUnavailable(f"{method} {path}: answer is not JSON") from None
