"""Bounds every decoder enforces, and the sizes senders keep to."""

from typing import Final

DEFAULT_DATAGRAM_BUDGET: Final = 1400
"""Largest datagram a sender builds by default: fits a 1500-byte MTU, so never IP-fragmented."""

MAX_UDP_PAYLOAD: Final = 65507
"""Largest UDP payload over IPv4; no datagram is ever built larger."""

MAX_TCP_MESSAGE: Final = 16 * 1024 * 1024
"""Largest single message accepted over TCP (native or legacy)."""

MAX_PAYLOAD_BYTES: Final = 16 * 1024 * 1024
"""Largest payload after decompression; a zlib bomb stops here."""

MAX_DEPTH: Final = 8
"""Deepest nesting a native payload may have (VM → MONITOR → DISK vector → value is 4)."""

MAX_KEY_ID_LENGTH: Final = 64
"""Longest key id an envelope may name."""

MAX_ITEMS: Final = 1_000_000
"""Most values a decoded native payload may hold in total."""
