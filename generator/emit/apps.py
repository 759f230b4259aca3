"""The app registry: one small strategy object per app (what it renders, what it reports).

An app adds its own templates to the board part of the tree. Register new apps with
:func:`register`; ``scons app=<name>`` and ``sweetspot run --app <name>`` look them up here.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import numpy as np

from ..boards import Board
from ..errors import AppError


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


_REGISTRY: dict[str, App] = {}


def register(app: App) -> App:
    _REGISTRY[app.name] = app
    return app


def _load_builtin() -> None:
    # Importing the modules registers their apps.
    from . import bench, nvmtest, selftest  # noqa: F401
    with contextlib.suppress(ImportError):  # optional until the model compiler lands
        from . import infer  # noqa: F401
    from . import stream  # noqa: F401  (stream, har, pipetest: the sensor front end)


def app_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_app(name: str) -> App:
    _load_builtin()
    if name not in _REGISTRY:
        raise AppError(f"app '{name}' is unknown; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def int_list(a: np.ndarray) -> list[int]:
    return [int(v) for v in np.asarray(a).ravel()]
