"""TCP framing and acknowledgements."""

from __future__ import annotations

import pytest

from onemon.wire.errors import WireError
from onemon.wire.stream import Ack, FrameReader, decode_ack, encode_ack, frame


def test_frames_split_across_reads_are_reassembled_in_order() -> None:
    stream = frame(b"first") + frame(b"") + frame(b"x" * 70000)
    reader = FrameReader()
    got: list[bytes] = []
    for index in range(0, len(stream), 7):
        got.extend(reader.feed(stream[index : index + 7]))
    assert got == [b"first", b"", b"x" * 70000]
    assert reader.pending == 0


def test_a_native_stream_starts_with_a_zero_byte() -> None:
    assert frame(b"abc")[0] == 0


def test_oversize_frame_is_refused_before_buffering() -> None:
    reader = FrameReader(max_frame=100)
    with pytest.raises(WireError) as err:
        reader.feed(frame(b"y" * 101)[:4])
    assert err.value.reason == "too_large"


def test_ack_round_trip_and_malformed_acks() -> None:
    reader = FrameReader()
    (payload,) = reader.feed(encode_ack(Ack(41, "ok")))
    ack = decode_ack(payload)
    assert ack == Ack(41, "ok") and ack.accepted
    assert not decode_ack(reader.feed(encode_ack(Ack(42, "bad_mac")))[0]).accepted
    for bad in (b"\xff", b"\x82\x01\x02", b"\x81\x01"):
        with pytest.raises(WireError):
            decode_ack(bad)
