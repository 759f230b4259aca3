"""Shared fixtures for host-only tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT.parent / "shared" / "models" / "zoo"


@pytest.fixture
def zoo_dir() -> Path:
    if not ZOO.is_dir():
        pytest.skip(f"zoo models not available: {ZOO} is absent (it lives in ../shared)")
    return ZOO


def require_toolchain() -> None:
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc is not installed (./sweetspot.sh test installs it)")
