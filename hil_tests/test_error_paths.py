"""Misbehaving firmware on real targets: each failure gives one clear error, never a hang."""

from __future__ import annotations

import time

import pytest

from generator.errors import FirmwareFault, ProtocolError


def test_serial_garbage_is_tolerated_and_counted(dut):
    doc = dut.run("selftest", mode="garbage")
    assert doc["status"] == 0
    assert doc["metrics"] == {"answer": 42}
    # One frame with a bad checksum and one cut in half; the boot chatter is noise.
    assert doc["stream"]["corrupt_frames"] == 2
    assert doc["stream"]["noise_bytes"] > 0


def test_fault_is_reported_with_pc(dut):
    with pytest.raises(FirmwareFault) as e:
        dut.run("selftest", mode="fault")
    msg = str(e.value)
    assert "faulted (hardfault)" in msg and "pc=0x" in msg
    if dut.board.core != "cortex-m0":
        assert "cfsr=0x00010000" in msg  # UNDEFINSTR
    doc = e.value.document
    assert doc["faults"] and doc["status"] == 3
    if dut.board.kind == "qemu":
        assert doc["exit_code"] == 3  # the semihosting exit status


def test_stream_cut_short(dut):
    # An emulator that stops is seen at once; a real board just goes quiet until the deadline.
    expected = "ended without an END record" if dut.board.kind != "nucleo" else "no END record"
    with pytest.raises(ProtocolError, match=expected):
        dut.run("selftest", mode="cut", timeout=10)


def test_hang_times_out(dut):
    t0 = time.monotonic()
    with pytest.raises(ProtocolError, match="no END record .* within 2 s"):
        dut.run("selftest", mode="hang", timeout=2)
    assert time.monotonic() - t0 < 30


def test_nonzero_status(dut):
    with pytest.raises(FirmwareFault, match="ended with status 7"):
        dut.run("selftest", mode="status")
