"""Host names and templates set through the API, kept by the front until the collector can."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from onemon.front.db.schema import host_overrides
from onemon.wire.model import Template


@dataclass(frozen=True, slots=True)
class HostOverride:
    """What the API changed on one host: its name and its user template attributes."""

    host_id: int
    name: str | None = None
    template: Template = field(default_factory=dict)


class OverrideStore:
    """The ``front_host_overrides`` table (blocking calls; run them in a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self) -> dict[int, HostOverride]:
        """Every host's override, by host id."""
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(host_overrides)).all()
        return {r.host_id: HostOverride(r.host_id, r.name, _template(r.template)) for r in rows}

    def put(self, override: HostOverride) -> None:
        """Store (replace) one host's override."""
        text = json.dumps(override.template, separators=(",", ":")) if override.template else None
        with self.engine.begin() as conn:
            conn.execute(
                host_overrides.delete().where(host_overrides.c.host_id == override.host_id)
            )
            conn.execute(
                host_overrides.insert().values(
                    host_id=override.host_id, name=override.name, template=text,
                    updated=time.time(),
                )
            )  # fmt: skip

    def delete(self, host_id: int) -> None:
        """Forget a deleted host's override."""
        with self.engine.begin() as conn:
            conn.execute(host_overrides.delete().where(host_overrides.c.host_id == host_id))


def _template(text: str | None) -> Template:
    if not text:
        return {}
    value: Any = json.loads(text)
    return value if isinstance(value, dict) else {}
