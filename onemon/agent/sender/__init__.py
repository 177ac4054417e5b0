"""The agent's sending side: datagrams, acknowledged TCP with an on-disk spool, failover."""

from onemon.agent.sender.bootid import BootId
from onemon.agent.sender.sender import Sender
from onemon.agent.sender.stats import SenderStats

__all__ = ["BootId", "Sender", "SenderStats"]
