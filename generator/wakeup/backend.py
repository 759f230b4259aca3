"""The back end the screener wakes: the committed int8 MLP (``models/wakeup_mlp_int8.tflite``,
trained by ``models/make_models.py --models wakeup``) and its input definition
(``models/wakeup_mlp_inputs.json``: the 32 χ²-selected FFT bins and their gains)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator import PROJECT_ROOT
from generator.errors import ModelError

MODEL = PROJECT_ROOT / "models" / "wakeup_mlp_int8.tflite"
INPUTS = PROJECT_ROOT / "models" / "wakeup_mlp_inputs.json"


@dataclass(frozen=True)
class InputDef:
    bins: np.ndarray   # int [32]
    gains: np.ndarray  # float32 [32]


def input_def(path: Path = INPUTS) -> InputDef:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read the back end's input definition {path}: {e}; "
                         "regenerate it with `python models/make_models.py --models wakeup`"
                         ) from e
    return InputDef(np.asarray(doc["bins"], dtype=np.int64),
                    np.asarray(doc["gains"], dtype=np.float32))


def mlp_inputs(features: np.ndarray, idef: InputDef | None = None) -> np.ndarray:
    """Float FFT features [n, 127] → the MLP's int8 input [n, 32] (the rule make_models.py
    trained and calibrated with: x = clip(f · gain, 0, 255/16), q = round(16 x) − 128)."""
    idef = idef or input_def()
    x = np.clip(features[:, idef.bins] * idef.gains.astype(np.float64), 0.0, 255 / 16)
    return np.clip(np.round(x / np.float32(1 / 16)) - 128, -128, 127).astype(np.int8)


def tflm_outputs(x: np.ndarray, model: Path = MODEL) -> np.ndarray:
    """int8 softmax outputs [n, 4] as the TFLM interpreter (tflite-micro wheel) computes them."""
    from tflite_micro import runtime

    interp = runtime.Interpreter.from_file(str(model))
    out = np.empty((len(x), 4), dtype=np.int8)
    for i, row in enumerate(x):
        interp.set_input(row.reshape(1, -1), 0)
        interp.invoke()
        out[i] = np.asarray(interp.get_output(0)).reshape(-1)
    return out


def decide(outputs: np.ndarray) -> np.ndarray:
    """Class of each output row: the first maximum (as the firmware's argmax)."""
    return np.asarray(outputs).argmax(axis=1)
