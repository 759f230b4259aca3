"""Helpers shared by host tests (imported by name: tests/ has no __init__.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT.parent / "shared" / "models" / "zoo"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """A tool or data set a test needs is absent: outside CI the test skips with ``reason``; in
    CI (``CI=true``) that is a failure, never a skip (./sweetspot.sh installs every tool)."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH (``require_tool("gcc", "cc")``), else
    :func:`missing`."""
    for n in names:
        path = shutil.which(n)
        if path:
            return path
    missing(f"{' / '.join(names)} is not installed (./sweetspot.sh test installs it)")
    raise AssertionError("unreachable")


def require_toolchain() -> None:
    require_tool("arm-none-eabi-gcc")


def require_host_cc() -> None:
    require_tool("gcc", "cc")


def require_tflm_checkout() -> Path:
    """The tflite-micro checkout (``SWEETSPOT_TFLM_ROOT``) with make, numpy and pillow for its
    tree generator, else :func:`missing` with one short reason."""
    from generator.tflm import tree as tflm

    # missing() is called outside the except blocks: no chained how-to in the report
    problem = None
    try:
        root = tflm.locate_checkout({})
    except tflm.TflmSetupError as e:
        problem = (f"{str(e).splitlines()[0]} (set {tflm.ENV_ROOT}; ./sweetspot.sh test sets "
                   "it to ../shared/tflite-micro when that folder exists)")
    if problem:
        missing(problem)
    require_tool("make")
    try:
        tflm.check_tree_generator_python()
    except tflm.TflmSetupError as e:
        problem = str(e).splitlines()[0]
    if problem:
        missing(problem)
    return root
