"""``one.system.version`` and ``one.system.config``."""

from __future__ import annotations

from onemon.front.docs.xml import cdata_element, element
from onemon.front.methods.context import Context
from onemon.front.rpc.dispatch import Call, Method

ONE_VERSION = "7.5.80"
"""The oned version whose API this serves (``code_version()`` of the reference snapshot)."""


def methods(ctx: Context) -> list[Method]:
    """The ``one.system.*`` methods."""

    async def version(call: Call) -> str:
        """The OpenNebula version served."""
        return ONE_VERSION

    async def config(call: Call) -> str:
        """A minimal OPENNEBULA_CONFIGURATION: how to reach and log in to this front."""
        settings = (
            ("DEFAULT_AUTH", "default"),
            ("LISTEN_ADDRESS", ctx.listen_address),
            ("PORT", ctx.port),
            ("SESSION_EXPIRATION_TIME", int(ctx.session_seconds)),
        )
        return element(
            "OPENNEBULA_CONFIGURATION", "".join(cdata_element(k, v) for k, v in settings)
        )

    return [Method("one.system.version", (), version), Method("one.system.config", (), config)]
