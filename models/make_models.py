"""Make the project's own small int8 models: three from scikit-learn's digits data set, one
activity-recognition model from the BasicMotions accelerometer data set.

    python models/make_models.py [--out models/] [--models NAME ...] [--check]

For each model: train the float network in numpy (Adam, seeded, float64), calibrate activation
ranges on the training split, quantize to full-integer int8 and write the .tflite with the
tflite-micro wheel's model_editor (models/_quant.py), then measure accuracy of the int8 model as the
TFLM interpreter runs it on the held-out split. Also writes each data set's sample files:
digits_samples.npz (held-out digits already quantized to the models' int8 input, with labels, so
demos and tests need no scikit-learn); har_samples.npz (held-out accelerometer windows) and
har_trace.npy (held-out recordings as an int16 Q11 g stream for pipelines/har_project.toml).

The output is deterministic: the same bytes on every run. --check regenerates into a temporary
directory and exits 1 if any committed file differs.

Needs numpy, scikit-learn and sktime (dev extra; only sktime's BasicMotions .ts files are read,
the package is never imported) and tflite-micro; not TensorFlow.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _quant import INPUT_QPARAMS, Layer, assign_qparams, build_tflite, same_padding

SPLIT_SEED = 20240601
N_TEST = 360
N_SAMPLES = 32
INPUT = "input"

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Digits:
    """sklearn digits, float images pixel/16 in [0, 1] NHWC, split by a seeded permutation."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits() -> Digits:
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    pixels = data.images.astype(np.int64)  # [1797, 8, 8], integers 0..16
    x = (pixels / 16.0).reshape(-1, 8, 8, 1)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    test, train = order[:N_TEST], order[N_TEST:]
    return Digits(x[train], y[train], x[test], y[test])


def quantize_input(x: np.ndarray) -> np.ndarray:
    """Float images (pixel/16) to the models' int8 input: exactly pixel - 128."""
    q = np.round(x / INPUT_QPARAMS.scale) + INPUT_QPARAMS.zero_point
    return np.clip(q, -128, 127).astype(np.int8)


# BasicMotions (UEA time-series archive): four students wearing a smart watch; 3-axis
# accelerometer (m/s^2, gravity removed) and gyroscope at 10 Hz, 10 s per recording, 4
# activities, 40 training and 40 test recordings (the archive's split, used as is: the test
# recordings are never seen in training or calibration). Only the accelerometer is used. The
# .ts files ship in the sktime wheel (dev extra) and, byte-identical, in aeon's; they are read
# directly, without importing either package.
BASIC_MOTIONS = {
    "TRAIN": ("BasicMotions_TRAIN.ts",
              "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6"),
    "TEST": ("BasicMotions_TEST.ts",
             "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc"),
}
DATA_PACKAGES = ("sktime", "aeon")
HAR_CLASSES = ("standing", "walking", "running", "badminton")
HAR_TS_LABELS = {"Standing": 0, "Walking": 1, "Running": 2, "Badminton": 3}
HAR_RATE_HZ = 10
HAR_WINDOW = 24            # samples per window (2.4 s), the model input [1, 24, 3, 1]
HAR_TRAIN_STRIDE = 2       # window starts in the training recordings
HAR_TEST_STRIDE = 4        # window starts in the held-out recordings (20 per recording)
HAR_SAMPLES_PER_CLASS = 8
HAR_TRACE_PER_CLASS = 2    # held-out recordings per class in the streaming trace
STANDARD_GRAVITY = 9.80665
TRACE_FRAC = 11            # trace samples in Q11 g (1 g = 2048), as pipelines/har*.toml read them


class DataError(RuntimeError):
    """The training data cannot be found or is not what the models were made from."""


def basic_motions_dir() -> Path:
    """The BasicMotions folder of an installed sktime or aeon (found without importing it)."""
    import importlib.util

    for pkg in DATA_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        for loc in (spec.submodule_search_locations or []) if spec else []:
            folder = Path(loc) / "datasets" / "data" / "BasicMotions"
            if all((folder / f).is_file() for f, _ in BASIC_MOTIONS.values()):
                return folder
    raise DataError("the BasicMotions data set is not installed: it ships in the sktime wheel "
                    "(pip install -e '.[dev]', or pip install --no-deps sktime==1.2.0)")


def parse_ts(text: str) -> tuple[np.ndarray, list[str]]:
    """A .ts file (sktime/aeon time-series format) with equal-length series and class labels:
    values [cases, dimensions, length] float64 and one label per case."""
    header: dict[str, str] = {}
    rows: list[list[list[float]]] = []
    labels: list[str] = []
    in_data = False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            key, _, value = line.partition(" ")
            if key.lower() == "@data":
                in_data = True
            else:
                header[key.lower()] = value.strip()
            continue
        *dims, label = line.split(":")
        rows.append([[float(v) for v in d.split(",")] for d in dims])
        labels.append(label)
    n_dims, length = int(header["@dimensions"]), int(header["@serieslength"])
    values = np.array(rows, dtype=np.float64)
    if values.shape != (len(labels), n_dims, length):
        raise DataError(f"unexpected .ts shape {values.shape}; header says {n_dims} dimensions "
                        f"of length {length}")
    return values, labels


@dataclass(frozen=True)
class HarData:
    """BasicMotions accelerometer windows [n, 24, 3, 1] in m/s^2 (float64) with class indices;
    the held-out recordings too, for the samples file and the streaming trace."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_recordings: np.ndarray  # [40, 100, 3] m/s^2
    test_labels: np.ndarray      # [40]


def _windows(rec: np.ndarray, labels: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    starts = range(0, rec.shape[1] - HAR_WINDOW + 1, stride)
    x = np.stack([r[s:s + HAR_WINDOW] for r in rec for s in starts])
    y = np.repeat(labels, len(starts))
    return x.reshape(-1, HAR_WINDOW, 3, 1), y


def load_basic_motions(folder: Path | None = None) -> HarData:
    folder = folder or basic_motions_dir()
    split = {}
    for key, (filename, sha) in BASIC_MOTIONS.items():
        raw = (folder / filename).read_bytes()
        if hashlib.sha256(raw).hexdigest() != sha:
            raise DataError(f"{folder / filename} is not the BasicMotions file the models were "
                            f"made from (sha256 {sha[:12]}...)")
        values, names = parse_ts(raw.decode("utf-8"))
        accel = values[:, :3, :].transpose(0, 2, 1)  # [cases, 100, x/y/z]
        split[key] = (accel, np.array([HAR_TS_LABELS[n] for n in names], dtype=np.int64))
    (rec_train, y_train), (rec_test, y_test) = split["TRAIN"], split["TEST"]
    x_train, yw_train = _windows(rec_train, y_train, HAR_TRAIN_STRIDE)
    x_test, yw_test = _windows(rec_test, y_test, HAR_TEST_STRIDE)
    return HarData(x_train, yw_train, x_test, yw_test, rec_test, y_test)


# MIT-BIH heartbeats (../shared/data/mitdb, read at run time with wfdb through
# generator.wakeup.data; never copied here): the random beat-level split (800 test beats per
# class); inputs = the ECG_INPUTS FFT bins with the largest χ² on the training split, each scaled
# by a gain that puts its 99.9th training percentile at ECG_FULL_SCALE (of the [0, 16) input).
ECG_INPUTS = 32
ECG_FULL_SCALE = 12.0
ECG_INPUTS_FILE = "wakeup_mlp_inputs.json"


@dataclass(frozen=True)
class EcgData:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    bins: np.ndarray
    gains: np.ndarray


def load_ecg() -> EcgData:
    from generator.errors import SweetspotError
    from generator.wakeup import data as ecg
    from generator.wakeup.screener import rank_bins

    try:
        beats = ecg.load_beats()
    except SweetspotError as e:
        raise DataError(str(e)) from e
    split = ecg.random_split(beats)
    bins = rank_bins(split.x_train, split.y_train, len(ecg.CLASSES), ECG_INPUTS)
    top = np.percentile(split.x_train[:, bins], 99.9, axis=0)
    gains = (ECG_FULL_SCALE / top).astype(np.float32)

    def scale(x: np.ndarray) -> np.ndarray:
        return np.clip(x[:, bins] * gains.astype(np.float64), 0.0, 255 / 16)

    return EcgData(scale(split.x_train), split.y_train, scale(split.x_test), split.y_test,
                   bins, gains)


# --------------------------------------------------------------------------------------------
# Networks (one description drives training, calibration and writing)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    name: str            # file stem
    layers: list[Layer]
    input_shape: tuple[int, ...]  # without batch
    epochs: int
    seed: int
    lr: float = 3e-3
    dataset: str = "digits"  # key of DATASETS


def cnn_spec() -> Spec:
    return Spec("digits_cnn_int8", [
        Layer("conv1", "conv", (INPUT,), act="relu", kernel=3, out_ch=8),           # 8x8x8
        Layer("dw1", "dwconv", ("conv1",), act="relu6", kernel=3, stride=2),       # 4x4x8
        Layer("pw1", "conv", ("dw1",), act="relu", kernel=1, out_ch=16),           # 4x4x16
        Layer("pool", "maxpool", ("pw1",), kernel=2, stride=2, padding="valid"),   # 2x2x16
        Layer("flatten", "reshape", ("pool",), shape=(64,)),
        Layer("logits", "fc", ("flatten",), out_ch=10),
        Layer("probs", "softmax", ("logits",)),
    ], input_shape=(8, 8, 1), epochs=60, seed=1)


def mlp_spec() -> Spec:
    return Spec("digits_mlp_int8", [
        Layer("fc1", "fc", (INPUT,), act="relu", out_ch=32),
        Layer("logits", "fc", ("fc1",), out_ch=10),
        Layer("probs", "softmax", ("logits",)),
    ], input_shape=(64,), epochs=40, seed=2)


def residual_spec() -> Spec:
    return Spec("residual_int8", [
        Layer("stem", "conv", (INPUT,), act="relu", kernel=3, out_ch=8),           # 8x8x8
        Layer("branch_a", "conv", ("stem",), kernel=1, out_ch=8),                  # 8x8x8
        Layer("branch_b_dw", "dwconv", ("stem",), act="relu6", kernel=3),          # 8x8x8
        Layer("branch_b", "conv", ("branch_b_dw",), kernel=1, out_ch=8),           # 8x8x8
        Layer("add", "add", ("branch_a", "branch_b"), act="relu"),                 # 8x8x8
        Layer("branch_c", "conv", ("stem",), act="relu", kernel=1, out_ch=8),      # 8x8x8
        Layer("concat", "concat", ("add", "branch_c")),                           # 8x8x16
        Layer("pad", "pad", ("concat",), pads=((0, 0), (1, 1), (1, 1), (0, 0))),  # 10x10x16
        Layer("conv2", "conv", ("pad",), act="relu", kernel=3, stride=2, padding="valid",
              out_ch=16),                                                          # 4x4x16
        Layer("mean", "mean", ("conv2",)),                                         # 16
        Layer("logits", "fc", ("mean",), out_ch=10),
        Layer("probs", "softmax", ("logits",)),
    ], input_shape=(8, 8, 1), epochs=30, seed=3)


def har_spec() -> Spec:
    """Activity recognition on BasicMotions windows, the shape family of the zoo's ign_wl_24:
    float32 [1, 24, 3, 1] in (m/s^2) -> QUANTIZE -> CONV_2D 16x1 VALID -> MAX_POOL_2D 3x1 ->
    RESHAPE -> FULLY_CONNECTED -> FULLY_CONNECTED -> SOFTMAX -> DEQUANTIZE -> float32 [1, 4]."""
    return Spec("har_int8", [
        Layer("quantize", "quantize", (INPUT,)),                                   # 24x3x1
        Layer("conv", "conv", ("quantize",), act="relu", kernel=16, kernel_w=1,
              padding="valid", out_ch=24),                                         # 9x3x24
        Layer("pool", "maxpool", ("conv",), kernel=3, kernel_w=1, stride=3, stride_w=1,
              padding="valid"),                                                    # 3x3x24
        Layer("flatten", "reshape", ("pool",), shape=(216,)),
        Layer("fc1", "fc", ("flatten",), act="relu", out_ch=12),
        Layer("logits", "fc", ("fc1",), out_ch=len(HAR_CLASSES)),
        Layer("probs", "softmax", ("logits",)),
        Layer("output", "dequantize", ("probs",)),
    ], input_shape=(HAR_WINDOW, 3, 1), epochs=40, seed=4, dataset="har")


def wakeup_spec() -> Spec:
    """The wake-up back end: 32 χ²-selected FFT bins of a 700 ms heartbeat (int8, the digits
    encoding: q = x·16 − 128 with x = magnitude × per-bin gain in [0, 16)) → FULLY_CONNECTED 74
    ReLU → FULLY_CONNECTED 100 ReLU → FULLY_CONNECTED 4 → SOFTMAX (N, L, R, P)."""
    return Spec("wakeup_mlp_int8", [
        Layer("fc1", "fc", (INPUT,), act="relu", out_ch=74),
        Layer("fc2", "fc", ("fc1",), act="relu", out_ch=100),
        Layer("logits", "fc", ("fc2",), out_ch=4),
        Layer("probs", "softmax", ("logits",)),
    ], input_shape=(ECG_INPUTS,), epochs=20, seed=5, lr=2e-3, dataset="mitdb")


SPECS = {"cnn": cnn_spec, "mlp": mlp_spec, "residual": residual_spec, "har": har_spec,
         "wakeup": wakeup_spec}

# --------------------------------------------------------------------------------------------
# Float network in numpy: forward, backward, training
# --------------------------------------------------------------------------------------------

Params = dict[str, dict[str, np.ndarray]]


def _conv_geometry(x: np.ndarray, layer: Layer) -> tuple[np.ndarray, int, int]:
    """Padded input (TFLM SAME semantics) and output height/width."""
    _, h, w, _ = x.shape
    oh, pt, pb = same_padding(h, layer.kh, layer.sh, layer.padding)
    ow, pl, pr = same_padding(w, layer.kw, layer.sw, layer.padding)
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))), oh, ow


def _window(i: int, j: int, oh: int, ow: int, layer: Layer) -> tuple[slice, ...]:
    """Index of the padded-input pixels that kernel tap (i, j) sees at every output position."""
    sh, sw = layer.sh, layer.sw
    return (slice(None), slice(i, i + sh * (oh - 1) + 1, sh), slice(j, j + sw * (ow - 1) + 1, sw),
            slice(None))


def _activate(z: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return np.maximum(z, 0.0)
    if act == "relu6":
        return np.clip(z, 0.0, 6.0)
    return z


def _activation_grad(y: np.ndarray, g: np.ndarray, act: str) -> np.ndarray:
    if act == "relu":
        return g * (y > 0)
    if act == "relu6":
        return g * ((y > 0) & (y < 6))
    return g


def init_params(spec: Spec, rng: np.random.Generator) -> Params:
    """He-normal weights, zero biases."""
    shapes = infer_shapes(spec)
    params: Params = {}
    for layer in spec.layers:
        c_in = shapes[layer.inputs[0]][-1]
        kh, kw = layer.kh, layer.kw
        if layer.op == "conv":
            w_shape, fan_in = (layer.out_ch, kh, kw, c_in), kh * kw * c_in
        elif layer.op == "dwconv":
            w_shape, fan_in = (1, kh, kw, c_in), kh * kw
        elif layer.op == "fc":
            w_shape, fan_in = (layer.out_ch, c_in), c_in
        else:
            continue
        params[layer.name] = {"w": rng.normal(0.0, np.sqrt(2.0 / fan_in), w_shape),
                              "b": np.zeros(w_shape[0] if layer.op != "dwconv" else c_in)}
    return params


def forward(spec: Spec, params: Params, x: np.ndarray) -> dict[str, np.ndarray]:
    """All activations of the float network; 'probs' is softmax(logits)."""
    acts = {INPUT: x}
    for layer in spec.layers:
        a = acts[layer.inputs[0]]
        p = params.get(layer.name)
        match layer.op:
            case "conv" | "dwconv":
                xp, oh, ow = _conv_geometry(a, layer)
                cout = layer.out_ch if layer.op == "conv" else a.shape[-1]
                z = np.zeros((a.shape[0], oh, ow, cout))
                for i in range(layer.kh):
                    for j in range(layer.kw):
                        win = xp[_window(i, j, oh, ow, layer)]
                        if layer.op == "conv":
                            z += win @ p["w"][:, i, j, :].T
                        else:
                            z += win * p["w"][0, i, j, :]
                y = z + p["b"]
            case "fc":
                y = a @ p["w"].T + p["b"]
            case "maxpool" | "avgpool":
                n, h, w, c = a.shape
                kh, kw = layer.kh, layer.kw
                assert (layer.sh, layer.sw) == (kh, kw) and h % kh == 0 and w % kw == 0
                blocks = a.reshape(n, h // kh, kh, w // kw, kw, c)
                y = blocks.max(axis=(2, 4)) if layer.op == "maxpool" else blocks.mean(axis=(2, 4))
            case "reshape":
                y = a.reshape(a.shape[0], *layer.shape)
            case "add":
                y = a + acts[layer.inputs[1]]
            case "concat":
                y = np.concatenate([acts[i] for i in layer.inputs], axis=-1)
            case "pad":
                y = np.pad(a, layer.pads)
            case "mean":
                y = a.mean(axis=(1, 2))
            case "softmax":
                e = np.exp(a - a.max(axis=1, keepdims=True))
                y = e / e.sum(axis=1, keepdims=True)
            case "quantize" | "dequantize":
                y = a
        acts[layer.name] = _activate(y, layer.act)
    return acts


def backward(spec: Spec, params: Params, acts: dict[str, np.ndarray], labels: np.ndarray
             ) -> Params:
    """Gradients of mean softmax cross-entropy (on the input of the final softmax) w.r.t. params.

    A trailing dequantize (the identity in the float network) is looked through."""
    layers = spec.layers[:-1] if spec.layers[-1].op == "dequantize" else spec.layers
    assert layers[-1].op == "softmax"
    n = labels.shape[0]
    d_logits = acts[layers[-1].name].copy()
    d_logits[np.arange(n), labels] -= 1.0
    grads: dict[str, np.ndarray] = {layers[-1].inputs[0]: d_logits / n}
    pgrads: Params = {}

    def add_grad(name: str, g: np.ndarray) -> None:
        grads[name] = grads[name] + g if name in grads else g

    for layer in reversed(layers[:-1]):
        if layer.name not in grads:
            continue
        g = _activation_grad(acts[layer.name], grads.pop(layer.name), layer.act)
        a = acts[layer.inputs[0]]
        p = params.get(layer.name)
        match layer.op:
            case "conv" | "dwconv":
                xp, oh, ow = _conv_geometry(a, layer)
                dxp = np.zeros_like(xp)
                dw = np.zeros_like(p["w"])
                for i in range(layer.kh):
                    for j in range(layer.kw):
                        sl = _window(i, j, oh, ow, layer)
                        win = xp[sl]
                        if layer.op == "conv":
                            dw[:, i, j, :] = np.tensordot(g, win, axes=([0, 1, 2], [0, 1, 2]))
                            dxp[sl] += g @ p["w"][:, i, j, :]
                        else:
                            dw[0, i, j, :] = (g * win).sum(axis=(0, 1, 2))
                            dxp[sl] += g * p["w"][0, i, j, :]
                pgrads[layer.name] = {"w": dw, "b": g.sum(axis=(0, 1, 2))}
                h, w = a.shape[1:3]
                _, pt, _ = same_padding(h, layer.kh, layer.sh, layer.padding)
                _, pl, _ = same_padding(w, layer.kw, layer.sw, layer.padding)
                add_grad(layer.inputs[0], dxp[:, pt:pt + h, pl:pl + w, :])
            case "fc":
                pgrads[layer.name] = {"w": g.T @ a, "b": g.sum(axis=0)}
                add_grad(layer.inputs[0], g @ p["w"])
            case "maxpool" | "avgpool":
                n_, h, w, c = a.shape
                kh, kw = layer.kh, layer.kw
                blocks = a.reshape(n_, h // kh, kh, w // kw, kw, c).transpose(0, 1, 3, 5, 2, 4)
                blocks = blocks.reshape(n_, h // kh, w // kw, c, kh * kw)
                if layer.op == "maxpool":  # gradient to the first maximum of each window
                    mask = np.eye(kh * kw)[blocks.argmax(axis=-1)]
                else:
                    mask = np.full(blocks.shape, 1.0 / (kh * kw))
                d = (mask * g[..., None]).reshape(n_, h // kh, w // kw, c, kh, kw)
                add_grad(layer.inputs[0], d.transpose(0, 1, 4, 2, 5, 3).reshape(a.shape))
            case "reshape":
                add_grad(layer.inputs[0], g.reshape(a.shape))
            case "quantize":
                add_grad(layer.inputs[0], g)
            case "add":
                add_grad(layer.inputs[0], g)
                add_grad(layer.inputs[1], g)
            case "concat":
                start = 0
                for name in layer.inputs:
                    c = acts[name].shape[-1]
                    add_grad(name, g[..., start:start + c])
                    start += c
            case "pad":
                (_, _), (pt, pb), (pl, pr), (_, _) = layer.pads
                add_grad(layer.inputs[0], g[:, pt:g.shape[1] - pb, pl:g.shape[2] - pr, :])
            case "mean":
                h, w = a.shape[1:3]
                add_grad(layer.inputs[0], np.broadcast_to(g[:, None, None, :] / (h * w), a.shape))
    return pgrads


def infer_shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    """Every activation's shape, batch 1."""
    shapes: dict[str, tuple[int, ...]] = {INPUT: (1, *spec.input_shape)}
    for layer in spec.layers:
        shape = shapes[layer.inputs[0]]
        match layer.op:
            case "conv" | "dwconv":
                _, h, w, c = shape
                oh = same_padding(h, layer.kh, layer.sh, layer.padding)[0]
                ow = same_padding(w, layer.kw, layer.sw, layer.padding)[0]
                shape = (1, oh, ow, layer.out_ch if layer.op == "conv" else c)
            case "fc":
                shape = (1, layer.out_ch)
            case "maxpool" | "avgpool":
                _, h, w, c = shape
                shape = (1, h // layer.kh, w // layer.kw, c)
            case "reshape":
                shape = (1, *layer.shape)
            case "concat":
                shape = (*shape[:-1], sum(shapes[i][-1] for i in layer.inputs))
            case "pad":
                shape = tuple(d + a + b for d, (a, b) in zip(shape, layer.pads, strict=True))
            case "mean":
                shape = (1, shape[-1])
        shapes[layer.name] = shape
    return shapes


def to_input(spec: Spec, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], *spec.input_shape)


def train(spec: Spec, data: Digits | HarData | EcgData, batch: int = 32) -> Params:
    """Mini-batch Adam with cosine learning-rate decay; seeded, so deterministic."""
    rng = np.random.default_rng(spec.seed)
    params = init_params(spec, rng)
    m = {k: {n: np.zeros_like(v) for n, v in p.items()} for k, p in params.items()}
    v = {k: {n: np.zeros_like(v) for n, v in p.items()} for k, p in params.items()}
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    x_all, y_all = to_input(spec, data.x_train), data.y_train
    steps_per_epoch = -(-len(y_all) // batch)
    t = 0
    for epoch in range(spec.epochs):
        lr = spec.lr * 0.5 * (1.0 + np.cos(np.pi * epoch / spec.epochs))
        order = rng.permutation(len(y_all))
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            acts = forward(spec, params, x_all[idx])
            grads = backward(spec, params, acts, y_all[idx])
            t += 1
            for k, p in params.items():
                for n in p:
                    m[k][n] = beta1 * m[k][n] + (1 - beta1) * grads[k][n]
                    v[k][n] = beta2 * v[k][n] + (1 - beta2) * grads[k][n] ** 2
                    m_hat = m[k][n] / (1 - beta1**t)
                    v_hat = v[k][n] / (1 - beta2**t)
                    p[n] = p[n] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probs.argmax(axis=1) == labels))


# --------------------------------------------------------------------------------------------
# Calibrate, quantize, write, evaluate in TFLM
# --------------------------------------------------------------------------------------------


def calibrate(spec: Spec, params: Params, x: np.ndarray) -> dict[str, tuple[float, float]]:
    """[min, max] of every activation of the float network over x."""
    acts = forward(spec, params, to_input(spec, x))
    return {name: (float(a.min()), float(a.max())) for name, a in acts.items()}


DATA_TEXT = {"digits": "sklearn digits", "har": "BasicMotions (UEA archive) accelerometer windows",
             "mitdb": "MIT-BIH Arrhythmia Database heartbeats (FFT bins)"}


def quantize_and_write(spec: Spec, params: Params, data: Digits | HarData | EcgData) -> bytes:
    qparams = assign_qparams(spec.layers, calibrate(spec, params, data.x_train), INPUT)
    description = (f"sweetspot {spec.name}: int8, trained on {DATA_TEXT[spec.dataset]} by "
                   "models/make_models.py")
    return build_tflite(spec.layers, params, infer_shapes(spec), qparams, INPUT, description)


def model_input(spec: Spec, x: np.ndarray) -> np.ndarray:
    """What the .tflite takes: float32 for a model that starts with QUANTIZE, else the int8
    digits encoding."""
    if spec.layers[0].op == "quantize":
        return to_input(spec, x).astype(np.float32)
    return quantize_input(x)


def tflm_predict(model: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs of the model as the TFLM interpreter runs it, one sample at a time (x already in
    the model's input type)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model)
    shape = tuple(interpreter.get_input_details(0)["shape"])
    outputs = []
    for sample in x:
        interpreter.set_input(sample.reshape(shape), 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).reshape(-1).copy())
    return np.stack(outputs)


@dataclass(frozen=True)
class Made:
    spec: Spec
    model: bytes
    float_accuracy: float
    int8_accuracy: float
    n_test: int


def make(spec: Spec, data: Digits | HarData | EcgData) -> Made:
    params = train(spec, data)
    float_acc = accuracy(forward(spec, params, to_input(spec, data.x_test))[spec.layers[-1].name],
                         data.y_test)
    model = quantize_and_write(spec, params, data)
    int8_acc = accuracy(tflm_predict(model, model_input(spec, data.x_test)), data.y_test)
    return Made(spec, model, float_acc, int8_acc, len(data.y_test))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz with fixed zip timestamps, so the bytes are deterministic (np.savez stamps the
    time)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    return out.getvalue()


def samples_npz(data: Digits) -> bytes:
    """The first N_SAMPLES held-out images as int8 model input, plus labels, as .npz bytes.

    Keys: images int8 [N,8,8,1] (q = pixel - 128), labels uint8 [N], scale float32,
    zero_point int32.
    """
    return npz_bytes({
        "images": quantize_input(data.x_test[:N_SAMPLES]),
        "labels": data.y_test[:N_SAMPLES].astype(np.uint8),
        "scale": np.float32(INPUT_QPARAMS.scale),
        "zero_point": np.int32(INPUT_QPARAMS.zero_point),
    })


def har_trace(data: HarData) -> tuple[np.ndarray, np.ndarray]:
    """The streaming trace: the first HAR_TRACE_PER_CLASS held-out recordings of each class, in
    class order, back to back, as an int16 [samples, 3] accelerometer in Q11 g (what a +-16 g
    sensor gives); and the true class of every sample."""
    picks = [i for c in range(len(HAR_CLASSES))
             for i in np.flatnonzero(data.test_labels == c)[:HAR_TRACE_PER_CLASS]]
    accel = np.concatenate([data.test_recordings[i] for i in picks])
    q = np.round(accel / STANDARD_GRAVITY * (1 << TRACE_FRAC))
    trace = np.clip(q, -(2**15), 2**15 - 1).astype(np.int16)
    labels = np.repeat(data.test_labels[picks], data.test_recordings.shape[1]).astype(np.uint8)
    return trace, labels


def har_samples_npz(data: HarData) -> bytes:
    """HAR_SAMPLES_PER_CLASS held-out windows per class (from different test recordings, at
    different offsets) as the model's float32 input, their labels, the class names and the
    trace's per-sample labels."""
    per_rec = (data.test_recordings.shape[1] - HAR_WINDOW) // HAR_TEST_STRIDE + 1
    idx = []
    for c in range(len(HAR_CLASSES)):
        recs = np.flatnonzero(data.test_labels == c)[:HAR_SAMPLES_PER_CLASS]
        idx += [int(r) * per_rec + (5 * k) % per_rec for k, r in enumerate(recs)]
    _, trace_labels = har_trace(data)
    return npz_bytes({
        "windows": data.x_test[idx].astype(np.float32),
        "labels": data.y_test[idx].astype(np.uint8),
        "classes": np.array(HAR_CLASSES),
        "rate_hz": np.float32(HAR_RATE_HZ),
        "trace_labels": trace_labels,
    })


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


SAMPLES_FILE = "digits_samples.npz"
HAR_SAMPLES_FILE = "har_samples.npz"
HAR_TRACE_FILE = "har_trace.npy"


def _digits_files(data: Digits) -> dict[str, bytes]:
    return {SAMPLES_FILE: samples_npz(data)}


def _har_files(data: HarData) -> dict[str, bytes]:
    return {HAR_SAMPLES_FILE: har_samples_npz(data), HAR_TRACE_FILE: npy_bytes(har_trace(data)[0])}


def _ecg_files(data: EcgData) -> dict[str, bytes]:
    """The back end's input definition (which bins, which gains), what the firmware generator
    and the wake-up report quantize beats with."""
    import json

    doc = {"bins": [int(b) for b in data.bins], "gains": [float(g) for g in data.gains],
           "input_scale": 1 / 16, "input_zero_point": -128,
           "rule": "q = clip(round(|rfft(beat - mean)|/252 [bin] * gain * 16) - 128, -128, 127)"}
    return {ECG_INPUTS_FILE: (json.dumps(doc, indent=1) + "\n").encode()}


# dataset key -> (loader, the data files written with its models)
DATASETS = {"digits": (load_digits, _digits_files), "har": (load_basic_motions, _har_files),
            "mitdb": (load_ecg, _ecg_files)}


def generate(names: list[str], out_dir: Path) -> tuple[list[Made], list[str]]:
    """Write the selected models and their data sets' files into out_dir (temp file + rename);
    returns what was made and the names of the data files."""
    specs = {name: SPECS[name]() for name in dict.fromkeys(names)}
    made: dict[str, Made] = {}
    data_files: dict[str, bytes] = {}
    for key, (loader, extra) in DATASETS.items():
        chosen = [name for name, spec in specs.items() if spec.dataset == key]
        if not chosen:
            continue
        data = loader()
        made |= {name: make(specs[name], data) for name in chosen}
        data_files |= extra(data)
    ordered = [made[name] for name in specs]
    files = {f"{m.spec.name}.tflite": m.model for m in ordered} | data_files
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, content in files.items():
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=f".{filename}.", delete=False) as f:
            f.write(content)
        os.chmod(f.name, 0o644)
        Path(f.name).replace(out_dir / filename)
    return ordered, list(data_files)


def _ops(model: bytes) -> str:
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    ops = [op.opcode_name for op in model_editor.read(model).subgraphs[0].operators]
    return ", ".join(ops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: the models/ folder)")
    parser.add_argument("--models", nargs="+", choices=sorted(SPECS), default=list(SPECS),
                        help="which models to make (default: all); their data sets' sample "
                        "files always")
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary directory; fail if --out differs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) if args.check else args.out
        try:
            made, data_files = generate(args.models, target)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{'model':<18} {'float acc':>9} {'int8 acc (TFLM)':>15} {'bytes':>7}  sha256")
        for m in made:
            digest = hashlib.sha256(m.model).hexdigest()
            print(f"{m.spec.name:<18} {m.float_accuracy:>9.2%} {m.int8_accuracy:>15.2%} "
                  f"{len(m.model):>7}  {digest}")
            print(f"{'':<18} ops: {_ops(m.model)}; accuracy on {m.n_test} held-out "
                  f"{ {'har': 'windows', 'mitdb': 'beats'}.get(m.spec.dataset, 'digits')}")
        print(f"data files: {', '.join(data_files)}")
        if not args.check:
            return 0
        names = [f"{m.spec.name}.tflite" for m in made] + data_files
        differ = [n for n in names
                  if not (args.out / n).is_file()
                  or (args.out / n).read_bytes() != (target / n).read_bytes()]
        if differ:
            print(f"check FAILED: {', '.join(differ)} in {args.out} differ from a fresh "
                  f"generation; rerun `python models/make_models.py` and commit the result",
                  file=sys.stderr)
            return 1
        print(f"check ok: {', '.join(names)} match a fresh generation")
        return 0


if __name__ == "__main__":
    sys.exit(main())
