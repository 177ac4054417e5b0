"""The CLI's XML-RPC client: endpoint and credentials found as OpenNebula's tools find them."""

from __future__ import annotations

import http.client
import os
import xml.etree.ElementTree as ET
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_XMLRPC = "http://localhost:2633/RPC2"
TIMEOUT = 30.0


class CliError(Exception):
    """A failure to show the user (the message is complete), exit status 1."""


def endpoint(flag: str | None) -> str:
    """``--xmlrpc``, else ``$ONE_XMLRPC``, else ``~/.one/one_endpoint``, else localhost:2633."""
    if flag:
        return flag
    if os.environ.get("ONE_XMLRPC"):
        return os.environ["ONE_XMLRPC"]
    try:
        found = (Path.home() / ".one" / "one_endpoint").read_text().strip()
    except OSError:
        found = ""
    return found or DEFAULT_XMLRPC


def session(user: str | None, password: str | None) -> str:
    """``--user``/``--password``, else the file ``$ONE_AUTH`` names, else ``~/.one/one_auth``."""
    if user and password:
        return f"{user}:{password}"
    if user or password:
        raise CliError("onemon: --user and --password go together")
    path = Path(os.environ.get("ONE_AUTH") or Path.home() / ".one" / "one_auth")
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise CliError(f"onemon: no credentials: {path}: {exc.strerror}") from None
    if ":" not in text:
        raise CliError(f"onemon: {path} must hold user:password")
    return text.splitlines()[0]


@dataclass
class Client:
    """Calls ``one.*`` methods, returning the value or raising :class:`CliError`."""

    url: str
    session: str

    def call(self, method: str, *params: Any) -> Any:
        """The success value of ``method``; the server's message on failure."""
        if not self.url.startswith(("http://", "https://")):
            raise CliError(f"onemon: the XML-RPC endpoint must be an http(s) URL: {self.url}")
        secure = self.url.startswith("https://")
        transport = _SafeTransport() if secure else _Transport()
        proxy = xmlrpc.client.ServerProxy(self.url, transport=transport)
        try:
            result = getattr(proxy, method)(self.session, *params)
        except xmlrpc.client.Fault as fault:
            raise CliError(
                f"onemon: {method}: fault {fault.faultCode}: {fault.faultString}"
            ) from None
        except xmlrpc.client.ProtocolError as exc:
            raise CliError(f"onemon: {self.url}: HTTP {exc.errcode} {exc.errmsg}") from None
        except (OSError, http.client.HTTPException, xmlrpc.client.ResponseError) as exc:
            raise CliError(f"onemon: cannot reach {self.url}: {exc}") from None
        if not isinstance(result, list) or len(result) < 2:
            raise CliError(f"onemon: {method}: malformed answer")
        if result[0] is not True:
            raise CliError(str(result[1]))
        return result[1]

    def document(self, method: str, *params: Any) -> ET.Element:
        """A method's XML document."""
        text = self.call(method, *params)
        try:
            return ET.fromstring(str(text))  # noqa: S314 - our own server's answer
        except ET.ParseError as exc:
            raise CliError(f"onemon: {method}: the answer is not XML: {exc}") from None


class _Transport(xmlrpc.client.Transport):
    """HTTP with a timeout (ServerProxy has no timeout argument)."""

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        """A connection whose socket operations time out."""
        connection = super().make_connection(host)
        connection.timeout = TIMEOUT
        return connection


class _SafeTransport(xmlrpc.client.SafeTransport):
    """HTTPS with a timeout."""

    def make_connection(self, host: Any) -> http.client.HTTPSConnection:
        """A connection whose socket operations time out."""
        connection = super().make_connection(host)
        connection.timeout = TIMEOUT
        return connection


def to_data(node: ET.Element) -> Any:
    """An XML document as OpenNebula's ``--json``: children as keys, repeats as lists."""
    children = list(node)
    if not children:
        return node.text or ""
    out: dict[str, Any] = {}
    for child in children:
        value = to_data(child)
        if child.tag in out:
            current = out[child.tag]
            out[child.tag] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            out[child.tag] = value
    return out
