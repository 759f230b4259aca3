"""A real Nucleo board: flashed with pyOCD through the ST-LINK chosen by its unique ID, results read
from the ST-LINK's virtual COM port (or any pyserial URL, e.g. ``rfc2217://`` or ``socket://`` for
a network serial bridge).

Lifecycle of :meth:`NucleoTarget.run`::

    check pyOCD target support (built in, a pack file, or an installed CMSIS pack)
    → choose the probe by UID → open the console port
    → open a pyOCD session → reset and halt → program the image → read it back and compare
    → discard console input (the old firmware's) → reset and run → close the session
    → read the results stream until END or the deadline → close the port

Everything that talks to the probe runs under a deadline (a worker thread): a stuck probe gives a
:class:`TargetError`, never a hang. pyOCD is imported lazily; only this module touches it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import serial
import serial.tools.list_ports

from generator.boards import Board
from generator.build import Artifacts
from generator.errors import ProbeError, ProtocolError, SweetspotError, TargetError
from generator.targets.base import RunOutput, Target, read_session

PACK_ENV = "SWEETSPOT_PYOCD_PACK"
"""Environment variable naming CMSIS pack file(s) (``os.pathsep``-separated) for pyOCD."""

FLASH_TIMEOUT_S = 120.0
SESSION_OPEN_TIMEOUT_S = 30.0
UDEV_HINT = ("check the USB cable; on Linux the probe needs pyOCD's udev rules from "
             "https://github.com/pyocd/pyOCD/tree/main/udev")

T = TypeVar("T")


# ---- probes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeInfo:
    uid: str
    description: str
    vendor: str

    def __str__(self) -> str:
        return f"{self.uid} ({self.description}{', ' + self.vendor if self.vendor else ''})"


def _connected_probes() -> list[Any]:
    """pyOCD's probe objects, never waiting for one to appear."""
    from pyocd.core.helpers import ConnectHelper

    try:
        return list(ConnectHelper.get_all_connected_probes(blocking=False))
    except Exception as e:  # USB back-end trouble (no libusb, permissions) surfaces here
        raise ProbeError(f"listing debug probes with pyOCD failed: {e}; {UDEV_HINT}") from e


def _info(probe: Any) -> ProbeInfo:
    return ProbeInfo(uid=str(probe.unique_id), description=str(probe.description),
                     vendor=str(getattr(probe, "vendor_name", "") or ""))


def list_probes() -> list[ProbeInfo]:
    """The debug probes connected now (empty when there are none)."""
    return [_info(p) for p in _connected_probes()]


def _probe_list_text(probes: list[Any]) -> str:
    return ", ".join(str(_info(p)) for p in probes) if probes else "none"


def choose_probe(probe_uid: str) -> Any:
    """The connected probe with this unique ID: an exact (case-insensitive) match, else the only
    probe whose UID contains it. Raises :class:`ProbeError` listing the connected probes."""
    if not probe_uid or not probe_uid.strip():
        raise ProbeError("a probe UID is needed: pass --probe-uid <uid>; connected probes: "
                         f"{_probe_list_text(_connected_probes())}")
    probes = _connected_probes()
    want = probe_uid.strip().lower()
    exact = [p for p in probes if str(p.unique_id).lower() == want]
    if len(exact) == 1:
        return exact[0]
    partial = [p for p in probes if want in str(p.unique_id).lower()]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise ProbeError(f"probe UID '{probe_uid}' matches {len(partial)} connected probes: "
                         f"{_probe_list_text(partial)}; pass the full UID")
    raise ProbeError(f"no debug probe with UID '{probe_uid}' is connected; connected probes: "
                     f"{_probe_list_text(probes)}"
                     + ("" if probes else f" ({UDEV_HINT})"))


# ---- target support ------------------------------------------------------------------------

def pyocd_target_name(board: Board) -> str:
    """The board's pyOCD target type, normalised as pyOCD does (``STM32U575ZITx`` →
    ``stm32u575zitx``)."""
    from pyocd.target import normalise_target_type_name

    if board.kind != "nucleo" or not board.pyocd.get("target"):
        raise TargetError(f"board '{board.name}' is a {board.kind} board without a pyOCD target; "
                          "flashing needs a Nucleo board")
    return str(normalise_target_type_name(str(board.pyocd["target"])))


def pack_files(pack: str | Path | list[str | Path] | None = None) -> list[str]:
    """CMSIS pack files to use: the argument, else ``$SWEETSPOT_PYOCD_PACK``."""
    if pack is None:
        env = os.environ.get(PACK_ENV, "")
        return [p for p in env.split(os.pathsep) if p]
    items = pack if isinstance(pack, list) else [pack]
    return [str(p) for p in items]


def pack_install_hint(board: Board) -> str:
    part = board.pyocd.get("pack") or board.pyocd.get("target")
    return (f"install its device pack with: pyocd pack install {part} (downloads the DFP once), "
            f"or use a downloaded pack file: --pack <file.pack> "
            f"(or {PACK_ENV}=<file.pack>)")


def target_support(board: Board, pack: str | Path | list[str | Path] | None = None) -> str:
    """Make sure pyOCD can drive the board's MCU; returns where the target type comes from:
    "built in", "pack file", "installed pack" or "pack (already loaded)". The same lookup pyOCD's
    session does: built-in targets, the given pack files, packs from ``pyocd pack install``.

    Raises :class:`ProbeError` with the ``pyocd pack install`` command when none provides it.
    """
    from pyocd.target import TARGET
    from pyocd.target.pack.pack_target import CPM_AVAILABLE, ManagedPacks, PackTargets

    name = pyocd_target_name(board)
    if name in TARGET:
        return "built in" if _is_builtin(name) else "pack (already loaded)"
    files = pack_files(pack)
    if files:
        for f in files:
            if not Path(f).is_file():
                raise ProbeError(f"CMSIS pack file {f} does not exist; "
                                 f"{pack_install_hint(board)}")
        try:
            PackTargets.populate_targets_from_pack(files)
        except Exception as e:
            raise ProbeError(f"pyOCD cannot read the CMSIS pack {', '.join(files)}: {e}") from e
        if name in TARGET:
            return "pack file"
        raise ProbeError(f"the CMSIS pack {', '.join(files)} does not describe target "
                         f"'{name}' of board {board.name}; {pack_install_hint(board)}")
    if not CPM_AVAILABLE:
        raise ProbeError(f"pyOCD has no built-in target '{name}' for board {board.name} and "
                         "cmsis-pack-manager is not installed: pip install cmsis-pack-manager, "
                         f"then {pack_install_hint(board)}")
    try:
        ManagedPacks.populate_target(name)
    except Exception as e:
        raise ProbeError(f"reading the installed CMSIS packs failed: {e}") from e
    if name in TARGET:
        return "installed pack"
    raise ProbeError(f"pyOCD has no target type '{name}' for board {board.name} (it is not built "
                     f"in and no installed CMSIS pack provides it); {pack_install_hint(board)}")


def _is_builtin(name: str) -> bool:
    from pyocd.target.builtin import BUILTIN_TARGETS

    return name in BUILTIN_TARGETS


# ---- deadlines and pyOCD errors --------------------------------------------------------------

def call_with_deadline(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn`` in a worker thread and wait at most ``timeout`` seconds for it. pyOCD's USB
    calls cannot be interrupted, so a stuck probe leaves the (daemon) worker behind and raises."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = e

    worker = threading.Thread(target=work, name=f"sweetspot-pyocd: {what}", daemon=True)
    worker.start()
    worker.join(max(0.0, timeout))
    if worker.is_alive():
        raise TargetError(f"{what} did not finish within {timeout:g} s; the probe or the board "
                          "may be stuck: unplug and replug the board, then retry")
    if "error" in result:
        raise result["error"]
    return result["value"]  # type: ignore[no-any-return]


def _translate(e: BaseException, board: Board, uid: str, doing: str) -> SweetspotError:
    """A pyOCD (or USB) exception as one of ours, naming the board, the probe and the step."""
    if isinstance(e, SweetspotError):
        return e
    from pyocd.core import exceptions as pe

    where = f"{doing} on {board.name} through probe {uid}"
    if isinstance(e, pe.TargetSupportError):
        return ProbeError(f"{where} failed: {e}; {pack_install_hint(board)}")
    if isinstance(e, pe.ProbeError):
        return ProbeError(f"{where} failed: {e}; {UDEV_HINT}")
    if isinstance(e, pe.FlashFailure):
        return TargetError(f"{where} failed: the flash algorithm reported {e}")
    if isinstance(e, pe.TransferError):
        return TargetError(f"{where} failed: {e}; if the firmware sleeps or disables the debug "
                           "port, hold the board's RESET button while connecting")
    return TargetError(f"{where} failed: {type(e).__name__}: {e}")


# ---- the image ---------------------------------------------------------------------------------

def image_path(artifacts: Artifacts) -> Path:
    """The file to program: the Intel HEX (addresses included), else the ELF."""
    for p in (artifacts.hex, artifacts.elf):
        if p is not None and p.is_file():
            return p
    names = ", ".join(p.name for p in (artifacts.hex, artifacts.elf) if p is not None)
    raise TargetError(f"no firmware image in {artifacts.build_dir} (looked for {names}); "
                      "build it first")


def image_segments(path: Path) -> list[tuple[int, bytes]]:
    """The (address, bytes) runs an image puts into memory, from the file itself."""
    if path.suffix == ".hex":
        from intelhex import IntelHex

        ih = IntelHex(str(path))
        return [(start, bytes(ih.tobinarray(start=start, end=end - 1)))
                for start, end in ih.segments()]
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        elf = ELFFile(f)
        return [(int(seg["p_paddr"]), bytes(seg.data())) for seg in elf.iter_segments()
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"] > 0]


def _check_segments(board: Board, path: Path, segments: list[tuple[int, bytes]]) -> int:
    total = sum(len(d) for _, d in segments)
    if total == 0:
        raise TargetError(f"{path} holds 0 bytes to program; rebuild the firmware")
    for addr, data in segments:
        if not board.flash.contains(addr, len(data)):
            raise TargetError(
                f"{path} has {len(data)} bytes at 0x{addr:08x}, outside the flash of {board.name} "
                f"(0x{board.flash.origin:08x}..0x{board.flash.end:08x}); pyOCD would skip them")
    return total


def _verify(session: Any, segments: list[tuple[int, bytes]], path: Path) -> None:
    """Read the flash back and compare it with the image (pyOCD's loader does not verify)."""
    for addr, data in segments:
        got = bytes(session.target.read_memory_block8(addr, len(data)))
        if got != data:
            bad = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b), len(got))
            have = f"0x{got[bad]:02x}" if bad < len(got) else "nothing"
            raise TargetError(
                f"verification failed: flash at 0x{addr + bad:08x} holds {have}, {path.name} has "
                f"0x{data[bad]:02x} ({len(data)} bytes from 0x{addr:08x})")


# ---- sessions and flashing ------------------------------------------------------------------

def session_options(board: Board, pack_list: list[str]) -> dict[str, Any]:
    """pyOCD session options, all from the board file (no pyocd.yaml from the working dir)."""
    opts: dict[str, Any] = {"target_override": pyocd_target_name(board), "no_config": True,
                            "resume_on_disconnect": True}
    if pack_list:
        opts["pack"] = pack_list
    return opts


def _close_quietly(session: Any) -> None:
    """Close a session after an error: the first error is the one worth reporting."""
    with contextlib.suppress(Exception):
        session.close()


def _new_session(board: Board, probe: Any, pack_list: list[str]) -> Any:
    from pyocd.core.session import Session

    uid = str(probe.unique_id)
    try:
        return Session(probe, options=session_options(board, pack_list))
    except Exception as e:
        raise _translate(e, board, uid, "creating a pyOCD session") from e


def preflight(board: Board, probe_uid: str,
              pack: str | Path | list[str | Path] | None = None) -> tuple[str, Any]:
    """Target support and the probe, checked together so that a user missing both hears of both
    in one message. Returns (target source, probe)."""
    problems: list[str] = []
    source, probe = "", None
    try:
        source = target_support(board, pack)
    except ProbeError as e:
        problems.append(str(e))
    try:
        probe = choose_probe(probe_uid)
    except ProbeError as e:
        problems.append(str(e))
    if problems:
        raise ProbeError(problems[0] if len(problems) == 1 else
                         f"cannot flash {board.name}: (1) {problems[0]}; (2) {problems[1]}")
    return source, probe


def open_session(board: Board, probe_uid: str, timeout: float = SESSION_OPEN_TIMEOUT_S,
                 pack: str | Path | list[str | Path] | None = None) -> Any:
    """An open pyOCD session on the probe with ``probe_uid``, target type from the board file.
    The caller closes it (``session.close()``). Never waits for a probe to be plugged in."""
    _, probe = preflight(board, probe_uid, pack)
    session = _new_session(board, probe, pack_files(pack))
    uid = str(probe.unique_id)

    def _open() -> None:
        try:
            session.open()
        except Exception as e:
            _close_quietly(session)
            raise _translate(e, board, uid, "connecting") from e

    call_with_deadline(_open, timeout, f"connecting to {board.name} through probe {uid}")
    return session


def flash_image(board: Board, artifacts: Artifacts, probe_uid: str,
                timeout: float = FLASH_TIMEOUT_S,
                pack: str | Path | list[str | Path] | None = None,
                before_reset: Callable[[], None] | None = None) -> dict[str, Any]:
    """Program the image into the board through the probe, read it back, reset and run.

    ``before_reset`` is called once the new image is verified and the core is still halted (the
    console reader uses it to drop the old firmware's output). Everything after the static checks
    runs under ``timeout`` seconds. Returns ``{"image", "image_sha256", "probe_uid", "target",
    "target_source", "bytes", "segments", "verified", "seconds"}``.
    """
    t0 = time.monotonic()
    path = image_path(artifacts)
    segments = image_segments(path)
    nbytes = _check_segments(board, path, segments)
    source, probe = preflight(board, probe_uid, pack)
    uid = str(probe.unique_id)
    session = _new_session(board, probe, pack_files(pack))

    def work() -> None:
        from pyocd.core.exceptions import TransferError
        from pyocd.flash.file_programmer import FileProgrammer

        step = "connecting"
        try:
            session.open()
            step = "halting the core"
            session.target.reset_and_halt()
            step = f"programming {path.name}"
            FileProgrammer(session).program(str(path))
            step = "verifying the flash"
            _verify(session, segments, path)
            if before_reset is not None:
                before_reset()
            step = "resetting"
            # A reset may drop debug access for a moment; the core runs regardless.
            with contextlib.suppress(TransferError):
                session.target.reset()
        except Exception as e:
            raise _translate(e, board, uid, step) from e
        finally:
            _close_quietly(session)

    call_with_deadline(work, timeout, f"flashing {board.name} through probe {uid}")
    return {
        "image": str(path),
        "image_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "probe_uid": uid,
        "target": pyocd_target_name(board),
        "target_source": source,
        "bytes": nbytes,
        "segments": len(segments),
        "verified": True,
        "seconds": round(time.monotonic() - t0, 3),
    }


# ---- the console -------------------------------------------------------------------------------

def find_vcp(probe_uid: str) -> str:
    """The serial port of the ST-LINK virtual COM port of this probe (its USB serial number is
    the probe's UID)."""
    ports = list(serial.tools.list_ports.comports())
    want = probe_uid.strip().lower()
    mine = sorted((p for p in ports if (p.serial_number or "").lower() == want),
                  key=lambda p: p.device)
    if len(mine) == 1:
        return str(mine[0].device)
    if len(mine) > 1:
        raise ProbeError(f"probe {probe_uid} has {len(mine)} serial ports "
                         f"({', '.join(p.device for p in mine)}); pass the console with "
                         "--serial-port")
    present = ", ".join(f"{p.device} (serial {p.serial_number or '-'}, {p.description})"
                        for p in ports) or "none"
    raise ProbeError(f"no serial port belongs to probe {probe_uid} (the ST-LINK virtual COM port "
                     f"was not found); serial ports present: {present}; pass the console with "
                     "--serial-port")


def open_console(port: str, baud: int) -> serial.SerialBase:
    """Open a device path or any pyserial URL (``loop://``, ``socket://``, ``rfc2217://``)."""
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=0.05)
    except (serial.SerialException, ValueError, OSError) as e:
        hint = " (on Linux add your user to the dialout group)" if "ermission" in str(e) else ""
        raise TargetError(f"cannot open the console port {port}: {e}{hint}") from e


# ---- the target ----------------------------------------------------------------------------------

class NucleoTarget(Target):
    """A Nucleo board on the desk: ``run`` flashes the image and reads its results."""

    def __init__(self, board: Board, probe_uid: str | None = None,
                 serial_port: str | None = None,
                 pack: str | Path | list[str | Path] | None = None,
                 flash_timeout: float = FLASH_TIMEOUT_S, log_dir: Path | None = None) -> None:
        if board.kind != "nucleo":
            raise TargetError(f"board '{board.name}' is not a Nucleo board")
        super().__init__(board)
        self.probe_uid = probe_uid
        self.serial_port = serial_port
        self.pack = pack
        self.flash_timeout = flash_timeout
        self.log_dir = log_dir

    def run(self, artifacts: Artifacts, timeout: float = 60.0) -> RunOutput:
        t0 = time.monotonic()
        board = self.board
        if not self.probe_uid:
            raise ProbeError(
                f"{board.name} is a real board: pass --probe-uid <uid> to flash it (connected "
                f"probes: {_probe_list_text(_connected_probes())}), or run its emulated twin "
                f"{board.twin} with --twin")
        image_path(artifacts)
        preflight(board, self.probe_uid, self.pack)  # fail before opening anything
        port_name = self.serial_port or find_vcp(self.probe_uid)
        ser = open_console(port_name, int(board.console["baud"]))
        capture = bytearray()
        try:
            info = flash_image(board, artifacts, self.probe_uid, timeout=self.flash_timeout,
                               pack=self.pack, before_reset=ser.reset_input_buffer)
            what = f"{board.name} on {port_name}"
            try:
                session = read_session(ser, timeout, what=what, capture=capture)
            except ProtocolError as e:
                if capture:
                    raise
                raise ProtocolError(f"{e}; nothing at all arrived on {port_name}: check that it is "
                                    f"the board's console and that it runs at "
                                    f"{board.console['baud']} baud") from e
        finally:
            ser.close()
        out = RunOutput(board=board.name, session=session, exit_code=None,
                        wall_s=time.monotonic() - t0, console=bytes(capture))
        out.extra["flash"] = info
        out.extra["serial_port"] = port_name
        self._save_log(out)
        return out

    def _save_log(self, out: RunOutput) -> None:
        if self.log_dir is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"console-{self.board.name}.log"
        path.write_bytes(out.console)
        out.log_path = str(path)
