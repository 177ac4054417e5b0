"""OpenNebula's legacy wire line: golden examples of reference §1.8, RSA, errors, fuzzing."""

from __future__ import annotations

import base64
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onemon.wire import legacy, rsa
from onemon.wire.errors import TemplateError, WireError
from onemon.wire.legacy import LegacyFrame
from onemon.wire.model import Message, MessageType, Status

BEACON_LINE = b"BEACON_HOST SUCCESS 3 1716200030 eNozNDc0MzIwMDA2AAAK5wH1"

MONITOR_HOST_TEXT = """\
HYPERVISOR=kvm
USEDMEMORY=2147156
FREEMEMORY=5831016
FREECPU=792
USEDCPU=8
NETRX=0
NETTX=0
HUGEPAGE = [ NODE_ID = "0", SIZE = "2048", FREE = "0" ]
HUGEPAGE = [ NODE_ID = "0", SIZE = "1048576", FREE = "0" ]
MEMORY_NODE = [ NODE_ID = "0", FREE = "173580", USED = "1086600" ]"""

VM_MONITOR_TEXT = (
    'CPU="1.01"\nMEMORY="140816"\nNETRX="0"\nNETTX="0"\nDISKRDBYTES="44165444"\n'
    'DISKWRBYTES="1266688"\nDISKRDIOPS="1289"\nDISKWRIOPS="881"\n'
)
VM_DISK_TEXT = "\nDISK_SIZE = [ ID=0, SIZE=2252]\n"
DEPLOY_12 = "6c1e1565-50f4-43b6-ba71-0fe46477d2ec"
DEPLOY_15 = "0b6f9d8e-3c53-4e5e-9a3c-6f1d2e7c4a11"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


MONITOR_VM_TEXT = (
    f'VM = [ ID="12", DEPLOY_ID="{DEPLOY_12}", MONITOR="{_b64(VM_MONITOR_TEXT)}"]\n'
    f'VM = [ ID = 12, MONITOR = "{_b64(VM_DISK_TEXT)}"]\n'
)

STATE_VM_TEXT = (
    "SYNC_STATE=yes\nMISSING_STATE=POWEROFF\n"
    f'VM = [ ID="12", DEPLOY_ID="{DEPLOY_12}",  STATE="RUNNING" ]\n'
    f'VM = [ ID="15", DEPLOY_ID="{DEPLOY_15}",  STATE="POWEROFF" ]\n'
)

FAILURE_TEXT = "Error executing pci.rb: Invalid configuration file /etc/one/pci.conf"

VM_MONITOR_VALUES = {
    "CPU": "1.01",
    "MEMORY": "140816",
    "NETRX": "0",
    "NETTX": "0",
    "DISKRDBYTES": "44165444",
    "DISKWRBYTES": "1266688",
    "DISKRDIOPS": "1289",
    "DISKWRIOPS": "881",
}


def _agent_line(type_name: str, status: str, oid: int, ts: int, text: str) -> bytes:
    """A line built exactly as the Ruby agent's MonitorClient#pack, without RSA."""
    packed = base64.b64encode(zlib.compress(text.encode(), 9)).decode()
    return f"{type_name} {status} {oid} {ts} {packed}".encode()


@pytest.fixture(scope="module")
def key() -> crypto_rsa.RSAPrivateKey:
    return crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --------------------------------------------------------------------------- golden §1.8


def test_beacon_golden_line() -> None:
    frame = legacy.decode_frame(BEACON_LINE)
    assert frame == LegacyFrame("BEACON_HOST", "SUCCESS", 3, 1716200030, b"1716200030")
    msg = legacy.to_message(frame)
    assert msg == Message(MessageType.BEACON_HOST, Status.SUCCESS, 3, 1716200030.0, {})
    # zlib level 9 is deterministic: we produce the agent's bytes exactly.
    assert legacy.encode_frame(frame) == BEACON_LINE
    assert legacy.encode(msg) == BEACON_LINE


def test_monitor_host_golden_line() -> None:
    line = _agent_line("MONITOR_HOST", "SUCCESS", 3, 1716200040, MONITOR_HOST_TEXT)
    assert line.startswith(
        b"MONITOR_HOST SUCCESS 3 1716200040 eNqNjr0OwjAMhPc8RdSZIUmbH4YMiJo2Q9soa"
    )
    msg = legacy.decode(line)
    assert (msg.type, msg.status, msg.host_id, msg.timestamp) == (
        MessageType.MONITOR_HOST,
        Status.SUCCESS,
        3,
        1716200040.0,
    )
    assert msg.payload["USEDMEMORY"] == "2147156"
    assert msg.payload["FREECPU"] == "792"
    assert msg.payload["HUGEPAGE"] == [
        {"NODE_ID": "0", "SIZE": "2048", "FREE": "0"},
        {"NODE_ID": "0", "SIZE": "1048576", "FREE": "0"},
    ]
    assert msg.payload["MEMORY_NODE"] == {"NODE_ID": "0", "FREE": "173580", "USED": "1086600"}


def test_monitor_vm_golden_nested_monitors() -> None:
    assert _b64(VM_MONITOR_TEXT).startswith("Q1BVPSIxLjAxIgpNRU1PUlk9IjE0MDgxNiIK")
    assert _b64(VM_DISK_TEXT).startswith("CkRJU0tfU0laRSA9IFsgSUQ9MCwgU0laRT0yMjUy")
    msg = legacy.decode(_agent_line("MONITOR_VM", "SUCCESS", 3, 1716200050, MONITOR_VM_TEXT))
    assert msg.type is MessageType.MONITOR_VM
    assert msg.payload == {
        "VM": [
            {"ID": "12", "DEPLOY_ID": DEPLOY_12, "MONITOR": VM_MONITOR_VALUES},
            {"ID": "12", "MONITOR": {"DISK_SIZE": {"ID": "0", "SIZE": "2252"}}},
        ]
    }


def test_state_vm_golden_sync_cycle() -> None:
    msg = legacy.decode(_agent_line("STATE_VM", "SUCCESS", 3, 1716200055, STATE_VM_TEXT) + b"\n")
    assert msg.type is MessageType.STATE_VM
    assert msg.payload == {
        "SYNC_STATE": "yes",
        "MISSING_STATE": "POWEROFF",
        "VM": [
            {"ID": "12", "DEPLOY_ID": DEPLOY_12, "STATE": "RUNNING"},
            {"ID": "15", "DEPLOY_ID": DEPLOY_15, "STATE": "POWEROFF"},
        ],
    }


def test_failure_golden_puts_the_text_in_error() -> None:
    msg = legacy.decode(_agent_line("SYSTEM_HOST", "FAILURE", 3, 1716200060, FAILURE_TEXT))
    assert msg == Message(
        MessageType.SYSTEM_HOST, Status.FAILURE, 3, 1716200060.0, {}, FAILURE_TEXT
    )
    assert not msg.ok


def test_beacon_failure_keeps_its_text() -> None:
    msg = legacy.decode(_agent_line("BEACON_HOST", "FAILURE", 7, 1, "Error executing date.sh"))
    assert (msg.status, msg.error, msg.payload) == (Status.FAILURE, "Error executing date.sh", {})


def test_failure_text_that_is_no_template_is_not_parsed() -> None:
    msg = legacy.decode(_agent_line("MONITOR_VM", "FAILURE", 3, 9, 'x = [ "broken'))
    assert msg.error == 'x = [ "broken'


# --------------------------------------------------------------------------- RSA

PRIVATE_FORMATS = {
    "pkcs1": ser.PrivateFormat.TraditionalOpenSSL,
    "pkcs8": ser.PrivateFormat.PKCS8,
    "openssh": ser.PrivateFormat.OpenSSH,
}

GOLDEN_TEXTS = {
    "MONITOR_HOST": MONITOR_HOST_TEXT,
    "MONITOR_VM": MONITOR_VM_TEXT,
    "STATE_VM": STATE_VM_TEXT,
    "SYSTEM_HOST": "HOSTNAME=node1\nCPUSPEED=2400\n" * 40,  # several RSA blocks
}


@pytest.mark.parametrize("fmt", PRIVATE_FORMATS)
@pytest.mark.parametrize("type_name", GOLDEN_TEXTS)
def test_encrypted_golden_messages_decode_with_every_key_format(
    fmt: str, type_name: str, key: crypto_rsa.RSAPrivateKey
) -> None:
    pem = key.private_bytes(ser.Encoding.PEM, PRIVATE_FORMATS[fmt], ser.NoEncryption())
    public_pem = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.PKCS1)
    private, public = rsa.load_private_key(pem), rsa.load_public_key(public_pem)
    text = GOLDEN_TEXTS[type_name]
    frame = LegacyFrame(type_name, "SUCCESS", 3, 1716200070, text.encode())
    line = legacy.encode_frame(frame, public)
    inflated = zlib.decompress(base64.b64decode(line.split()[-1]))
    assert len(inflated) % 256 == 0 and len(inflated) >= len(text)  # really RSA blocks
    assert legacy.decode_frame(line, private) == frame
    assert legacy.decode(line, private) == legacy.decode(legacy.encode_frame(frame))


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed")
def test_encryption_with_keys_from_the_documented_recipe(tmp_path: Path) -> None:
    path = tmp_path / "onemonitor"
    keygen = ["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(path)]
    subprocess.run(keygen, check=True)
    exported = subprocess.run(
        ["ssh-keygen", "-f", f"{path}.pub", "-e", "-m", "pem"], check=True, capture_output=True
    ).stdout
    pubkey = exported.decode().replace("\n", " ")  # as NETWORK/PUBKEY reaches the agent
    private, public = rsa.load_private_key_file(path), rsa.load_public_key(pubkey)
    frame = LegacyFrame("MONITOR_HOST", "SUCCESS", 4, 1716200080, MONITOR_HOST_TEXT.encode())
    assert legacy.decode_frame(legacy.encode_frame(frame, public), private) == frame


@pytest.mark.parametrize("size", [1, 200, 256, 512, 245 * 3])
def test_plain_messages_reach_a_collector_with_a_key(
    size: int, key: crypto_rsa.RSAPrivateKey
) -> None:
    # Sizes that are whole multiples of the key size would "decrypt" to random bytes under
    # OpenSSL >= 3.2's implicit rejection; the plaintext must still come through.
    text = ("A" * (size - 3) + "=1\n") if size > 3 else "A="[:size]
    frame = LegacyFrame("MONITOR_HOST", "SUCCESS", 3, 5, text.encode()[:size])
    assert len(frame.payload) == size
    assert legacy.decode_frame(legacy.encode_frame(frame), key) == frame


def test_plain_utf8_message_of_one_block_is_kept(key: crypto_rsa.RSAPrivateKey) -> None:
    text = ('NAME = "vm-ñ"\n' * 32).encode()[:256]
    frame = LegacyFrame("SYSTEM_HOST", "SUCCESS", 3, 5, text)
    assert len(text) == 256
    assert legacy.decode_frame(legacy.encode_frame(frame), key) == frame


def test_encrypted_message_without_a_key_stays_ciphertext(key: crypto_rsa.RSAPrivateKey) -> None:
    frame = LegacyFrame("MONITOR_HOST", "SUCCESS", 3, 5, MONITOR_HOST_TEXT.encode())
    decoded = legacy.decode_frame(legacy.encode_frame(frame, key.public_key()))
    assert len(decoded.payload) == 256 * 2
    assert decoded.payload != frame.payload


def test_message_for_another_key_is_kept_as_received(key: crypto_rsa.RSAPrivateKey) -> None:
    other = crypto_rsa.generate_private_key(public_exponent=65537, key_size=2048)
    frame = LegacyFrame("SYSTEM_HOST", "SUCCESS", 3, 5, GOLDEN_TEXTS["SYSTEM_HOST"].encode())
    decoded = legacy.decode_frame(legacy.encode_frame(frame, other.public_key()), key)
    assert len(decoded.payload) % 256 == 0
    assert rsa.decrypt(other, decoded.payload) == frame.payload


# --------------------------------------------------------------------------- line format


@pytest.mark.parametrize(
    "line",
    [
        BEACON_LINE + b"\n",
        BEACON_LINE + b"\r\n",
        b"BEACON_HOST  SUCCESS   3\t1716200030    eNozNDc0MzIwMDA2AAAK5wH1",
    ],
    ids=["lf", "crlf", "runs-of-blanks"],
)
def test_line_framing_variants(line: bytes) -> None:
    assert legacy.decode_frame(line) == legacy.decode_frame(BEACON_LINE)


def test_front_end_script_oid_minus_one_and_ts_zero() -> None:
    text = f'VM = [ ID="12", MONITOR="{_b64(VM_DISK_TEXT)}" ]\n'
    msg = legacy.decode(_agent_line("MONITOR_VM", "SUCCESS", -1, 0, text) + b"\n")
    assert (msg.host_id, msg.timestamp) == (-1, 0.0)
    assert msg.payload == {
        "VM": {"ID": "12", "MONITOR": {"DISK_SIZE": {"ID": "0", "SIZE": "2252"}}}
    }


@pytest.mark.parametrize("line", [b"MONITOR_HOST SUCCESS 3 17", b"MONITOR_HOST SUCCESS 3 17 \n"])
def test_empty_payload_is_allowed(line: bytes) -> None:
    frame = legacy.decode_frame(line)
    assert frame == LegacyFrame("MONITOR_HOST", "SUCCESS", 3, 17, b"")
    assert legacy.to_message(frame).payload == {}


def test_encode_frame_has_no_trailing_newline_and_single_spaces() -> None:
    line = legacy.encode_frame(LegacyFrame("EXEC_VM", "SUCCESS", 12, 34, b"A=1"))
    head, packed = line.rsplit(b" ", 1)
    assert head == b"EXEC_VM SUCCESS 12 34"
    assert base64.b64decode(packed, validate=True)[:2] == b"\x78\xda"  # zlib at level 9
    assert not line.endswith(b"\n")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"", "malformed"),
        (b"\n", "malformed"),
        (b"BEACON_HOST SUCCESS 3", "malformed"),
        (BEACON_LINE + b"\n" + BEACON_LINE, "malformed"),
        (b"UNDEFINED SUCCESS 3 1 eNoDAAAAAAE=", "bad_type"),
        (b"START_MONITOR SUCCESS 3 1 eNoDAAAAAAE=", "bad_type"),
        (b"beacon_host SUCCESS 3 1 eNoDAAAAAAE=", "bad_type"),
        (b"\xff\xfe SUCCESS 3 1 eNoDAAAAAAE=", "bad_type"),
        (b"BEACON_HOST - 3 1 eNoDAAAAAAE=", "bad_status"),
        (b"BEACON_HOST success 3 1 eNoDAAAAAAE=", "bad_status"),
        (b"BEACON_HOST SUCCESS x3 1 eNoDAAAAAAE=", "bad_field"),
        (b"BEACON_HOST SUCCESS +3 1 eNoDAAAAAAE=", "bad_field"),
        (b"BEACON_HOST SUCCESS 2147483648 1 eNoDAAAAAAE=", "bad_field"),
        (b"BEACON_HOST SUCCESS 3 -1 eNoDAAAAAAE=", "bad_field"),
        (b"BEACON_HOST SUCCESS 3 1.5 eNoDAAAAAAE=", "bad_field"),
        (b"BEACON_HOST SUCCESS 3 99999999999999999999 eNoDAAAAAAE=", "bad_field"),
        (b"BEACON_HOST SUCCESS 3 1 eNoDAAAAAAE", "bad_encoding"),
        (b"BEACON_HOST SUCCESS 3 1 eNoD AAAAAAE=", "bad_encoding"),
        (b"BEACON_HOST SUCCESS 3 1 eNoD\rAAAAAAE=", "bad_encoding"),
        (b"BEACON_HOST SUCCESS 3 1 eNo-AAAAAAE=", "bad_encoding"),
        (b"BEACON_HOST SUCCESS 3 1 eNoDAAAAAAE==", "bad_encoding"),
        (b"BEACON_HOST SUCCESS 3 1 aGVsbG8=", "bad_compression"),
        (b"BEACON_HOST SUCCESS 3 1 eNoDAAAA", "bad_compression"),
        (b"BEACON_HOST SUCCESS 3 1 eNoDAAAAAAEA", "bad_compression"),
    ],
)
def test_rejections_carry_their_reason(line: bytes, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        legacy.decode_frame(line)
    assert caught.value.reason == reason


def test_frame_over_max_size_is_too_large() -> None:
    with pytest.raises(WireError) as caught:
        legacy.decode_frame(BEACON_LINE, max_size=len(BEACON_LINE) - 1)
    assert caught.value.reason == "too_large"
    assert legacy.decode_frame(BEACON_LINE, max_size=len(BEACON_LINE)).oid == 3


def test_zlib_bomb_is_too_large_before_it_inflates() -> None:
    bomb = base64.b64encode(zlib.compress(b"A" * 50_000_000, 9))
    assert len(bomb) < 100_000
    with pytest.raises(WireError) as caught:
        legacy.decode_frame(b"MONITOR_HOST SUCCESS 3 1 " + bomb, max_size=1_000_000)
    assert caught.value.reason == "too_large"


# --------------------------------------------------------------------------- nested MONITOR


@pytest.mark.parametrize(
    ("monitor", "reason"),
    [
        ("not base64!", "bad_encoding"),
        ("Q1B", "bad_encoding"),
        ("ñ", "bad_encoding"),
        ("Q1BV", "bad_template"),
    ],  # Q1BV is "CPU": an attribute without '='
)
def test_bad_nested_monitor(monitor: str, reason: str) -> None:
    line = _agent_line("MONITOR_VM", "SUCCESS", 3, 1, f'VM = [ ID="1", MONITOR="{monitor}" ]')
    with pytest.raises(WireError) as caught:
        legacy.decode(line)
    assert caught.value.reason == reason
    assert "VM 1" in str(caught.value)


def test_bad_nested_monitor_template() -> None:
    inner = _b64('CPU = "unterminated')
    line = _agent_line("MONITOR_VM", "SUCCESS", 3, 1, f'VM = [ ID="7", MONITOR="{inner}" ]')
    with pytest.raises(TemplateError, match=r"MONITOR of VM 7.*unterminated"):
        legacy.decode(line)


def test_nested_monitor_wrapped_by_ruby_encode64_is_accepted() -> None:
    wrapped = base64.encodebytes(VM_MONITOR_TEXT.encode()).decode()  # 76-column lines
    assert "\n" in wrapped.strip()
    line = _agent_line("MONITOR_VM", "SUCCESS", 3, 1, f'VM = [ ID="12", MONITOR="{wrapped}" ]')
    assert legacy.decode(line).payload == {"VM": {"ID": "12", "MONITOR": VM_MONITOR_VALUES}}


def test_monitor_in_other_types_is_left_as_text() -> None:
    text = 'VM = [ ID="1", MONITOR="not base64" ]'
    msg = legacy.decode(_agent_line("STATE_VM", "SUCCESS", 3, 1, text))
    assert msg.payload == {"VM": {"ID": "1", "MONITOR": "not base64"}}


def test_nested_monitor_round_trip_through_from_message() -> None:
    original = legacy.decode(_agent_line("MONITOR_VM", "SUCCESS", 3, 50, MONITOR_VM_TEXT))
    frame = legacy.from_message(original)
    assert b'MONITOR = "' in frame.payload
    assert legacy.to_message(frame) == original


def test_from_message_with_numbers_and_nested_dicts() -> None:
    msg = Message(
        MessageType.MONITOR_VM,
        Status.SUCCESS,
        5,
        1716200099.75,
        {"VM": {"ID": 9, "DEPLOY_ID": "one-9", "MONITOR": {"CPU": 12.5, "MEMORY": 1024}}},
    )
    decoded = legacy.decode(legacy.encode(msg))
    assert decoded.timestamp == 1716200099.0  # the line carries whole seconds
    assert decoded.payload == {
        "VM": {"ID": "9", "DEPLOY_ID": "one-9", "MONITOR": {"CPU": "12.5", "MEMORY": "1024"}}
    }


def test_from_message_failure_and_beacon_payloads() -> None:
    failure = Message(MessageType.MONITOR_HOST, Status.FAILURE, 3, 10.0, {}, "Error executing x")
    assert legacy.from_message(failure).payload == b"Error executing x"
    beacon = Message(MessageType.BEACON_HOST, Status.SUCCESS, 3, 1716200030.0)
    assert legacy.from_message(beacon).payload == b"1716200030"


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (LegacyFrame("LOG", "SUCCESS", 1, 1, b""), "bad_type"),
        (LegacyFrame("BEACON_HOST", "-", 1, 1, b""), "bad_status"),
        (LegacyFrame("BEACON_HOST", "SUCCESS", 2**31, 1, b""), "bad_field"),
        (LegacyFrame("BEACON_HOST", "SUCCESS", 1, -5, b""), "bad_field"),
    ],
)
def test_encode_frame_refuses_frames_decode_would_reject(frame: LegacyFrame, reason: str) -> None:
    with pytest.raises(WireError) as caught:
        legacy.encode_frame(frame)
    assert caught.value.reason == reason


def test_encode_refuses_a_timestamp_without_legacy_form() -> None:
    msg = Message(MessageType.BEACON_HOST, Status.SUCCESS, 3, float("nan"))
    with pytest.raises(WireError) as caught:
        legacy.encode(msg)
    assert caught.value.reason == "bad_field"


def test_invalid_utf8_payload_is_decoded_with_replacement() -> None:
    line = legacy.encode_frame(LegacyFrame("SYSTEM_HOST", "SUCCESS", 3, 1, b"NAME=caf\xe9\n"))
    assert legacy.decode(line).payload == {"NAME": "caf\ufffd"}


# --------------------------------------------------------------------------- properties

_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True).filter(lambda name: name != "VM")
_texts = st.text(max_size=20).filter(lambda text: "]]>" not in text and not text.endswith("\\"))
_values = st.one_of(_texts, st.dictionaries(_names, _texts, max_size=3))
_payloads = st.dictionaries(
    _names, st.one_of(_values, st.lists(_values, min_size=2, max_size=3)), max_size=5
)
_types = st.sampled_from(
    [MessageType.MONITOR_HOST, MessageType.SYSTEM_HOST, MessageType.STATE_VM, MessageType.EXEC_VM]
)


@settings(max_examples=150)
@given(
    _types,
    st.integers(-1, 2**31 - 1),
    st.integers(0, 2**40),
    _payloads,
)
def test_encode_decode_round_trip(
    mtype: MessageType, host_id: int, timestamp: int, payload: dict[str, Any]
) -> None:
    msg = Message(mtype, Status.SUCCESS, host_id, float(timestamp), payload)
    assert legacy.decode(legacy.encode(msg)) == msg


@settings(max_examples=60)
@given(st.lists(st.dictionaries(_names, _texts, max_size=4), min_size=1, max_size=4))
def test_monitor_vm_round_trip(monitors: list[dict[str, str]]) -> None:
    vms = [{"ID": str(index), "MONITOR": monitor} for index, monitor in enumerate(monitors)]
    payload = {"VM": vms if len(vms) > 1 else vms[0]}
    msg = Message(MessageType.MONITOR_VM, Status.SUCCESS, 3, 100.0, payload)
    assert legacy.decode(legacy.encode(msg)) == msg


def _decodes_or_wire_error(data: bytes, key: crypto_rsa.RSAPrivateKey | None = None) -> None:
    try:
        frame = legacy.decode_frame(data, key, max_size=200_000)
    except WireError as error:
        assert error.reason in {
            "too_large",
            "malformed",
            "bad_type",
            "bad_status",
            "bad_field",
            "bad_encoding",
            "bad_compression",
        }
        return
    assert frame.type_name in legacy.TYPE_NAMES
    try:
        msg = legacy.to_message(frame)
    except WireError as error:
        assert error.reason in {"bad_template", "bad_encoding", "too_large"}
        return
    assert msg.host_id == frame.oid


@settings(max_examples=500)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_wire_error(data: bytes) -> None:
    _decodes_or_wire_error(data)


_VALID_LINES = [
    BEACON_LINE,
    _agent_line("MONITOR_HOST", "SUCCESS", 3, 1716200040, MONITOR_HOST_TEXT),
    _agent_line("MONITOR_VM", "SUCCESS", 3, 1716200050, MONITOR_VM_TEXT),
    _agent_line("STATE_VM", "SUCCESS", 3, 1716200055, STATE_VM_TEXT),
    _agent_line("SYSTEM_HOST", "FAILURE", 3, 1716200060, FAILURE_TEXT),
]


@st.composite
def _mutated_lines(draw: st.DrawFn) -> bytes:
    line = bytearray(draw(st.sampled_from(_VALID_LINES)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "truncate", "append", "insert", "delete"]))
        at = draw(st.integers(0, max(len(line) - 1, 0)))
        if action == "flip" and line:
            line[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del line[at:]
        elif action == "append":
            line += draw(st.binary(min_size=1, max_size=40))
        elif action == "insert":
            line[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif line:
            del line[at]
    return bytes(line)


@settings(max_examples=800)
@given(_mutated_lines())
def test_mutated_lines_decode_or_raise_wire_error(data: bytes) -> None:
    _decodes_or_wire_error(data)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_mutated_lines())
def test_mutated_lines_with_a_key_decode_or_raise_wire_error(
    key: crypto_rsa.RSAPrivateKey, data: bytes
) -> None:
    _decodes_or_wire_error(data, key)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(1, 400))
def test_huge_or_random_base64_payloads(blob: bytes, repeat: int) -> None:
    token = base64.b64encode(blob * repeat)
    _decodes_or_wire_error(b"MONITOR_HOST SUCCESS 3 1 " + token)
    bomb = base64.b64encode(zlib.compress(blob * repeat * 100, 9))
    _decodes_or_wire_error(b"MONITOR_HOST SUCCESS 3 1 " + bomb)
