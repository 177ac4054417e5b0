"""Mutated inputs for the collector's listeners: native and legacy datagrams and TCP streams.

Seeds are valid messages of every type (native envelopes signed with the keys the collector
knows, legacy lines). Mutations are byte-level (flips, inserts, deletes, truncation, splices,
CBOR "interesting" heads such as 2^64-long strings or indefinite containers) and structural:
an envelope field replaced by a value of another type, or a payload reshaped (deep nesting,
huge or non-finite numbers, odd keys, zlib bombs), then **signed again** with the right key, so
the input gets past the HMAC check into the payload decoder and the state rules. Every input
says how many counts the collector must make of it (a TCP stream: one per complete frame).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import cbor2

from bench.collector_load import monitor_host, system_host
from bench.payloads import vm_record
from onemon.wire import legacy, native
from onemon.wire.keys import Key
from onemon.wire.limits import MAX_TCP_MESSAGE, MAX_UDP_PAYLOAD
from onemon.wire.model import Message, MessageType, Status, Template
from onemon.wire.names import CODE_OF

T = MessageType
MAX_DATAGRAM: Final = MAX_UDP_PAYLOAD
INTERESTING: Final = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\x9f", b"\xbf", b"\x5f", b"\x7f", b"\xf7", b"\xfb",
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff", b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x9b\x00\x00\x00\x01\x00\x00\x00\x00", b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\xd8\x25", b"\xc6", b"\xf9\x7e\x00", b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00",
    b"\x81" * 64, b"\xa1\x01" * 32,
)  # fmt: skip


INVALID_UTF8_MAP: Final = b"\xa2\x68HOSTNAME\x62\xff\xfe\x62VM\xa1\x62ID\x20"
"""CBOR ``{"HOSTNAME": <text that is not UTF-8>, "VM": {"ID": -1}}``."""


KNOWN_BUGS: Final[dict[str, str]] = {}
"""Input shapes that hit bugs reported and not fixed yet; ``Generator(known_bugs=False)`` avoids
them. Fixed so far: a seq jump allocating the jump (4692e6c); frames before an oversize header
lost, a stream cut inside a frame not counted (a067b47)."""


@dataclass(frozen=True)
class FuzzKeys:
    """Who the collector knows: the cluster key, and hosts with a key of their own."""

    cluster: Key
    per_host: dict[int, Key]
    hosts: tuple[int, ...]
    """Registered host ids (both kinds)."""

    def key_for(self, host_id: int) -> Key:
        """The key ``host_id`` must sign with."""
        return self.per_host.get(host_id, self.cluster)


@dataclass(frozen=True, slots=True)
class Input:
    """One input and how the collector must account for it."""

    kind: str
    """``udp`` (one datagram) or ``tcp`` (one connection's bytes)."""
    data: bytes
    counts: int
    """Counts (accepted or rejected) the collector makes of it."""
    label: str
    cut: bool = False
    """A TCP stream ending inside a frame (that part is not counted by the collector)."""


def native_units(stream: bytes) -> tuple[int, bool]:
    """(inputs the collector counts in a native stream, whether it ends mid-frame).

    Every complete frame counts once; so does a stream cut inside a frame (``truncated``) and
    an oversize header (``too_large``, then the connection is closed).
    """
    units, at = 0, 0
    while len(stream) - at >= 4:
        (length,) = struct.unpack_from(">I", stream, at)
        if length > MAX_TCP_MESSAGE:
            return units + 1, False
        if len(stream) - at - 4 < length:
            return units + 1, True
        units += 1
        at += 4 + length
    cut = at != len(stream)
    return units + int(cut), cut


def tcp_input(data: bytes, label: str) -> Input:
    """A TCP stream with its expected counts (native if it starts with 0x00, else legacy)."""
    if not data:
        return Input("tcp", data, 0, label)
    if data[0] == 0:
        units, cut = native_units(data)
        return Input("tcp", data, units, label, cut)
    return Input("tcp", data, 1, label)


class Generator:
    """Makes inputs: seeds, mutated at random, in reproducible order."""

    def __init__(
        self, keys: FuzzKeys, seed: int, tcp_share: float = 0.05, known_bugs: bool = True
    ) -> None:
        """``known_bugs=False`` avoids the input shapes of reported bugs (``KNOWN_BUGS``)."""
        self.keys = keys
        self.known_bugs = known_bugs
        self.rng = random.Random(seed)
        self.tcp_share = tcp_share
        counter = time.time_ns() // 1000
        self.boot = counter.to_bytes(8, "big") + self.rng.randbytes(8)
        self.seqs: dict[tuple[int, int], int] = {}
        self.vm_base = 500_000 + self.rng.randrange(100_000)
        self.strategies: list[tuple[float, Callable[[], Input]]] = [
            (0.10, self.valid_native),
            (0.25, self.bytes_native),
            (0.25, self.resigned_native),
            (0.05, self.foreign_native),
            (0.05, self.valid_legacy),
            (0.15, self.mutated_legacy),
            (0.05, self.structured_legacy),
            (0.05, self.garbage),
        ]
        self._weights = [w for w, _ in self.strategies]

    # --- seeds ------------------------------------------------------------------------------

    def host(self) -> int:
        """A registered host id (now and then an unknown one)."""
        if self.rng.random() < 0.05:
            return self.rng.choice([-1, 0, 99_999, 2**31 - 1, self.rng.randrange(10**6)])
        return self.rng.choice(self.keys.hosts)

    def payload(self, mtype: MessageType, host_id: int) -> Template:
        """A realistic payload of ``mtype``."""
        rng = self.rng
        if mtype is T.SYSTEM_HOST:
            return system_host(host_id, rng)
        if mtype is T.MONITOR_HOST:
            return monitor_host(rng)
        if mtype is T.MONITOR_VM:
            return {"VM": [vm_record(self.vm_base + rng.randrange(50), rng)
                           for _ in range(rng.randrange(1, 6))]}  # fmt: skip
        if mtype is T.STATE_VM:
            entries = [
                {"ID": self.vm_base + rng.randrange(50), "DEPLOY_ID": f"one-{n}",
                 "STATE": rng.choice(["RUNNING", "POWEROFF", "SUSPENDED", "UNKNOWN", "x"])}
                for n in range(rng.randrange(0, 6))
            ]  # fmt: skip
            payload: Template = {"VM": entries} if entries else {}
            if rng.random() < 0.3:
                payload.update(SYNC_STATE="yes", MISSING_STATE=rng.choice(["POWEROFF", "UNKNOWN"]))
            return payload
        if mtype is T.EXEC_VM:
            return {"VM": {"ID": self.vm_base, "EXEC": "ok", "STDOUT": "aGk="}}
        return {}

    def message(self) -> Message:
        """A valid message (now and then a FAILURE)."""
        mtype = self.rng.choice(list(T))
        host_id = self.host()
        if self.rng.random() < 0.05:
            error = "Error executing probe: " + self.rng.choice(["timeout", "é\u0000x", "$(id)"])
            return Message(mtype, Status.FAILURE, host_id, time.time(), {}, error)
        return Message(mtype, Status.SUCCESS, host_id, time.time(), self.payload(mtype, host_id))

    def seq(self, host_id: int, mtype: int) -> int:
        """The next seq of a stream (now and then an old one: a replay)."""
        key = (host_id, mtype)
        current = self.seqs.get(key, 0)
        if current and self.rng.random() < 0.03:
            return self.rng.randrange(current)
        self.seqs[key] = current + 1
        return current

    def envelope(self, message: Message) -> bytes:
        """A valid signed envelope."""
        key = self.keys.key_for(message.host_id)
        return native.encode(message, key, self.boot, self.seq(message.host_id, message.type))

    # --- strategies -------------------------------------------------------------------------

    def next(self) -> Input:
        """The next input."""
        if self.rng.random() < self.tcp_share:
            return self.stream()
        strategy = self.rng.choices(self.strategies, self._weights)[0][1]
        made = strategy()
        if len(made.data) > MAX_DATAGRAM:
            return Input("udp", made.data[:MAX_DATAGRAM], 1, made.label + "+cut")
        return made

    def valid_native(self) -> Input:
        """A valid envelope."""
        return Input("udp", self.envelope(self.message()), 1, "native")

    def bytes_native(self) -> Input:
        """A valid envelope, mutated bytewise (the tag no longer matches)."""
        return Input("udp", self.mutate(self.envelope(self.message())), 1, "native-bytes")

    def foreign_native(self) -> Input:
        """A valid envelope under the wrong key, key id or host id."""
        message = self.message()
        rng = self.rng
        choice = rng.randrange(3)
        if choice == 0:
            key = Key(self.keys.cluster.key_id, rng.randbytes(32))  # forged tag
        elif choice == 1 and self.keys.per_host:
            host = rng.choice(list(self.keys.per_host))
            key = self.keys.per_host[host]  # another host's key
        else:
            key = Key(f"k{rng.randrange(1000)}", rng.randbytes(32))  # unknown key id
        data = native.encode(message, key, self.boot, self.seq(message.host_id, message.type))
        return Input("udp", data, 1, "native-foreign")

    def resigned_native(self) -> Input:
        """An envelope with a field or the body reshaped, then signed with the right key."""
        rng = self.rng
        message = self.message()
        host_id = message.host_id
        flags, body = _coded(message)
        fields: list[Any] = [
            native.VERSION, self.keys.key_for(host_id).key_id, host_id, self.boot,
            self.seq(host_id, message.type), int(message.type), int(message.status),
            message.timestamp, flags, body,
        ]  # fmt: skip
        what = rng.randrange(4)
        if what == 0:  # a field of another type or out of range
            index = rng.randrange(len(fields))
            fields[index] = self.odd_value()
        elif what == 1:  # body bytes mutated (maybe still compressed)
            fields[9] = self.mutate(body)
        elif what == 2:  # body re-encoded from a reshaped payload
            try:
                data = cbor2.dumps(self.odd_payload(), default=_default)
            except (UnicodeEncodeError, ValueError, TypeError):
                data = INVALID_UTF8_MAP  # a map whose text is not UTF-8
            if rng.random() < 0.5:
                fields[8], fields[9] = native.FLAG_ZLIB, zlib.compress(data)
            else:
                fields[8], fields[9] = 0, data
        else:  # compression games
            fields[8], fields[9] = native.FLAG_ZLIB, self.odd_zlib()
        key = self.keys.key_for(host_id if type(fields[2]) is int else self.keys.hosts[0])
        if fields[1] != key.key_id and rng.random() < 0.7:
            fields[1] = key.key_id
        data = _seal(fields, key.secret)
        if rng.random() < 0.1:
            data = _seal(fields[: rng.randrange(11)], key.secret)  # wrong item count
        return Input("udp", data, 1, "native-resigned")

    def valid_legacy(self) -> Input:
        """A valid legacy line."""
        message = self.message()
        if message.host_id < 0 and self.rng.random() < 0.5:
            message = Message(message.type, message.status, 1, message.timestamp)
        data = legacy.encode(message)
        if self.rng.random() < 0.3:
            data += b"\n"
        return Input("udp", data, 1, "legacy")

    def mutated_legacy(self) -> Input:
        """A legacy line, mutated bytewise or fieldwise."""
        data = legacy.encode(self.message())
        rng = self.rng
        if rng.random() < 0.5:
            return Input("udp", self.mutate(data), 1, "legacy-bytes")
        fields = data.split(b" ", 4)
        index = rng.randrange(len(fields))
        fields[index] = rng.choice([
            b"", b"-", b"-1", b"99999999999", b"0x10", b"1e9", b"\xff\xfe", b"A" * 300,
            b"MONITOR_VM", b"FAILURE", b"SUCCESS", b"\n", b"=", b"====", rng.randbytes(12),
            base64.b64encode(rng.randbytes(20)),
        ])  # fmt: skip
        return Input("udp", b" ".join(fields), 1, "legacy-fields")

    def structured_legacy(self) -> Input:
        """A legacy line whose payload is odd template text or an odd zlib stream."""
        rng = self.rng
        mtype = rng.choice(list(T)).name
        host = self.host()
        if rng.random() < 0.5:
            payload = base64.b64encode(
                zlib.compress(self.odd_template().encode("utf-8", "replace"))
            )
        else:
            payload = base64.b64encode(self.odd_zlib())
        line = f"{mtype} {rng.choice(['SUCCESS', 'FAILURE'])} {host} {int(time.time())} "
        return Input("udp", line.encode() + payload, 1, "legacy-template")

    def garbage(self) -> Input:
        """Random bytes, empty datagrams, huge ones."""
        rng = self.rng
        size = rng.choice([0, 1, 2, 11, 60, 200, 1400, 9000, MAX_DATAGRAM])
        head = rng.choice([b"", b"\x8b", b"\x8b\x01", b"\x8b\x02", b"M", b"\x00"])
        return Input("udp", (head + rng.randbytes(size))[:MAX_DATAGRAM], 1, "garbage")

    def stream(self) -> Input:
        """A TCP connection's bytes: native frames (valid, mutated, odd lengths) or legacy."""
        rng = self.rng
        if rng.random() < 0.25:
            line = legacy.encode(self.message())
            if rng.random() < 0.5:
                line = self.mutate(line)
            return tcp_input(line, "tcp-legacy")
        parts = []
        for _ in range(rng.randrange(1, 6)):
            made = rng.choices(self.strategies[:4], self._weights[:4])[0][1]().data
            roll = rng.random() if self.known_bugs or not KNOWN_BUGS else 0.0
            if roll < 0.8:
                parts.append(struct.pack(">I", len(made)) + made)
            elif roll < 0.9:  # misaligned: what follows is read as a length (often oversize)
                parts.append(struct.pack(">I", rng.choice([0, 1, len(made) + 5])) + made)
            else:  # oversize (never first: a native stream's first byte is 0)
                parts.append(struct.pack(">I", rng.choice([MAX_TCP_MESSAGE + 1, 2**32 - 1])))
        data = b"".join(parts)
        if rng.random() < 0.1:
            data = data[: rng.randrange(1, len(data) + 1)]
        if not data or data[0] != 0:
            data = b"\x00\x00\x00\x00" + data  # keep it a native stream (an empty frame first)
        return tcp_input(data, "tcp-native")

    # --- mutations --------------------------------------------------------------------------

    def mutate(self, data: bytes) -> bytes:
        """One to four byte-level mutations."""
        rng = self.rng
        buf = bytearray(data)
        for _ in range(rng.randrange(1, 5)):
            if not buf:
                buf += rng.randbytes(rng.randrange(1, 8))
                continue
            at = rng.randrange(len(buf))
            op = rng.randrange(9)
            if op == 0:
                buf[at] ^= 1 << rng.randrange(8)
            elif op == 1:
                buf[at] = rng.randrange(256)
            elif op == 2:
                buf[at:at] = rng.randbytes(rng.randrange(1, 16))
            elif op == 3:
                del buf[at : at + rng.randrange(1, 32)]
            elif op == 4:
                del buf[at:]
            elif op == 5:
                end = min(len(buf), at + rng.randrange(1, 64))
                buf[at:at] = buf[at:end]
            elif op == 6:
                buf[at:at] = rng.choice(INTERESTING)
            elif op == 7:
                buf += rng.randbytes(rng.randrange(1, 32))
            else:
                other = bytes(rng.randbytes(rng.randrange(1, 64)))
                buf[at : at + len(other)] = other
        return bytes(buf)

    def odd_value(self) -> Any:
        """A CBOR value of a surprising type or size."""
        rng = self.rng
        return rng.choice([
            None, True, -1, 0, 2**63, -(2**64), 2**64 + 1, 1.5, float("nan"), float("inf"),
            "", "x" * 70, b"", b"\x00" * 15, b"\x00" * 17, [], {}, [1, 2], {"a": 1},
            cbor2.CBORTag(37, b"\x00" * 16), cbor2.CBORTag(1, 0), cbor2.undefined, 2**40,
            rng.randrange(-(2**31), 2**31),
        ])  # fmt: skip

    def odd_payload(self) -> Any:
        """A payload map with odd shapes (or not a map at all)."""
        rng = self.rng
        choice = rng.randrange(10)
        if choice == 0:
            nested: Any = 1
            for _ in range(rng.randrange(5, 40)):
                nested = {"A": nested} if rng.random() < 0.5 else [nested]
            return {"VM": nested}
        if choice == 1:
            return {rng.choice([1, -5, 2**70, "", "x" * 300, b"k", 1.5]): 1}
        if choice == 2:
            return {"VM": [{"ID": self.odd_value(), "MONITOR": self.odd_value()}]}
        if choice == 3:
            return {CODE_OF.get("VM", "VM"): [[1, 2]]}
        if choice == 4:
            return {"USEDCPU": float("nan"), "FREEMEMORY": 2**80, "NETRX": "1e400"}
        if choice == 5:
            return [1, 2, 3]
        if choice == 6:
            return {"VM": []}
        if choice == 7:
            return {"STATE": "RUNNING", "VM": {"ID": rng.randrange(-5, 5), "STATE": "SUSPENDED"}}
        if choice == 8:
            return {f"K{n}": n for n in range(rng.randrange(100, 3000))}
        return {"HOSTNAME": self.odd_text(), "VM": {"ID": -1, "VM_NAME": self.odd_text()}}

    def odd_text(self) -> str:
        """Hostile text."""
        return self.rng.choice([
            'q"uote', "new\nline", "$(touch /tmp/onemon-fuzz-canary)", "`id`", "x" * 4096,
            "\udcff\ud800", "é✓😀", "\x00\x1b[31m", "]]>", "\\", "VM=[ID=1]",
        ])  # fmt: skip

    def odd_template(self) -> str:
        """Template text that is odd, broken or hostile."""
        rng = self.rng
        return rng.choice([
            'A="unterminated', "A=[B=1", "VM=[ID=1,MONITOR=\"" + "x" * 50 + '"]',
            "=1", "A=" + "[" * 200, "A=1\nB=" + "\\" * 10, f'HOSTNAME="{self.odd_text()}"',
            "VM=[ID=1,MONITOR=\"%%%\"]", "A=" + "9" * 500, "\x00\x01\x02", "A = [ B = \"]\" ]",
            'VM=[ID="7", STATE="RUNNING", DEPLOY_ID="$(id)"]\nSYNC_STATE=yes',
        ])  # fmt: skip

    def odd_zlib(self) -> bytes:
        """Broken, truncated, trailing or bomb zlib streams."""
        rng = self.rng
        choice = rng.randrange(5)
        if choice == 0:  # inflates past the bound: costly to refuse (16 MiB), so rare
            return _bomb() if rng.random() < 0.03 else zlib.compress(rng.randbytes(9000))
        if choice == 1:
            return zlib.compress(b"\xa0")[:-3]
        if choice == 2:
            return zlib.compress(b"\xa0") + b"tail"
        if choice == 3:
            return rng.randbytes(rng.randrange(1, 64))
        return zlib.compress(cbor2.dumps({"A": 1}))


_BOMB: list[bytes] = []


def _bomb() -> bytes:
    """20 MiB of zeros, deflated (about 20 KB), made once."""
    if not _BOMB:
        _BOMB.append(zlib.compress(b"\x00" * (20 * 1024 * 1024), 9))
    return _BOMB[0]


def _default(encoder: Any, value: Any) -> None:
    encoder.encode(repr(value))


def _coded(message: Message) -> tuple[int, bytes]:
    body = native.encode_body(message)
    if len(body) >= native.COMPRESS_ABOVE:
        packed = zlib.compress(body, 6)
        if len(packed) < len(body):
            return native.FLAG_ZLIB, packed
    return 0, body


def _seal(fields: list[Any], secret: bytes) -> bytes:
    """``fields`` plus a tag placeholder as CBOR, the tag being HMAC over what precedes it."""
    head = cbor2.dumps([*fields, b"\x00" * native.TAG_BYTES])[: -native.TAG_BYTES]
    return head + hmac.digest(secret, head, "sha256")


def host_key(host_id: int, seed: int = 0) -> Key:
    """The per-host key the fuzz collector gets for ``host_id``."""
    return Key(f"h{host_id}", hashlib.sha256(f"fuzz-{seed}-{host_id}".encode()).digest())
