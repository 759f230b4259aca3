"""The TFLM backend: the user's own tflite-micro checkout → a cached source tree → a static
library compiled through SCons with the project's toolchain flags.

Nothing from tflite-micro lives in this repository. The pieces, in data-path order:

* :func:`locate_checkout` finds the checkout (``tflm_root=`` / ``--tflm-root`` or the environment
  variable ``SWEETSPOT_TFLM_ROOT``) and :func:`check_downloads` checks the third-party downloads its
  tree generator needs; both fail with :data:`HOW_TO_GET_A_CHECKOUT`.
* :func:`ensure_tree` runs the checkout's ``create_tflm_tree.py`` (reference kernels, or
  ``OPTIMIZED_KERNEL_DIR=cmsis_nn``) once into ``<cache>/trees/<key>``; the key is the checkout's
  commit (plus a hash of any local changes) and the options.
* :func:`scons_objects` (called by ``generator/build.py`` for a TFLM tree) compiles the library
  sources, including the CMSIS-NN C sources that the tree's own Makefile forgets, into
  ``libtflm.a`` and the generated C++ glue into objects. Library objects go through an SCons
  ``CacheDir`` (``<cache>/scons``) whose signature leaves out the object path, so every build
  directory after the first retrieves them instead of compiling ~160 C++ files again (a
  ``CacheDir`` class whose signature leaves the object path out).
* :func:`arena_size` closes the loop on the arena: a probe image with a generous arena runs on the
  board's emulated twin (or the host), reports ``interpreter.arena_used_bytes()``, and the real
  image gets that plus :data:`ARENA_MARGIN`. Measurements are cached per model, tree and core.

The cache root is ``$SWEETSPOT_TFLM_CACHE`` or ``~/.cache/sweetspot/tflm``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .boards import Board, load_board
from .errors import AppError, BuildError, FitError, ToolchainError

ENV_ROOT = "SWEETSPOT_TFLM_ROOT"
ENV_CACHE = "SWEETSPOT_TFLM_CACHE"
BACKENDS = ("generated", "tflm")
KERNELS = ("reference", "cmsis_nn")
CMSIS_NN_CORES = ("cortex-m4", "cortex-m7", "cortex-m33")
TREE_FORMAT = 1  # bump when the way trees are generated changes
TREE_GENERATOR = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"
MAKE_DIR = "tensorflow/lite/micro/tools/make"
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
TREE_TIMEOUT_S = 900
GIT_TIMEOUT_S = 60

#: downloads (under ``tensorflow/lite/micro/tools/make/downloads``) per kernel choice
REQUIRED_DOWNLOADS = {
    "reference": ("flatbuffers", "gemmlowp", "ruy", "kissfft", "pigweed"),
    "cmsis_nn": ("flatbuffers", "gemmlowp", "ruy", "kissfft", "pigweed", "cmsis", "cmsis_nn"),
}

#: the closed-loop arena margin: measured bytes + 5 % (at least 256 B, for temporary tensors a
#: kernel may allocate during Invoke), rounded up to 16 B
ARENA_MARGIN_FRACTION = 0.05
ARENA_MARGIN_MIN = 256
ARENA_MARGIN = "5 % of the measured bytes, at least 256 B, rounded up to 16 B"
ARENA_ALIGN = 16
#: RAM a probe image keeps free for .data/.bss and the inputs, besides the stack
PROBE_RESERVE = 8 * 1024

DOWNLOAD_COMMAND = (
    "make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads "
    "TARGET=cortex_m_generic TARGET_ARCH=cortex-m33 OPTIMIZED_KERNEL_DIR=cmsis_nn "
    "TARGET_TOOLCHAIN_ROOT=/usr/bin/"
)

HOW_TO_GET_A_CHECKOUT = f"""\
The TFLM backend builds TensorFlow Lite Micro from your own tflite-micro checkout:
  1. git clone https://github.com/tensorflow/tflite-micro.git ~/tflite-micro
  2. fetch its third-party downloads once (needs the internet; pigweed, flatbuffers, gemmlowp,
     ruy, kissfft, and for CMSIS-NN cmsis and cmsis_nn, into {DOWNLOADS}/):
       cd ~/tflite-micro && {DOWNLOAD_COMMAND}
  3. point sweetspot at it: --tflm-root ~/tflite-micro (CLI), tflm_root=~/tflite-micro (scons),
     or export {ENV_ROOT}=~/tflite-micro
The tree generator also needs numpy and pillow in this Python environment (pip install pillow),
and the TFLM library is C++: arm-none-eabi-g++ needs the C++ headers
(sudo apt-get install -y --no-install-recommends libstdc++-arm-none-eabi-dev; only the headers,
no libstdc++ is linked)."""


class TflmSetupError(ToolchainError):
    """No usable tflite-micro checkout (or its downloads, or the C++ headers)."""


# ---- locating the checkout -----------------------------------------------------------------

def cache_root() -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "sweetspot" / "tflm"


def locate_checkout(options: dict[str, Any] | None = None) -> Path:
    """The tflite-micro checkout from ``options['tflm_root']`` or ``$SWEETSPOT_TFLM_ROOT``."""
    given = (options or {}).get("tflm_root") or os.environ.get(ENV_ROOT)
    if not given:
        raise TflmSetupError("backend tflm needs a tflite-micro checkout, and none is "
                             f"configured.\n{HOW_TO_GET_A_CHECKOUT}")
    root = Path(str(given)).expanduser().resolve()
    if not root.is_dir():
        raise TflmSetupError(f"the tflite-micro checkout '{root}' does not exist.\n"
                             f"{HOW_TO_GET_A_CHECKOUT}")
    if not (root / TREE_GENERATOR).is_file():
        raise TflmSetupError(f"'{root}' is not a tflite-micro checkout (it has no "
                             f"{TREE_GENERATOR}).\n{HOW_TO_GET_A_CHECKOUT}")
    return root


def missing_downloads(root: Path, kernels: str) -> list[str]:
    return [name for name in REQUIRED_DOWNLOADS[kernels] if not (root / DOWNLOADS / name).is_dir()]


def check_downloads(root: Path, kernels: str) -> None:
    """The tree generator would try to download what is missing (and hang offline): fail first."""
    missing = missing_downloads(root, kernels)
    if missing:
        raise TflmSetupError(
            f"the tflite-micro checkout '{root}' lacks the third-party downloads "
            f"{', '.join(missing)} (in {DOWNLOADS}/) that a {kernels} tree needs; fetch them "
            f"once with:\n  cd {root} && {DOWNLOAD_COMMAND}\n{HOW_TO_GET_A_CHECKOUT}")


def check_tree_generator_python() -> None:
    missing = [m for m in ("numpy", "PIL") if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join("pillow" if m == "PIL" else m for m in missing)
        raise TflmSetupError(
            f"the tflite-micro tree generator needs {names} in this Python environment "
            f"({sys.executable}); install with: {sys.executable} -m pip install {names}")


def check_kernels(board: Board, kernels: str) -> None:
    if kernels not in KERNELS:
        raise AppError(f"tflm_kernels={kernels} is unknown; known: {', '.join(KERNELS)}")
    if kernels == "cmsis_nn" and board.core not in CMSIS_NN_CORES:
        raise AppError(
            f"tflm_kernels=cmsis_nn is for Cortex-M4/M7/M33 boards; board '{board.name}' is a "
            f"{board.core}: use tflm_kernels=reference")


def _git(root: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        proc = subprocess.run([git, "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None
    return proc.stdout if proc.returncode == 0 else None


def checkout_identity(root: Path) -> dict[str, str]:
    """``commit`` (git HEAD, or a fingerprint of the files for a non-git copy) and ``changes``
    (a hash of uncommitted changes to tracked files; empty when clean)."""
    head = _git(root, "rev-parse", "HEAD")
    if head:
        diff = _git(root, "diff", "HEAD", "--no-ext-diff") or ""
        changes = hashlib.sha256(diff.encode()).hexdigest()[:16] if diff else ""
        return {"commit": head.strip(), "changes": changes}
    h = hashlib.sha256()
    for p in sorted((root / "tensorflow" / "lite" / "micro").rglob("*")):
        if p.is_file() and "downloads" not in p.parts and "gen" not in p.parts:
            st = p.stat()
            h.update(f"{p.relative_to(root)}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return {"commit": "files-" + h.hexdigest()[:20], "changes": ""}


# ---- the tree --------------------------------------------------------------------------------

STAMP = "sweetspot-tree.json"


@dataclass(frozen=True)
class TflmTree:
    """A generated TFLM source tree in the cache."""

    path: Path
    key: str
    kernels: str
    commit: str
    changes: str

    def library_sources(self) -> list[str]:
        """Sources of the TFLM library (relative, sorted): the C++ of tensorflow/ without the
        cortex_m_generic port (the glue provides DebugLog and the timer) and, for CMSIS-NN, the
        C sources the tree's Makefile leaves out. signal/ and kissfft are not needed."""
        out = []
        for p in sorted((self.path / "tensorflow").rglob("*.cc")):
            rel = p.relative_to(self.path).as_posix()
            if "/cortex_m_generic/" in rel or rel.endswith("_test.cc"):
                continue
            out.append(rel)
        if self.kernels == "cmsis_nn":
            src = self.path / "third_party" / "cmsis_nn" / "Source"
            out += [p.relative_to(self.path).as_posix() for p in sorted(src.rglob("*.c"))]
        return out

    def include_dirs(self) -> list[Path]:
        tp = self.path / "third_party"
        dirs = [self.path, tp / "gemmlowp", tp / "flatbuffers" / "include", tp / "ruy",
                tp / "kissfft"]
        if self.kernels == "cmsis_nn":
            dirs += [tp / "cmsis", tp / "cmsis_nn", tp / "cmsis" / "CMSIS" / "Core" / "Include",
                     tp / "cmsis_nn" / "Include"]
        return dirs

    def defines(self) -> list[str]:
        d = ["TF_LITE_STATIC_MEMORY", "TF_LITE_DISABLE_X86_NEON", "TF_LITE_MCU_DEBUG_LOG",
             "KERNELS_OPTIMIZED_FOR_SPEED"]
        if self.kernels == "cmsis_nn":
            d += ["CMSIS_NN", "ARM_NN_ENABLE_F16=0", "ARM_NN_ENABLE_F32=0"]
        return d

    def resolver_methods(self) -> set[str]:
        """``Add<Op>`` methods of this checkout's MicroMutableOpResolver."""
        header = self.path / "tensorflow/lite/micro/micro_mutable_op_resolver.h"
        text = header.read_text(encoding="utf-8", errors="replace")
        return set(re.findall(r"TfLiteStatus\s+(Add[A-Za-z0-9]+)\s*\(", text))

    def describe(self) -> dict[str, str]:
        return {"key": self.key, "kernels": self.kernels, "commit": self.commit,
                "changes": self.changes, "path": str(self.path)}


def tree_key(identity: dict[str, str], kernels: str) -> str:
    text = json.dumps({"format": TREE_FORMAT, "kernels": kernels, "target": "cortex_m_generic",
                       **identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _python_path_env() -> dict[str, str]:
    """The tree generator's Makefile runs ``python3`` from PATH: make that this interpreter (and
    so this environment's numpy and pillow)."""
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    if (bindir / "python3").exists():
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
        return env
    shim = cache_root() / "python-shim"
    shim.mkdir(parents=True, exist_ok=True)
    script = shim / "python3"
    text = f'#!/bin/sh\nexec "{sys.executable}" "$@"\n'
    if not script.is_file() or script.read_text() != text:
        script.write_text(text)
        script.chmod(0o755)
    env["PATH"] = f"{shim}{os.pathsep}{env.get('PATH', '')}"
    return env


def _toolchain_root() -> str:
    gcc = shutil.which("arm-none-eabi-gcc")
    # The tree generator never compiles; a non-default root only keeps it from downloading a GCC.
    return (str(Path(gcc).parent) if gcc else "/usr/bin") + "/"


def ensure_tree(root: Path, kernels: str, *, timeout: float = TREE_TIMEOUT_S) -> TflmTree:
    """The cached tree for (checkout, kernels), generated on first use."""
    if kernels not in KERNELS:
        raise AppError(f"tflm_kernels={kernels} is unknown; known: {', '.join(KERNELS)}")
    ident = checkout_identity(root)
    key = tree_key(ident, kernels)
    trees = cache_root() / "trees"
    dest = trees / key
    tree = TflmTree(dest, key, kernels, ident["commit"], ident["changes"])
    if (dest / STAMP).is_file():
        return tree
    check_downloads(root, kernels)
    check_tree_generator_python()
    make_opts = ["TARGET=cortex_m_generic", "TARGET_ARCH=cortex-m33",
                 f"TARGET_TOOLCHAIN_ROOT={_toolchain_root()}"]
    if kernels == "cmsis_nn":
        make_opts.append("OPTIMIZED_KERNEL_DIR=cmsis_nn")
    trees.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=trees, prefix=f".{key}-"))
    try:
        out = tmp / "tree"
        cmd = [sys.executable, str(root / TREE_GENERATOR), str(out),
               f"--makefile_options={' '.join(make_opts)}"]
        try:
            proc = subprocess.run(cmd, cwd=root, env=_python_path_env(), capture_output=True,
                                  text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise BuildError(f"create_tflm_tree.py in '{root}' did not finish within "
                             f"{timeout:.0f} s") from None
        if proc.returncode != 0 or not (out / "tensorflow").is_dir():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise BuildError(
                f"create_tflm_tree.py ({kernels}) failed in '{root}' (exit status "
                f"{proc.returncode}):\n{tail}\nCheck the checkout and its downloads; "
                f"see: {DOWNLOAD_COMMAND}")
        (out / STAMP).write_text(json.dumps({"checkout": str(root), "key": key,
                                             "kernels": kernels, **ident,
                                             "make_options": make_opts}, indent=2) + "\n")
        try:
            os.replace(out, dest)
        except OSError:
            if not (dest / STAMP).is_file():  # not another process that got there first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


def tree_from_manifest(info: dict[str, Any]) -> TflmTree:
    t = info["tree"]
    return TflmTree(Path(t["path"]), t["key"], t["kernels"], t["commit"], t["changes"])


# ---- operators ---------------------------------------------------------------------------------

#: opcode → resolver method where the CamelCase rule does not give it
_METHOD_EXCEPTIONS = {
    "BATCH_MATMUL": "AddBatchMatMul",
    "CUMSUM": "AddCumSum",
    "PADV2": "AddPadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "L2_POOL_2D": "AddL2Pool2D",
}


def resolver_method(opcode: str) -> str:
    """``CONV_2D`` → ``AddConv2D``, ``DEPTHWISE_CONV_2D`` → ``AddDepthwiseConv2D``, ..."""
    if opcode in _METHOD_EXCEPTIONS:
        return _METHOD_EXCEPTIONS[opcode]
    return "Add" + "".join(part if part[:1].isdigit() else part[:1] + part[1:].lower()
                           for part in opcode.split("_"))


def resolver_calls(opcodes: list[str], tree: TflmTree) -> list[str]:
    """One ``Add<Op>`` per distinct operator of the model (sorted), checked against the tree."""
    known = tree.resolver_methods()
    calls = []
    for op in sorted(set(opcodes)):
        m = resolver_method(op)
        if m not in known:
            raise AppError(f"operator {op} has no MicroMutableOpResolver::{m} in the tflite-micro "
                           f"checkout (commit {tree.commit[:12]}); update the checkout")
        calls.append(m)
    return calls


# ---- arena: the closed loop ------------------------------------------------------------------

def arena_with_margin(measured: int) -> int:
    margin = max(ARENA_MARGIN_MIN, math.ceil(measured * ARENA_MARGIN_FRACTION))
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
    from .emit.firmware import stack_bytes

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


def _host_recorded(model_path: Path) -> dict[str, int]:
    from .plan import tflm_arena

    a = tflm_arena(model_path)
    return {"total": a.total, "head": a.head, "tail": a.tail}


def measure_arena(board: Board, model_path: Path, model_sha: str, tree: TflmTree,
                  options: dict[str, Any], host_total: int) -> dict[str, Any]:
    """Run the probe image on the probe board and return (and cache) what the interpreter used."""
    pboard = probe_board(board)
    key = arena_key(model_sha, tree, pboard)
    cache = cache_root() / "arena" / f"{key}.json"
    if cache.is_file():
        try:
            return dict(json.loads(cache.read_text()))
        except (OSError, ValueError):
            pass
    from .runner import RunRequest, run  # late: runner imports build, which imports us

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


def arena_size(board: Board, model_path: Path, model_sha: str, tree: TflmTree,
               options: dict[str, Any]) -> ArenaChoice:
    """The arena the image reserves. ``tflm_arena``: ``auto`` (default; measured on the probe
    board + margin), ``host`` (the wheel's recording allocator on this host + margin: no target
    run, but 64-bit structs and no CMSIS-NN scratch), or a byte count."""
    mode = str(options.get("tflm_arena", "auto"))
    host = _host_recorded(model_path)
    if mode.isdigit():
        n = int(mode)
        if n < 64:
            raise AppError(f"tflm_arena={n} is too small to be an arena")
        return ArenaChoice(-(-n // ARENA_ALIGN) * ARENA_ALIGN, "given", None, None, None, host)
    if mode == "host":
        return ArenaChoice(arena_with_margin(host["total"]), "host", None, None, None, host)
    if mode != "auto":
        raise AppError(f"tflm_arena={mode} is not 'auto', 'host' or a number of bytes")
    m = measure_arena(board, model_path, model_sha, tree, options, host["total"])
    return ArenaChoice(arena_with_margin(int(m["used"])), "measured", int(m["used"]),
                       str(m["probe_board"]), int(m["probe_arena"]), host)


# ---- choosing the backend ------------------------------------------------------------------------

def backend_of(options: dict[str, Any]) -> str:
    backend = str(options.get("backend", "generated"))
    if backend not in BACKENDS:
        raise AppError(f"backend={backend} is unknown; known: {', '.join(BACKENDS)}")
    return backend


def resolve_app(app_name: str, options: dict[str, Any]) -> str:
    """``app=infer backend=tflm`` is the ``tflm`` app (the same inputs, reports and manifest as
    ``infer``, with TFLM's interpreter instead of the generated per-layer code)."""
    backend = backend_of(options)
    if backend == "tflm" and app_name in ("infer", "tflm"):
        return "tflm"
    if backend == "tflm":
        raise AppError(f"backend=tflm runs a model; use it with app=infer, not app={app_name}")
    return app_name


def preflight(app_name: str, options: dict[str, Any]) -> None:
    """Checks before SCons starts, so the full how-to message reaches the user (SCons errors
    travel as one line)."""
    if resolve_app(app_name, options) != "tflm":
        return
    root = locate_checkout(options)
    kernels = str(options.get("tflm_kernels", "reference"))
    if kernels not in KERNELS:
        raise AppError(f"tflm_kernels={kernels} is unknown; known: {', '.join(KERNELS)}")
    check_downloads(root, kernels)


def default_build_name(app_name: str, options: dict[str, Any]) -> str:
    """``build/<board>/<this>``: TFLM builds apart from the generated backend's."""
    if resolve_app(app_name, options) == "tflm":
        return f"tflm-{options.get('tflm_kernels', 'reference')}"
    return app_name


# ---- SCons -------------------------------------------------------------------------------------

_CXX_COMMON = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
               "-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
               "-fdata-sections", "-fmessage-length=0"]


def check_cxx(board: Board) -> str:
    """The C++ compiler for the board, with a standard-library header set."""
    from .build import which_tool

    cxx = which_tool("g++" if board.is_host else "arm-none-eabi-g++")
    if board.is_host:
        return cxx
    probe = subprocess.run([cxx, *board.cflags(), "-x", "c++", "-fsyntax-only", "-"],
                           input="#include <new>\n#include <cstdint>\n#include <algorithm>\n",
                           capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        raise TflmSetupError(
            "arm-none-eabi-g++ has no C++ standard headers (<new>, <cstdint>, ...); install "
            "them (headers only, about 17 MB): sudo apt-get install -y --no-install-recommends "
            f"libstdc++-arm-none-eabi-dev\n{probe.stderr.strip()[:500]}")
    return cxx


def _path_free_cache_class() -> type:
    """An SCons ``CacheDir`` class whose signature leaves out the target's path (SCons adds it
    so that several targets of one action differ; a TFLM object is the only target of its
    compile). With ``$( $TARGET $)`` in the command, an object compiled in one build directory
    is retrieved in every other one instead of being compiled again."""
    import SCons.CacheDir
    from SCons.Util import hash_collect

    class PathFreeCacheDir(SCons.CacheDir.CacheDir):  # type: ignore[misc]
        def cachepath(self, node: Any) -> tuple[str | None, str | None]:
            if not self.is_enabled():
                return None, None
            sigs = [n.get_cachedir_csig() for n in node.children()]
            sigs.append(node.get_contents_sig())
            sig = hash_collect(sigs)
            subdir = sig[: self.config["prefix_len"]].upper()
            cachedir = os.path.join(self.path, subdir)
            return cachedir, os.path.join(cachedir, sig)

    return PathFreeCacheDir


def scons_objects(env: Any, board: Board, src: Path, build_dir: Path, opt: str,
                  info: dict[str, Any], verbose: bool) -> list[Any]:
    """Declare the TFLM library and the generated C++ glue for ``env``; returns the nodes to link
    (glue objects, then ``libtflm.a``). Adjusts ``env`` for C++ linking on the host."""
    tree = tree_from_manifest(info)
    if not tree.path.is_dir():
        raise BuildError(f"the TFLM tree {tree.path} is gone; build again to regenerate it")
    cxx = check_cxx(board)
    arch = board.cflags()
    defines = [f"-D{d}" for d in tree.defines()]
    if board.is_host:
        cc = env["CC"]
        env.Replace(LINK=cxx)  # the host links libstdc++; targets link with gcc and need none
        base = ["-fPIC"]
    else:
        cc = env["CC"]
        base = arch + ["-fno-common"]
    lenv = env.Clone()
    lenv.Replace(
        CXX=cxx, CC=cc,
        CXXFLAGS=[], CFLAGS=[], CPPPATH=[str(d) for d in tree.include_dirs()],
        CCFLAGS=base + [f"-{opt}", "-w", "-ffunction-sections", "-fdata-sections"] + defines,
    )
    # The signature must not contain the object's path: then every build directory shares the
    # compiled library through the cache instead of compiling it again.
    lenv["CXXCOM"] = "$CXX -o $( $TARGET $) -c $CXXFLAGS $CCFLAGS $_CCCOMCOM $SOURCES"
    lenv["CCCOM"] = "$CC -o $( $TARGET $) -c $CFLAGS $CCFLAGS $_CCCOMCOM $SOURCES"
    lenv.Append(CXXFLAGS=_CXX_COMMON, CFLAGS=["-std=c11"])
    lenv.CacheDir(str(cache_root() / "scons"), _path_free_cache_class())
    if not verbose:
        lenv["CXXCOMSTR"] = "CXX(tflm) $TARGET"
        lenv["CCCOMSTR"] = "CC(tflm) $TARGET"
    lib_objs = []
    for rel in tree.library_sources():
        obj = build_dir / "tflm" / "obj" / (rel + ".o")
        lib_objs.append(lenv.Object(str(obj), str(tree.path / rel)))
    aenv = env.Clone()  # the archive lists per-build paths: not worth caching
    if not verbose:
        aenv["ARCOMSTR"] = "AR $TARGET"
        aenv["RANLIBCOMSTR"] = "RANLIB $TARGET"
    lib = aenv.StaticLibrary(str(build_dir / "tflm" / "libtflm.a"), lib_objs)

    genv = env.Clone()
    genv.Replace(CXX=cxx)
    genv["CXXFLAGS"] = _CXX_COMMON + ["-Wall", "-Wextra", "-Werror"]
    genv["CCFLAGS"] = [f for f in env["CCFLAGS"] if f not in ("-std=c11",)] + defines
    genv.Append(CCFLAGS=[f"-isystem{d}" for d in tree.include_dirs()])
    if not verbose:
        genv["CXXCOMSTR"] = "CXX $TARGET"
    glue = []
    for p in sorted(src.rglob("*.cc")):
        rel = p.relative_to(src)
        glue.append(genv.Object(str(build_dir / "obj" / rel.with_suffix(".o")), str(p)))
    return glue + [lib]


def check_no_constructors(elf: Path) -> str | None:
    """The startup code runs no C++ static constructors: an image that has any is wrong."""
    from .build import read_sections

    for s in read_sections(elf):
        if s.name in (".init_array", ".preinit_array", ".ctors") and s.size:
            return f"{s.name} is not empty ({s.size} B): static constructors would never run"
    return None
