"""Make the project's own small int8 models from scikit-learn's digits data set.

    python models/make_models.py [--out models/] [--models NAME ...] [--check]

For each model: train the float network in numpy (Adam, seeded, float64), calibrate activation
ranges on the training split, quantize to full-integer int8 and write the .tflite with the
tflite-micro wheel's model_editor (models/_quant.py), then measure accuracy of the int8 model as the
TFLM interpreter runs it on the held-out split. Also writes digits_samples.npz: held-out samples
already quantized to the models' int8 input, with labels, so demos and tests need no scikit-learn.

The output is deterministic: the same bytes on every run. --check regenerates into a temporary
directory and exits 1 if any committed file differs.

Needs numpy, scikit-learn (dev extra) and tflite-micro; not TensorFlow.
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


SPECS = {"cnn": cnn_spec, "mlp": mlp_spec, "residual": residual_spec}

# --------------------------------------------------------------------------------------------
# Float network in numpy: forward, backward, training
# --------------------------------------------------------------------------------------------

Params = dict[str, dict[str, np.ndarray]]


def _conv_geometry(x: np.ndarray, layer: Layer) -> tuple[np.ndarray, int, int]:
    """Padded input (TFLM SAME semantics) and output height/width."""
    _, h, w, _ = x.shape
    oh, pt, pb = same_padding(h, layer.kernel, layer.stride, layer.padding)
    ow, pl, pr = same_padding(w, layer.kernel, layer.stride, layer.padding)
    return np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))), oh, ow


def _window(i: int, j: int, oh: int, ow: int, s: int) -> tuple[slice, ...]:
    """Index of the padded-input pixels that kernel tap (i, j) sees at every output position."""
    return (slice(None), slice(i, i + s * (oh - 1) + 1, s), slice(j, j + s * (ow - 1) + 1, s),
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
        k = layer.kernel
        if layer.op == "conv":
            w_shape, fan_in = (layer.out_ch, k, k, c_in), k * k * c_in
        elif layer.op == "dwconv":
            w_shape, fan_in = (1, k, k, c_in), k * k
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
                for i in range(layer.kernel):
                    for j in range(layer.kernel):
                        win = xp[_window(i, j, oh, ow, layer.stride)]
                        if layer.op == "conv":
                            z += win @ p["w"][:, i, j, :].T
                        else:
                            z += win * p["w"][0, i, j, :]
                y = z + p["b"]
            case "fc":
                y = a @ p["w"].T + p["b"]
            case "maxpool" | "avgpool":
                n, h, w, c = a.shape
                k = layer.kernel
                assert layer.stride == k and h % k == 0 and w % k == 0
                blocks = a.reshape(n, h // k, k, w // k, k, c)
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
        acts[layer.name] = _activate(y, layer.act)
    return acts


def backward(spec: Spec, params: Params, acts: dict[str, np.ndarray], labels: np.ndarray
             ) -> Params:
    """Gradients of mean softmax cross-entropy (on the input of the final softmax) w.r.t. params."""
    assert spec.layers[-1].op == "softmax"
    n = labels.shape[0]
    d_logits = acts[spec.layers[-1].name].copy()
    d_logits[np.arange(n), labels] -= 1.0
    grads: dict[str, np.ndarray] = {spec.layers[-1].inputs[0]: d_logits / n}
    pgrads: Params = {}

    def add_grad(name: str, g: np.ndarray) -> None:
        grads[name] = grads[name] + g if name in grads else g

    for layer in reversed(spec.layers[:-1]):
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
                for i in range(layer.kernel):
                    for j in range(layer.kernel):
                        sl = _window(i, j, oh, ow, layer.stride)
                        win = xp[sl]
                        if layer.op == "conv":
                            dw[:, i, j, :] = np.tensordot(g, win, axes=([0, 1, 2], [0, 1, 2]))
                            dxp[sl] += g @ p["w"][:, i, j, :]
                        else:
                            dw[0, i, j, :] = (g * win).sum(axis=(0, 1, 2))
                            dxp[sl] += g * p["w"][0, i, j, :]
                pgrads[layer.name] = {"w": dw, "b": g.sum(axis=(0, 1, 2))}
                h, w = a.shape[1:3]
                _, pt, _ = same_padding(h, layer.kernel, layer.stride, layer.padding)
                _, pl, _ = same_padding(w, layer.kernel, layer.stride, layer.padding)
                add_grad(layer.inputs[0], dxp[:, pt:pt + h, pl:pl + w, :])
            case "fc":
                pgrads[layer.name] = {"w": g.T @ a, "b": g.sum(axis=0)}
                add_grad(layer.inputs[0], g @ p["w"])
            case "maxpool" | "avgpool":
                n_, h, w, c = a.shape
                k = layer.kernel
                blocks = a.reshape(n_, h // k, k, w // k, k, c).transpose(0, 1, 3, 5, 2, 4)
                blocks = blocks.reshape(n_, h // k, w // k, c, k * k)
                if layer.op == "maxpool":  # gradient to the first maximum of each window
                    mask = np.eye(k * k)[blocks.argmax(axis=-1)]
                else:
                    mask = np.full(blocks.shape, 1.0 / (k * k))
                d = (mask * g[..., None]).reshape(n_, h // k, w // k, c, k, k)
                add_grad(layer.inputs[0], d.transpose(0, 1, 4, 2, 5, 3).reshape(a.shape))
            case "reshape":
                add_grad(layer.inputs[0], g.reshape(a.shape))
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
                oh = same_padding(h, layer.kernel, layer.stride, layer.padding)[0]
                ow = same_padding(w, layer.kernel, layer.stride, layer.padding)[0]
                shape = (1, oh, ow, layer.out_ch if layer.op == "conv" else c)
            case "fc":
                shape = (1, layer.out_ch)
            case "maxpool" | "avgpool":
                _, h, w, c = shape
                shape = (1, h // layer.kernel, w // layer.kernel, c)
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


def train(spec: Spec, data: Digits, batch: int = 32) -> Params:
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


def quantize_and_write(spec: Spec, params: Params, data: Digits) -> bytes:
    qparams = assign_qparams(spec.layers, calibrate(spec, params, data.x_train), INPUT)
    description = (f"sweetspot {spec.name}: int8, trained on sklearn digits by "
                   "models/make_models.py")
    return build_tflite(spec.layers, params, infer_shapes(spec), qparams, INPUT, description)


def tflm_predict(model: bytes, x_int8: np.ndarray) -> np.ndarray:
    """int8 outputs of the model as the TFLM interpreter runs it, one sample at a time."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model)
    shape = tuple(interpreter.get_input_details(0)["shape"])
    outputs = []
    for sample in x_int8:
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


def make(spec: Spec, data: Digits) -> Made:
    params = train(spec, data)
    float_acc = accuracy(forward(spec, params, to_input(spec, data.x_test))[spec.layers[-1].name],
                         data.y_test)
    model = quantize_and_write(spec, params, data)
    int8_acc = accuracy(tflm_predict(model, quantize_input(data.x_test)), data.y_test)
    return Made(spec, model, float_acc, int8_acc)


def samples_npz(data: Digits) -> bytes:
    """The first N_SAMPLES held-out images as int8 model input, plus labels, as .npz bytes.

    Written with fixed zip timestamps so the bytes are deterministic (np.savez stamps the time).
    Keys: images int8 [N,8,8,1] (q = pixel - 128), labels uint8 [N], scale float32, zero_point int32.
    """
    arrays = {
        "images": quantize_input(data.x_test[:N_SAMPLES]),
        "labels": data.y_test[:N_SAMPLES].astype(np.uint8),
        "scale": np.float32(INPUT_QPARAMS.scale),
        "zero_point": np.int32(INPUT_QPARAMS.zero_point),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    return out.getvalue()


SAMPLES_FILE = "digits_samples.npz"


def generate(names: list[str], out_dir: Path) -> list[Made]:
    """Write the selected models and the samples file into out_dir (temp file + rename)."""
    data = load_digits()
    made = [make(SPECS[name](), data) for name in names]
    files = {f"{m.spec.name}.tflite": m.model for m in made}
    files[SAMPLES_FILE] = samples_npz(data)
    out_dir.mkdir(parents=True, exist_ok=True)
    for filename, content in files.items():
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=f".{filename}.", delete=False) as f:
            f.write(content)
        os.chmod(f.name, 0o644)
        Path(f.name).replace(out_dir / filename)
    return made


def _ops(model: bytes) -> str:
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    ops = [op.opcode_name for op in model_editor.read(model).subgraphs[0].operators]
    return ", ".join(ops)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: the models/ folder)")
    parser.add_argument("--models", nargs="+", choices=sorted(SPECS), default=list(SPECS),
                        help="which models to make (default: all); the samples file always")
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary directory; fail if --out differs")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) if args.check else args.out
        made = generate(args.models, target)
        print(f"{'model':<18} {'float acc':>9} {'int8 acc (TFLM)':>15} {'bytes':>7}  sha256")
        for m in made:
            digest = hashlib.sha256(m.model).hexdigest()
            print(f"{m.spec.name:<18} {m.float_accuracy:>9.2%} {m.int8_accuracy:>15.2%} "
                  f"{len(m.model):>7}  {digest}")
            print(f"{'':<18} ops: {_ops(m.model)}")
        print(f"(accuracy on {N_TEST} held-out digits; {SAMPLES_FILE}: {N_SAMPLES} samples)")
        if not args.check:
            return 0
        names = [f"{m.spec.name}.tflite" for m in made] + [SAMPLES_FILE]
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
