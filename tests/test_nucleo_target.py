"""The real-Nucleo target (pyOCD + serial) tested at its boundary, without hardware.

Only what cannot exist here is faked: the probe, the pyOCD session (its target) and the flash
programmer. pyOCD's own probe enumeration, target lookup (built-in targets, CMSIS packs, the
session's target construction) and pyserial's ``loop://`` port are the real ones. Expected values
come from independent sources: images are made with arm-none-eabi-objcopy or written by hand,
frames with the protocol encoder, hashes with hashlib.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import serial
import serial.tools.list_ports
from _util import require_tool, require_toolchain
from serial.tools.list_ports_common import ListPortInfo

from generator import cli
from generator.boards import load_board
from generator.build import Artifacts
from generator.errors import ProbeError, ProtocolError, TargetError
from generator.targets import nucleo, target_for
from generator.targets.protocol import encode_frame

ROOT = Path(__file__).resolve().parents[1]
NUCLEOS = ("nucleo_g071", "nucleo_h743", "nucleo_l476", "nucleo_u575")
UID_A = "066DFF485550755187121234"
UID_B = "0671FF3833464B4D43072127"


# ---- fixtures: an isolated pyOCD target table and pack cache ---------------------------------

@pytest.fixture(autouse=True)
def isolated_pyocd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """pyOCD's TARGET table is process-global and packs installed on this machine would change
    the answers: every test gets an empty cmsis-pack-manager cache and the table restored."""
    from pyocd.target import TARGET

    saved = dict(TARGET)
    data = tmp_path / "xdg-data"
    data.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv(nucleo.PACK_ENV, raising=False)
    yield data
    TARGET.clear()
    TARGET.update(saved)


PDSC = """<?xml version="1.0" encoding="UTF-8"?>
<package schemaVersion="1.7.2">
  <vendor>Keil</vendor>
  <name>STM32U5xx_DFP</name>
  <description>minimal test pack</description>
  <releases><release version="9.9.9">test</release></releases>
  <devices>
    <family Dfamily="STM32U5 Series" Dvendor="STMicroelectronics:13">
      <processor Dcore="Cortex-M33" DcoreVersion="r0p4" Dfpu="SP_FPU" Dendian="Little-endian"
                 Dclock="160000000"/>
      <subFamily DsubFamily="STM32U575">
        <device Dname="STM32U575ZITx">
          <memory id="IROM1" start="0x08000000" size="0x00200000" startup="1" default="1"/>
          <memory id="IRAM1" start="0x20000000" size="0x000C0000" init="0" default="1"/>
        </device>
      </subFamily>
    </family>
  </devices>
</package>
"""


def make_pack(path: Path) -> Path:
    """A minimal CMSIS DFP describing STM32U575ZITx (a real .pack is a zip with a .pdsc)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Keil.STM32U5xx_DFP.pdsc", PDSC)
    return path


# ---- fixtures: images made independently -----------------------------------------------------

def objcopy() -> str:
    return require_tool("arm-none-eabi-objcopy")


def make_image(tmp_path: Path, board_name: str, size: int = 3000, seed: int = 1) -> Artifacts:
    """firmware.bin = random bytes; firmware.hex = the same bytes at the board's flash base, made
    by objcopy (the toolchain's own Intel HEX writer)."""
    board = load_board(board_name)
    d = tmp_path / f"img-{board_name}-{size}"
    d.mkdir()
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    (d / "firmware.bin").write_bytes(data)
    subprocess.run([objcopy(), "-I", "binary", "-O", "ihex", "--change-addresses",
                    hex(board.flash.origin), str(d / "firmware.bin"), str(d / "firmware.hex")],
                   check=True, timeout=30)
    return Artifacts(d, d / "firmware.elf", d / "firmware.bin", d / "firmware.hex",
                     None, d / "size.json")


def hand_hex(records: list[tuple[int, int, bytes]]) -> str:
    """Intel HEX written by hand: (type, address, data) records, checksums computed here."""
    lines = []
    for rtype, addr, data in records:
        raw = bytes([len(data), (addr >> 8) & 0xFF, addr & 0xFF, rtype]) + data
        lines.append(":" + (raw + bytes([(-sum(raw)) & 0xFF])).hex().upper())
    return "\n".join(lines) + "\n"


# ---- fakes for what cannot exist here ----------------------------------------------------------

class FakeProbe:
    def __init__(self, uid: str, description: str = "STM32 STLink") -> None:
        self.unique_id = uid
        self.description = description
        self.vendor_name = "STMicroelectronics"
        self.session = None

    def create_associated_board(self) -> None:
        return None


class FakeTarget:
    """The debugged MCU: a flash array, reset/halt, memory reads."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log
        self.memory: dict[int, int] = {}
        self.on_reset: Any = None
        self.reset_error: BaseException | None = None

    def reset_and_halt(self, reset_type: Any = None) -> None:
        self.log.append("reset_and_halt")

    def reset(self, reset_type: Any = None) -> None:
        self.log.append("reset")
        if self.on_reset is not None:
            self.on_reset()
        if self.reset_error is not None:
            raise self.reset_error

    def read_memory_block8(self, addr: int, size: int) -> list[int]:
        self.log.append(("read", addr, size))
        return [self.memory.get(a, 0xFF) for a in range(addr, addr + size)]


class FakeSession:
    instances: list[FakeSession] = []

    def __init__(self, probe: Any, auto_open: bool = True, options: Any = None,
                 **kwargs: Any) -> None:
        self.probe = probe
        self.options = dict(options or {}, **kwargs)
        self.log: list[Any] = []
        self.target = FakeTarget(self.log)
        self.open_error: BaseException | None = None
        FakeSession.instances.append(self)
        if Rig.current is not None:
            Rig.current.configure_session(self)

    def open(self) -> None:
        self.log.append("open")
        if self.open_error is not None:
            raise self.open_error

    def close(self) -> None:
        self.log.append("close")


class FakeProgrammer:
    """Stands in for pyocd.flash.file_programmer.FileProgrammer. ``mode``: ok (writes the
    independent payload), nothing (pyOCD skipped every chunk), corrupt, raise, hang."""

    def __init__(self, session: FakeSession, **kwargs: Any) -> None:
        self.session = session
        self.kwargs = kwargs

    def program(self, file_or_path: Any, file_format: Any = None, **kwargs: Any) -> None:
        rig = Rig.current
        assert rig is not None
        self.session.log.append(("program", file_or_path))
        rig.programmed.append(file_or_path)
        if rig.on_program is not None:
            rig.on_program()
        if rig.mode == "raise":
            from pyocd.core.exceptions import FlashProgramFailure
            raise FlashProgramFailure("flash algo failed", address=0x08000400, result_code=1)
        if rig.mode == "hang":
            time.sleep(3)
        if rig.mode == "nothing":
            return
        addr, data = rig.payload
        for i, b in enumerate(data):
            self.session.target.memory[addr + i] = b
        if rig.mode == "corrupt":
            self.session.target.memory[addr + 100] ^= 0x01


class Rig:
    """The fake probe world a test sets up, and what pyOCD was asked to do."""

    current: Rig | None = None

    def __init__(self, monkeypatch: pytest.MonkeyPatch, probes: list[FakeProbe]) -> None:
        import pyocd.core.session
        import pyocd.flash.file_programmer
        from pyocd.core.helpers import ConnectHelper

        self.probes = probes
        self.enumerations: list[dict[str, Any]] = []
        self.programmed: list[Any] = []
        self.mode = "ok"
        self.payload: tuple[int, bytes] = (0, b"")
        self.on_program: Any = None
        self.on_reset: Any = None
        self.reset_error: BaseException | None = None
        self.open_error: BaseException | None = None
        FakeSession.instances = []

        def enumerate_probes(blocking: bool = True, unique_id: str | None = None,
                             print_wait_message: bool = True) -> list[FakeProbe]:
            self.enumerations.append({"blocking": blocking, "unique_id": unique_id})
            assert blocking is False, "pyOCD must never be asked to wait for a probe"
            return list(self.probes)

        monkeypatch.setattr(ConnectHelper, "get_all_connected_probes",
                            staticmethod(enumerate_probes))
        monkeypatch.setattr(pyocd.core.session, "Session", FakeSession)
        monkeypatch.setattr(pyocd.flash.file_programmer, "FileProgrammer", FakeProgrammer)
        Rig.current = self

    def configure_session(self, s: FakeSession) -> None:
        s.target.on_reset = self.on_reset
        s.target.reset_error = self.reset_error
        s.open_error = self.open_error

    @property
    def session(self) -> FakeSession:
        assert len(FakeSession.instances) == 1
        return FakeSession.instances[0]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch):
    r = Rig(monkeypatch, [FakeProbe(UID_A), FakeProbe(UID_B, "STLINK-V3")])
    yield r
    Rig.current = None


# ---- probes --------------------------------------------------------------------------------------

def test_no_probe_attached_real_pyocd(capsys: pytest.CaptureFixture[str]):
    """Real pyOCD, no monkeypatch: no probe is attached to this machine."""
    probes = nucleo.list_probes()
    t0 = time.monotonic()
    with pytest.raises(ProbeError) as e:
        nucleo.choose_probe("SWEETSPOT-NO-SUCH-PROBE")
    assert time.monotonic() - t0 < 10
    msg = str(e.value)
    assert "no debug probe with UID 'SWEETSPOT-NO-SUCH-PROBE' is connected" in msg
    if not probes:
        assert "connected probes: none" in msg and "udev" in msg
    # pyOCD's ConnectHelper.choose_probe prints to stdout; ours must not
    assert capsys.readouterr().out == ""


def test_no_probe_open_session_returns_quickly_real_pyocd():
    board = load_board("nucleo_h743")  # built in: only the probe is missing
    if nucleo.list_probes():
        pytest.skip("a probe is attached to this machine")
    t0 = time.monotonic()
    with pytest.raises(ProbeError, match=r"no debug probe with UID 'X1' is connected; "
                                         r"connected probes: none"):
        nucleo.open_session(board, "X1", timeout=5)
    assert time.monotonic() - t0 < 10


def test_list_probes(rig: Rig):
    got = nucleo.list_probes()
    assert [p.uid for p in got] == [UID_A, UID_B]
    assert got[1].description == "STLINK-V3" and got[1].vendor == "STMicroelectronics"
    assert rig.enumerations == [{"blocking": False, "unique_id": None}]


def test_probe_selection_by_uid(rig: Rig):
    assert nucleo.choose_probe(UID_B).unique_id == UID_B
    assert nucleo.choose_probe(UID_B.lower()).unique_id == UID_B  # case-insensitive
    assert nucleo.choose_probe("0671FF38").unique_id == UID_B    # unique part of the UID
    with pytest.raises(ProbeError, match=r"matches 2 connected probes: .*pass the full UID"):
        nucleo.choose_probe("FF")
    rig.probes[:] = [FakeProbe(UID_A + "9"), FakeProbe(UID_A)]  # one UID contains the other
    assert nucleo.choose_probe(UID_A).unique_id == UID_A


def test_wrong_uid_lists_connected_probes(rig: Rig):
    with pytest.raises(ProbeError) as e:
        nucleo.choose_probe("NOPE")
    msg = str(e.value)
    assert "no debug probe with UID 'NOPE' is connected" in msg
    assert f"{UID_A} (STM32 STLink, STMicroelectronics)" in msg
    assert f"{UID_B} (STLINK-V3, STMicroelectronics)" in msg


# ---- target support ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NUCLEOS)
def test_target_support_real_lookup(name: str):
    """Real pyOCD lookup with an empty pack cache: only the H743 is built in."""
    board = load_board(name)
    if name == "nucleo_h743":
        assert nucleo.target_support(board) == "built in"
        return
    with pytest.raises(ProbeError) as e:
        nucleo.target_support(board)
    msg = str(e.value)
    part = board.pyocd["pack"]
    assert f"pyOCD has no target type '{board.pyocd['target']}' for board {name}" in msg
    assert f"pyocd pack install {part}" in msg
    assert "--pack <file.pack>" in msg


def test_installed_pack_is_found(isolated_pyocd: Path):
    """A pack where `pyocd pack install` puts it (cmsis-pack-manager's cache: index.json plus
    <vendor>/<pack>/<version>.pack under $XDG_DATA_HOME/cmsis-pack-manager)."""
    cache = isolated_pyocd / "cmsis-pack-manager"
    make_pack(cache / "Keil" / "STM32U5xx_DFP" / "9.9.9.pack")
    index = {"STM32U575ZITx": {"name": "STM32U575ZITx", "from_pack": {
        "vendor": "Keil", "pack": "STM32U5xx_DFP", "version": "9.9.9"}}}
    (cache / "index.json").write_text(json.dumps(index))
    assert nucleo.target_support(load_board("nucleo_u575")) == "installed pack"
    with pytest.raises(ProbeError, match="pyocd pack install stm32l476rgtx"):
        nucleo.target_support(load_board("nucleo_l476"))


def test_pack_file_argument_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pack = make_pack(tmp_path / "Keil.STM32U5xx_DFP.9.9.9.pack")
    assert nucleo.target_support(load_board("nucleo_u575"), pack) == "pack file"
    from pyocd.target import TARGET
    del TARGET["stm32u575zitx"]
    monkeypatch.setenv(nucleo.PACK_ENV, str(pack))
    assert nucleo.target_support(load_board("nucleo_u575")) == "pack file"
    with pytest.raises(ProbeError, match=r"does not describe target 'stm32g071rbtx' of board "
                                         r"nucleo_g071; .*pyocd pack install stm32g071rbtx"):
        nucleo.target_support(load_board("nucleo_g071"))
    monkeypatch.setenv(nucleo.PACK_ENV, str(tmp_path / "missing.pack"))
    with pytest.raises(ProbeError, match=r"CMSIS pack file .*missing.pack does not exist"):
        nucleo.target_support(load_board("nucleo_l476"))


def test_real_session_gets_the_board_target():
    """pyOCD's real Session (with a fake probe, never opened) builds the target class named by
    our options: the built-in STM32H743 class, a pack-defined U575 class, or refuses."""
    from pyocd.target.builtin.target_STM32H743xx import STM32H743xx

    s = nucleo._new_session(load_board("nucleo_h743"), FakeProbe(UID_A), [])
    assert isinstance(s.target, STM32H743xx)
    assert s.options.get("target_override") == "stm32h743xx"
    with pytest.raises(ProbeError, match=r"creating a pyOCD session on nucleo_u575 .* not "
                                         r"recognized.*pyocd pack install stm32u575zitx"):
        nucleo._new_session(load_board("nucleo_u575"), FakeProbe(UID_A), [])


def test_real_session_with_pack_file(tmp_path: Path):
    pack = make_pack(tmp_path / "u5.pack")
    s = nucleo._new_session(load_board("nucleo_u575"), FakeProbe(UID_A), [str(pack)])
    assert type(s.target).__name__ == "Stm32u575zitx"
    flash = s.target.memory_map.get_boot_memory()
    assert (flash.start, flash.length) == (0x08000000, 2 * 1024 * 1024)


# ---- flashing ------------------------------------------------------------------------------------

def _arm(rig: Rig, art: Artifacts, origin: int) -> None:
    assert art.bin is not None
    rig.payload = (origin, art.bin.read_bytes())


def test_flash_calls_and_result(rig: Rig, tmp_path: Path):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=3000)
    _arm(rig, art, board.flash.origin)
    marks: list[str] = []
    info = nucleo.flash_image(board, art, probe_uid="0671ff38", timeout=10,
                              before_reset=lambda: marks.append("before_reset"))
    s = rig.session
    assert s.probe is rig.probes[1]                       # the probe chosen by UID
    assert s.options["target_override"] == "stm32h743xx"  # from the board file
    assert s.options["no_config"] is True
    assert all(e["blocking"] is False for e in rig.enumerations)
    assert rig.programmed == [str(art.hex)]
    steps = [x if isinstance(x, str) else x[0] for x in s.log]
    assert steps == ["open", "reset_and_halt", "program", "read", "reset", "close"]
    assert s.log[3] == ("read", 0x08000000, 3000)
    assert marks == ["before_reset"]
    assert info == {
        "image": str(art.hex),
        "image_sha256": hashlib.sha256(art.hex.read_bytes()).hexdigest(),  # type: ignore[union-attr]
        "probe_uid": UID_B, "target": "stm32h743xx", "target_source": "built in",
        "bytes": 3000, "segments": 1, "verified": True, "seconds": info["seconds"],
    }


def test_flash_with_pack_file_passes_it_to_pyocd(rig: Rig, tmp_path: Path):
    board = load_board("nucleo_u575")
    pack = make_pack(tmp_path / "u5.pack")
    art = make_image(tmp_path, "nucleo_u575", size=512)
    _arm(rig, art, board.flash.origin)
    info = nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10, pack=pack)
    assert info["target"] == "stm32u575zitx" and info["target_source"] == "pack file"
    assert rig.session.options["pack"] == [str(pack)]
    assert rig.session.options["target_override"] == "stm32u575zitx"


def test_flash_two_segments_are_each_verified(rig: Rig, tmp_path: Path):
    board = load_board("nucleo_h743")
    d = tmp_path / "two"
    d.mkdir()
    a, b = bytes(range(16)), bytes(range(100, 108))
    # extended linear address 0x0800, data at 0x08000000 and 0x08001000
    (d / "firmware.hex").write_text(hand_hex([(4, 0, b"\x08\x00"), (0, 0x0000, a),
                                              (0, 0x1000, b), (1, 0, b"")]))
    art = Artifacts(d, d / "firmware.elf", None, d / "firmware.hex", None, d / "size.json")

    def program_both() -> None:
        for i, v in enumerate(a):
            rig.session.target.memory[0x08000000 + i] = v
        for i, v in enumerate(b):
            rig.session.target.memory[0x08001000 + i] = v

    rig.mode, rig.on_program = "nothing", program_both
    info = nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10)
    assert info["bytes"] == 24 and info["segments"] == 2
    reads = [x for x in rig.session.log if isinstance(x, tuple) and x[0] == "read"]
    assert reads == [("read", 0x08000000, 16), ("read", 0x08001000, 8)]


def test_programmed_nothing_is_an_error(rig: Rig, tmp_path: Path):
    """pyOCD only logs a warning when it drops data ('programmed 0 bytes'): the read-back
    turns that into an error."""
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=256)
    rig.mode = "nothing"
    data = art.bin.read_bytes()  # type: ignore[union-attr]
    first = next(i for i, b in enumerate(data) if b != 0xFF)  # erased flash reads 0xff
    want = (rf"verification failed: flash at 0x{0x08000000 + first:08x} holds 0xff, "
            rf"firmware.hex has 0x{data[first]:02x}")
    with pytest.raises(TargetError, match=want):
        nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10)
    assert "reset" not in rig.session.log and rig.session.log[-1] == "close"


def test_corrupt_flash_is_an_error(rig: Rig, tmp_path: Path):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=256)
    _arm(rig, art, board.flash.origin)
    rig.mode = "corrupt"
    with pytest.raises(TargetError, match=r"verification failed: flash at 0x08000064 "):
        nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10)


def test_programmer_failure(rig: Rig, tmp_path: Path):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=256)
    rig.mode = "raise"
    with pytest.raises(TargetError) as e:
        nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10)
    msg = str(e.value)
    assert f"programming firmware.hex on nucleo_h743 through probe {UID_A} failed" in msg
    assert "flash algo failed (address 0x08000400; result code 0x1)" in msg
    assert rig.session.log[-1] == "close" and "reset" not in rig.session.log


def test_probe_open_failure_is_a_probe_error(rig: Rig, tmp_path: Path):
    from pyocd.core.exceptions import ProbeError as PyocdProbeError

    art = make_image(tmp_path, "nucleo_h743", size=64)
    rig.open_error = PyocdProbeError("Unable to open USB device")
    with pytest.raises(ProbeError, match=r"connecting on nucleo_h743 through probe .* failed: "
                                         r"Unable to open USB device; .*udev"):
        nucleo.flash_image(load_board("nucleo_h743"), art, probe_uid=UID_A, timeout=10)


def test_reset_transfer_error_is_tolerated(rig: Rig, tmp_path: Path):
    from pyocd.core.exceptions import TransferError

    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=64)
    _arm(rig, art, board.flash.origin)
    rig.reset_error = TransferError("SWD lost during reset")
    assert nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10)["verified"] is True


def test_stuck_probe_hits_the_deadline(rig: Rig, tmp_path: Path):
    art = make_image(tmp_path, "nucleo_h743", size=64)
    rig.mode = "hang"
    t0 = time.monotonic()
    with pytest.raises(TargetError, match=r"flashing nucleo_h743 through probe .* did not finish "
                                          r"within 0.5 s; .*unplug and replug"):
        nucleo.flash_image(load_board("nucleo_h743"), art, probe_uid=UID_A, timeout=0.5)
    assert time.monotonic() - t0 < 2


def test_empty_and_misplaced_images_fail_before_the_probe(rig: Rig, tmp_path: Path):
    board = load_board("nucleo_h743")
    d = tmp_path / "bad"
    d.mkdir()
    art = Artifacts(d, d / "firmware.elf", None, d / "firmware.hex", None, d / "size.json")
    with pytest.raises(TargetError, match="no firmware image in .*build it first"):
        nucleo.flash_image(board, art, probe_uid=UID_A)
    (d / "firmware.hex").write_text(hand_hex([(1, 0, b"")]))
    with pytest.raises(TargetError, match="holds 0 bytes to program"):
        nucleo.flash_image(board, art, probe_uid=UID_A)
    (d / "firmware.hex").write_text(hand_hex([(4, 0, b"\x10\x00"), (0, 0, b"\x01\x02"),
                                              (1, 0, b"")]))
    with pytest.raises(TargetError, match=r"2 bytes at 0x10000000, outside the flash of "
                                          r"nucleo_h743"):
        nucleo.flash_image(board, art, probe_uid=UID_A)
    assert rig.enumerations == [] and FakeSession.instances == []


def test_missing_pack_and_probe_in_one_message(tmp_path: Path):
    """Real pyOCD for both lookups: no pack for the U575 and no such probe."""
    art = make_image(tmp_path, "nucleo_u575", size=64)
    with pytest.raises(ProbeError) as e:
        nucleo.flash_image(load_board("nucleo_u575"), art, probe_uid="NOPE", timeout=5)
    msg = str(e.value)
    assert msg.startswith("cannot flash nucleo_u575: (1) pyOCD has no target type")
    assert "pyocd pack install stm32u575zitx" in msg
    assert "(2) no debug probe with UID 'NOPE' is connected" in msg


# ---- the console ---------------------------------------------------------------------------------

def _port(device: str, serial_number: str | None, description: str = "STM32 STLink") -> Any:
    p = ListPortInfo(device, skip_link_detection=True)
    p.serial_number = serial_number
    p.description = description
    return p


def test_find_vcp(monkeypatch: pytest.MonkeyPatch):
    ports = [_port("/dev/ttyS0", None, "ttyS0"), _port("/dev/ttyACM1", UID_B),
             _port("/dev/ttyACM0", UID_A)]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: ports)
    assert nucleo.find_vcp(UID_B) == "/dev/ttyACM1"
    assert nucleo.find_vcp(UID_A.lower()) == "/dev/ttyACM0"
    with pytest.raises(ProbeError) as e:
        nucleo.find_vcp("NOPE")
    msg = str(e.value)
    assert "no serial port belongs to probe NOPE" in msg and "--serial-port" in msg
    assert f"/dev/ttyACM0 (serial {UID_A}, STM32 STLink)" in msg
    ports.append(_port("/dev/ttyACM2", UID_B))
    with pytest.raises(ProbeError, match=r"has 2 serial ports \(/dev/ttyACM1, /dev/ttyACM2\)"):
        nucleo.find_vcp(UID_B)


def test_find_vcp_real_ports():
    with pytest.raises(ProbeError, match="no serial port belongs to probe SWEETSPOT-NO-SUCH"):
        nucleo.find_vcp("SWEETSPOT-NO-SUCH")


def test_console_that_cannot_be_opened():
    with pytest.raises(TargetError, match="cannot open the console port /nonexistent/ttyACM9"):
        nucleo.open_console("/nonexistent/ttyACM9", 115200)


def _results(status: int = 0, values: tuple[int, ...] = (3, -4, 127)) -> bytes:
    vec = np.array(values, dtype=np.int8).tobytes().hex()
    return b"".join([
        encode_frame(0, "HELLO", 1, "0.1.0", "nucleo_h743", "bench", "dwt", 480000000),
        encode_frame(1, "CYC", "dot", 1234),
        encode_frame(2, "VEC", "out", "int8", len(values), 0, vec),
        encode_frame(3, "END", status),
    ])


class Console:
    """Keeps the real loop:// port the target opens, so the fake MCU can talk into it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ports: list[Any] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        real = serial.serial_for_url

        def opener(url: str, *args: Any, **kwargs: Any) -> Any:
            self.calls.append((url, kwargs))
            p = real(url, *args, **kwargs)
            self.ports.append(p)
            return p

        monkeypatch.setattr(serial, "serial_for_url", opener)

    @property
    def port(self) -> Any:
        assert len(self.ports) == 1
        return self.ports[0]


GARBAGE = b"\x00\xffboot ROM chatter\r\n"


def test_run_reads_the_board_through_loop(rig: Rig, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=128)
    _arm(rig, art, board.flash.origin)
    con = Console(monkeypatch)
    bad = bytearray(encode_frame(9, "KV", "x", 1))
    bad[-4] ^= 1  # a frame with a broken checksum
    # While the core is halted for programming, the old firmware's complete output is still in
    # the port: it must be dropped, not mistaken for this run's results.
    rig.on_program = lambda: con.port.write(_results(status=5, values=(9, 9, 9)))
    rig.on_reset = lambda: con.port.write(GARBAGE + _results()[:150] + _results()[150:]
                                          + bytes(bad))
    target = target_for(board, probe_uid=UID_A, serial_port="loop://")
    out = target.run(art, timeout=5)
    s = out.session
    assert s.status == 0 and out.exit_code is None
    assert s.hello is not None and s.hello["board"] == "nucleo_h743"
    assert s.cycles == {"dot": 1234}
    assert s.vectors["out"].tolist() == [3, -4, 127]
    assert s.noise_bytes == len(GARBAGE)
    assert con.calls == [("loop://", {"baudrate": 115200, "timeout": 0.05})]
    assert out.extra["serial_port"] == "loop://" and out.extra["flash"]["probe_uid"] == UID_A
    assert out.console.startswith(GARBAGE)
    assert not con.port.is_open  # closed in finally
    steps = [x if isinstance(x, str) else x[0] for x in rig.session.log]
    assert steps.index("program") < steps.index("reset")


def test_run_finds_the_vcp_by_probe_uid(rig: Rig, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=64)
    _arm(rig, art, board.flash.origin)
    con = Console(monkeypatch)
    ports = [_port("/dev/ttyACM0", UID_A), _port("loop://", UID_B)]
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda *a, **k: ports)
    rig.on_reset = lambda: con.port.write(_results())
    out = nucleo.NucleoTarget(board, probe_uid=UID_B).run(art, timeout=5)
    assert out.extra["serial_port"] == "loop://" and out.session.status == 0
    assert rig.session.probe is rig.probes[1]


def test_run_silent_board_times_out_with_a_hint(rig: Rig, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=64)
    _arm(rig, art, board.flash.origin)
    con = Console(monkeypatch)
    t0 = time.monotonic()
    with pytest.raises(ProtocolError, match=r"no END record from nucleo_h743 on loop:// within "
                                            r"0.3 s .*nothing at all arrived on loop://.*115200"):
        nucleo.NucleoTarget(board, probe_uid=UID_A, serial_port="loop://").run(art, timeout=0.3)
    assert time.monotonic() - t0 < 3
    assert not con.port.is_open


def test_run_stream_cut_short(rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    board = load_board("nucleo_h743")
    art = make_image(tmp_path, "nucleo_h743", size=64)
    _arm(rig, art, board.flash.origin)
    con = Console(monkeypatch)
    frames = _results().split(b"\r\n")
    cut = len(frames[0]) + len(frames[1]) + 4 + 10  # HELLO, CYC and 10 bytes of the VEC frame
    rig.on_reset = lambda: con.port.write(_results()[:cut])
    with pytest.raises(ProtocolError, match=r"no END record .* within 0.3 s \(2 records, "
                                            r"1 corrupt frames"):
        nucleo.NucleoTarget(board, probe_uid=UID_A, serial_port="loop://").run(art, timeout=0.3)


def test_run_needs_a_probe_uid(rig: Rig, tmp_path: Path):
    art = make_image(tmp_path, "nucleo_u575", size=64)
    with pytest.raises(ProbeError) as e:
        nucleo.NucleoTarget(load_board("nucleo_u575")).run(art)
    msg = str(e.value)
    assert "nucleo_u575 is a real board: pass --probe-uid <uid>" in msg
    assert UID_A in msg and "qemu_m33 with --twin" in msg


def test_run_flash_failure_closes_the_console(rig: Rig, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch):
    art = make_image(tmp_path, "nucleo_h743", size=64)
    con = Console(monkeypatch)
    rig.mode = "raise"
    with pytest.raises(TargetError, match="flash algo failed"):
        nucleo.NucleoTarget(load_board("nucleo_h743"), probe_uid=UID_A,
                            serial_port="loop://").run(art)
    assert not con.port.is_open


def test_nucleo_target_refuses_other_boards():
    with pytest.raises(TargetError, match="'qemu_m33' is not a Nucleo board"):
        nucleo.NucleoTarget(load_board("qemu_m33"))


# ---- the command line -------------------------------------------------------------------------

def test_cli_flash_no_probe_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]):
    """`sweetspot flash` through the real pyOCD (no probe here), the build step replaced by a
    prepared image so this runs whatever the state of the Nucleo firmware templates."""
    import generator.runner

    arts = {b: make_image(tmp_path, b, size=64) for b in ("nucleo_h743", "nucleo_u575")}
    monkeypatch.setattr(generator.runner, "build_for",
                        lambda req: (load_board(req.board), arts[req.board]))
    if nucleo.list_probes():
        pytest.skip("a probe is attached to this machine")
    t0 = time.monotonic()
    rc = cli.main(["flash", "--board", "nucleo_h743", "--probe-uid", "NOPE"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith("sweetspot: error: no debug probe with UID 'NOPE' is connected; "
                          "connected probes: none")
    rc = cli.main(["flash", "--board", "nucleo_u575", "--probe-uid", "NOPE"])
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and err.count("\n") == 1
    assert "pyocd pack install stm32u575zitx" in err and "UID 'NOPE'" in err
    assert time.monotonic() - t0 < 10


def _sweetspot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("sweetspot")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "generator.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300,
                          env=env)


def test_cli_flash_twin_board_is_refused():
    p = _sweetspot("flash", "--board", "qemu_m33", "--probe-uid", "X")
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [
        "sweetspot: error: 'qemu_m33' is a qemu board; flash takes a Nucleo board (run a twin "
        "with: sweetspot run --board qemu_m33)"]


@pytest.fixture(scope="module")
def u575_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real bench image for the U575, built once for this module."""
    require_toolchain()
    board = load_board("nucleo_u575")
    clock = board.clock["family"]
    if not (ROOT / "templates" / "firmware" / "clock" / f"{clock}.c.j2").is_file():
        pytest.skip(f"nucleo_u575 firmware does not build yet (no {clock} clock template)")
    from generator.build import run_scons

    d = tmp_path_factory.mktemp("u575") / "bench"
    run_scons(board, "bench", {}, d)
    return d


@pytest.mark.toolchain
def test_flash_real_firmware_image(rig: Rig, u575_build: Path, tmp_path: Path):
    """The real U575 build through the fake probe: every HEX segment lies in flash and matches
    objcopy's raw binary at its offset; the ELF gives the same bytes; the read-back passes."""
    board = load_board("nucleo_u575")
    art = Artifacts.for_dir(board, u575_build)
    raw = art.bin.read_bytes()  # type: ignore[union-attr]
    segs = nucleo.image_segments(art.hex)  # type: ignore[arg-type]
    for addr, data in segs:
        off = addr - board.flash.origin
        assert raw[off:off + len(data)] == data
    assert segs[0][0] == board.flash.origin and segs[-1][0] + len(segs[-1][1]) - \
        board.flash.origin == len(raw)
    assert b"".join(d for _, d in nucleo.image_segments(art.elf)) == b"".join(d for _, d in segs)
    rig.payload = (board.flash.origin, raw)
    info = nucleo.flash_image(board, art, probe_uid=UID_A, timeout=10,
                              pack=make_pack(tmp_path / "u5.pack"))
    assert info["bytes"] == sum(len(d) for _, d in segs) and info["image"] == str(art.hex)


@pytest.mark.toolchain
def test_cli_flash_nucleo_u575_no_probe(tmp_path: Path, u575_build: Path):
    """The whole command: build the real U575 image (already built: a no-op), then the real
    pyOCD finds no pack and no probe. One message on stderr, nothing on stdout, exit 2."""
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "xdg"))
    env.pop(nucleo.PACK_ENV, None)
    p = _sweetspot("flash", "--board", "nucleo_u575", "--probe-uid", "NOPE",
                   "--build-dir", str(u575_build), env=env)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweetspot: error: cannot flash nucleo_u575")
    assert "pyocd pack install stm32u575zitx" in lines[0] and "UID 'NOPE'" in lines[0]
