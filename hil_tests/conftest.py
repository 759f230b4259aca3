"""The hardware-in-the-loop suite: the same tests on the QEMU twins (default: all four cores) or on
a real Nucleo (``--board nucleo_u575 --probe-uid <uid>``).

The ``dut`` fixture is the device under test: ``dut.run(app, **options)`` builds the app for the
board (once per option set, in a per-session build directory), runs it and returns the results
document; errors are raised as the library's exceptions.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from generator.boards import Board, load_board
from generator.runner import RunRequest, run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _util import require_tool, require_toolchain  # noqa: E402 - tests/_util, the one copy

TWINS = ("qemu_m0", "qemu_m4", "qemu_m7", "qemu_m33")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sweetspot")
    group.addoption("--board", action="append", default=None,
                    help="board(s) to run on (default: the four QEMU twins)")
    group.addoption("--probe-uid", default=None, help="ST-LINK probe UID for a real board")
    group.addoption("--serial-port", default=None, help="console port of a real board")


def boards_under_test(config: pytest.Config) -> list[str]:
    return list(config.getoption("--board") or TWINS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dut" in metafunc.fixturenames:
        boards: list[Any] = boards_under_test(metafunc.config)
        # @pytest.mark.default_twins("qemu_m33"): the other twins only with -m slow (a board
        # named with --board always runs)
        fast = metafunc.definition.get_closest_marker("default_twins")
        if fast and not metafunc.config.getoption("--board"):
            boards = [b if b in fast.args else pytest.param(b, marks=pytest.mark.slow)
                      for b in boards]
        metafunc.parametrize("dut", boards, indirect=True)


@dataclass
class Dut:
    board: Board
    build_root: Path
    probe_uid: str | None = None
    serial_port: str | None = None
    timeout: float = 120.0
    runs: list[dict[str, Any]] = field(default_factory=list)

    def run(self, app: str, *, timeout: float | None = None, **options: Any) -> dict[str, Any]:
        raw = "-".join([app] + [f"{k}_{Path(str(v)).name}" for k, v in sorted(options.items())])
        key = re.sub(r"[^A-Za-z0-9_.=-]", "_", raw)  # e.g. commas would break -Wl,-Map=
        req = RunRequest(board=self.board.name, app=app, options=options,
                         build_dir=self.build_root / self.board.name / key,
                         timeout=timeout or self.timeout, probe_uid=self.probe_uid,
                         serial_port=self.serial_port)
        doc = run(req)
        self.runs.append(doc)
        return doc


@pytest.fixture(scope="session")
def hil_build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hil-build")


@pytest.fixture
def dut(request: pytest.FixtureRequest, hil_build_root: Path) -> Dut:
    board = load_board(request.param)
    if board.kind == "qemu":
        require_tool("qemu-system-arm")
    if board.is_host:
        require_tool("gcc", "cc")
    else:
        require_toolchain()
    probe = request.config.getoption("--probe-uid")
    if board.kind == "nucleo" and not probe:
        pytest.skip(f"{board.name} is a real board: pass --probe-uid to run on it")
    return Dut(board=board, build_root=hil_build_root, probe_uid=probe,
               serial_port=request.config.getoption("--serial-port"))
