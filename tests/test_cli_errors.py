"""Bad input through the CLI: one readable message, a non-zero exit, nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _util import ROOT, require_toolchain


def sweetspot(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "generator.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd or ROOT)


def _one_error_line(p: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("sweetspot: error: ")
    assert "Traceback" not in p.stderr
    return lines[0]


def test_unknown_board(tmp_path):
    p = sweetspot("run", "--board", "nucleo_u57", "--build-dir", str(tmp_path / "b"))
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "board 'nucleo_u57' is unknown; known:" in msg and "nucleo_u575" in msg
    assert not (tmp_path / "b").exists()
    assert p.stdout == ""


def test_unknown_app(tmp_path):
    p = sweetspot("run", "--board", "qemu_m33", "--app", "nope", "--build-dir",
                  str(tmp_path / "b"))
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "app 'nope' is unknown; known:" in msg and "bench" in msg
    assert not (tmp_path / "b").exists()


def test_twin_flag_needs_a_nucleo(tmp_path):
    p = sweetspot("run", "--board", "qemu_m33", "--twin", "--build-dir", str(tmp_path / "b"))
    assert p.returncode == 2 and "--twin needs a Nucleo board" in _one_error_line(p)


def _path_without(tmp_path: Path, *tools_kept: str) -> dict[str, str]:
    """An environment whose PATH has only the named tools (plus python for SCons)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in tools_kept:
        real = shutil.which(tool)
        if real:
            (bindir / tool).symlink_to(real)
    env = dict(os.environ)
    env["PATH"] = str(bindir)
    return env


def test_missing_cross_compiler(tmp_path):
    env = _path_without(tmp_path)
    p = sweetspot("run", "--board", "qemu_m33", "--build-dir", str(tmp_path / "b"), env=env)
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "'arm-none-eabi-gcc' was not found" in msg
    assert "apt-get install -y --no-install-recommends gcc-arm-none-eabi" in msg
    assert not (tmp_path / "b").exists()


def test_missing_qemu(tmp_path):
    require_toolchain()
    tools = ["arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-objdump",
             "arm-none-eabi-ar", "arm-none-eabi-ranlib"]
    env = _path_without(tmp_path, *tools)
    p = sweetspot("run", "--board", "qemu_m33", "--build-dir", str(tmp_path / "b"), env=env)
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "'qemu-system-arm' was not found" in msg and "qemu-system-arm" in msg


def test_inspect_missing_model(tmp_path):
    p = sweetspot("inspect", str(tmp_path / "nope.tflite"))
    assert p.returncode == 2
    _one_error_line(p)


def test_run_json_not_written_on_failure(tmp_path):
    out = tmp_path / "r.json"
    p = sweetspot("run", "--board", "nope", "--json", str(out))
    assert p.returncode == 2 and not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_flash_rejects_a_twin():
    p = sweetspot("flash", "--board", "qemu_m33", "--probe-uid", "X")
    assert p.returncode == 2 and "flash takes a Nucleo board" in _one_error_line(p)


@pytest.mark.parametrize("argv", [["--version"], ["boards"]])
def test_cli_smoke(argv):
    p = sweetspot(*argv)
    assert p.returncode == 0 and p.stdout
