"""Drive a model compiled for ``board=host`` through its shared library, in-process.

``scons board=host app=infer model=<m.tflite>`` links ``libssmodel.so`` next to the host
executable; :class:`HostModel` loads it with ctypes and runs inferences at C speed, so campaigns
(verification against TFLM, fault injection) build once per model and run many inputs::

    m = build_host_model("models/digits_cnn_int8.tflite")
    outputs = m.run(x)          # list of arrays, one per model output, the model's own dtypes
    raw = m.run_bytes(x.tobytes())

Inputs and outputs are the raw bytes of the model's own graph-edge types (float32 / uint8 /
int8), all inputs (outputs) concatenated in graph order.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from generator.boards import load_board
from generator.build import default_build_dir, run_scons
from generator.errors import BuildError
from generator.firmware import MANIFEST

__all__ = ["HostModel", "build_host_model"]


class HostModel:
    """A host build of the ``infer`` app (its ``libssmodel.so`` and ``sweetspot.json``)."""

    def __init__(self, build_dir: str | Path, library: str | Path | None = None) -> None:
        """``library`` overrides the shared library to load (e.g. the same sources compiled
        with other kernel options); by default the build's own ``libssmodel.so``."""
        self.build_dir = Path(build_dir)
        manifest_path = self.build_dir / MANIFEST
        if not manifest_path.is_file():
            raise BuildError(
                f"{self.build_dir} has no {MANIFEST}; build the model first: "
                "scons board=host app=infer model=<path>"
            )
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        info: dict[str, Any] = manifest.get("app_info", {})
        lib = info.get("host_library")
        if manifest.get("app") != "infer" or manifest.get("board") != "host" or not lib:
            raise BuildError(f"{self.build_dir} is not a board=host app=infer build")
        self.info = info
        self.inputs: list[dict[str, Any]] = info["inputs"]
        self.outputs: list[dict[str, Any]] = info["outputs"]
        self.input_bytes = int(info["input_bytes"])
        self.output_bytes = int(info["output_bytes"])
        path = Path(library) if library is not None else self.build_dir / lib["file"]
        if not path.is_file():
            raise BuildError(f"{path} is missing; rebuild: scons board=host app=infer model=...")
        self._lib = ctypes.CDLL(str(_private_copy(path)))
        self._lib.ss_model_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        self._lib.ss_model_run.restype = ctypes.c_int
        self._lib.ss_model_run_layer.argtypes = [ctypes.c_uint32]
        self._lib.ss_model_run_layer.restype = ctypes.c_int
        self._lib.ss_model_arena.restype = ctypes.c_void_p
        self._lib.ss_model_arena_bytes.restype = ctypes.c_uint32
        self._lib.ss_model_layers.restype = ctypes.c_uint32
        self._lib.ss_model_input.argtypes = [ctypes.c_uint32]
        self._lib.ss_model_input.restype = ctypes.c_void_p
        self._lib.ss_model_output.argtypes = [ctypes.c_uint32]
        self._lib.ss_model_output.restype = ctypes.c_void_p
        self._lib.ss_model_io_bytes.argtypes = [ctypes.c_int]
        self._lib.ss_model_io_bytes.restype = ctypes.c_uint32
        if (self._lib.ss_model_io_bytes(0) != self.input_bytes
                or self._lib.ss_model_io_bytes(1) != self.output_bytes):
            raise BuildError(f"{path} does not match {manifest_path}; rebuild the model")
        self._out = ctypes.create_string_buffer(max(self.output_bytes, 1))

    @property
    def layers(self) -> int:
        return int(self._lib.ss_model_layers())

    def arena(self) -> memoryview:
        """The live activation arena (for inspection and fault injection)."""
        n = int(self._lib.ss_model_arena_bytes())
        buf = (ctypes.c_uint8 * n).from_address(self._lib.ss_model_arena())
        return memoryview(buf).cast("B")

    # -- stepping through the layers (fault injection, per-layer inspection) -------------------

    def write_inputs(self, data: bytes) -> None:
        """Copy raw input bytes (all inputs concatenated) into their arena buffers."""
        if len(data) != self.input_bytes:
            raise ValueError(f"input is {len(data)} bytes; the model takes {self.input_bytes}")
        pos = 0
        for i, spec in enumerate(self.inputs):
            n = int(spec["nbytes"])
            ctypes.memmove(self._lib.ss_model_input(i), data[pos:pos + n], n)
            pos += n

    def run_layer(self, index: int) -> None:
        """Run one task (layer) on the arena as it is."""
        if self._lib.ss_model_run_layer(index) != 0:
            raise IndexError(f"layer {index} out of range (the model has {self.layers})")

    def read_outputs(self) -> bytes:
        """The raw output bytes (all outputs concatenated) as the arena holds them now."""
        parts = []
        for i, spec in enumerate(self.outputs):
            n = int(spec["nbytes"])
            parts.append(ctypes.string_at(self._lib.ss_model_output(i), n))
        return b"".join(parts)

    # -- whole inferences ------------------------------------------------------------------------

    def run_bytes(self, data: bytes) -> bytes:
        """One inference on raw input bytes (all inputs concatenated); raw output bytes."""
        if len(data) != self.input_bytes:
            raise ValueError(f"input is {len(data)} bytes; the model takes {self.input_bytes}")
        rc = self._lib.ss_model_run(data, self._out)
        if rc != 0:
            raise RuntimeError(f"ss_model_run returned {rc}")
        return self._out.raw[: self.output_bytes]

    def _pack(self, inputs: np.ndarray | Sequence[np.ndarray]) -> bytes:
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(self.inputs):
            raise ValueError(f"the model has {len(self.inputs)} inputs, got {len(arrays)}")
        parts = []
        for a, spec in zip(arrays, self.inputs):
            a = np.asarray(a)
            if a.dtype != np.dtype(spec["dtype"]) or a.size != math.prod(spec["shape"]):
                raise ValueError(
                    f"input {spec['name']!r} must be {spec['dtype']} of shape {spec['shape']}, "
                    f"got {a.dtype} {list(a.shape)}"
                )
            parts.append(np.ascontiguousarray(a).tobytes())
        return b"".join(parts)

    def split_outputs(self, raw: bytes) -> list[np.ndarray]:
        out, pos = [], 0
        for spec in self.outputs:
            n = int(spec["nbytes"])
            arr = np.frombuffer(raw[pos:pos + n], dtype=spec["dtype"]).reshape(spec["shape"])
            out.append(arr.copy())
            pos += n
        return out

    def run(self, inputs: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
        """One inference; ``inputs`` is one array per model input (or one array)."""
        return self.split_outputs(self.run_bytes(self._pack(inputs)))


def _private_copy(path: Path) -> Path:
    """The library under a name unique to its contents: dlopen() hands out the already loaded
    library for a path it has seen, so a rebuilt model at the same path would otherwise keep
    running the old code in this process."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    target = path.parent / f".{path.stem}-{digest}{path.suffix}"
    if not target.is_file():
        part = target.with_name(target.name + ".part")
        part.write_bytes(data)
        os.replace(part, target)
    return target.resolve()


def build_host_model(model: str | Path, build_dir: str | Path | None = None,
                     options: dict[str, Any] | None = None) -> HostModel:
    """Generate and build ``board=host app=infer`` for ``model`` (SCons) and load it."""
    board = load_board("host")
    bdir = Path(build_dir) if build_dir is not None else default_build_dir("host", "infer")
    opts = {"model": str(Path(model).resolve()), **(options or {})}
    run_scons(board, "infer", opts, bdir)
    return HostModel(bdir)
