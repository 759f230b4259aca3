"""Whole models compiled for board=host: byte-equal with the TFLM interpreter on many seeded
inputs (uniform, narrow, extreme, sparse; for float inputs ties and out-of-range values) and, for
the project's digits models, on the committed real samples.

Zoo models (../shared/models/zoo) are skipped when absent. The slow variant runs 1000 inputs
per model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _infer_util import compare_loaded
from _util import ZOO
from tflite_micro import runtime

from generator.targets.hostmodel import HostModel, build_host_model

MODELS = Path(__file__).resolve().parents[1] / "models"
PROJECT = ["digits_cnn_int8", "digits_mlp_int8", "residual_int8"]
ZOO_NAMES = ["ign_wl_24_int8", "stmnist_v1_int8", "mobilenet_v1_0.25_96_int8",
             "fdmobilenet_0.25_128_int8", "fdmobilenet_0.25_224_int8",
             "squeezenet_v1.0_128_int8"]
#: input sets per zoo model (TFLM's reference interpreter takes ~0.6 s per SqueezeNet inference)
COUNTS = {"squeezenet_v1.0_128_int8": 5, "fdmobilenet_0.25_224_int8": 5}
SLOW_COUNTS = {"squeezenet_v1.0_128_int8": 100}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    cache: dict[Path, HostModel] = {}

    def get(path: Path) -> HostModel:
        if path not in cache:
            bdir = tmp_path_factory.mktemp(path.stem.replace(".", "_"))
            cache[path] = build_host_model(path, bdir)
        return cache[path]

    return get


def _zoo(name: str) -> Path:
    if not ZOO.is_dir():
        pytest.skip(f"zoo models not available: {ZOO} is absent (it lives in ../shared)")
    return ZOO / f"{name}.tflite"


@pytest.mark.parametrize("name", PROJECT)
def test_project_model_random_inputs(name: str, built) -> None:  # noqa: ANN001
    path = MODELS / f"{name}.tflite"
    compared, mismatches = compare_loaded(built(path), path, seed=101, count=200)
    assert compared == 200
    assert not mismatches, "\n".join(mismatches[:10])


@pytest.mark.parametrize("name", PROJECT)
def test_project_model_real_samples(name: str, built) -> None:  # noqa: ANN001
    path = MODELS / f"{name}.tflite"
    model = built(path)
    with np.load(MODELS / "digits_samples.npz") as f:
        images = f["images"]
    interpreter = runtime.Interpreter.from_file(str(path))
    shape = tuple(model.inputs[0]["shape"])
    correct = 0
    with np.load(MODELS / "digits_samples.npz") as f:
        labels = f["labels"]
    for image, label in zip(images, labels):
        x = image.reshape(shape)
        ours = model.run(x)[0]
        interpreter.set_input(x, 0)
        interpreter.invoke()
        ref = np.asarray(interpreter.get_output(0))
        assert ours.tobytes() == ref.tobytes()
        correct += int(np.argmax(ours) == label)
    assert correct >= 0.75 * len(labels)  # it is a classifier, not noise


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_model_random_inputs(name: str, built) -> None:  # noqa: ANN001
    path = _zoo(name)
    count = COUNTS.get(name, 20 if "mobilenet" in name else 100)
    compared, mismatches = compare_loaded(built(path), path, seed=7, count=count)
    assert compared == count
    assert not mismatches, "\n".join(mismatches[:10])


@pytest.mark.slow
@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_NAMES)
def test_zoo_model_many_inputs(name: str, built) -> None:  # noqa: ANN001
    path = _zoo(name)
    count = SLOW_COUNTS.get(name, 1000)
    compared, mismatches = compare_loaded(built(path), path, seed=2024, count=count)
    assert compared == count
    assert not mismatches, "\n".join(mismatches[:10])


@pytest.mark.slow
@pytest.mark.parametrize("name", PROJECT)
def test_project_model_many_inputs(name: str, built) -> None:  # noqa: ANN001
    path = MODELS / f"{name}.tflite"
    compared, mismatches = compare_loaded(built(path), path, seed=4048, count=3000)
    assert compared == 3000
    assert not mismatches, "\n".join(mismatches[:10])
