"""One run at a time per build directory (issue 9, item 2): generator.build.lock, the runner
and SConstruct take a file lock; a second run waits (and says so), then gives up after a bound.

The end-to-end check starts two real ``sweetspot run`` processes with different models on the
same build directory; the expected outputs come from the TFLM interpreter (tflite-micro wheel)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from _util import ROOT, require_host_cc, require_tool, require_toolchain

from generator.build import lock
from generator.errors import BuildError

PY = sys.executable
HOLD = """
import sys, time
from pathlib import Path
from generator.build.lock import build_dir_lock
with build_dir_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(build_dir: Path, seconds: float) -> subprocess.Popen[str]:
    p = subprocess.Popen([PY, "-c", HOLD, str(build_dir), str(seconds)], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def test_a_second_process_waits_says_so_and_gives_up_after_the_bound(tmp_path: Path) -> None:
    d = tmp_path / "build" / "host" / "infer"
    p = _holder(d, 30)
    notices: list[str] = []
    lock.WAIT_NOTICE.append(notices.append)
    try:
        t0 = time.monotonic()
        with pytest.raises(BuildError) as e, lock.build_dir_lock(d, timeout=0.6):
            pass
        waited = time.monotonic() - t0
    finally:
        lock.WAIT_NOTICE.remove(notices.append)
        p.kill()
        p.wait(timeout=10)
    assert 0.5 <= waited < 5
    msg = str(e.value)
    assert str(d) in msg and f"pid {p.pid}" in msg and "--build-dir" in msg
    assert len(notices) == 1
    assert "waiting up to 0.6 s" in notices[0] and f"pid {p.pid}" in notices[0]
    assert not d.exists()  # the lock sits next to the directory, which nobody created
    assert lock.lock_path(d) == d.parent / ".infer.lock"


def test_the_waiter_proceeds_when_the_holder_exits(tmp_path: Path) -> None:
    d = tmp_path / "b"
    p = _holder(d, 1.0)
    t0 = time.monotonic()
    with lock.build_dir_lock(d, timeout=30):
        waited = time.monotonic() - t0
    p.wait(timeout=10)
    assert 0.3 < waited < 10


def test_re_entrant_in_process_and_released_at_the_end(tmp_path: Path) -> None:
    d = tmp_path / "b"
    with lock.build_dir_lock(d, timeout=0), lock.build_dir_lock(d, timeout=0):
        assert lock.inherited_fds(d)
    assert lock.inherited_fds(d) == ()
    p = _holder(d, 0)  # another process gets it at once: nothing was left locked
    p.wait(timeout=10)


def test_a_child_given_the_lock_does_not_wait_for_its_parent(tmp_path: Path) -> None:
    d = tmp_path / "b"
    code = ("import sys; from pathlib import Path; from generator.build.lock import "
            "build_dir_lock\nwith build_dir_lock(Path(sys.argv[1]), timeout=0): print('ok')")
    with lock.build_dir_lock(d):
        done = subprocess.run([PY, "-c", code, str(d)], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, pass_fds=lock.inherited_fds(d),
                              env=lock.child_env(d))
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
        # without the descriptor the same child must not get in
        alone = subprocess.run([PY, "-c", code, str(d)], cwd=ROOT, capture_output=True,
                               text=True, timeout=60)
        assert alone.returncode != 0 and "still in use" in alone.stderr


def test_plain_scons_waits_for_the_directory(tmp_path: Path) -> None:
    """``scons`` on the command line takes the same lock (SConstruct) and says it waits."""
    d = tmp_path / "b"
    p = _holder(d, 30)
    env = dict(os.environ, SWEETSPOT_LOCK_TIMEOUT="0.5")
    try:
        done = subprocess.run([PY, "-m", "SCons", "-Q", "-C", str(ROOT), "board=host",
                               "app=bench", f"build={d}"], capture_output=True, text=True,
                              timeout=120, env=env)
    finally:
        p.kill()
        p.wait(timeout=10)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()
    assert err[0].startswith(f"scons: build directory {d} is in use by pid {p.pid}")
    assert err[-1].startswith(f"scons: error: build directory {d} is still in use")
    assert not (d / "src").exists()


# ---- two real runs on one directory ------------------------------------------------------

def _tflm_outputs(model: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model))
    interp.set_input(x, 0)
    interp.invoke()
    return np.asarray(interp.get_output(0))


@pytest.mark.parametrize("board", [
    "host",
    pytest.param("qemu_m33", marks=[pytest.mark.slow, pytest.mark.qemu, pytest.mark.toolchain]),
])
def test_two_concurrent_runs_on_one_build_dir_each_report_their_own_model(
        tmp_path: Path, board: str) -> None:
    if board == "host":
        require_host_cc()
    else:
        require_toolchain()
        require_tool("qemu-system-arm")
    d = tmp_path / "shared-build"
    models = [ROOT / "models" / "digits_mlp_int8.tflite",
              ROOT / "models" / "digits_cnn_int8.tflite"]
    procs = []
    for i, m in enumerate(models):
        x = np.random.default_rng(i).integers(-128, 128, size=_input_shape(m), dtype=np.int8)
        np.save(tmp_path / f"in{i}.npy", x)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "generator.cli", "run", "--board", board, "--model",
             str(m), "--input", str(tmp_path / f"in{i}.npy"), "--build-dir", str(d),
             "--json", str(tmp_path / f"out{i}.json")],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, results):
        assert p.returncode == 0, err
    waits = [err for _, err in results if "waiting up to" in err]
    assert len(waits) <= 1
    for i, m in enumerate(models):
        doc = json.loads((tmp_path / f"out{i}.json").read_text())
        assert doc["options"]["model"] == str(m)
        assert _sha(m) in json.dumps(doc["app_info"])
        x = np.load(tmp_path / f"in{i}.npy")
        want = _tflm_outputs(m, x).reshape(-1)
        got = np.asarray(next(iter(doc["outputs"].values()))["values"]).reshape(-1)
        assert got.tolist() == want.tolist()
        assert doc["checks"] and all(c["ok"] for c in doc["checks"].values())


def _input_shape(model: Path) -> tuple[int, ...]:
    from generator.compiler.loader import load_model

    g = load_model(model)
    return g.tensor(g.inputs[0]).shape


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
