"""bench/bench_backends.py's inputs: models by name, by path, or as whole folders; the
tflite-micro checkout from ../shared by default (issue 15)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from _util import ROOT

from generator.tflm import tree as tflm


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_backends",
                                                  ROOT / "bench" / "bench_backends.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_models_by_name_path_and_folder(bench, tmp_path):
    mine = tmp_path / "my_net_int8.tflite"
    mine.write_bytes(b"stand-in")
    got = bench.model_paths(["stmnist_v1", str(mine), "project"])
    assert got["stmnist_v1"] == bench.ZOO / "stmnist_v1_int8.tflite"
    assert got["my_net"] == mine.resolve()
    project = sorted((ROOT / "models").glob("*.tflite"))
    assert project and all(got[p.stem.removesuffix("_int8")] == p for p in project)
    with pytest.raises(SystemExit, match="'nonet' is neither a name"):
        bench.model_paths(["nonet"])
    with pytest.raises(SystemExit, match="does not exist"):
        bench.model_paths([str(tmp_path / "absent.tflite")])


def _fake_checkout(where: Path) -> Path:
    gen = where / tflm.TREE_GENERATOR
    gen.parent.mkdir(parents=True)
    gen.write_text("# stand-in\n")
    return where


def test_checkout_defaults_to_shared(bench, tmp_path, monkeypatch):
    shared = _fake_checkout(tmp_path / "shared" / "tflite-micro")
    monkeypatch.setattr(bench, "SHARED_TFLM", shared)
    monkeypatch.delenv(tflm.ENV_ROOT, raising=False)
    assert bench.checkout(None) == shared.resolve()
    other = _fake_checkout(tmp_path / "other")
    monkeypatch.setenv(tflm.ENV_ROOT, str(other))
    assert bench.checkout(None) == other.resolve()
    named = _fake_checkout(tmp_path / "named")
    assert bench.checkout(str(named)) == named.resolve()
    monkeypatch.delenv(tflm.ENV_ROOT)
    monkeypatch.setattr(bench, "SHARED_TFLM", tmp_path / "nowhere")
    with pytest.raises(tflm.TflmSetupError, match="needs a tflite-micro checkout"):
        bench.checkout(None)
