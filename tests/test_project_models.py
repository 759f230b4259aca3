"""The project's own int8 models in models/: they run in TFLM, classify, are sanely quantized and
are exactly what models/make_models.py makes.

Everything is read back through the TFLM interpreter or tflite-micro's model_editor.read, never
through the project's writer (models/_quant.py).
"""

from __future__ import annotations

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
