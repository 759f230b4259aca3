"""The run stage of the TFLM arena loop: build a probe image with a generous arena, run it on
the probe board, record what the interpreter used (:mod:`generator.tflm.arena` reads it).

SConstruct and the CLI call :func:`ensure_measured` before the build is configured, so the emit
stage only reads a recorded figure and the stages stay one-way (emit never runs anything).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from generator.boards import Board
from generator.build import parse_args
from generator.errors import BuildError
from generator.runner import RunRequest, run
from generator.tflm.arena import arena_cache_file, host_recorded, probe_arena_bytes, probe_board
from generator.tflm.tree import TflmTree, cache_root, check_kernels, ensure_tree, locate_checkout


def measure_arena(board: Board, model_path: Path, model_sha: str, tree: TflmTree,
                  options: dict[str, Any], host_total: int) -> dict[str, Any]:
    """Run the probe image on the probe board and return (and cache) what the interpreter used."""
    pboard = probe_board(board)
    cache = arena_cache_file(board, model_sha, tree)
    if cache.is_file():
        try:
            return dict(json.loads(cache.read_text()))
        except (OSError, ValueError):
            pass
    probe = probe_arena_bytes(host_total, pboard)
    opts = {k: v for k, v in options.items() if k in ("model", "tflm_root", "tflm_kernels")}
    opts.update({"tflm_arena": str(probe), "tflm_probe": "1"})
    bdir = cache_root() / "probe" / f"{pboard.name}-{tree.kernels}"
    doc = run(RunRequest(board=pboard.name, app="tflm", options=opts, build_dir=bdir,
                         timeout=600.0))
    used = doc.get("metrics", {}).get("arena_used_bytes")
    if not isinstance(used, int) or used <= 0:
        raise BuildError(f"the TFLM arena probe on {pboard.name} reported no arena_used_bytes")
    result = {"used": used, "probe_board": pboard.name, "probe_arena": probe,
              "tree": tree.key, "model_sha256": model_sha}
    cache.parent.mkdir(parents=True, exist_ok=True)
    part = cache.with_name(cache.name + f".{os.getpid()}.part")
    part.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(part, cache)
    return result


def ensure_measured(args: dict[str, str]) -> None:
    """Before a build (``scons`` arguments): a TFLM build with ``tflm_arena=auto`` (the default)
    needs its arena measured on the probe board; measure it now unless it is recorded."""
    board, app_name, options, _ = parse_args(args)
    if app_name != "tflm" or str(options.get("tflm_arena", "auto")) != "auto":
        return
    path = Path(str(options.get("model", ""))).expanduser().resolve()
    if not path.is_file():
        return  # the emitter names the missing model
    kernels = str(options.get("tflm_kernels", "reference"))
    check_kernels(board, kernels)
    tree = ensure_tree(locate_checkout(options), kernels)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if arena_cache_file(board, sha, tree).is_file():
        return
    measure_arena(board, path, sha, tree, options, host_recorded(path)["total"])
