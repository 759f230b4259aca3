"""Static checks of the four Nucleo ``bench`` images: they cannot run here (no board, and QEMU 7.2
has no STM32 machine), so what can be checked without running them is checked.

Independent of ``generator/build.py``'s own checker: the ELF is read with :mod:`struct` and
``arm-none-eabi-nm`` / ``arm-none-eabi-objdump``, the Intel HEX is decoded here, and a small
register tracker over the disassembly finds which peripheral registers the code writes and with
which constants. Expected addresses, field encodings and BRR values are worked out by hand from
the reference manuals (RM0456 U5, RM0351 L4, RM0444 G0, RM0433 H7; the comments show the sums),
not read from the templates.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _util import ROOT, require_toolchain

from generator.boards import Board, load_board
from generator.build import run_scons, scons_command
from generator.errors import BoardError, BuildError

pytestmark = pytest.mark.toolchain

NUCLEOS = ("nucleo_g071", "nucleo_h743", "nucleo_l476", "nucleo_u575")
TIMEOUT_S = 120


@dataclass(frozen=True)
class Expect:
    """Hand-worked facts about one Nucleo image."""

    cpu_flag: str
    # Registers ss_clock_init must write: name -> address.
    clock_writes: dict[str, int]
    # Full-register writes with a known constant: address -> value.
    clock_values: dict[int, int]
    # Console: USART base, BRR = round(kernel clock / 115200), RCC enable register.
    usart: int
    brr: int
    usart_enable: int
    gpio_moder: int
    board_writes: dict[str, int] = field(default_factory=dict)


EXPECT: dict[str, Expect] = {
    # STM32U575 (RM0456), non-secure aliases: RCC 0x46020C00, PWR 0x46020800, FLASH 0x40022000.
    "nucleo_u575": Expect(
        cpu_flag="-mcpu=cortex-m33",
        clock_writes={
            "RCC_CR": 0x46020C00, "RCC_CFGR1": 0x46020C1C, "RCC_CFGR2": 0x46020C20,
            "RCC_PLL1CFGR": 0x46020C28, "RCC_PLL1DIVR": 0x46020C34, "RCC_AHB3ENR": 0x46020C94,
            "RCC_CCIPR1": 0x46020CE0, "PWR_VOSR": 0x4602080C, "FLASH_ACR": 0x40022000,
            "ICACHE_CR": 0x40030400,
        },
        clock_values={
            # PLL1SRC=10 (HSI16) | PLL1RGE=11<<2 (8-16 MHz) | PLL1M-1=0<<8 | PLL1MBOOST=0
            # | PLL1REN<<18
            0x46020C28: 0x2 | 0xC | (1 << 18),
            # PLL1N-1=9 | (PLL1P-1=1)<<9 | (PLL1Q-1=1)<<16 | (PLL1R-1=0)<<24
            0x46020C34: 9 | (1 << 9) | (1 << 16),
        },
        usart=0x40013800, brr=1389,  # 160e6 / 115200 = 1388.9
        usart_enable=0x46020CA4,     # RCC_APB2ENR (USART1EN bit 14)
        gpio_moder=0x42020000,       # GPIOA
    ),
    # STM32L476 (RM0351): RCC 0x40021000, PWR 0x40007000, FLASH 0x40022000.
    "nucleo_l476": Expect(
        cpu_flag="-mcpu=cortex-m4",
        clock_writes={
            "RCC_CR": 0x40021000, "RCC_CFGR": 0x40021008, "RCC_PLLCFGR": 0x4002100C,
            "RCC_APB1ENR1": 0x40021058, "RCC_CCIPR": 0x40021088, "PWR_CR1": 0x40007000,
            "FLASH_ACR": 0x40022000,
        },
        clock_values={
            # PLLSRC=01 (MSI) | PLLM-1=0<<4 | PLLN=40<<8 | PLLREN<<24 | PLLR=00 (/2)<<25
            0x4002100C: 0x1 | (40 << 8) | (1 << 24),
        },
        usart=0x40004400, brr=694,   # 80e6 / 115200 = 694.4
        usart_enable=0x40021058,     # RCC_APB1ENR1 (USART2EN bit 17)
        gpio_moder=0x48000000,       # GPIOA
    ),
    # STM32G071 (RM0444): RCC 0x40021000, PWR 0x40007000, FLASH 0x40022000.
    "nucleo_g071": Expect(
        cpu_flag="-mcpu=cortex-m0plus",
        clock_writes={
            "RCC_CR": 0x40021000, "RCC_CFGR": 0x40021008, "RCC_PLLCFGR": 0x4002100C,
            "RCC_APBENR1": 0x4002103C, "RCC_CCIPR": 0x40021054, "PWR_CR1": 0x40007000,
            "FLASH_ACR": 0x40022000,
        },
        clock_values={
            # PLLSRC=10 (HSI16) | PLLM-1=1<<4 | PLLN=16<<8 | PLLP=/2 (1<<17) | PLLQ=/2 (1<<25)
            # | PLLREN<<28 | PLLR-1=1<<29
            0x4002100C: 0x2 | (1 << 4) | (16 << 8) | (1 << 17) | (1 << 25) | (1 << 28) | (1 << 29),
        },
        usart=0x40004400, brr=556,   # 64e6 / 115200 = 555.6
        usart_enable=0x4002103C,     # RCC_APBENR1 (USART2EN bit 17)
        gpio_moder=0x50000000,       # GPIOA (IOPORT)
    ),
    # STM32H743 (RM0433): RCC 0x58024400, PWR 0x58024800, SYSCFG 0x58000400, FLASH 0x52002000.
    "nucleo_h743": Expect(
        cpu_flag="-mcpu=cortex-m7",
        clock_writes={
            "RCC_CR": 0x58024400, "RCC_CFGR": 0x58024410, "RCC_D1CFGR": 0x58024418,
            "RCC_D2CFGR": 0x5802441C, "RCC_D3CFGR": 0x58024420, "RCC_PLLCKSELR": 0x58024428,
            "RCC_PLLCFGR": 0x5802442C, "RCC_PLL1DIVR": 0x58024430, "RCC_APB4ENR": 0x580244F4,
            "RCC_D2CCIP2R": 0x58024454, "PWR_CR3": 0x5802480C, "PWR_D3CR": 0x58024818,
            "SYSCFG_PWRCR": 0x5800042C, "FLASH_ACR": 0x52002000,
        },
        clock_values={
            # DIVN1-1=59 | (DIVP1-1=1)<<9 | (DIVQ1-1=1)<<16 | (DIVR1-1=1)<<24
            0x58024430: 59 | (1 << 9) | (1 << 16) | (1 << 24),
        },
        usart=0x40004800, brr=1042,  # rcc_pclk1 120e6 / 115200 = 1041.7
        usart_enable=0x580244E8,     # RCC_APB1LENR (USART3EN bit 18)
        gpio_moder=0x58020C00,       # GPIOD
    ),
}


# ---- ELF, BIN and HEX readers ------------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    data: bytes


def elf_segments(path: Path) -> tuple[int, int, list[Segment]]:
    """(e_machine, e_entry, PT_LOAD segments) of a little-endian ELF32 file."""
    raw = path.read_bytes()
    assert raw[:4] == b"\x7fELF" and raw[4] == 1 and raw[5] == 1, "not a little-endian ELF32"
    (_type, machine, _ver, entry, phoff, _shoff, _flags, _ehsize, phentsize,
     phnum) = struct.unpack_from("<HHIIIIIHHH", raw, 16)
    segs = []
    for i in range(phnum):
        p_type, off, vaddr, paddr, filesz, memsz, _f, _a = struct.unpack_from(
            "<IIIIIIII", raw, phoff + i * phentsize)
        if p_type == 1 and memsz:  # PT_LOAD
            segs.append(Segment(vaddr, paddr, filesz, memsz, raw[off:off + filesz]))
    return machine, entry, segs


def symbols(elf: Path) -> dict[str, tuple[int, int]]:
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True,
                         timeout=TIMEOUT_S, check=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            syms[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
        elif len(parts) == 3:  # no size: linker-script symbols
            syms[parts[2]] = (int(parts[0], 16), 0)
    return syms


def read_ihex(path: Path) -> dict[int, int]:
    """Intel HEX → {address: byte}, checking every record's checksum."""
    mem: dict[int, int] = {}
    base = 0
    for line in path.read_text().split():
        assert line.startswith(":"), line
        rec = bytes.fromhex(line[1:])
        assert sum(rec) & 0xFF == 0, f"bad checksum in {line}"
        n, addr, kind = rec[0], (rec[1] << 8) | rec[2], rec[3]
        data = rec[4:4 + n]
        if kind == 0:
            for i, b in enumerate(data):
                mem[base + addr + i] = b
        elif kind == 1:
            break
        elif kind == 4:
            base = int.from_bytes(data, "big") << 16
        elif kind == 2:
            base = int.from_bytes(data, "big") << 4
    return mem


# ---- which registers the code writes: a small tracker over the disassembly ---------------------

_REG = r"(r\d+|ip|lr|sp|fp|sl)"
_ALIASES = {"ip": "r12", "fp": "r11", "sl": "r10"}
_ARITH = {"add", "adds", "addw", "sub", "subs", "subw", "lsl", "lsls", "lsr", "lsrs", "orr",
          "orrs", "bic", "bics", "and", "ands", "eor", "eors"}
# Instructions that write no general-purpose register (or only flags).
_NO_WRITE = {"cmp", "cmn", "tst", "teq", "b", "bx", "nop", "dsb", "isb", "dmb", "cpsie", "cpsid",
             "wfi", "bkpt", "push", "cbz", "cbnz"}
_BRANCH = re.compile(r"b(eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le)|it[te]{0,3}")


def _imm(text: str) -> int:
    return int(text, 0) & 0xFFFFFFFF


def _apply(op: str, a: int, b: int) -> int:
    if op.startswith("add"):
        r = a + b
    elif op.startswith("sub"):
        r = a - b
    elif op.startswith("lsl"):
        r = a << b
    elif op.startswith("lsr"):
        r = a >> b
    elif op.startswith("orr"):
        r = a | b
    elif op.startswith("bic"):
        r = a & ~b
    elif op.startswith("and"):
        r = a & b
    else:  # eor
        r = a ^ b
    return r & 0xFFFFFFFF


@dataclass(frozen=True)
class Store:
    addr: int
    value: int | None
    width: int


def stores(elf: Path, image: dict[int, int], function: str, syms: dict[str, tuple[int, int]]
           ) -> list[Store]:
    """Stores to constant addresses in ``function``: registers are tracked through literal-pool
    loads, movw/movt and constant arithmetic in program order (a linear approximation that is
    exact for straight-line set-up code)."""
    start, size = syms[function]
    out = subprocess.run(
        ["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", f"--start-address={start}",
         f"--stop-address={start + size}", str(elf)],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=True).stdout
    regs: dict[str, int | None] = {}
    found: list[Store] = []

    def get(r: str) -> int | None:
        return regs.get(_ALIASES.get(r, r))

    def put(r: str, v: int | None) -> None:
        regs[_ALIASES.get(r, r)] = v

    def word(addr: int) -> int | None:
        if all(addr + i in image for i in range(4)):
            return int.from_bytes(bytes(image[addr + i] for i in range(4)), "little")
        return None

    for line in out.splitlines():
        m = re.match(r"\s*[0-9a-f]+:\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        op = m.group(1).removesuffix(".w").removesuffix(".n")
        args = m.group(2).split("@")[0].split(";")[0].strip()
        comment = m.group(2)
        ops = [a.strip() for a in re.split(r",(?![^\[]*\])(?![^{]*})", args)] if args else []
        if op in ("ldr",) and ops and "[pc" in args:
            lit = re.search(r"\(([0-9a-f]+) <", comment)
            put(ops[0], word(int(lit.group(1), 16)) if lit else None)
            continue
        if op in ("movw",):
            put(ops[0], _imm(ops[1].lstrip("#")))
            continue
        if op == "movt":
            lo = get(ops[0])
            put(ops[0], None if lo is None else (lo & 0xFFFF) | (_imm(ops[1].lstrip("#")) << 16))
            continue
        if op in ("mov", "movs", "mvn", "mvns") and len(ops) == 2:
            v = _imm(ops[1].lstrip("#")) if ops[1].startswith("#") else get(ops[1])
            if v is not None and op.startswith("mvn"):
                v = ~v & 0xFFFFFFFF
            put(ops[0], v)
            continue
        if op in _ARITH and len(ops) in (2, 3):
            a = get(ops[0]) if len(ops) == 2 else get(ops[1])
            src = ops[-1]
            b = _imm(src.lstrip("#")) if src.startswith("#") else get(src)
            put(ops[0], None if a is None or b is None else _apply(op, a, b))
            continue
        sm = re.match(r"(str|ldr)(b|h|d)?$", op)
        if sm:
            mem = re.search(r"\[" + _REG + r"(?:,\s*#(-?\w+))?\](!?)", args)
            nregs = 2 if sm.group(2) == "d" else 1
            width = {"b": 1, "h": 2}.get(sm.group(2) or "", 4)
            if mem:
                base = get(mem.group(1))
                off = _imm(mem.group(2)) if mem.group(2) else 0
                if base is not None:
                    for k in range(nregs):
                        addr = (base + off + 4 * k) & 0xFFFFFFFF
                        if sm.group(1) == "str":
                            found.append(Store(addr, get(ops[k]), width))
                if mem.group(3) == "!":
                    put(mem.group(1), None)
            if sm.group(1) == "ldr":
                for k in range(nregs):
                    put(ops[k], None)
            continue
        if op in ("bl", "blx"):
            for r in ("r0", "r1", "r2", "r3", "r12", "lr"):
                put(r, None)
            continue
        if op.startswith("pop") or op.startswith("ldm"):
            for r in re.findall(_REG, args):
                put(r, None)
            continue
        if op in _NO_WRITE or _BRANCH.fullmatch(op):
            continue
        if ops and re.fullmatch(_REG, ops[0]):
            put(ops[0], None)  # anything else that writes a register: its value is unknown
    return found


# ---- the images --------------------------------------------------------------------------------

@dataclass
class Image:
    board: Board
    build_dir: Path
    elf: Path
    binary: bytes
    syms: dict[str, tuple[int, int]]
    flash_map: dict[int, int]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Image]:
    require_toolchain()
    root = tmp_path_factory.mktemp("nucleo")
    result = {}
    for name in NUCLEOS:
        board = load_board(name)
        art = run_scons(board, "bench", build_dir=root / name, jobs=2)
        binary = art.bin.read_bytes()
        fmap = {board.flash.origin + i: b for i, b in enumerate(binary)}
        result[name] = Image(board, art.build_dir, art.elf, binary, symbols(art.elf), fmap)
    return result


@pytest.mark.parametrize("name", NUCLEOS)
def test_artifacts_exist(images, name):
    img = images[name]
    for f in ("firmware.elf", "firmware.bin", "firmware.hex", "firmware.map",
              "compile_commands.json", "size.json"):
        assert (img.build_dir / f).is_file(), f
    assert "ss_clock_init" in (img.build_dir / "firmware.map").read_text()
    cdb = json.loads((img.build_dir / "compile_commands.json").read_text())
    files = {Path(e["file"]).name: e for e in cdb}
    assert {"ss_clock.c", "ss_board.c", "ss_startup.c", "main.c"} <= set(files)
    cmd = files["ss_clock.c"].get("command") or " ".join(files["ss_clock.c"]["arguments"])
    assert "arm-none-eabi-gcc" in cmd and EXPECT[name].cpu_flag in cmd and "-Werror" in cmd


@pytest.mark.parametrize("name", NUCLEOS)
def test_vector_table_and_memory_layout(images, name):
    img = images[name]
    flash, ram_regions = img.board.flash, [r for r in img.board.memory if r.name != "flash"]
    machine, entry, segs = elf_segments(img.elf)
    assert machine == 40  # EM_ARM

    # Every loadable byte sits in flash; everything that runs from RAM fits a RAM region.
    for s in segs:
        if s.filesz:
            assert flash.origin <= s.paddr and s.paddr + s.filesz <= flash.end, hex(s.paddr)
        assert any(r.origin <= s.vaddr and s.vaddr + s.memsz <= r.end for r in img.board.memory)

    # The BIN is exactly the flash image of the loadable segments, starting at the flash base.
    expected = bytearray(max(s.paddr + s.filesz for s in segs if s.filesz) - flash.origin)
    for s in segs:
        if s.filesz:
            expected[s.paddr - flash.origin:s.paddr - flash.origin + s.filesz] = s.data
    assert img.binary == bytes(expected)
    assert len(img.binary) <= flash.length

    # Vector table at the flash base: initial SP inside RAM, reset handler Thumb and in flash.
    vt_addr, vt_size = img.syms["ss_vectors"]
    assert vt_addr == flash.origin and vt_size >= 16 * 4
    words = struct.unpack_from(f"<{vt_size // 4}I", img.binary, 0)
    sp, reset = words[0], words[1]
    assert any(r.origin < sp <= r.end for r in ram_regions), hex(sp)
    assert sp % 8 == 0
    assert sp == img.syms["__ss_stack_top"][0]
    assert reset & 1 and reset & ~1 == img.syms["ss_reset_handler"][0] and entry | 1 == reset
    assert flash.contains(reset & ~1, 2)
    for i, v in enumerate(words[1:], start=1):
        assert v == 0 or (v & 1 and flash.contains(v & ~1, 2)), f"vector {i} = {v:#x}"


@pytest.mark.parametrize("name", NUCLEOS)
def test_hex_matches_bin(images, name):
    img = images[name]
    mem = read_ihex(img.build_dir / "firmware.hex")
    assert min(mem) == img.board.flash.origin
    assert mem == img.flash_map


@pytest.mark.parametrize("name", NUCLEOS)
def test_clock_init_writes_the_clock_tree(images, name):
    img, exp = images[name], EXPECT[name]
    addr, size = img.syms["ss_clock_init"]
    assert size >= 200, f"ss_clock_init is only {size} bytes"
    funcs = [f for f in img.syms if f.startswith("ss_clock_") and f != "ss_clock_status"
             and img.board.flash.contains(img.syms[f][0])]
    writes = [s for f in funcs for s in stores(img.elf, img.flash_map, f, img.syms)]
    written = {s.addr for s in writes}
    missing = {n: hex(a) for n, a in exp.clock_writes.items() if a not in written}
    assert not missing, f"ss_clock_init never writes {missing}"
    for reg, value in exp.clock_values.items():
        values = {s.value for s in writes if s.addr == reg}
        assert value in values, f"{reg:#x}: expected {value:#x}, written {values}"
    # The status variables the board reports are really written.
    for var in ("ss_clock_hz_actual", "ss_clock_status", "ss_clock_console_hz"):
        assert img.syms[var][0] in written, var


@pytest.mark.parametrize("name", NUCLEOS)
def test_console_brr_matches_the_kernel_clock(images, name):
    img, exp = images[name], EXPECT[name]
    cons = img.board.console
    assert cons["base"] == exp.usart
    assert round(cons["kernel_clock_hz"] / cons["baud"]) == exp.brr
    writes = stores(img.elf, img.flash_map, "ss_board_init", img.syms)
    brr = {s.value for s in writes if s.addr == exp.usart + 0x0C}
    assert brr == {exp.brr}, f"BRR writes {brr}, expected {exp.brr}"
    written = {s.addr for s in writes}
    assert exp.usart_enable in written and exp.gpio_moder in written
    assert exp.usart in written  # CR1 (UE, TE, RE)


@pytest.mark.parametrize("name", NUCLEOS)
def test_noop_rebuild_does_no_work(images, name):
    img = images[name]
    def mtimes() -> dict[Path, int]:  # SCons's own database is rewritten on every run
        return {p: p.stat().st_mtime_ns for p in img.build_dir.rglob("*")
                if p.is_file() and p.name != ".sconsign.dblite"}

    before = mtimes()
    cmd = scons_command(name, "bench", {}, img.build_dir, ["-j2"])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "is up to date" in p.stdout
    assert not re.search(r"^(CC|LINK) ", p.stdout, re.M), p.stdout
    assert mtimes() == before


# ---- bad [clock] data is caught: by the template's compile-time checks, or on load -------------

def _boards_copy(tmp_path: Path, name: str, edit) -> Path:
    d = tmp_path / "boards"
    shutil.copytree(ROOT / "boards", d)
    f = d / f"{name}.toml"
    f.write_text(edit(f.read_text()))
    return d


@pytest.mark.parametrize("name,old,new,message", [
    # 16 MHz / 1 * 11 / 1 = 176 MHz, not the board's 160 MHz.
    ("nucleo_u575", "pll_n = 10", "pll_n = 11", "do not give the board's clock_hz"),
    # 64 MHz PCLK is not the 48 MHz the console claims.
    ("nucleo_g071", "kernel_clock_hz = 64_000_000", "kernel_clock_hz = 48_000_000",
     "console.kernel_clock_hz does not match the pclk"),
    # 3 wait states are too few for a 240 MHz AXI clock.
    ("nucleo_h743", "flash_latency = 4", "flash_latency = 3", "clock.flash_latency is too small"),
])
def test_inconsistent_clock_data_fails_the_build(tmp_path, monkeypatch, name, old, new, message):
    require_toolchain()
    boards = _boards_copy(tmp_path, name, lambda t: t.replace(old, new, 1))
    monkeypatch.setenv("SWEETSPOT_BOARDS", str(boards))
    with pytest.raises(BuildError) as e:
        run_scons(load_board(name, boards), "bench", build_dir=tmp_path / "b", jobs=1)
    assert message in str(e.value)
    assert not (tmp_path / "b" / "firmware.elf").exists()


@pytest.mark.parametrize("old,new,message", [
    ("ppre2 = 1 ", "", "missing key 'ppre2'"),
    ('kernel_clock = "pclk2"', 'kernel_clock = "hclk"', "console.kernel_clock must be one of"),
    ('source = "hsi16_pll"', 'source = "hse_pll"', "clock.source must be 'hsi16_pll'"),
    ('family = "stm32u5"', 'family = "stm32f4"', "clock.family must be one of"),
])
def test_bad_clock_keys_are_refused_on_load(tmp_path, old, new, message):
    boards = _boards_copy(tmp_path, "nucleo_u575", lambda t: t.replace(old, new, 1))
    with pytest.raises(BoardError) as e:
        load_board("nucleo_u575", boards)
    assert message in str(e.value) and "nucleo_u575.toml" in str(e.value)
