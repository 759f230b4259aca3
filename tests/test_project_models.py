"""The project's own int8 models in models/: they run in TFLM, classify, are sanely quantized and
are exactly what models/make_models.py makes; and the `har` app falls back to the project's
activity-recognition model when the zoo's ign_wl_24 is absent.

Everything is read back through the TFLM interpreter or tflite-micro's model_editor.read, never
through the project's writer (models/_quant.py).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import model_editor
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

MODELS = Path(__file__).resolve().parents[1] / "models"
SCRIPT = MODELS / "make_models.py"
SAMPLES = MODELS / "digits_samples.npz"
HAR = MODELS / "har_int8.tflite"
HAR_SAMPLES = MODELS / "har_samples.npz"
HAR_TRACE = MODELS / "har_trace.npy"
HAR_CLASSES = ["standing", "walking", "running", "badminton"]
HAR_OPS = ["QUANTIZE", "CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED",
           "SOFTMAX", "DEQUANTIZE"]
G = 9.80665

OPS = {
    "digits_cnn_int8": ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MAX_POOL_2D", "RESHAPE",
                        "FULLY_CONNECTED", "SOFTMAX"],
    "digits_mlp_int8": ["FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"],
    "residual_int8": ["CONV_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "ADD", "CONV_2D",
                      "CONCATENATION", "PAD", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"],
}
# Minimum accuracy on the 32 committed held-out samples (all three are trained; see README).
MIN_ACCURACY = {"digits_cnn_int8": 0.85, "digits_mlp_int8": 0.85, "residual_int8": 0.75}
BOP = tfl.BuiltinOperator


def _path(name: str) -> Path:
    return MODELS / f"{name}.tflite"


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    with np.load(SAMPLES) as f:
        return {k: f[k] for k in f.files}


def _run(name: str, images: np.ndarray) -> np.ndarray:
    interpreter = runtime.Interpreter.from_file(str(_path(name)))
    shape = tuple(interpreter.get_input_details(0)["shape"])
    outs = []
    for image in images:
        interpreter.set_input(image.reshape(shape), 0)
        interpreter.invoke()
        outs.append(interpreter.get_output(0).reshape(-1).copy())
    return np.stack(outs)


def test_samples_file(samples):
    assert set(samples) == {"images", "labels", "scale", "zero_point"}
    assert samples["images"].dtype == np.int8 and samples["images"].shape == (32, 8, 8, 1)
    assert samples["labels"].dtype == np.uint8 and samples["labels"].shape == (32,)
    assert set(np.unique(samples["labels"])) <= set(range(10))
    assert len(np.unique(samples["labels"])) >= 8, "samples should cover most classes"
    # digits pixels are 0..16 and the input quantization is q = pixel - 128
    assert samples["images"].min() >= -128 and samples["images"].max() <= -112


@pytest.mark.parametrize("name", sorted(OPS))
def test_model_runs_in_tflm(name, samples):
    assert _path(name).stat().st_size < 100_000
    interpreter = runtime.Interpreter.from_file(str(_path(name)))
    inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    assert int(np.prod(inp["shape"])) == 64
    assert list(out["shape"]) == [1, 10]
    # the samples file's input quantization is the model's
    assert inp["quantization_parameters"]["scales"].tolist() == [float(samples["scale"])]
    assert inp["quantization_parameters"]["zero_points"].tolist() == [int(samples["zero_point"])]
    # TFLM requires int8 softmax output at scale 1/256, zero point -128
    assert out["quantization_parameters"]["scales"].tolist() == [1 / 256]
    assert out["quantization_parameters"]["zero_points"].tolist() == [-128]
    probs = (_run(name, samples["images"][:4]).astype(np.float64) + 128) / 256
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.06)


@pytest.mark.parametrize("name", sorted(OPS))
def test_accuracy_on_committed_samples(name, samples):
    predicted = _run(name, samples["images"]).argmax(axis=1)
    acc = float(np.mean(predicted == samples["labels"]))
    assert acc >= MIN_ACCURACY[name], f"{name}: {acc:.2%} on the committed samples"


@pytest.mark.parametrize("name", sorted(OPS))
def test_operators(name):
    model = model_editor.read(_path(name).read_bytes())
    assert len(model.subgraphs) == 1
    assert [op.opcode_name for op in model.subgraphs[0].operators] == OPS[name]


def _q(tensor) -> tuple[list[float], list[int], int | None]:
    q = tensor.quantization
    assert q is not None, f"tensor {tensor.name!r} has no quantization"
    return [float(s) for s in q.scales], [int(z) for z in q.zero_points], q.axis


@pytest.mark.parametrize("name", sorted(OPS))
def test_quantization_parameters(name):
    sg = model_editor.read(_path(name).read_bytes()).subgraphs[0]
    (graph_in,) = sg.inputs
    assert _q(graph_in)[:2] == ([1 / 16], [-128])
    checked = 0
    for op in sg.operators:
        x, out = op.inputs[0], op.outputs[0]
        assert out.dtype == tfl.TensorType.INT8 and x.dtype == tfl.TensorType.INT8
        out_scales, out_zps, _ = _q(out)
        assert len(out_scales) == 1 and -128 <= out_zps[0] <= 127 and out_scales[0] > 0
        if op.opcode in (BOP.CONV_2D, BOP.DEPTHWISE_CONV_2D, BOP.FULLY_CONNECTED):
            w, b = op.inputs[1], op.inputs[2]
            assert w.dtype == tfl.TensorType.INT8 and b.dtype == tfl.TensorType.INT32
            w_scales, w_zps, w_axis = _q(w)
            b_scales, b_zps, _ = _q(b)
            assert set(w_zps) == {0} and set(b_zps) == {0}
            assert w.array.min() >= -127, "symmetric int8 weights use -127..127"
            expected_axis = {BOP.CONV_2D: 0, BOP.DEPTHWISE_CONV_2D: 3}.get(op.opcode)
            if expected_axis is None:  # FULLY_CONNECTED: per tensor
                assert len(w_scales) == 1 and w_axis is None
            else:
                assert w_axis == expected_axis
                n_out = w.shape[expected_axis]
                assert len(w_scales) == n_out == b.shape[0]
                # every channel uses its range: max |q| == 127 unless the channel is all zero
                max_q = np.abs(w.array.astype(np.int32)).max(axis=tuple(
                    a for a in range(4) if a != expected_axis))
                assert np.all((max_q == 127) | (max_q == 0))
            assert b.shape == (w.shape[0] if op.opcode != BOP.DEPTHWISE_CONV_2D else w.shape[3],)
            expected = np.float32(_q(x)[0][0]) * np.asarray(w_scales, np.float32)
            np.testing.assert_allclose(np.broadcast_to(b_scales, expected.shape), expected,
                                       rtol=2**-23)
            checked += 1
        elif op.opcode in (BOP.MAX_POOL_2D, BOP.AVERAGE_POOL_2D, BOP.RESHAPE, BOP.PAD):
            assert _q(out)[:2] == _q(x)[:2], f"{op.opcode_name} must not requantize"
        elif op.opcode == BOP.CONCATENATION:
            for t in op.inputs:
                assert _q(t)[:2] == _q(out)[:2], "TFLM needs one quantization across a concat"
        elif op.opcode == BOP.SOFTMAX:
            assert _q(out)[:2] == ([1 / 256], [-128])
        if op.opcode in (BOP.CONV_2D, BOP.DEPTHWISE_CONV_2D, BOP.FULLY_CONNECTED, BOP.ADD):
            fused = op._fb.builtinOptions.fusedActivationFunction
            if fused in (tfl.ActivationFunctionType.RELU, tfl.ActivationFunctionType.RELU6):
                assert out_zps == [-128], "a ReLU output starts at 0 = zero point -128"
    assert checked >= 2


def _make(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("sklearn", reason="make_models.py needs scikit-learn (dev extra)")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_mlp_regenerates_byte_identical(tmp_path):
    result = _make("--out", str(tmp_path), "--models", "mlp")
    assert result.returncode == 0, result.stderr
    for filename in ("digits_mlp_int8.tflite", "digits_samples.npz"):
        assert (tmp_path / filename).read_bytes() == (MODELS / filename).read_bytes(), (
            f"{filename}: a fresh generation differs from the committed file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits_mlp_int8.tflite",
                                                          "digits_samples.npz"]


def test_check_flags_a_changed_file(tmp_path):
    for filename in ("digits_mlp_int8.tflite", "digits_samples.npz"):
        shutil.copy(MODELS / filename, tmp_path / filename)
    tampered = bytearray((tmp_path / "digits_mlp_int8.tflite").read_bytes())
    tampered[-1] ^= 1
    (tmp_path / "digits_mlp_int8.tflite").write_bytes(tampered)
    result = _make("--out", str(tmp_path), "--models", "mlp", "--check")
    assert result.returncode == 1
    assert "digits_mlp_int8.tflite" in result.stderr and "digits_samples.npz" not in result.stderr
    # --check never writes into --out
    assert (tmp_path / "digits_mlp_int8.tflite").read_bytes() == bytes(tampered)


@pytest.mark.slow
def test_full_check_matches_committed_files():
    result = _make("--check", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- har_int8: activity recognition on BasicMotions, a drop-in for the zoo's ign_wl_24 ------


@pytest.fixture(scope="module")
def har_samples() -> dict[str, np.ndarray]:
    with np.load(HAR_SAMPLES) as f:
        return {k: f[k] for k in f.files}


def _har_run(windows: np.ndarray) -> np.ndarray:
    interpreter = runtime.Interpreter.from_file(str(HAR))
    outs = []
    for w in windows:
        interpreter.set_input(w.reshape(1, 24, 3, 1).astype(np.float32), 0)
        interpreter.invoke()
        outs.append(interpreter.get_output(0).reshape(-1).copy())
    return np.stack(outs)


def test_har_samples_and_trace_files(har_samples):
    assert set(har_samples) == {"windows", "labels", "classes", "rate_hz", "trace_labels"}
    assert har_samples["windows"].dtype == np.float32
    assert har_samples["windows"].shape == (32, 24, 3, 1)
    assert har_samples["classes"].tolist() == HAR_CLASSES
    assert np.bincount(har_samples["labels"], minlength=4).tolist() == [8, 8, 8, 8]
    assert float(har_samples["rate_hz"]) == 10.0
    # accelerometer in m/s^2 with gravity removed: standing is near 0, running is not
    w, y = har_samples["windows"], har_samples["labels"]
    assert np.abs(w[y == 0].mean()) < 1.0 and w[y == 2].std() > 4 * w[y == 0].std()
    trace = np.load(HAR_TRACE, allow_pickle=False)
    assert trace.dtype == np.int16 and trace.shape == (800, 3)
    # two held-out recordings of 100 samples per class, in class order
    assert har_samples["trace_labels"].tolist() == [c for c in range(4) for _ in range(200)]
    # the trace is the recordings in Q11 g: each class's first sample window is its first
    # recording's first 24 samples (the sample windows take recording k at offset 20 k)
    for c in range(4):
        first = w[y == c][0].reshape(24, 3)
        np.testing.assert_allclose(trace[200 * c:200 * c + 24] * G / 2048, first,
                                   atol=G / 2048 / 2 + 1e-6)


def test_har_model_is_a_drop_in_for_ign_wl_24():
    """The zoo model's interface: float32 [1, 24, 3, 1] in (QUANTIZE inside), float32 [1, 4]
    out (DEQUANTIZE inside), the same operator chain."""
    assert HAR.stat().st_size < 20_000
    interpreter = runtime.Interpreter.from_file(str(HAR))
    inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)
    assert inp["dtype"] == np.float32 and list(inp["shape"]) == [1, 24, 3, 1]
    assert out["dtype"] == np.float32 and list(out["shape"]) == [1, 4]
    sg = model_editor.read(HAR.read_bytes()).subgraphs[0]
    assert [op.opcode_name for op in sg.operators] == HAR_OPS
    from generator.frontend.emit import zoo_dir

    ign = zoo_dir() / "ign_wl_24_int8.tflite"
    if ign.is_file():  # same operators and tensor shapes as the zoo model, when it is here
        zsg = model_editor.read(ign.read_bytes()).subgraphs[0]
        assert [op.opcode_name for op in zsg.operators] == HAR_OPS
        assert ([tuple(op.outputs[0].shape) for op in zsg.operators]
                == [tuple(op.outputs[0].shape) for op in sg.operators])


def test_har_quantization_parameters():
    sg = model_editor.read(HAR.read_bytes()).subgraphs[0]
    ops = sg.operators
    q, deq = ops[0], ops[-1]
    assert q.inputs[0].dtype == tfl.TensorType.FLOAT32 and q.outputs[0].dtype == tfl.TensorType.INT8
    (in_scale,), (in_zp,), _ = _q(q.outputs[0])
    # the calibrated input range covers the accelerometer's (about +-28 m/s^2 in BasicMotions)
    lo, hi = in_scale * (-128 - in_zp), in_scale * (127 - in_zp)
    assert lo < -25 and hi > 25 and lo > -60 and hi < 60
    assert deq.inputs[0].dtype == tfl.TensorType.INT8
    assert deq.outputs[0].dtype == tfl.TensorType.FLOAT32
    assert _q(deq.inputs[0])[:2] == ([1 / 256], [-128])
    conv, pool, _, fc1, fc2 = ops[1:6]
    w, b = conv.inputs[1], conv.inputs[2]
    assert w.shape == (24, 16, 1, 1) and _q(w)[2] == 0 and len(_q(w)[0]) == 24
    np.testing.assert_allclose(_q(b)[0], np.float32(in_scale) * np.float32(_q(w)[0]),
                               rtol=2**-23)
    opts = conv._fb.builtinOptions
    assert (opts.padding, opts.strideH, opts.strideW) == (tfl.Padding.VALID, 1, 1)
    popts = pool._fb.builtinOptions
    assert (popts.filterHeight, popts.filterWidth, popts.strideH, popts.strideW) == (3, 1, 3, 1)
    assert _q(pool.outputs[0])[:2] == _q(pool.inputs[0])[:2]
    for fc in (fc1, fc2):
        assert len(_q(fc.inputs[1])[0]) == 1 and set(_q(fc.inputs[1])[1]) == {0}
    assert _q(fc1.outputs[0])[1] == [-128], "fc1 has a fused ReLU: zero point -128"


def test_har_accuracy_on_committed_samples(har_samples):
    probs = _har_run(har_samples["windows"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=0.03)
    acc = float(np.mean(probs.argmax(axis=1) == har_samples["labels"]))
    assert acc >= 0.9, f"har_int8: {acc:.2%} on the 32 committed held-out windows"


def _data_installed() -> bool:
    return any(importlib.util.find_spec(pkg) is not None for pkg in ("sktime", "aeon"))


def test_har_regenerates_byte_identical(tmp_path):
    if not _data_installed():
        pytest.skip("make_models.py --models har reads BasicMotions from sktime (dev extra)")
    result = _make("--out", str(tmp_path), "--models", "har")
    assert result.returncode == 0, result.stderr
    for filename in ("har_int8.tflite", "har_samples.npz", "har_trace.npy"):
        assert (tmp_path / filename).read_bytes() == (MODELS / filename).read_bytes(), (
            f"{filename}: a fresh generation differs from the committed file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["har_int8.tflite", "har_samples.npz",
                                                          "har_trace.npy"]
    assert "800 held-out windows" in result.stdout


# ---- the har app: the zoo's ign_wl_24 when present, else the project model ------------------


def test_har_app_falls_back_to_the_project_model(tmp_path, monkeypatch):
    from generator.frontend.emit import ZOO_ENV, HarApp

    monkeypatch.setenv(ZOO_ENV, str(tmp_path))  # an empty zoo
    app = HarApp()
    choice = app.model_choice({})
    assert choice.source == "project" and str(tmp_path) in choice.reason
    p = app.pipeline({})
    assert p.name == "har_project" and p.classifier.model.path == HAR.resolve()
    assert p.rate_hz == 10 and p.source.kind == "file" and p.source.path == HAR_TRACE.resolve()
    assert list(p.post.labels) == HAR_CLASSES
    # the int8 tensor the pipeline writes is the one after the model's QUANTIZE
    q = model_editor.read(HAR.read_bytes()).subgraphs[0].operators[0].outputs[0]
    assert (p.classifier.input.scale, p.classifier.input.zero_point) == (
        pytest.approx(q.quantization.scales[0]), q.quantization.zero_points[0])


def test_har_app_prefers_the_zoo_and_model_option(tmp_path, monkeypatch):
    from generator.frontend.emit import ZOO_ENV, HarApp

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    fake_ign = zoo / "ign_wl_24_int8.tflite"  # any model with ign's interface stands in
    shutil.copy(HAR, fake_ign)
    monkeypatch.setenv(ZOO_ENV, str(zoo))
    app = HarApp()
    choice = app.model_choice({})
    assert choice.source == "zoo" and choice.model == str(fake_ign.resolve())
    p = app.pipeline({})
    assert p.name == "har" and p.classifier.model.path == fake_ign.resolve()
    # model= wins over the zoo, with the default pipeline
    choice = app.model_choice({"model": str(HAR)})
    assert (choice.source, choice.pipeline, choice.model) == ("option", "har", str(HAR))
    # pipeline= skips the choice: that file and its own model
    assert app.model_choice({"pipeline": "har_project"}).source == "pipeline"
    assert app.pipeline({"pipeline": "har_project"}).classifier.model.path == HAR.resolve()


def test_har_manifest_says_which_model_and_why(tmp_path, monkeypatch):
    import hashlib

    from generator.boards import load_board
    from generator.firmware import MANIFEST, generate
    from generator.frontend.emit import ZOO_ENV

    monkeypatch.setenv(ZOO_ENV, str(tmp_path / "nothing-here"))
    tree = generate(load_board("qemu_m4"), "har", tmp_path / "b", {})
    info = json.loads((tmp_path / "b" / MANIFEST).read_text())["app_info"]
    assert info == tree.manifest["app_info"]
    mc = info["model_choice"]
    assert mc["source"] == "project" and mc["model"] == "har_int8.tflite"
    assert "nothing-here" in mc["reason"] and "har_project" in mc["reason"]
    assert mc["sha256"] == hashlib.sha256(HAR.read_bytes()).hexdigest()
    assert info["pipeline"]["name"] == "har_project" and info["model_path"] is None
    assert info["classifier"]["labels"] == HAR_CLASSES
    assert "ss_model_glue.c" in tree.sources


def test_har_project_pipeline_classifies_the_held_out_trace(har_samples):
    """The numpy twin of har_project's front end into the TFLM interpreter, window by window
    over the committed trace: the top class matches the true activity of most windows."""
    from generator.frontend.emit import HarApp
    from generator.frontend.pipeline import load_pipeline, trace_for
    from generator.frontend.preprocess import run_pipeline

    p = load_pipeline("har_project")
    trace, truth = trace_for(p), har_samples["trace_labels"]
    app = HarApp()
    hits = total = 0
    for end in range(p.window, len(trace) + 1, p.hop):
        scores = app.twin_scores(p, run_pipeline(p, trace[end - p.window:end]))
        want = np.bincount(truth[end - p.window:end], minlength=4).argmax()
        hits += int(np.argmax(scores) == want)
        total += 1
    assert total == 65
    assert hits / total >= 0.85, f"{hits}/{total} windows right"


def test_har_without_its_data_says_what_to_install(tmp_path):
    """sktime and aeon both hidden: exit 2, the message names the package, nothing written."""
    out = tmp_path / "out"
    code = (
        "import importlib.util, runpy, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, package=None: (\n"
        "    None if name in ('sktime', 'aeon') else real(name, package))\n"
        f"sys.argv = ['make_models.py', '--out', {str(out)!r}, '--models', 'har']\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "BasicMotions" in result.stderr and "sktime==1.2.0" in result.stderr
    assert not out.exists()
