"""Board files: all load and validate; bad board data gets a clear error."""

from __future__ import annotations

import json
import tomllib

import pytest

from generator.boards import board_names, default_boards_dir, load_all, load_board, parse_board
from generator.cli import main
from generator.errors import BoardError

NUCLEOS = {"nucleo_g071": ("cortex-m0plus", 64, 36, 128, "qemu_m0"),
           "nucleo_l476": ("cortex-m4", 80, 128, 1024, "qemu_m4"),
           "nucleo_u575": ("cortex-m33", 160, 768, 2048, "qemu_m33"),
           "nucleo_h743": ("cortex-m7", 480, 1024, 2048, "qemu_m7")}
# The research's per-core active power (uW/MHz).
POWER = {"cortex-m0plus": 12.5, "cortex-m0": 12.5, "cortex-m33": 12.0, "cortex-m4": 32.82,
         "cortex-m7": 58.5}


def test_all_boards_load():
    names = board_names()
    assert {"qemu_m0", "qemu_m4", "qemu_m7", "qemu_m33", "host", *NUCLEOS} <= set(names)
    assert len(load_all()) == len(names)


@pytest.mark.parametrize("name", sorted(NUCLEOS))
def test_nucleo_board_facts(name):
    core, mhz, ram_kib, flash_kib, twin = NUCLEOS[name]
    b = load_board(name)
    assert (b.core, b.clock_hz) == (core, mhz * 1_000_000)
    assert b.flash.length == flash_kib * 1024
    # Total SRAM from the datasheet (H7: 1 MiB counted over AXI, SRAM1-3 and DTCM; the rest
    # (ITCM, SRAM4, backup) is not used by sweetspot).
    sram = sum(r.length for r in b.memory if r.name != "flash")
    assert sram <= ram_kib * 1024 and sram >= (ram_kib * 1024) * 0.85
    assert b.twin == twin and load_board(twin).twin_of == name
    assert b.active_uw_per_mhz == POWER[core] == load_board(twin).active_uw_per_mhz
    assert b.pyocd["target"]
    assert b.counter_kind == ("systick" if core == "cortex-m0plus" else "dwt")


def test_twin_ticks_per_instruction():
    b = load_board("qemu_m33")
    # icount shift 10: 1024 ns per instruction at a 20 MHz SysTick clock.
    assert b.counter_ticks_per_instruction() == pytest.approx(1024 * 20e6 / 1e9)


def test_unknown_board_lists_known():
    with pytest.raises(BoardError) as e:
        load_board("nucleo_u57")
    assert "board 'nucleo_u57' is unknown; known: " in str(e.value)
    assert "nucleo_u575" in str(e.value) and "qemu_m33" in str(e.value)


def _data(name="nucleo_u575"):
    return tomllib.loads((default_boards_dir() / f"{name}.toml").read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("clock_hz"), "missing key 'clock_hz'"),
    (lambda d: d.update(clock_hz="fast"), "'clock_hz' must be int"),
    (lambda d: d.update(kind="fpga"), "kind 'fpga' is not one of"),
    (lambda d: d.update(core="cortex-a53"), "core 'cortex-a53'"),
    (lambda d: d["memory"]["ram"].update(origin=0x08000100), "overlap"),
    (lambda d: d["memory"].pop("ram"), "needs a memory.ram region"),
    (lambda d: d.update(core="cortex-m0plus"), "has no DWT cycle counter"),
    (lambda d: d.pop("pyocd"), "missing key 'pyocd'"),
    (lambda d: d.update(active_uw_per_mhz=-1.0), "must be positive"),
])
def test_bad_board_data(mutate, message):
    d = _data()
    mutate(d)
    with pytest.raises(BoardError, match=message):
        parse_board(d, "boards/test.toml")


def test_bad_twin_data():
    d = _data("qemu_m33")
    d["qemu"]["icount_shift"] = 12
    with pytest.raises(BoardError, match="icount_shift must be 0..10"):
        parse_board(d, "boards/qemu_m33.toml")


def test_cli_boards_json(capsys):
    assert main(["boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {b["name"]: b for b in data}
    assert by_name["nucleo_u575"]["twin"] == "qemu_m33"
    assert by_name["qemu_m33"]["qemu_machine"] == "mps2-an505"
    assert by_name["qemu_m0"]["qemu_machine"] == "microbit"
    assert by_name["nucleo_h743"]["pyocd_target"] == "stm32h743xx"


def test_cli_boards_table(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for name in ("nucleo_g071", "nucleo_l476", "nucleo_u575", "nucleo_h743", "qemu_m0"):
        assert name in out
