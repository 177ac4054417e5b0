"""The native envelope: round trip, authentication, strictness, bounds."""

from __future__ import annotations

import uuid
import zlib
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onemon.wire import native
from onemon.wire.errors import REASONS, WireError
from onemon.wire.keys import Key, KeyRing
from onemon.wire.model import Message, MessageType, Status

KEY = Key("cluster", b"k" * 32)
RING = KeyRing.single(KEY)
BOOT = bytes(range(16))

VM_REPORT = Message(
    MessageType.MONITOR_VM,
    Status.SUCCESS,
    3,
    1716200040.5,
    {
        "VM": [
            {
                "ID": 12,
                "DEPLOY_ID": "6c1e1565-50f4-43b6-ba71-0fe46477d2ec",
                "MONITOR": {"CPU": 1.01, "MEMORY": 140816, "NETRX": 0, "DISKRDBYTES": 44165444},
            },
            {"ID": 15, "DEPLOY_ID": "x", "MONITOR": {"DISK_SIZE": [{"ID": 0, "SIZE": 2252}]}},
        ],
        "CUSTOM_PROBE_VALUE": "text with spaces",
    },
)


def test_round_trip_keeps_message_and_ordering_identity() -> None:
    data = native.encode(VM_REPORT, KEY, BOOT, 41)
    env = native.decode(data, RING)
    assert env.message == VM_REPORT
    assert (env.boot_id, env.seq, env.key_id) == (BOOT, 41, "cluster")


def test_failure_carries_error_text() -> None:
    msg = Message(MessageType.SYSTEM_HOST, Status.FAILURE, 3, 1, error="Error executing pci.rb: x")
    env = native.decode(native.encode(msg, KEY, BOOT, 1), RING)
    assert env.message.error == "Error executing pci.rb: x"
    assert env.message.status is Status.FAILURE


def test_well_known_names_travel_as_codes_so_records_are_small() -> None:
    body = native.encode_body(VM_REPORT)
    assert b"DISKRDBYTES" not in body and b"DEPLOY_ID" not in body
    assert b"CUSTOM_PROBE_VALUE" in body


@pytest.mark.parametrize("compress", [True, False])
def test_compression_flag_round_trips(compress: bool) -> None:
    data = native.encode(VM_REPORT, KEY, BOOT, 7, compress=compress)
    assert native.decode(data, RING).message == VM_REPORT


def test_wrong_key_is_bad_mac() -> None:
    data = native.encode(VM_REPORT, Key("cluster", b"x" * 32), BOOT, 1)
    with pytest.raises(WireError) as err:
        native.decode(data, RING)
    assert err.value.reason == "bad_mac"


def test_unknown_key_id_is_bad_key() -> None:
    data = native.encode(VM_REPORT, Key("other", b"k" * 32), BOOT, 1)
    with pytest.raises(WireError) as err:
        native.decode(data, RING)
    assert err.value.reason == "bad_key"


def test_per_host_key_cannot_sign_for_another_host() -> None:
    host3 = Key("h3", b"3" * 32)
    ring = KeyRing(per_host={3: host3, 4: Key("h4", b"4" * 32)})
    ok = native.encode(VM_REPORT, host3, BOOT, 1)
    assert native.decode(ok, ring).message.host_id == 3
    forged = native.encode(Message(MessageType.BEACON_HOST, Status.SUCCESS, 4, 1.0), host3, BOOT, 1)
    with pytest.raises(WireError) as err:
        native.decode(forged, ring)
    assert err.value.reason == "bad_key"


def test_every_flipped_bit_is_rejected() -> None:
    data = native.encode(VM_REPORT, KEY, BOOT, 1)
    for index in range(len(data)):
        for bit in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[index] ^= bit
            with pytest.raises(WireError):
                native.decode(bytes(mutated), RING)


def test_trailing_bytes_are_rejected() -> None:
    data = native.encode(VM_REPORT, KEY, BOOT, 1)
    with pytest.raises(WireError) as err:
        native.decode(data + b"\x00", RING)
    assert err.value.reason in {"trailing_bytes", "malformed"}


def test_every_truncation_is_rejected() -> None:
    data = native.encode(VM_REPORT, KEY, BOOT, 1)
    for cut in range(len(data)):
        with pytest.raises(WireError):
            native.decode(data[:cut], RING)


def test_unknown_version_is_refused() -> None:
    data = bytearray(native.encode(VM_REPORT, KEY, BOOT, 1))
    data[1] = 2
    with pytest.raises(WireError) as err:
        native.decode(bytes(data), RING)
    assert err.value.reason == "bad_version"


def test_oversize_input_is_refused_before_decoding() -> None:
    with pytest.raises(WireError) as err:
        native.decode(b"\x8b" + b"\x00" * 2000, RING, max_size=1400)
    assert err.value.reason == "too_large"


def _signed(fields: list[Any]) -> bytes:
    """Encode arbitrary envelope fields with a valid tag (what a key holder could send)."""
    head = cbor2.dumps([*fields, b"\x00" * 32])[:-32]
    import hmac

    return head + hmac.digest(KEY.secret, head, "sha256")


def _fields(body: bytes, flags: int = 0, type_code: int = 4, ts: Any = 1.0) -> list[Any]:
    return [1, "cluster", 3, BOOT, 1, type_code, 0, ts, flags, body]


def test_zlib_bomb_stops_at_the_payload_bound() -> None:
    bomb = zlib.compress(cbor2.dumps({"A": "x" * (native.MAX_PAYLOAD_BYTES + 10)}), 9)
    with pytest.raises(WireError) as err:
        native.decode(_signed(_fields(bomb, flags=native.FLAG_ZLIB)), RING)
    assert err.value.reason == "too_large"


def test_deep_nesting_is_bad_payload_even_when_signed() -> None:
    deep: Any = "leaf"
    for _ in range(50):
        deep = {"A": deep}
    with pytest.raises(WireError) as err:
        native.decode(_signed(_fields(cbor2.dumps(deep))), RING)
    assert err.value.reason == "bad_payload"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (cbor2.dumps({"A": True}), "bad_payload"),
        (cbor2.dumps({"A": None}), "bad_payload"),
        (cbor2.dumps({"A": b"bytes"}), "bad_payload"),
        (cbor2.dumps({"A": float("nan")}), "bad_payload"),
        (cbor2.dumps({9999: 1}), "bad_payload"),
        (cbor2.dumps([1, 2]), "bad_payload"),
        (cbor2.dumps({"A": 1}) + b"\x01", "trailing_bytes"),
        (b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "truncated"),
    ],
)
def test_signed_but_invalid_bodies_have_typed_reasons(body: bytes, reason: str) -> None:
    with pytest.raises(WireError) as err:
        native.decode(_signed(_fields(body)), RING)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (_fields(cbor2.dumps({}), type_code=99), "bad_type"),
        (_fields(cbor2.dumps({}), flags=0x80), "bad_field"),
        (_fields(cbor2.dumps({}), ts=-5), "bad_field"),
        (_fields(cbor2.dumps({}), ts="now"), "bad_field"),
    ],
)
def test_bad_envelope_fields_have_typed_reasons(fields: list[Any], reason: str) -> None:
    with pytest.raises(WireError) as err:
        native.decode(_signed(fields), RING)
    assert err.value.reason == reason


# --- properties -----------------------------------------------------------------------------

names = st.one_of(
    st.sampled_from(["ID", "CPU", "MEMORY", "VM", "MONITOR", "DISK_SIZE", "NETRX"]),
    st.from_regex(r"[A-Z][A-Z0-9_]{0,20}", fullmatch=True),
)
scalars = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
vectors = st.dictionaries(names, scalars, max_size=6)
nested_vm = st.fixed_dictionaries({"ID": st.integers(0, 10**6), "MONITOR": vectors})
attr_values = st.one_of(
    scalars, vectors, nested_vm, st.lists(st.one_of(scalars, vectors), min_size=1, max_size=4)
)
templates = st.dictionaries(names, attr_values, max_size=8)


@given(
    payload=templates,
    seq=st.integers(0, 2**63 - 1),
    host=st.integers(-1, 2**31 - 1),
    ts=st.one_of(st.integers(0, 2**40 - 1), st.floats(0, 2**39)),
    mtype=st.sampled_from(list(MessageType)),
)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_encode_decode_round_trip(
    payload: dict[str, Any], seq: int, host: int, ts: float, mtype: MessageType
) -> None:
    msg = Message(mtype, Status.SUCCESS, host, ts, payload)
    env = native.decode(native.encode(msg, KEY, BOOT, seq), RING)
    assert env.message == msg
    assert env.seq == seq


@given(st.binary(max_size=2048))
@settings(max_examples=2000)
def test_arbitrary_bytes_give_a_typed_error(data: bytes) -> None:
    try:
        native.decode(data, RING)
    except WireError as exc:
        assert exc.reason in REASONS


VALID = native.encode(VM_REPORT, KEY, BOOT, 5)


@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.binary(max_size=16),
    st.integers(0, len(VALID)),
)
@settings(max_examples=2000)
def test_mutated_envelopes_are_rejected_with_a_reason(
    edits: list[tuple[int, int]], tail: bytes, cut: int
) -> None:
    data = bytearray(VALID)
    for index, value in edits:
        data[index] = value
    mutated = bytes(data[:cut]) + tail
    if mutated == VALID:
        return
    with pytest.raises(WireError) as err:
        native.decode(mutated, RING)
    assert err.value.reason in REASONS


@given(
    st.recursive(
        scalars | st.booleans() | st.none() | st.binary(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.one_of(st.text(max_size=5), st.integers(-5, 500)), inner, max_size=4
            )
        ),
        max_leaves=40,
    )
)
@settings(max_examples=1000)
def test_any_signed_cbor_body_gives_a_template_or_a_typed_error(body: Any) -> None:
    try:
        env = native.decode(_signed(_fields(cbor2.dumps(body))), RING)
    except WireError as exc:
        assert exc.reason in REASONS
    else:
        assert isinstance(env.message.payload, dict)


def test_uuids_travel_as_16_bytes_and_come_back_as_text() -> None:
    body = native.encode_body(VM_REPORT)
    assert b"6c1e1565-50f4" not in body
    env = native.decode(native.encode(VM_REPORT, KEY, BOOT, 1), RING)
    assert env.message.payload["VM"][0]["DEPLOY_ID"] == "6c1e1565-50f4-43b6-ba71-0fe46477d2ec"


def test_upper_case_uuid_text_is_kept_verbatim() -> None:
    msg = Message(
        MessageType.STATE_VM, Status.SUCCESS, 1, 1.0, {"X": "6C1E1565-50F4-43B6-BA71-0FE46477D2EC"}
    )
    assert native.decode(native.encode(msg, KEY, BOOT, 1), RING).message == msg


@given(templates, st.lists(nested_vm, min_size=1, max_size=30))
@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
def test_datagram_sizer_produces_exactly_what_encode_produces(
    extra: dict[str, Any], vms: list[dict[str, Any]]
) -> None:
    payload = {**extra, "VM": vms}
    msg = Message(MessageType.MONITOR_VM, Status.SUCCESS, 5, 10.0, payload)
    sizer = native.DatagramSizer(KEY, BOOT)
    assert sizer(msg) == native.encode(msg, KEY, BOOT, 2**63 - 1)


def test_a_uuid_map_key_is_a_bad_attribute_name() -> None:
    body = cbor2.dumps({uuid.UUID("6c1e1565-50f4-43b6-ba71-0fe46477d2ec"): 1})
    with pytest.raises(WireError) as err:
        native.decode(_signed(_fields(body)), RING)
    assert err.value.reason == "bad_payload"


@pytest.mark.parametrize("content", [b"short", "6c1e1565-50f4-43b6-ba71-0fe46477d2ec", 5])
def test_a_uuid_tag_over_anything_but_16_bytes_is_malformed(content: object) -> None:
    body = cbor2.dumps({"A": cbor2.CBORTag(37, content)})
    with pytest.raises(WireError) as err:
        native.decode(_signed(_fields(body)), RING)
    assert err.value.reason == "malformed"


def test_bytes_after_a_signed_envelope_are_trailing_bytes() -> None:
    data = native.encode(VM_REPORT, KEY, BOOT, 1)
    for tail in (b"\x00", b"\x58\x20" + data[-32:], data):
        with pytest.raises(WireError) as err:
            native.decode(data + tail, RING)
        assert err.value.reason in {"trailing_bytes", "bad_mac"}
