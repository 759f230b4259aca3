"""Boards: one TOML data file per board in ``boards/``, validated on load.

A board is data, not code. Three kinds exist:

* ``nucleo`` - a real STM32 Nucleo board, flashed with pyOCD, console on the ST-LINK VCP;
* ``qemu``   - an emulated twin of a Nucleo core, run with qemu-system-arm;
* ``host``   - the same generated C built for the machine running sweetspot.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator import PROJECT_ROOT
from generator.errors import BoardError

KINDS = ("nucleo", "qemu", "host")
CORES = ("cortex-m0", "cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "host")
COUNTERS = ("dwt", "systick", "none")
CONSOLES = ("stm32_usart_v2", "cmsdk_uart", "nrf_uart")

# Nucleo clock trees: per clock.family (= templates/firmware/clock/<family>.c.j2), the one
# clock.source it implements, the integer [clock] keys it reads and the bus clocks a console
# USART's kernel clock (console.kernel_clock) may come from. The template checks the arithmetic.
CLOCK_FAMILIES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "stm32g0": ("hsi16_pll", ("pll_m", "pll_n", "pll_r", "vos", "flash_latency", "hpre", "ppre"),
                ("pclk",)),
    "stm32l4": ("msi_pll", ("pll_m", "pll_n", "pll_r", "vos", "flash_latency", "hpre", "ppre1",
                            "ppre2"), ("pclk1", "pclk2")),
    "stm32u5": ("hsi16_pll", ("pll_m", "pll_n", "pll_r", "vos", "flash_latency", "hpre", "ppre1",
                              "ppre2", "ppre3"), ("pclk1", "pclk2", "pclk3")),
    "stm32h7": ("hsi_pll", ("pll_m", "pll_n", "pll_p", "vos", "flash_latency", "d1cpre", "hpre",
                            "d1ppre", "d2ppre1", "d2ppre2", "d3ppre"), ("pclk1", "pclk2")),
}

# Architecture flags per core for arm-none-eabi-gcc.
_ARCH = {
    "cortex-m0": ("armv6-m", "-mcpu=cortex-m0"),
    "cortex-m0plus": ("armv6-m", "-mcpu=cortex-m0plus"),
    "cortex-m4": ("armv7e-m", "-mcpu=cortex-m4"),
    "cortex-m7": ("armv7e-m", "-mcpu=cortex-m7"),
    "cortex-m33": ("armv8-m.main", "-mcpu=cortex-m33"),
}


def default_boards_dir() -> Path:
    """``$SWEETSPOT_BOARDS`` or the ``boards/`` folder next to the package."""
    env = os.environ.get("SWEETSPOT_BOARDS")
    if env:
        return Path(env)
    return PROJECT_ROOT / "boards"


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    origin: int
    length: int

    @property
    def end(self) -> int:
        return self.origin + self.length

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.origin <= addr and addr + size <= self.end


@dataclass(frozen=True)
class Board:
    name: str
    kind: str
    description: str
    core: str
    fpu: str
    dsp: bool
    clock_hz: int
    active_uw_per_mhz: float
    counter: dict[str, Any]
    memory: tuple[MemoryRegion, ...] = ()
    console: dict[str, Any] = field(default_factory=dict)
    clock: dict[str, Any] = field(default_factory=dict)
    qemu: dict[str, Any] = field(default_factory=dict)
    pyocd: dict[str, Any] = field(default_factory=dict)
    twin: str | None = None
    twin_of: str | None = None
    mcu: str | None = None
    path: Path | None = None

    # -- derived data used by the emitter and the build -------------------------------------
    def region(self, name: str) -> MemoryRegion:
        for r in self.memory:
            if r.name == name:
                return r
        raise BoardError(f"board '{self.name}' has no memory region '{name}'")

    @property
    def flash(self) -> MemoryRegion:
        return self.region("flash")

    @property
    def ram(self) -> MemoryRegion:
        return self.region("ram")

    @property
    def counter_kind(self) -> str:
        return str(self.counter["kind"])

    @property
    def is_host(self) -> bool:
        return self.kind == "host"

    @property
    def has_fpu(self) -> bool:
        return self.fpu not in ("none", "host")

    @property
    def pj_per_cycle(self) -> float:
        """Energy per cycle in pJ: active power in uW/MHz is numerically pJ per cycle."""
        return float(self.active_uw_per_mhz)

    def cflags(self) -> list[str]:
        """Architecture flags for arm-none-eabi-gcc (empty for the host)."""
        if self.is_host:
            return []
        _arch, mcpu = _ARCH[self.core]
        flags = [mcpu, "-mthumb"]
        if self.has_fpu:
            flags += [f"-mfpu={self.fpu}", "-mfloat-abi=hard"]
        else:
            flags += ["-mfloat-abi=soft"]
        return flags

    def counter_ticks_per_instruction(self) -> float | None:
        """On a QEMU twin under ``-icount shift=N`` each instruction takes 2**N ns of virtual
        time, so SysTick (clocked at ``systick_hz``) advances by this many ticks per instruction.
        ``None`` where the counter measures real cycles."""
        if self.kind != "qemu":
            return None
        return (2 ** int(self.qemu["icount_shift"])) * int(self.counter["systick_hz"]) / 1e9

    def summary(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "core": self.core,
            "clock_mhz": self.clock_hz / 1e6,
            "active_uw_per_mhz": self.active_uw_per_mhz,
            "counter": self.counter_kind,
            "description": self.description,
        }
        if self.memory:
            d["memory"] = {r.name: {"origin": r.origin, "length": r.length} for r in self.memory}
        if self.twin:
            d["twin"] = self.twin
        if self.twin_of:
            d["twin_of"] = self.twin_of
        if self.qemu:
            d["qemu_machine"] = self.qemu.get("machine")
        if self.pyocd:
            d["pyocd_target"] = self.pyocd.get("target")
        return d


def _need(data: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise BoardError(f"{where}: missing key '{key}'")
    val = data[key]
    if not isinstance(val, typ) or (isinstance(val, bool) and typ in (int, float)):
        tname = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise BoardError(f"{where}: '{key}' must be {tname}, got {val!r}")
    return val


def parse_board(data: dict[str, Any], where: str, path: Path | None = None) -> Board:
    """Validate one board's data (as read from TOML) and build a :class:`Board`."""
    name = _need(data, "name", str, where)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise BoardError(f"{where}: name {name!r} must be 1 to 64 letters, digits, '_', '.' or "
                         "'-' (it names build directories and goes into generated C)")
    kind = _need(data, "kind", str, where)
    if kind not in KINDS:
        raise BoardError(f"{where}: kind '{kind}' is not one of {', '.join(KINDS)}")
    core = _need(data, "core", str, where)
    if core not in CORES:
        raise BoardError(f"{where}: core '{core}' is not one of {', '.join(CORES)}")
    clock_hz = _need(data, "clock_hz", int, where)
    if clock_hz <= 0:
        raise BoardError(f"{where}: clock_hz must be positive")
    power = _need(data, "active_uw_per_mhz", (int, float), where)
    if power <= 0:
        raise BoardError(f"{where}: active_uw_per_mhz must be positive")
    counter = _need(data, "counter", dict, where)
    if counter.get("kind") not in COUNTERS:
        raise BoardError(f"{where}: counter.kind must be one of {', '.join(COUNTERS)}")

    memory: list[MemoryRegion] = []
    for rname, r in data.get("memory", {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,31}", rname):
            raise BoardError(f"{where}: memory region name {rname!r} must be an identifier "
                             "(it becomes a linker-script MEMORY name)")
        origin = _need(r, "origin", int, f"{where} memory.{rname}")
        length = _need(r, "length", int, f"{where} memory.{rname}")
        if length <= 0 or origin < 0 or origin + length > 2**32:
            raise BoardError(f"{where}: memory.{rname} is outside the 32-bit address space")
        memory.append(MemoryRegion(rname, origin, length))
    for a in memory:
        for b in memory:
            if a is not b and a.origin < b.end and b.origin < a.end:
                raise BoardError(f"{where}: memory regions '{a.name}' and '{b.name}' overlap")

    if kind != "host":
        names = {m.name for m in memory}
        for needed in ("flash", "ram"):
            if needed not in names:
                raise BoardError(f"{where}: a {kind} board needs a memory.{needed} region")
        console = _need(data, "console", dict, where)
        if console.get("kind") not in CONSOLES:
            raise BoardError(f"{where}: console.kind must be one of {', '.join(CONSOLES)}")
        _need(console, "base", int, f"{where} console")
    if kind == "qemu":
        q = _need(data, "qemu", dict, where)
        _need(q, "machine", str, f"{where} qemu")
        shift = _need(q, "icount_shift", int, f"{where} qemu")
        if not 0 <= shift <= 10:
            raise BoardError(f"{where}: qemu.icount_shift must be 0..10")
        if counter["kind"] == "systick":
            _need(counter, "systick_hz", int, f"{where} counter")
        _need(data, "twin_of", str, where)
    if kind == "nucleo":
        p = _need(data, "pyocd", dict, where)
        _need(p, "target", str, f"{where} pyocd")
        _need(data, "twin", str, where)
        clock = _need(data, "clock", dict, where)
        family = clock.get("family")
        if family not in CLOCK_FAMILIES:
            raise BoardError(f"{where}: clock.family must be one of {', '.join(CLOCK_FAMILIES)}")
        source, clock_keys, buses = CLOCK_FAMILIES[family]
        if clock.get("source") != source:
            raise BoardError(f"{where}: clock.source must be '{source}' for family {family}")
        for key in clock_keys:
            _need(clock, key, int, f"{where} clock")
        _need(clock, "flash_accel", bool, f"{where} clock")
        cons = data["console"]
        for key in ("baud", "kernel_clock_hz", "enable_reg", "enable_bit", "gpio_base", "af",
                    "gpio_enable_reg", "gpio_enable_bit", "kernel_sel_reg", "kernel_sel_shift",
                    "kernel_sel_width", "kernel_sel_value"):
            _need(cons, key, int, f"{where} console")
        if _need(cons, "kernel_clock", str, f"{where} console") not in buses:
            raise BoardError(f"{where}: console.kernel_clock must be one of {', '.join(buses)} "
                             f"for family {family}")
    if core in ("cortex-m0", "cortex-m0plus") and counter["kind"] == "dwt":
        raise BoardError(f"{where}: {core} has no DWT cycle counter; use counter.kind = 'systick'")

    return Board(
        name=name,
        kind=kind,
        description=str(data.get("description", name)),
        core=core,
        fpu=str(data.get("fpu", "none")),
        dsp=bool(data.get("dsp", False)),
        clock_hz=clock_hz,
        active_uw_per_mhz=float(power),
        counter=dict(counter),
        memory=tuple(memory),
        console=dict(data.get("console", {})),
        clock=dict(data.get("clock", {})),
        qemu=dict(data.get("qemu", {})),
        pyocd=dict(data.get("pyocd", {})),
        twin=data.get("twin"),
        twin_of=data.get("twin_of"),
        mcu=data.get("mcu"),
        path=path,
    )


def board_names(boards_dir: Path | None = None) -> list[str]:
    d = boards_dir or default_boards_dir()
    return sorted(p.stem for p in d.glob("*.toml"))


def load_board(name: str, boards_dir: Path | None = None) -> Board:
    """Load and validate ``boards/<name>.toml``. Unknown names list the known boards."""
    d = boards_dir or default_boards_dir()
    known = board_names(d)
    if name not in known:
        raise BoardError(f"board '{name}' is unknown; known: {', '.join(known)}")
    path = d / f"{name}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise BoardError(f"board file {path} is not valid TOML: {e}") from None
    board = parse_board(data, str(path), path)
    if board.name != name:
        raise BoardError(f"{path}: name '{board.name}' does not match the file name '{name}'")
    return board


def load_all(boards_dir: Path | None = None) -> list[Board]:
    return [load_board(n, boards_dir) for n in board_names(boards_dir)]


def twin_of(board: Board, boards_dir: Path | None = None) -> Board:
    """The board to run on here: a Nucleo's emulated twin, or the board itself."""
    if board.kind == "nucleo" and board.twin:
        return load_board(board.twin, boards_dir)
    return board
