"""The infer app as a whole: manifest, deterministic generation, input files and their errors,
the host executable's protocol output, the TFLM check, the fit check, and builds for every twin.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from _util import require_toolchain
from tflite_micro import runtime

from generator.boards import load_board
from generator.build import run_scons
from generator.compiler.emit import load_inputs, random_inputs
from generator.compiler.loader import load_model
from generator.compiler.modelgen import ModelBuilder, QParams, write_model
from generator.errors import AppError, FitError
from generator.firmware import generate
from generator.firmware.apps import get_app
from generator.targets.hostmodel import HostModel
from generator.targets.protocol import parse_stream

ROOT = Path(__file__).resolve().parents[1]
CNN = ROOT / "models" / "digits_cnn_int8.tflite"


def _edge_model(tmp_path: Path) -> Path:
    """float32 in -> QUANTIZE -> CONV -> FC -> SOFTMAX -> DEQUANTIZE -> float32 out, plus a
    second, int8 output: two outputs of different types."""
    b = ModelBuilder(seed=5)
    x = b.quantize(b.input((1, 6, 6, 2), dtype="float32"), "int8", QParams(0.03, -4))
    y = b.conv2d(x, 4, kernel=(3, 3), padding="SAME", activation="RELU")
    z = b.fully_connected(b.reshape(y, (1, 144)), 5)
    b.output(b.dequantize(b.softmax(z)))
    b.output(z)
    return write_model(b, tmp_path / "edge.tflite")


def _tflm(path: Path, run: list[np.ndarray]) -> list[np.ndarray]:
    it = runtime.Interpreter.from_file(str(path))
    for i, a in enumerate(run):
        it.set_input(a, i)
    it.invoke()
    return [np.asarray(it.get_output(j)).copy() for j in range(len(load_model(path).outputs))]


def test_manifest_describes_the_run(tmp_path: Path) -> None:
    model = _edge_model(tmp_path)
    tree = generate(load_board("host"), "infer", tmp_path / "b",
                    {"model": str(model), "seed": "9", "inputs": "3"})
    info = tree.manifest["app_info"]
    assert info["model"]["sha256"] == load_model(model).sha256
    assert info["model"]["path"] == str(model.resolve())
    assert info["runs"] == 3
    assert info["input_source"] == {"kind": "random", "seed": 9, "count": 3}
    assert [t["dtype"] for t in info["inputs"]] == ["float32"]
    assert [(t["dtype"], t["shape"]) for t in info["outputs"]] == [
        ("float32", [1, 5]), ("int8", [1, 5])]
    assert info["output_bytes"] == 5 * 4 + 5
    assert [layer["opcode"] for layer in info["layers"]] == [
        "QUANTIZE", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX", "DEQUANTIZE"]
    assert info["reports"]["layers"] == [f"layer{i}" for i in range(6)]
    assert info["reports"]["runs"][2] == {"cycles": "infer[2]",
                                          "outputs": ["output0[2]", "output1[2]"]}
    assert set(info["host_library"]["sources"]) >= {"model/ss_model.c", "kernels/ss_conv.c"}
    on_disk = json.loads((tmp_path / "b" / "sweetspot.json").read_text())
    assert on_disk["app_info"] == info


def test_generation_is_deterministic(tmp_path: Path) -> None:
    opts = {"model": str(CNN)}
    a = generate(load_board("qemu_m33"), "infer", tmp_path / "a", opts)
    b = generate(load_board("qemu_m33"), "infer", tmp_path / "b", opts)
    files_a = sorted(p.relative_to(a.src_dir) for p in a.src_dir.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b.src_dir) for p in b.src_dir.rglob("*") if p.is_file())
    assert files_a == files_b and files_a
    for rel in files_a:
        assert (a.src_dir / rel).read_bytes() == (b.src_dir / rel).read_bytes(), rel
    text = (a.src_dir / "model" / "ss_model.c").read_text()
    assert "do not edit" in text and load_model(CNN).sha256 in text


def test_host_executable_reports_tflm_outputs(tmp_path: Path) -> None:
    model = _edge_model(tmp_path)
    opts = {"model": str(model), "seed": "3", "inputs": "4"}
    art = run_scons(load_board("host"), "infer", opts, tmp_path / "b")
    proc = subprocess.run([str(art.elf)], capture_output=True, timeout=60, check=True)
    s = parse_stream(proc.stdout)
    assert s.status == 0 and s.corrupt_frames == 0
    info = json.loads((tmp_path / "b" / "sweetspot.json").read_text())["app_info"]
    assert set(info["reports"]["layers"]) <= set(s.cycles)
    runs = random_inputs(load_model(model), 3, 4)
    for run, names in zip(runs, info["reports"]["runs"]):
        assert names["cycles"] in s.cycles
        for name, ref in zip(names["outputs"], _tflm(model, run)):
            assert s.vectors[name].dtype == ref.dtype
            assert s.vectors[name].tobytes() == ref.tobytes(), name
    # The shared library built alongside gives the same bytes.
    lib = HostModel(tmp_path / "b")
    for run in runs:
        assert [o.tobytes() for o in lib.run(run)] == [r.tobytes() for r in _tflm(model, run)]
    # And the app's own check (used by `sweetspot run`) agrees.
    check = get_app("infer").check(info, s.vectors)
    assert len(check) == 8 and all(c["ok"] for c in check.values())
    bad = dict(s.vectors)
    bad["output1[1]"] = bad["output1[1]"] ^ np.int8(1)
    check = get_app("infer").check(info, bad)
    assert [k for k, c in check.items() if not c["ok"]] == ["output1[1]"]
    assert check["output1[1]"]["mismatches"] == 5


def test_input_files(tmp_path: Path) -> None:
    g = load_model(CNN)
    shape = g.tensor(g.inputs[0]).shape
    one = np.arange(64, dtype=np.int8).reshape(shape)
    np.save(tmp_path / "one.npy", one)
    runs = load_inputs(g, tmp_path / "one.npy")
    assert len(runs) == 1 and runs[0][0].tobytes() == one.tobytes()
    many = np.stack([one, -one, one // 2])
    np.save(tmp_path / "many.npy", many)
    assert len(load_inputs(g, tmp_path / "many.npy")) == 3
    # A batch-1 model also takes a stack of samples [N, 8, 8, 1].
    np.save(tmp_path / "stack.npy", many.reshape(3, 8, 8, 1))
    stacked = load_inputs(g, tmp_path / "stack.npy")
    assert [r[0].shape for r in stacked] == [shape] * 3
    assert stacked[1][0].tobytes() == (-one).tobytes()
    np.savez(tmp_path / "many.npz", input0=many)
    assert [r[0].tobytes() for r in load_inputs(g, tmp_path / "many.npz")] == [
        m.tobytes() for m in many]
    # int64 values that are exactly int8 are accepted; others are not.
    np.save(tmp_path / "wide.npy", one.astype(np.int64))
    assert load_inputs(g, tmp_path / "wide.npy")[0][0].dtype == np.int8
    np.save(tmp_path / "bad_dtype.npy", one.astype(np.float32) + 0.5)
    with pytest.raises(AppError, match="do not convert exactly"):
        load_inputs(g, tmp_path / "bad_dtype.npy")
    np.save(tmp_path / "bad_shape.npy", np.zeros((1, 7, 7, 1), np.int8))
    with pytest.raises(AppError, match=r"shape \[1, 7, 7, 1\]; the model input is \[1, 8, 8, 1\]"):
        load_inputs(g, tmp_path / "bad_shape.npy")
    np.savez(tmp_path / "keys.npz", a=many, b=many)
    with pytest.raises(AppError, match="lacks input0"):
        load_inputs(g, tmp_path / "keys.npz")
    with pytest.raises(AppError, match="does not exist"):
        load_inputs(g, tmp_path / "nope.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(AppError, match="not a readable"):
        load_inputs(g, tmp_path / "junk.npy")


def test_input_file_compiled_into_the_image(tmp_path: Path) -> None:
    g = load_model(CNN)
    x = np.random.default_rng(1).integers(-128, 128, (5, 1, 8, 8, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    opts = {"model": str(CNN), "input": str(tmp_path / "x.npy")}
    art = run_scons(load_board("host"), "infer", opts, tmp_path / "b")
    s = parse_stream(subprocess.run([str(art.elf)], capture_output=True, timeout=60,
                                    check=True).stdout)
    for k in range(5):
        assert s.vectors[f"output0[{k}]"].tobytes() == _tflm(CNN, [x[k]])[0].tobytes()
    info = json.loads((tmp_path / "b" / "sweetspot.json").read_text())["app_info"]
    assert info["input_source"]["kind"] == "file" and len(info["input_source"]["sha256"]) == 64
    assert g.sha256 == info["model"]["sha256"]


def test_model_too_large_fails_before_the_build(tmp_path: Path) -> None:
    b = ModelBuilder(seed=1)
    b.output(b.fully_connected(b.input((1, 600)), 600))  # 360 KB of weights
    model = write_model(b, tmp_path / "big.tflite")
    out = tmp_path / "b"
    with pytest.raises(FitError, match=r"flash .*qemu_m0 has 262,144 B"):
        generate(load_board("qemu_m0"), "infer", out, {"model": str(model)})
    assert not out.exists()


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["qemu_m0", "qemu_m4", "qemu_m7", "qemu_m33"])
def test_builds_for_every_twin(board: str, tmp_path: Path) -> None:
    """The generated C and the kernels compile with -Wall -Wextra -Werror for each core."""
    require_toolchain()
    model = tmp_path / "all_ops.tflite"
    b = ModelBuilder(seed=3)
    x = b.quantize(b.input((1, 8, 8, 2), dtype="float32"), "int8", QParams(0.03, 1))
    y = b.conv2d(x, 4, kernel=(3, 3), padding="SAME", activation="RELU")
    d = b.depthwise_conv2d(y, kernel=(3, 3), padding="SAME")
    q = QParams(0.05, 2)
    a = b.add(b.conv2d(d, 4, kernel=(1, 1), out_q=q), b.conv2d(y, 4, kernel=(1, 1), out_q=q))
    c = b.concat([a, b.relu6(a)], 3)
    p = b.avg_pool2d(b.max_pool2d(b.pad(c, [(0, 0), (1, 1), (1, 1), (0, 0)]), (2, 2), (2, 2)),
                     (2, 2), (1, 1), "SAME")
    m = b.mean(b.relu(p), (1, 2))
    b.output(b.dequantize(b.softmax(b.fully_connected(m, 3))))
    write_model(b, model)
    art = run_scons(load_board(board), "infer", {"model": str(model)}, tmp_path / "b")
    assert art.elf.is_file() and art.bin is not None and art.bin.is_file()


def test_host_model_stepping_and_rebuild(tmp_path: Path) -> None:
    """Layer-by-layer stepping gives the same bytes as a whole run; a model rebuilt into the
    same directory is really reloaded in this process."""
    a = tmp_path / "a.tflite"
    b = ModelBuilder(seed=11)
    b.output(b.fully_connected(b.conv2d(b.input((1, 4, 4, 3)), 5, kernel=(3, 3)), 4))
    write_model(b, a)
    bdir = tmp_path / "build"
    from generator.targets.hostmodel import build_host_model

    m = build_host_model(a, bdir)
    run = random_inputs(load_model(a), 2, 1)[0]
    raw = b"".join(x.tobytes() for x in run)
    whole = m.run_bytes(raw)
    m.write_inputs(raw)
    for i in range(m.layers):
        m.run_layer(i)
    assert m.read_outputs() == whole == _tflm(a, run)[0].tobytes()
    with pytest.raises(IndexError):
        m.run_layer(m.layers)
    info = json.loads((bdir / "sweetspot.json").read_text())["app_info"]
    assert len(m.arena()) == max(info["arena_bytes"], 16)
    other = tmp_path / "b.tflite"
    b2 = ModelBuilder(seed=12)
    b2.output(b2.fully_connected(b2.conv2d(b2.input((1, 4, 4, 3)), 5, kernel=(3, 3)), 4))
    write_model(b2, other)
    m2 = build_host_model(other, bdir)
    assert m2.run(run)[0].tobytes() == _tflm(other, run)[0].tobytes()
    assert m2.run_bytes(raw) != whole
