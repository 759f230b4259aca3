"""The TFLM arena: how many bytes the image reserves for the interpreter.

``tflm_arena=auto`` (the default) is a closed loop: a probe image with a generous arena runs on
the probe board (the board's twin) and reports what the interpreter used; the real image gets
that plus a margin. The run is the run stage's (:mod:`generator.tflm.probe`); this module only
reads what it recorded, so the emit stage never builds or runs anything.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.boards import Board, load_board
from generator.compiler.plan import tflm_arena
from generator.errors import AppError, BuildError, FitError
from generator.firmware.board import stack_bytes
from generator.tflm.tree import (
    ARENA_ALIGN,
    ARENA_MARGIN,
    ARENA_MARGIN_FRACTION,
    ARENA_MARGIN_MIN,
    ARENA_PER_TENSOR,
    PROBE_RESERVE,
    TflmTree,
    cache_root,
)

# ---- the arena ------------------------------------------------------------------

def arena_with_margin(measured: int, tensors: int = 0) -> int:
    """The measured bytes plus the margin. ``tensors`` (the model's tensor count) sets a floor:
    while it plans, TFLM's allocator borrows per-tensor records from the arena that the
    measured (after-allocation) figure no longer shows; a 5-tensor MLP measured at 740 B failed
    with 'Too many buffers' at 1,392 B on the host."""
    margin = max(ARENA_MARGIN_MIN, math.ceil(measured * ARENA_MARGIN_FRACTION),
                 ARENA_PER_TENSOR * tensors)
    return -(-(measured + margin) // ARENA_ALIGN) * ARENA_ALIGN


def probe_board(board: Board) -> Board:
    """Where the arena is measured: the board itself (QEMU twin, host) or a Nucleo's twin."""
    if board.kind == "nucleo":
        if not board.twin:
            raise BuildError(f"board '{board.name}' has no emulated twin to measure the TFLM "
                             "arena on; give tflm_arena=<bytes> or tflm_arena=host")
        return load_board(board.twin)
    return board


def arena_key(model_sha: str, tree: TflmTree, board: Board) -> str:
    text = json.dumps({"model": model_sha, "tree": tree.key, "board": board.name,
                       "core": board.core, "cflags": board.cflags()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def probe_arena_bytes(host_estimate: int, board: Board) -> int:
    """A generous arena for the measuring run: twice the host figure (64-bit structs already
    overestimate a 32-bit target) plus 16 KiB, within the board's RAM."""
    want = 2 * host_estimate + 16 * 1024
    if board.is_host:
        return -(-want // ARENA_ALIGN) * ARENA_ALIGN
    room = board.ram.length - stack_bytes(board) - PROBE_RESERVE
    if room < host_estimate:
        raise FitError(f"board '{board.name}' has {board.ram.length:,} B of RAM; the model's TFLM "
                       f"arena needs about {host_estimate:,} B (host figure)")
    return min(want, room) // ARENA_ALIGN * ARENA_ALIGN


@dataclass(frozen=True)
class ArenaChoice:
    bytes: int  # what the image reserves
    source: str  # "measured" (closed loop), "host" (recording allocator on the host), "given"
    measured: int | None  # arena_used_bytes() on the probe board
    probe_board: str | None
    probe_arena: int | None
    host_recorded: dict[str, int]  # the tflite-micro wheel's figures (64-bit host)

    def describe(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "source": self.source, "measured_used": self.measured,
                "probe_board": self.probe_board, "probe_arena": self.probe_arena,
                "margin": ARENA_MARGIN if self.source != "given" else None,
                "host_recorded": self.host_recorded}


def host_recorded(model_path: Path) -> dict[str, int]:
    a = tflm_arena(model_path)
    return {"total": a.total, "head": a.head, "tail": a.tail}


def arena_cache_file(board: Board, model_sha: str, tree: TflmTree) -> Path:
    return cache_root() / "arena" / f"{arena_key(model_sha, tree, probe_board(board))}.json"


def measured_arena(board: Board, model_sha: str, tree: TflmTree) -> dict[str, Any]:
    """What the probe run (:mod:`generator.tflm.probe`, the run stage) recorded for this model,
    tree and probe board. The emitter never runs anything itself: SConstruct and the CLI
    measure first (:func:`generator.tflm.probe.ensure_measured`)."""
    cache = arena_cache_file(board, model_sha, tree)
    try:
        return dict(json.loads(cache.read_text()))
    except (OSError, ValueError):
        raise BuildError(f"the TFLM arena of this model on {probe_board(board).name} has not been "
                         "measured yet; build through scons or sweetspot (they measure it "
                         "first), or give tflm_arena=host or tflm_arena=<bytes>") from None


def arena_size(board: Board, model_path: Path, model_sha: str, tree: TflmTree,
               options: dict[str, Any], tensors: int = 0) -> ArenaChoice:
    """The arena the image reserves. ``tflm_arena``: ``auto`` (default; measured on the probe
    board + margin), ``host`` (the wheel's recording allocator on this host + margin: no target
    run, but 64-bit structs and no CMSIS-NN scratch), or a byte count."""
    mode = str(options.get("tflm_arena", "auto"))
    host = host_recorded(model_path)
    if mode.isdigit():
        n = int(mode)
        if n < 64:
            raise AppError(f"tflm_arena={n} is too small to be an arena")
        return ArenaChoice(-(-n // ARENA_ALIGN) * ARENA_ALIGN, "given", None, None, None, host)
    if mode == "host":
        return ArenaChoice(arena_with_margin(host["total"], tensors), "host", None, None, None,
                           host)
    if mode != "auto":
        raise AppError(f"tflm_arena={mode} is not 'auto', 'host' or a number of bytes")
    m = measured_arena(board, model_sha, tree)
    return ArenaChoice(arena_with_margin(int(m["used"]), tensors), "measured", int(m["used"]),
                       str(m["probe_board"]), int(m["probe_arena"]), host)
