"""The pyOCD + ST-LINK path on a real Nucleo board. Runs only with a board on the desk:

    pytest hil_tests/test_nucleo_hw.py --board nucleo_u575 --probe-uid <uid> [--serial-port PORT]

(``pyocd list`` shows the UID.) Everything here is skipped otherwise; tests/test_nucleo_target.py
covers the same code at its boundary without hardware.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator.boards import Board, load_board
from generator.build import Artifacts, run_scons
from generator.errors import ProbeError
from generator.runner import RunRequest, run
from generator.targets import nucleo

pytestmark = pytest.mark.hardware


@dataclass
class Bench:
    board: Board
    probe_uid: str
    serial_port: str | None
    build_root: Path


@pytest.fixture(scope="module")
def hw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Bench:
    uid = request.config.getoption("--probe-uid", default=None)
    if not uid:
        pytest.skip("needs a real board: pass --board nucleo_... --probe-uid <uid>")
    names = request.config.getoption("--board", default=None) or []
    if isinstance(names, str):
        names = [names]
    boards = [b for b in (load_board(n) for n in names) if b.kind == "nucleo"]
    if len(boards) != 1:
        pytest.skip("--probe-uid needs exactly one Nucleo board in --board")
    return Bench(boards[0], uid, request.config.getoption("--serial-port", default=None),
                 tmp_path_factory.mktemp("nucleo-hw"))


def _build(hw: Bench, **options: object) -> Artifacts:
    key = "-".join(["bench"] + [f"{k}_{v}" for k, v in sorted(options.items())])
    return run_scons(hw.board, "bench", dict(options), hw.build_root / key)


def test_probe_is_listed(hw: Bench):
    probe = nucleo.choose_probe(hw.probe_uid)
    assert str(probe.unique_id) in [p.uid for p in nucleo.list_probes()]


def test_wrong_uid_names_the_connected_probe(hw: Bench):
    real = str(nucleo.choose_probe(hw.probe_uid).unique_id)
    with pytest.raises(ProbeError, match=f"connected probes: .*{real}"):
        nucleo.choose_probe("SWEETSPOT-NO-SUCH-PROBE")


def test_target_is_supported(hw: Bench):
    assert nucleo.target_support(hw.board) in ("built in", "installed pack", "pack file",
                                               "pack (already loaded)")


def test_vcp_is_found(hw: Bench):
    if hw.serial_port:
        pytest.skip("--serial-port given")
    assert Path(nucleo.find_vcp(hw.probe_uid)).exists()


def test_flash_programs_and_verifies(hw: Bench):
    art = _build(hw)
    t0 = time.monotonic()
    info = nucleo.flash_image(hw.board, art, hw.probe_uid, timeout=120)
    assert time.monotonic() - t0 < 120
    segs = nucleo.image_segments(Path(info["image"]))
    assert info["verified"] is True and info["bytes"] == sum(len(d) for _, d in segs) > 0
    assert hw.probe_uid.lower() in info["probe_uid"].lower()


def test_bench_outputs_match_numpy(hw: Bench):
    doc = run(RunRequest(board=hw.board.name, app="bench", probe_uid=hw.probe_uid,
                         serial_port=hw.serial_port, build_dir=hw.build_root / "bench-run",
                         timeout=60))
    assert doc["status"] == 0 and doc["exit_code"] is None
    assert doc["checks"] and all(v["ok"] for v in doc["checks"].values()), doc["checks"]
    assert doc["counter"]["kind"] == hw.board.counter_kind
    assert doc["cycles"] and all(v["ticks"] > 0 for v in doc["cycles"].values())
    assert doc["stream"]["corrupt_frames"] == 0


def test_each_run_reads_its_own_output(hw: Bench):
    """Two images with different inputs, one after the other: the second run's outputs must
    match numpy for its own inputs (stale output from the first image would not)."""
    for seed in (1, 2):
        doc = run(RunRequest(board=hw.board.name, app="bench", options={"seed": seed},
                             probe_uid=hw.probe_uid, serial_port=hw.serial_port,
                             build_dir=hw.build_root / f"bench-seed{seed}", timeout=60))
        assert doc["status"] == 0
        assert all(v["ok"] for v in doc["checks"].values()), (seed, doc["checks"])
