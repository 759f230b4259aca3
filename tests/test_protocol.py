"""The host side of the results protocol: framing, checksums, noise, corruption, reassembly."""

from __future__ import annotations

import binascii

import numpy as np
import pytest

from generator.errors import ProtocolError
from generator.targets.protocol import Parser, crc16, encode_frame, parse_stream


def test_crc16_is_ccitt_false():
    # Independent implementation: binascii.crc_hqx is CRC-16/CCITT with a given initial value;
    # the CCITT-FALSE check value of "123456789" is 0x29B1.
    assert crc16(b"123456789") == 0x29B1
    for data in (b"", b"SS,0,END,0", bytes(range(256))):
        assert crc16(data) == binascii.crc_hqx(data, 0xFFFF)


def _frames(*records):
    return b"".join(encode_frame(i, *r) for i, r in enumerate(records))


def test_full_session():
    stream = _frames(("HELLO", 1, "0.1.0", "qemu_m33", "bench", "systick", 20000000),
                     ("CYC", "dot", 1234), ("KV", "x", -5),
                     ("VEC", "v", "int8", 3, 0, "ff0102"), ("LOG", "hello"), ("END", 0))
    s = parse_stream(stream)
    assert s.hello["board"] == "qemu_m33" and s.hello["counter_hz"] == 20000000
    assert s.cycles == {"dot": 1234} and s.metrics == {"x": -5}
    assert s.vectors["v"].dtype == np.int8 and s.vectors["v"].tolist() == [-1, 1, 2]
    assert s.logs == ["hello"] and s.status == 0
    assert (s.records, s.corrupt_frames, s.lost_frames, s.noise_bytes) == (6, 0, 0, 0)


def test_noise_and_corruption_are_counted_not_fatal():
    good = _frames(("HELLO", 1, "v", "b", "a", "none", 0), ("KV", "a", 1), ("END", 0))
    lines = good.split(b"\r\n")
    bad_crc = bytearray(lines[1])
    bad_crc[-1] = ord("0") if bad_crc[-1] != ord("0") else ord("1")
    stream = (b"\x00\xffboot rom\r\n" + lines[0] + b"\r\n" + bytes(bad_crc) + b"\r\n"
              + b"junk before a frame " + lines[2] + b"\r\n")
    s = parse_stream(stream)
    assert s.status == 0
    assert s.corrupt_frames == 1 and s.lost_frames == 1  # the KV frame was rejected: seq gap
    assert s.metrics == {}
    assert s.noise_bytes == len(b"\x00\xffboot rom\r\n") + len(b"junk before a frame ")


def test_stream_cut_in_the_middle_of_a_frame():
    stream = _frames(("HELLO", 1, "v", "b", "a", "none", 0), ("KV", "a", 1))
    p = Parser()
    p.feed(stream[:-7])
    s = p.finish()
    assert not s.done and s.corrupt_frames == 1 and s.records == 1


def test_vector_reassembled_from_chunks_in_any_byte_split():
    data = np.arange(-100, 100, dtype=np.int32)
    raw = data.tobytes()
    records = [("VEC", "out", "int32", data.size, off, raw[off:off + 64].hex())
               for off in range(0, len(raw), 64)]
    stream = _frames(*records, ("END", 0))
    p = Parser()
    for i in range(0, len(stream), 7):  # arrives in odd pieces
        p.feed(stream[i:i + 7])
    s = p.finish()
    assert np.array_equal(s.vectors["out"], data)


def test_replayed_frame_is_rejected():
    f0 = encode_frame(0, "KV", "a", 1)
    s = parse_stream(f0 + f0 + encode_frame(1, "END", 0))
    assert s.corrupt_frames == 1 and s.metrics == {"a": 1} and s.done


def test_wrong_protocol_version_is_an_error():
    with pytest.raises(ProtocolError, match="protocol v9"):
        parse_stream(encode_frame(0, "HELLO", 9, "v", "b", "a", "none", 0))


def test_endless_line_is_bounded_noise():
    p = Parser()
    p.feed(b"x" * 10000)
    assert p.session.noise_bytes >= 4096


def test_an_empty_vector_is_one_frame_without_data():
    """The firmware reports an empty vector (e.g. a decision log with no decisions) as one VEC
    frame with count 0, offset 0 and no data: the host gives an empty array."""
    p = Parser()
    p.feed(encode_frame(0, "VEC", "decision_log", "int32", 0, 0, ""))
    p.feed(encode_frame(1, "END", 0))
    s = p.finish()
    assert s.vectors["decision_log"].dtype == np.int32
    assert s.vectors["decision_log"].size == 0
