"""The TFLM backend: the user's own tflite-micro checkout → a cached source tree → a static
library compiled through SCons with the project's toolchain flags.

Nothing from tflite-micro lives in this repository. The pieces, in data-path order:

* :func:`locate_checkout` finds the checkout (``tflm_root=`` / ``--tflm-root`` or the environment
  variable ``SWEETSPOT_TFLM_ROOT``) and :func:`check_downloads` checks the third-party downloads its
  tree generator needs; both fail with :data:`HOW_TO_GET_A_CHECKOUT`.
* :func:`ensure_tree` runs the checkout's ``create_tflm_tree.py`` (reference kernels, or
  ``OPTIMIZED_KERNEL_DIR=cmsis_nn``) once into ``<cache>/trees/<key>``; the key is a fingerprint
  of the files the generator reads (never git: the checkout may have none, or sit inside an
  unrelated repository) and the options. Nothing is written into the checkout, which may be
  read-only: the Makefile's by-products go into the cache too.
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
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.boards import Board
from generator.errors import AppError, BuildError, ToolchainError

ENV_ROOT = "SWEETSPOT_TFLM_ROOT"
ENV_CACHE = "SWEETSPOT_TFLM_CACHE"
BACKENDS = ("generated", "tflm")
KERNELS = ("reference", "cmsis_nn")
CMSIS_NN_CORES = ("cortex-m4", "cortex-m7", "cortex-m33")
TREE_FORMAT = 2  # bump when the way trees are generated changes
TREE_GENERATOR = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"
MAKE_DIR = "tensorflow/lite/micro/tools/make"
DOWNLOADS = "tensorflow/lite/micro/tools/make/downloads"
RESOLVER_HEADER = "tensorflow/lite/micro/micro_mutable_op_resolver.h"
TREE_TIMEOUT_S = 900

#: downloads (under ``tensorflow/lite/micro/tools/make/downloads``) per kernel choice
REQUIRED_DOWNLOADS = {
    "reference": ("flatbuffers", "gemmlowp", "ruy", "kissfft", "pigweed"),
    "cmsis_nn": ("flatbuffers", "gemmlowp", "ruy", "kissfft", "pigweed", "cmsis", "cmsis_nn"),
}

#: the closed-loop arena margin: measured bytes + 5 % (at least 256 B, for temporary tensors a
#: kernel may allocate during Invoke), rounded up to 16 B
ARENA_MARGIN_FRACTION = 0.05
ARENA_MARGIN_MIN = 256
#: TFLM's planning records per tensor (requirements, sort keys, list entries; 64-bit on the host):
#: the 8-tensor digits MLP (740 B measured) fails at 1,392 B and runs at 1,520 B on the host
ARENA_PER_TENSOR = 128
ARENA_MARGIN = ("5 % of the measured bytes, at least 256 B and 128 B per tensor of the model, "
                "rounded up to 16 B")
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


#: top-level folders of a checkout whose files the tree generator reads (its Makefile, the
#: .inc files, the helper scripts and every source or header it copies); the downloads folder
#: inside ``tensorflow/`` is read per kernel set (:data:`REQUIRED_DOWNLOADS`)
FINGERPRINT_DIRS = ("tensorflow", "signal", "third_party")
_FINGERPRINT_SKIP = ("__pycache__", ".git")


def _fingerprint_files(root: Path, kernels: str) -> list[Path]:
    """The files whose content identifies a checkout for ``kernels`` (sorted)."""
    downloads = root / DOWNLOADS
    tops = [root / d for d in FINGERPRINT_DIRS]
    tops += [downloads / name for name in REQUIRED_DOWNLOADS[kernels]]
    out: list[Path] = []
    for top in tops:
        if not top.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d not in _FINGERPRINT_SKIP
                                 and here / d != downloads)
            out += [here / f for f in filenames if not f.endswith(".pyc")]
    return sorted(set(out))


def checkout_fingerprint(root: Path, kernels: str) -> str:
    """A SHA-256 over the relative path and content of every file the tree generator reads for
    ``kernels``: the same for any copy of the same files (path, mtimes, permissions and any
    enclosing git repository do not matter), different as soon as one of them changes.

    File digests are remembered per checkout and kernel set in ``<cache>/fingerprints`` by
    (size, mtime, inode), so a second call only reads files that changed since."""
    if kernels not in KERNELS:
        raise AppError(f"tflm_kernels={kernels} is unknown; known: {', '.join(KERNELS)}")
    memo_path = (cache_root() / "fingerprints"
                 / f"{hashlib.sha256(str(root).encode()).hexdigest()[:16]}-{kernels}.json")
    try:
        memo = json.loads(memo_path.read_text())
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, ValueError):
        memo = {}
    fresh: dict[str, list[Any]] = {}
    total = hashlib.sha256()
    for p in _fingerprint_files(root, kernels):
        rel = p.relative_to(root).as_posix()
        st = p.stat()
        stat = [st.st_size, st.st_mtime_ns, st.st_ino]
        old = memo.get(rel)
        if isinstance(old, list) and len(old) == 4 and old[:3] == stat:
            digest = str(old[3])
        else:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
        fresh[rel] = [*stat, digest]
        total.update(f"{rel}\0{digest}\n".encode())
    if fresh != memo:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo_path.parent, prefix=".memo-")
        with os.fdopen(fd, "w") as f:
            json.dump(fresh, f)
        os.replace(tmp, memo_path)
    return total.hexdigest()[:24]


# ---- the tree --------------------------------------------------------------------------------

STAMP = "sweetspot-tree.json"


@dataclass(frozen=True)
class TflmTree:
    """A generated TFLM source tree in the cache."""

    path: Path
    key: str
    kernels: str
    fingerprint: str  # of the checkout's files (:func:`checkout_fingerprint`)

    def library_sources(self, resolver: Collection[str] | None = None) -> list[str]:
        """Sources of the TFLM library (relative, sorted): the C++ of tensorflow/ without the
        cortex_m_generic port (the glue provides DebugLog and the timer) and, for CMSIS-NN, the
        C sources the tree's Makefile leaves out. signal/ and kissfft are not needed.

        With ``resolver`` (the model's ``Add<Op>`` calls), a kernel file that only defines
        registrations nobody needs is left out: every registration the resolver's methods name,
        and every one a kept file calls, is kept (to a fixed point), so the link never misses
        one while a cold library build compiles the kernels the model uses, not all ~120."""
        out = []
        for p in sorted((self.path / "tensorflow").rglob("*.cc")):
            rel = p.relative_to(self.path).as_posix()
            if "/cortex_m_generic/" in rel or rel.endswith("_test.cc"):
                continue
            out.append(rel)
        if resolver is not None:
            out = self._needed_kernels(out, set(resolver))
        if self.kernels == "cmsis_nn":
            src = self.path / "third_party" / "cmsis_nn" / "Source"
            out += [p.relative_to(self.path).as_posix() for p in sorted(src.rglob("*.c"))]
        return out

    def _needed_kernels(self, sources: list[str], resolver: set[str]) -> list[str]:
        header = (self.path / RESOLVER_HEADER).read_text(encoding="utf-8", errors="replace")
        needed: set[str] = set()
        for part in re.split(r"(?=TfLiteStatus\s+Add[A-Za-z0-9]+\s*\()", header):
            m = re.match(r"TfLiteStatus\s+(Add[A-Za-z0-9]+)", part)
            if m and m.group(1) in resolver:
                needed |= set(re.findall(r"\b(Register_\w+)\s*\(", part))
        defines: dict[str, set[str]] = {}
        calls: dict[str, set[str]] = {}
        for rel in sources:
            text = (self.path / rel).read_text(encoding="utf-8", errors="replace")
            defines[rel] = set(re.findall(r"^TFLMRegistration\*?\s+(Register_\w+)\s*\(",
                                          text, re.M))
            calls[rel] = set(re.findall(r"\b(Register_\w+)\s*\(", text)) - defines[rel]
        while True:
            kept = [r for r in sources if not defines[r] or defines[r] & needed]
            more = set().union(*(calls[r] for r in kept)) - needed
            if not more:
                return kept
            needed |= more

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
        header = self.path / RESOLVER_HEADER
        text = header.read_text(encoding="utf-8", errors="replace")
        return set(re.findall(r"TfLiteStatus\s+(Add[A-Za-z0-9]+)\s*\(", text))

    def describe(self) -> dict[str, str]:
        return {"key": self.key, "kernels": self.kernels, "fingerprint": self.fingerprint,
                "path": str(self.path)}


def tree_key(fingerprint: str, kernels: str) -> str:
    text = json.dumps({"format": TREE_FORMAT, "kernels": kernels, "target": "cortex_m_generic",
                       "fingerprint": fingerprint}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _python_path_env() -> dict[str, str]:
    """The tree generator's Makefile runs ``python3`` from PATH: make that this interpreter (and
    so this environment's numpy and pillow)."""
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the user's checkout
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
    fingerprint = checkout_fingerprint(root, kernels)
    key = tree_key(fingerprint, kernels)
    trees = cache_root() / "trees"
    dest = trees / key
    tree = TflmTree(dest, key, kernels, fingerprint)
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
        # The Makefile writes its by-products (gen/<target>/genfiles/...) under BASE_GENDIR,
        # relative to its working directory by default: i.e. into the checkout. Here they go
        # into the temporary folder, so the checkout may be read-only and stays untouched.
        gen_opts = [*make_opts, f"BASE_GENDIR={tmp / 'gen'}"]
        cmd = [sys.executable, str(root / TREE_GENERATOR), str(out),
               f"--makefile_options={' '.join(gen_opts)}"]
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
                                             "kernels": kernels, "fingerprint": fingerprint,
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
    return TflmTree(Path(t["path"]), t["key"], t["kernels"], t["fingerprint"])


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
                           f"checkout (content {tree.fingerprint[:12]}); update the checkout")
        calls.append(m)
    return calls


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
