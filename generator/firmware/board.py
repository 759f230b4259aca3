"""The board part of every firmware tree: startup, linker script, console, counter, protocol."""

from __future__ import annotations

import re
from typing import Any

from generator.boards import Board
from generator.errors import BoardError

PROTO_VERSION = 1
PROTO_CHUNK = 64  # bytes of vector data per VEC frame

_V6M = ("cortex-m0", "cortex-m0plus")


def system_handlers(board: Board) -> list[str]:
    """Vector table entries 4..15 (after SP, reset, NMI, HardFault); '0' marks a reserved slot."""
    if board.core in _V6M:
        return ["0"] * 7 + ["ss_svc_handler", "0", "0", "ss_pendsv_handler", "ss_systick_handler"]
    # MemManage, BusFault, UsageFault (and SecureFault on v8-M) report like a HardFault.
    secure = "ss_hardfault_handler" if board.core == "cortex-m33" else "0"
    return [
        "ss_hardfault_handler", "ss_hardfault_handler", "ss_hardfault_handler", secure,
        "0", "0", "0", "ss_svc_handler", "0", "0", "ss_pendsv_handler", "ss_systick_handler",
    ]


def _pin_number(pin: str, board: Board) -> int:
    m = re.fullmatch(r"P([A-K])(\d{1,2})", pin)
    if not m or int(m.group(2)) > 15:
        raise BoardError(f"board '{board.name}': console pin '{pin}' is not of the form PA0..PK15")
    return int(m.group(2))


# ---- external interrupts -------------------------------------------------------------------
# Every external IRQ slot of the vector table holds a weak alias ``ss_irq<N>_handler`` of the
# default handler (which reports "unexpected_irq"). An app claims IRQ N simply by defining
# ``void ss_irq<N>_handler(void)`` (e.g. the stream app's sample timer); nothing else changes.
# Enough slots for every interrupt sweetspot uses: ARMv6-M has at most 32; the others get 64
# (STM32 TIM6 is IRQ 54 on the L476/H743, 49 on the U575; the twins' timers are IRQ 3 or 8).
_V6M_IRQS = 32
_DEFAULT_IRQS = 64


def irq_count(board: Board) -> int:
    if board.is_host:
        return 0
    default = _V6M_IRQS if board.core in _V6M else _DEFAULT_IRQS
    return max(default, int(board.console.get("irq_count", 0)))


def stack_bytes(board: Board) -> int:
    ram = board.ram.length
    return 2048 if ram <= 64 * 1024 else 8192


def firmware_context(board: Board) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "counter_kind": board.counter_kind,
        "counter_hz": int(board.counter.get("systick_hz", board.clock_hz))
        if board.counter_kind == "systick" and board.kind == "qemu"
        else (board.clock_hz if board.counter_kind != "none" else 0),
        "proto_version": PROTO_VERSION,
        "proto_chunk": PROTO_CHUNK,
    }
    if board.is_host:
        return ctx
    console = board.console
    ctx.update(
        console=console,
        system_handlers=system_handlers(board),
        irq_count=irq_count(board),
        stack_bytes=stack_bytes(board),
        stack_region="ram",
        noinit_region="ram",
    )
    if console["kind"] == "stm32_usart_v2":
        ctx["console_pins"] = sorted(
            {_pin_number(console["tx_pin"], board), _pin_number(console["rx_pin"], board)}
        )
        ctx["console_brr"] = (console["kernel_clock_hz"] + console["baud"] // 2) // console["baud"]
    return ctx


def clock_template(board: Board) -> str:
    if board.kind != "nucleo":
        return "firmware/clock/fixed.c.j2"
    family = board.clock.get("family")
    if not family:
        raise BoardError(f"board '{board.name}': clock.family is missing")
    return f"firmware/clock/{family}.c.j2"


def firmware_files(board: Board) -> list[tuple[str, str, dict[str, Any]]]:
    """(template, output file, context) for the board part of the tree."""
    ctx = firmware_context(board)
    files = [
        ("firmware/ss_board.h.j2", "ss_board.h", ctx),
        ("firmware/ss_proto.h.j2", "ss_proto.h", ctx),
        ("firmware/ss_proto.c.j2", "ss_proto.c", ctx),
    ]
    if board.is_host:
        files.append(("firmware/ss_board_host.c.j2", "ss_board_host.c", ctx))
        return files
    files += [
        ("firmware/ss_cmsis.h.j2", "ss_cmsis.h", ctx),
        ("firmware/ss_startup.c.j2", "ss_startup.c", ctx),
        ("firmware/ss_board.c.j2", "ss_board.c", ctx),
        (clock_template(board), "ss_clock.c", ctx),
        ("firmware/linker.ld.j2", "linker.ld", ctx),
    ]
    return files
