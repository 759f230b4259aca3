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
