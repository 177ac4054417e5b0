"""Fuzzing the decoders and the ingest pipeline in-process (hypothesis + the socket fuzzer's inputs).

Beyond ``tests/wire`` (each decoder alone), these drive the collector's whole pipeline for one
input, ``Ingest.datagram`` / ``Ingest.native_frame`` with a real state: whatever arrives, the
call returns (the listener would otherwise count an ``internal_error``), and exactly one count
(accepted or rejected by reason) is made. Envelopes are reshaped and then signed again, so they
reach the payload decoder and the state rules instead of stopping at the HMAC check.
"""

from __future__ import annotations

import base64
import hmac
import time
import tracemalloc
import zlib
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench.fleet_fuzz import Generator, native_units
from bench.fleet_hosts import FleetSpec
from bench.fuzz import fuzz_keys
from onemon.collector.events import EventBus
from onemon.collector.ingest import Ingest
from onemon.collector.metrics.health import Health
from onemon.collector.ordering import Ordering, Verdict
from onemon.collector.state import CloudState
from onemon.wire import legacy, native
from onemon.wire.errors import REASONS, WireError
from onemon.wire.keys import KeyRing
from onemon.wire.model import Message, MessageType, Status
from onemon.wire.stream import FrameReader, decode_ack, frame

SPEC = FleetSpec(hosts=8, vms=0, first_host=1, host_keys=True)
KEYS = fuzz_keys(SPEC, {0, 1, 2, 3})
RING = KeyRing(cluster={KEYS.cluster.key_id: KEYS.cluster.secret}, per_host=KEYS.per_host)
BOOT = (7).to_bytes(8, "big") + b"fuzzboot"
COLLECTOR_REASONS = REASONS | {
    "duplicate", "replay", "old_boot", "unknown_host", "host_offline", "out_of_order",
    "legacy_disabled",
}  # fmt: skip
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


class NullStore:
    """The store as the pipeline sees it, keeping nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def pipeline() -> tuple[Ingest, Health]:
    """A fresh pipeline with the fuzz hosts registered."""
    state = CloudState()
    for host_id in KEYS.hosts:
        state.add_host(host_id, f"node{host_id}")
    health = Health()
    return Ingest(state, RING, health, NullStore(), EventBus()), health


def counted(health: Health) -> int:
    """Every count the pipeline made."""
    return sum(health.messages.values()) + sum(health.rejected.values())


def seal(fields: list[Any], host_id: int) -> bytes:
    """An envelope of ``fields`` (without the tag), signed with ``host_id``'s key."""
    secret = KEYS.key_for(host_id).secret
    head = cbor2.dumps([*fields, b"\x00" * native.TAG_BYTES])[: -native.TAG_BYTES]
    return head + hmac.digest(secret, head, "sha256")


# --- strategies -------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.binary(max_size=40),
)  # fmt: skip
cbor_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(-5, 300)), inner, max_size=4),
    ),
    max_leaves=20,
)
names = st.sampled_from(["VM", "ID", "MONITOR", "STATE", "SYNC_STATE", "MISSING_STATE", "CPU",
                         "DEPLOY_ID", "HOSTNAME", "NETRX", "DS", "HUGEPAGE", "MEMORY_NODE"])  # fmt: skip
payloads = st.dictionaries(st.one_of(names, st.text(max_size=8)), cbor_values, max_size=6)
message_types = st.sampled_from([int(t) for t in MessageType])


@st.composite
def reshaped_envelopes(draw: st.DrawFn) -> tuple[int, bytes]:
    """(host id, envelope) with any body and one field possibly of any value, signed right."""
    host_id = draw(st.sampled_from(KEYS.hosts))
    body: Any = draw(st.one_of(payloads, cbor_values))
    raw = cbor2.dumps(body)
    flags = 0
    if draw(st.booleans()):
        import zlib

        raw, flags = zlib.compress(raw), native.FLAG_ZLIB
    fields: list[Any] = [
        native.VERSION, KEYS.key_for(host_id).key_id, host_id, BOOT,
        draw(st.integers(0, 2**63 - 1)), draw(message_types), draw(st.sampled_from([0, 1])),
        time.time(), flags, raw,
    ]  # fmt: skip
    if draw(st.booleans()):
        index = draw(st.integers(0, len(fields) - 1))
        value = draw(cbor_values)
        fields[index] = value
    return host_id, seal(fields, host_id)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few byte edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.integers(0, 3))
        if op == 0:
            data[at] = draw(st.integers(0, 255))
        elif op == 1:
            del data[at : at + draw(st.integers(1, 16))]
        elif op == 2:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at:]
    return bytes(data)


def _seeds() -> list[bytes]:
    out = []
    for n, mtype in enumerate(MessageType):
        payload: dict[str, Any] = {"VM": [{"ID": 7, "STATE": "RUNNING", "MONITOR": {"CPU": 1.5}}]}
        message = Message(mtype, Status.SUCCESS, KEYS.hosts[n % 8], time.time(), payload)
        out.append(native.encode(message, KEYS.key_for(message.host_id), BOOT, n))
        out.append(legacy.encode(message))
    return out


SEEDS = _seeds()


# --- the pipeline -----------------------------------------------------------------------------


@FUZZ
@given(reshaped_envelopes())
def test_any_reshaped_signed_envelope_is_counted_once_and_never_raises(
    item: tuple[int, bytes],
) -> None:
    ingest, health = pipeline()
    ingest.datagram(item[1])
    ack = ingest.native_frame(item[1])
    assert counted(health) == 2
    assert set(health.rejected) <= COLLECTOR_REASONS
    assert ack is None or isinstance(ack.code, str)


@FUZZ
@given(mutated(SEEDS))
@example(b"")
@example(b"\x8b" + b"\x81" * 200_000)
@example(b"\x8b\x01\x5b\xff\xff\xff\xff\xff\xff\xff\xff")
def test_any_mutated_datagram_is_counted_once_and_never_raises(data: bytes) -> None:
    ingest, health = pipeline()
    ingest.datagram(data)
    assert counted(health) == 1
    assert set(health.rejected) <= COLLECTOR_REASONS


def test_the_socket_fuzzers_inputs_are_counted_once_each_in_process() -> None:
    """The generator of ``bench.fuzz`` (known bugs avoided), every input through the pipeline."""
    ingest, health = pipeline()
    generator = Generator(KEYS, seed=11, tcp_share=0.0, known_bugs=False)
    slowest = 0.0
    for n in range(1, 3001):
        item = generator.next()
        started = time.perf_counter()
        ingest.datagram(item.data)
        slowest = max(slowest, time.perf_counter() - started)
        assert counted(health) == n, item
    assert set(health.rejected) <= COLLECTOR_REASONS
    assert health.rejected.get("internal_error", 0) == 0
    assert sum(health.messages.values()) > 100  # some inputs get through to the state
    assert slowest < 2.0  # a 16 MiB zlib bomb is the most expensive input


# --- framing and acks -------------------------------------------------------------------------


@FUZZ
@given(
    st.lists(st.binary(max_size=300), max_size=6),
    st.lists(st.integers(1, 64), min_size=1, max_size=20),
)
def test_frames_come_out_whole_whatever_the_chunking(frames: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(f) for f in frames)
    reader = FrameReader()
    out: list[bytes] = []
    at, n = 0, 0
    while at < len(stream):
        size = cuts[n % len(cuts)]
        out.extend(reader.feed(stream[at : at + size]))
        at, n = at + size, n + 1
    assert out == frames
    assert reader.pending == 0
    assert native_units(stream) == (len(frames), False)


@FUZZ
@given(st.binary(max_size=64))
def test_any_ack_bytes_decode_or_give_a_typed_error(data: bytes) -> None:
    try:
        ack = decode_ack(data)
    except WireError as exc:
        assert exc.reason in REASONS
    else:
        assert isinstance(ack.seq, int) and isinstance(ack.code, str)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes_are_framed_or_refused_with_too_large(data: bytes) -> None:
    reader = FrameReader()
    try:
        frames = reader.feed(data)
    except WireError as exc:
        assert exc.reason == "too_large"
    else:
        assert sum(4 + len(f) for f in frames) + reader.pending == len(data)


# --- bugs found by the socket fuzzer, fixed: these keep them fixed ----------------------------


def test_a_seq_jump_is_recorded_without_allocating_the_jump() -> None:
    ordering = Ordering()
    assert ordering.check(1, MessageType.BEACON_HOST, BOOT, 5) is Verdict.APPLY
    tracemalloc.start()
    try:
        verdict = ordering.check(1, MessageType.BEACON_HOST, BOOT, 5 + 2**40)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert verdict is Verdict.APPLY
    assert peak < 1024 * 1024


def test_deep_and_huge_declarations_are_refused_cheaply() -> None:
    """anchors §D.6 seed corpus: deep nesting, 2^64-long arrays and strings, trailing bytes."""
    ingest, health = pipeline()
    inputs = [
        b"\x8b" + b"\x81" * 200_000,
        b"\x8b\x01\x9b" + b"\xff" * 8,
        b"\x8b\x01\x5a\xff\xff\xff\xff",
        SEEDS[0] + b"\x00",
    ]
    for data in inputs:
        started = time.perf_counter()
        ingest.datagram(data)
        assert time.perf_counter() - started < 0.5
    assert counted(health) == len(inputs)
    assert health.rejected["trailing_bytes"] == 1


SCALAR_WHERE_A_VECTOR_IS_EXPECTED = [
    (MessageType.STATE_VM, 'VM="x"\n'),
    (MessageType.MONITOR_HOST, 'MEMORY_NODE="5"\n'),
    (MessageType.MONITOR_HOST, 'HUGEPAGE="2048"\n'),
]


@pytest.mark.parametrize(("mtype", "text"), SCALAR_WHERE_A_VECTOR_IS_EXPECTED)
def test_a_scalar_where_a_vector_is_expected_is_applied_or_refused_not_raised(
    mtype: MessageType, text: str
) -> None:
    ingest, health = pipeline()
    payload = base64.b64encode(zlib.compress(text.encode())).decode()
    ingest.datagram(f"{mtype.name} SUCCESS {KEYS.hosts[0]} {int(time.time())} {payload}".encode())
    assert counted(health) == 1
    assert health.rejected.get("internal_error", 0) == 0
