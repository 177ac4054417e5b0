"""OpenNebula's ``MONITOR_CONFIGURATION`` XML (reference §1.7, §4.2, §4.3): build it, parse it.

OpenNebula renders monitord.conf as one element per attribute sorted by name, every value in
CDATA, ``NETWORK/PUBKEY`` holding the key's content, and its IM driver appends ``HOST_ID``; that
XML is the stdin of its agent and of every probe. :func:`build` writes that shape so unmodified
OpenNebula probes read what they expect; :func:`parse` reads what the IM driver sends.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from onemon.agent.config import Periods

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

MAX_CONFIG_BYTES: Final = 1024 * 1024
"""Largest configuration XML :func:`parse` accepts."""

DEFAULT_DATASTORE_LOCATION: Final = "/var/lib/one/datastores"

DEFAULT_ADDRESS: Final = "0.0.0.0"  # noqa: S104  monitord's compiled default, data only
"""monitord's bind address when the configuration names none."""

PERIOD_KEYS: Final = {
    "BEACON_HOST": "beacon_host",
    "SYSTEM_HOST": "system_host",
    "MONITOR_HOST": "monitor_host",
    "STATE_VM": "state_vm",
    "EXEC_VM": "exec_vm",
    "MONITOR_VM": "monitor_vm",
    "SYNC_STATE_VM": "sync_state_vm",
}
"""``PROBES_PERIOD`` element names and the :class:`Periods` fields they set."""

_XML_CHARS: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class MonitorConfigError(ValueError):
    """Configuration XML that is unsafe, malformed or holds invalid values; lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class MonitorConfiguration:
    """What the agent and its probes read from ``MONITOR_CONFIGURATION``."""

    host_id: int
    monitor_address: str = "auto"
    """Where to send; ``auto`` means the front-end address from ``$SSH_CLIENT``."""
    port: int = 4124
    pubkey: str = ""
    """PEM text of the RSA public key (PKCS#1), empty for no encryption."""
    address: str = DEFAULT_ADDRESS
    """The collector's bind address (unused by agents; kept for fidelity)."""
    datastore_location: str = DEFAULT_DATASTORE_LOCATION
    periods: Periods = field(default_factory=Periods)


# --------------------------------------------------------------------------- building


def _cdata(text: str) -> str:
    """``text`` as CDATA, a ``]]>`` inside split across two sections."""
    if _XML_CHARS.search(text):
        raise ValueError(f"{text!r} holds characters XML cannot carry")
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _number(value: float) -> str:
    """A period as OpenNebula writes it: an integer when it is one."""
    if not math.isfinite(value):
        raise ValueError(f"period {value!r} is not a number")
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _element(name: str, value: str | dict[str, str]) -> str:
    """``<NAME>`` with a CDATA value, or with sorted CDATA sub-elements for a vector."""
    if isinstance(value, str):
        return f"<{name}>{_cdata(value)}</{name}>"
    inner = "".join(f"<{key}>{_cdata(value[key])}</{key}>" for key in sorted(value))
    return f"<{name}>{inner}</{name}>"


def build(
    host_id: int,
    *,
    monitor_address: str = "auto",
    port: int = 4124,
    pubkey: str = "",
    address: str = DEFAULT_ADDRESS,
    datastore_location: str = DEFAULT_DATASTORE_LOCATION,
    periods: Periods | None = None,
) -> bytes:
    """The XML OpenNebula's driver pipes to its agent and probes, for these values (UTF-8)."""
    periods = periods or Periods()
    attributes: dict[str, str | dict[str, str]] = {
        "DATASTORE_LOCATION": datastore_location,
        "NETWORK": {
            "ADDRESS": address,
            "MONITOR_ADDRESS": monitor_address,
            "PORT": str(int(port)),
            "PUBKEY": pubkey,
        },
        "PROBES_PERIOD": {
            key: _number(getattr(periods, attr)) for key, attr in PERIOD_KEYS.items()
        },
    }
    body = "".join(_element(name, attributes[name]) for name in sorted(attributes))
    host = f"<HOST_ID>{int(host_id)}</HOST_ID>"
    return f"<MONITOR_CONFIGURATION>{body}{host}</MONITOR_CONFIGURATION>".encode()


# --------------------------------------------------------------------------- parsing


def _tree(xml: bytes) -> ET.Element:
    """Parse with expat into an ElementTree, refusing any DTD (so no entity can be defined)."""
    # Imported here: the daemon only builds this XML (``build``); parsing is for --opennebula.
    from onemon import safexml  # noqa: PLC0415

    try:
        return safexml.parse(xml, MAX_CONFIG_BYTES, "MONITOR_CONFIGURATION")
    except safexml.UnsafeXmlError as exc:
        raise MonitorConfigError([f"configuration: {exc}"]) from None


def _text(root: ET.Element, path: str) -> str | None:
    """Text of the first element at ``path``; None when absent or empty."""
    found = root.find(path)
    if found is None or not (found.text or "").strip():
        return None
    return found.text


def _integer(text: str | None, what: str, default: int | None, problems: list[str]) -> int | None:
    """A non-negative integer, ``default`` when absent; None with a problem noted when bad."""
    if text is None:
        if default is None:
            problems.append(f"{what}: missing")
        return default
    try:
        value = int(text.strip())
    except ValueError:
        problems.append(f"{what}: {text.strip()!r} is not an integer")
        return None
    if value < 0:
        problems.append(f"{what}: must be >= 0, got {value}")
        return None
    return value


def _periods(root: ET.Element, problems: list[str]) -> Periods:
    """``PROBES_PERIOD``, each missing key at its default (issue 7659)."""
    defaults = Periods()
    values: dict[str, float] = {}
    for key, attr in PERIOD_KEYS.items():
        text = _text(root, f"PROBES_PERIOD/{key}")
        if text is None and key == "STATE_VM":
            text = _text(root, "PROBES_PERIOD/STATUS_VM")  # monitord's compiled default's name
        if text is None:
            values[attr] = getattr(defaults, attr)
            continue
        try:
            value = float(text.strip())
        except ValueError:
            problems.append(f"PROBES_PERIOD/{key}: {text.strip()!r} is not a number")
            continue
        if not (math.isfinite(value) and value > 0):
            problems.append(f"PROBES_PERIOD/{key}: must be > 0, got {text.strip()}")
            continue
        values[attr] = value
    return dataclasses.replace(defaults, **values)


def parse(xml: bytes) -> MonitorConfiguration:
    """Read the XML an OpenNebula IM driver passes to its agent; raise MonitorConfigError."""
    root = _tree(xml)
    problems: list[str] = []
    host_id = _integer(_text(root, "HOST_ID"), "HOST_ID", None, problems)
    port = _integer(_text(root, "NETWORK/PORT"), "NETWORK/PORT", 4124, problems)
    if port is not None and not 0 < port < 65536:
        problems.append(f"NETWORK/PORT: {port} is not a port number")
    periods = _periods(root, problems)
    if problems or host_id is None or port is None:
        raise MonitorConfigError(problems)
    datastore = _text(root, "DATASTORE_LOCATION") or DEFAULT_DATASTORE_LOCATION
    return MonitorConfiguration(
        host_id=host_id,
        monitor_address=(_text(root, "NETWORK/MONITOR_ADDRESS") or "auto").strip(),
        port=port,
        pubkey=_text(root, "NETWORK/PUBKEY") or "",
        address=(_text(root, "NETWORK/ADDRESS") or DEFAULT_ADDRESS).strip(),
        datastore_location=datastore.strip(),
        periods=periods,
    )
