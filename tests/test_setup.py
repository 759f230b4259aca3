"""Set-up: the README's commands install every tool the suite needs, a missing tool names its
Debian package, and in CI a missing tool fails the suite instead of skipping (issue 9, item 1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _util import ROOT

from generator.build.toolchain import apt_hint, which_tool
from generator.errors import ToolchainError


def test_setup_script_installs_the_host_compiler_and_the_cross_tools():
    text = (ROOT / "sweetspot.sh").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("APT_PACKAGES=("))
    pkgs = set(line[len("APT_PACKAGES=("):-1].split())
    assert {"gcc", "libc6-dev", "gcc-arm-none-eabi", "libnewlib-arm-none-eabi",
            "libstdc++-arm-none-eabi-dev", "qemu-system-arm"} <= pkgs


@pytest.mark.parametrize(("tool", "package"), [
    ("gcc", "gcc libc6-dev"), ("cc", "gcc libc6-dev"),
    ("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
    ("arm-none-eabi-objcopy", "gcc-arm-none-eabi"),
    ("arm-none-eabi-g++", "libstdc++-arm-none-eabi-dev"),
    ("qemu-system-arm", "qemu-system-arm"),
])
def test_a_missing_tool_names_its_own_package(tool, package, monkeypatch):
    assert package in apt_hint(tool)
    if tool == "gcc":
        assert "gcc-arm-none-eabi" not in apt_hint(tool)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolchainError, match=re.escape(package.split()[-1])):
        which_tool(tool)


CHILD_TEST = """
import sys
sys.path.insert(0, {tests!r})
from _util import require_host_cc

def test_needs_cc():
    require_host_cc()
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_missing_host_compiler_fails_in_ci_and_skips_outside(tmp_path: Path, ci: str,
                                                             outcome: str):
    (tmp_path / "test_child.py").write_text(CHILD_TEST.format(tests=str(ROOT / "tests")))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent), "CI": ci}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), str(tmp_path / "test_child.py")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert outcome in r.stdout, r.stdout[-2000:]
    if ci:
        assert "CI=true and gcc / cc is not installed" in r.stdout
