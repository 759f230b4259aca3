"""Shared fixtures for host-only tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from _util import ZOO, missing


@pytest.fixture
def zoo_dir() -> Path:
    if not ZOO.is_dir():
        missing(f"zoo models not available: {ZOO} is absent (it lives in ../shared)")
    return ZOO
