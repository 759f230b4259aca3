"""The app registry: one small strategy object per app (what it renders, what it reports).

An app adds its own templates to the board part of the tree. Register new apps with
:func:`register`; ``scons app=<name>`` and ``sweetspot run --app <name>`` look them up here.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import numpy as np

from generator.boards import Board
from generator.errors import AppError


class App(Protocol):
    name: str
    description: str
    needs_model: bool

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        """Template context for the app's own files (may add ``model_sha256``)."""

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        """(template, output file) pairs under ``templates/``."""

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        """Files copied verbatim into the tree (e.g. kernel sources)."""

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        """JSON-able facts the host needs to interpret the run."""


#: Every app and the module that implements (and registers) it. Apps live with their capability
#: (the model compiler, the intermittent runtime, the sensor front end, the TFLM backend); the
#: registry only names them, so no capability imports another's emitter and the firmware core
#: imports none of them.
APP_MODULES: dict[str, str] = {
    "bench": "generator.firmware.bench",
    "selftest": "generator.firmware.selftest",
    "infer": "generator.compiler.emit",
    "nvmtest": "generator.runtime.nvmtest",
    "stream": "generator.frontend.emit",
    "har": "generator.frontend.emit",
    "vww": "generator.frontend.emit",
    "pipetest": "generator.frontend.emit",
    "tflm": "generator.tflm.app",
    "wakeup": "generator.wakeup.emit",
}

#: most input sets (inferences) one image holds (infer, tflm, nvmtest: inputs= and input files)
MAX_INPUT_SETS = 4096

#: options every runtime-capable app takes (the intermittent runtime, generator.runtime.layout)
_RUNTIME = ("ql", "ql_map", "inject", "power_fail", "capacitor", "seed")
_STREAM = ("pipeline", "model")
#: the options (scons variables; sweetspot flags --model, --input, ...) each app reads. Anything
#: else is an error rather than silently ignored. An app missing here is not checked.
APP_OPTIONS: dict[str, tuple[str, ...]] = {
    "bench": ("seed",),
    "selftest": ("mode",),
    "infer": ("model", "input", "inputs", "backend", *_RUNTIME),
    "nvmtest": ("mode", "inputs", *_RUNTIME),
    "stream": _STREAM,
    "har": _STREAM,
    "vww": _STREAM,
    "pipetest": _STREAM,
    "tflm": ("model", "input", "inputs", "seed", "backend", "tflm_root", "tflm_kernels",
             "tflm_arena", "tflm_probe", "tflm_dump"),
}

_REGISTRY: dict[str, App] = {}


def check_app_options(name: str, options: dict[str, Any]) -> None:
    """An option ``name`` does not read is an error naming the ones it does."""
    allowed = APP_OPTIONS.get(name)
    if allowed is None:
        return
    bad = sorted(k for k, v in options.items() if k not in allowed and v not in (None, ""))
    if bad:
        raise AppError(f"app '{name}' does not take {', '.join(bad)}; it takes "
                       f"{', '.join(allowed) if allowed else 'no options'}")


def register(app: App) -> App:
    _REGISTRY[app.name] = app
    return app


def app_names() -> list[str]:
    return sorted(APP_MODULES)


def get_app(name: str) -> App:
    if name not in APP_MODULES:
        raise AppError(f"app '{name}' is unknown; known: {', '.join(app_names())}")
    if name not in _REGISTRY:
        importlib.import_module(APP_MODULES[name])  # importing the module registers its apps
    return _REGISTRY[name]


def int_list(a: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(a).ravel()]
