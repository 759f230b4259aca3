"""The TFLM backend on the host side: the message without a checkout, the backend choice, the
resolver and arena arithmetic, and (with a checkout) the tree and the generated glue.

Tests that need a tflite-micro checkout skip with the same how-to message a user gets; CI has none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _util import ROOT, ZOO

from generator.boards import load_board
from generator.errors import AppError, SweetspotError
from generator.tflm import arena as tflm_arena
from generator.tflm import tree as tflm

IGN = ZOO / "ign_wl_24_int8.tflite"


def _env_without_checkout() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(tflm.ENV_ROOT, None)
    return env


def checkout_or_skip() -> Path:
    try:
        return tflm.locate_checkout({})
    except tflm.TflmSetupError as e:
        pytest.skip(str(e))


# ---- without a checkout ----------------------------------------------------------------------

def test_no_checkout_message_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv(tflm.ENV_ROOT, raising=False)
    with pytest.raises(tflm.TflmSetupError) as e:
        tflm.locate_checkout({})
    msg = str(e.value)
    assert "git clone https://github.com/tensorflow/tflite-micro.git" in msg
    assert "third_party_downloads" in msg and "cmsis_nn" in msg and "pigweed" in msg
    assert "--tflm-root" in msg and "tflm_root=" in msg and tflm.ENV_ROOT in msg
    assert "pillow" in msg and "libstdc++-arm-none-eabi-dev" in msg
    assert e.value.exit_code == 2


def test_checkout_that_is_not_tflm(tmp_path):
    (tmp_path / "README.md").write_text("not tflite-micro\n")
    with pytest.raises(tflm.TflmSetupError, match="is not a tflite-micro checkout"):
        tflm.locate_checkout({"tflm_root": str(tmp_path)})
    with pytest.raises(tflm.TflmSetupError, match="does not exist"):
        tflm.locate_checkout({"tflm_root": str(tmp_path / "nope")})


def test_missing_downloads_are_named(tmp_path):
    gen = tmp_path / tflm.TREE_GENERATOR
    gen.parent.mkdir(parents=True)
    gen.write_text("# stand-in\n")
    (tmp_path / tflm.DOWNLOADS / "flatbuffers").mkdir(parents=True)
    root = tflm.locate_checkout({"tflm_root": str(tmp_path)})
    assert root == tmp_path.resolve()
    assert tflm.missing_downloads(root, "reference") == ["gemmlowp", "ruy", "kissfft", "pigweed"]
    with pytest.raises(tflm.TflmSetupError) as e:
        tflm.check_downloads(root, "cmsis_nn")
    assert "gemmlowp, ruy, kissfft, pigweed, cmsis, cmsis_nn" in str(e.value)
    assert tflm.DOWNLOAD_COMMAND in str(e.value)


def test_scons_without_checkout_fails_with_the_message(tmp_path, zoo_dir):
    build = tmp_path / "b"
    p = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", "-C", str(ROOT), "board=qemu_m33", "app=infer",
         "backend=tflm", f"model={IGN}", f"build={build}"],
        capture_output=True, text=True, timeout=120, env=_env_without_checkout())
    assert p.returncode == 2, p.stderr
    assert "scons: error: backend tflm needs a tflite-micro checkout" in p.stderr
    assert "git clone https://github.com/tensorflow/tflite-micro.git" in p.stderr
    assert "Traceback" not in p.stderr
    assert not build.exists()


def test_cli_run_without_checkout_fails_with_the_message(tmp_path, zoo_dir):
    build = tmp_path / "b"
    p = subprocess.run(
        [sys.executable, "-m", "generator.cli", "run", "--board", "qemu_m33", "--model", str(IGN),
         "--backend", "tflm", "--build-dir", str(build)],
        capture_output=True, text=True, timeout=120, env=_env_without_checkout(), cwd=ROOT)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("sweetspot: error: backend tflm needs a tflite-micro checkout")
    assert "git clone https://github.com/tensorflow/tflite-micro.git" in p.stderr
    assert tflm.DOWNLOAD_COMMAND in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""
    assert not build.exists()


# ---- choosing the backend --------------------------------------------------------------------

def test_backend_resolution():
    assert tflm.resolve_app("infer", {"backend": "tflm"}) == "tflm"
    assert tflm.resolve_app("infer", {}) == "infer"
    assert tflm.resolve_app("infer", {"backend": "generated"}) == "infer"
    assert tflm.resolve_app("bench", {}) == "bench"
    with pytest.raises(AppError, match="backend=onnx is unknown; known: generated, tflm"):
        tflm.resolve_app("infer", {"backend": "onnx"})
    with pytest.raises(AppError, match="use it with app=infer"):
        tflm.resolve_app("bench", {"backend": "tflm"})
    assert tflm.default_build_name("infer", {"backend": "tflm"}) == "tflm-reference"
    assert tflm.default_build_name("infer", {"backend": "tflm", "tflm_kernels": "cmsis_nn"}) \
        == "tflm-cmsis_nn"
    assert tflm.default_build_name("infer", {}) == "infer"


def test_cmsis_nn_only_on_m4_m7_m33():
    for name in ("qemu_m4", "qemu_m7", "qemu_m33", "nucleo_u575"):
        tflm.check_kernels(load_board(name), "cmsis_nn")
    with pytest.raises(AppError, match="cortex-m0: use tflm_kernels=reference"):
        tflm.check_kernels(load_board("qemu_m0"), "cmsis_nn")
    with pytest.raises(AppError, match="tflm_kernels=fast is unknown"):
        tflm.check_kernels(load_board("qemu_m33"), "fast")


# ---- resolver and arena arithmetic (hand-worked) -----------------------------------------------

@pytest.mark.parametrize("opcode,method", [
    ("CONV_2D", "AddConv2D"), ("DEPTHWISE_CONV_2D", "AddDepthwiseConv2D"),
    ("FULLY_CONNECTED", "AddFullyConnected"), ("MAX_POOL_2D", "AddMaxPool2D"),
    ("AVERAGE_POOL_2D", "AddAveragePool2D"), ("SOFTMAX", "AddSoftmax"),
    ("QUANTIZE", "AddQuantize"), ("DEQUANTIZE", "AddDequantize"), ("MEAN", "AddMean"),
    ("RESHAPE", "AddReshape"), ("RELU6", "AddRelu6"), ("CONCATENATION", "AddConcatenation"),
    ("PADV2", "AddPadV2"), ("BATCH_MATMUL", "AddBatchMatMul"), ("CUMSUM", "AddCumSum"),
    ("SPACE_TO_BATCH_ND", "AddSpaceToBatchNd"), ("L2_NORMALIZATION", "AddL2Normalization"),
    ("UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM"),
])
def test_resolver_method_names(opcode, method):
    assert tflm.resolver_method(opcode) == method


@pytest.mark.parametrize("measured,expected", [
    (2000, 2256),      # 5 % = 100 < 256: 2000 + 256 = 2256 (a multiple of 16)
    (12000, 12608),    # 5 % = 600: 12600 -> 12608
    (100000, 105008),  # 5 % = 5000: 105000 -> 105008
    (1, 272),          # 1 + 256 = 257 -> 272
])
def test_arena_margin(measured, expected):
    assert tflm_arena.arena_with_margin(measured) == expected


def test_probe_arena_stays_inside_ram():
    m33 = load_board("qemu_m33")
    assert tflm_arena.probe_arena_bytes(3184, m33) == 2 * 3184 + 16384
    m0 = load_board("qemu_m0")  # 16 KiB of RAM - 2 KiB stack - 8 KiB reserve = 6 KiB
    assert tflm_arena.probe_arena_bytes(3184, m0) == 6144
    with pytest.raises(SweetspotError, match="has 16,384 B of RAM"):
        tflm_arena.probe_arena_bytes(12000, m0)


def test_arena_key_depends_on_model_tree_and_core(tmp_path):
    t1 = tflm.TflmTree(tmp_path, "k1", "reference", "c" * 40, "")
    t2 = tflm.TflmTree(tmp_path, "k2", "cmsis_nn", "c" * 40, "")
    m33, m4 = load_board("qemu_m33"), load_board("qemu_m4")
    keys = {tflm_arena.arena_key("a", t1, m33), tflm_arena.arena_key("b", t1, m33),
            tflm_arena.arena_key("a", t2, m33), tflm_arena.arena_key("a", t1, m4)}
    assert len(keys) == 4
    assert tflm_arena.arena_key("a", t1, m33) == tflm_arena.arena_key("a", t1, m33)


def test_probe_board_is_the_nucleo_twin():
    assert tflm_arena.probe_board(load_board("nucleo_u575")).name == "qemu_m33"
    assert tflm_arena.probe_board(load_board("qemu_m4")).name == "qemu_m4"
    assert tflm_arena.probe_board(load_board("host")).name == "host"


# ---- with a checkout ---------------------------------------------------------------------------

def test_tree_is_cached_and_keyed_by_commit(tmp_path, monkeypatch):
    root = checkout_or_skip()
    tree = tflm.ensure_tree(root, "reference")
    assert (tree.path / tflm.STAMP).is_file()
    assert tree.commit == subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()
    again = tflm.ensure_tree(root, "reference")
    assert again == tree
    srcs = tree.library_sources()
    assert "tensorflow/lite/micro/micro_interpreter.cc" in srcs
    assert not any("cortex_m_generic" in s or s.startswith("signal/") for s in srcs)
    assert {"AddConv2D", "AddFullyConnected", "AddSoftmax"} <= tree.resolver_methods()


def test_cmsis_nn_tree_compiles_the_cmsis_nn_sources():
    root = checkout_or_skip()
    if tflm.missing_downloads(root, "cmsis_nn"):
        pytest.skip("the checkout lacks the CMSIS / CMSIS-NN downloads")
    tree = tflm.ensure_tree(root, "cmsis_nn")
    srcs = tree.library_sources()
    assert "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc" in srcs
    c_srcs = [s for s in srcs if s.startswith("third_party/cmsis_nn/Source/")]
    assert any(s.endswith("arm_convolve_s8.c") for s in c_srcs)
    assert "CMSIS_NN" in tree.defines()


def test_generated_glue_is_deterministic_and_registers_the_models_ops(tmp_path, zoo_dir):
    from generator.firmware import generate

    root = checkout_or_skip()
    board = load_board("qemu_m33")
    opts = {"model": str(zoo_dir / "stmnist_v1_int8.tflite"), "tflm_root": str(root),
            "tflm_arena": "20000", "inputs": "2"}
    first = generate(board, "tflm", tmp_path / "a", opts)
    second = generate(board, "tflm", tmp_path / "b", opts)
    files = sorted(p.relative_to(first.src_dir) for p in first.src_dir.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second.src_dir)
                           for p in second.src_dir.rglob("*") if p.is_file())
    for rel in files:
        assert (first.src_dir / rel).read_bytes() == (second.src_dir / rel).read_bytes(), rel
    main = (first.src_dir / "tflm" / "ss_tflm_main.cc").read_text()
    calls = sorted(line.split("->")[1].split("(")[0] for line in main.splitlines()
                   if "resolver->Add" in line)
    # stmnist_v1: CONV_2D, DEPTHWISE_CONV_2D, MEAN, FULLY_CONNECTED, SOFTMAX, QUANTIZE, DEQUANTIZE
    assert calls == sorted(["AddConv2D", "AddDepthwiseConv2D", "AddMean", "AddFullyConnected",
                            "AddSoftmax", "AddQuantize", "AddDequantize"])
    assert "MicroMutableOpResolver<SS_TFLM_OP_KINDS>" in main
    assert "#define SS_TFLM_OP_KINDS 7u" in main
    assert "#define SS_TFLM_ARENA_BYTES 20000u" in main
    model_c = (first.src_dir / "tflm" / "ss_tflm_model.c").read_text()
    assert "__attribute__((aligned(16)))" in model_c
    data = (zoo_dir / "stmnist_v1_int8.tflite").read_bytes()
    body = model_c.split("= {", 1)[1].rsplit("};", 1)[0]
    assert bytes(int(tok, 16) for tok in body.replace(",", " ").split()) == data
    assert f"SS_TFLM_MODEL_BYTES {len(data)}u" in \
        (first.src_dir / "tflm" / "ss_tflm_model.h").read_text()
    info = first.manifest["app_info"]
    assert info["backend"] == "tflm" and info["tflm"]["arena"]["source"] == "given"
    assert info["reports"]["runs"] == [
        {"cycles": "infer[0]", "outputs": ["output0[0]"]},
        {"cycles": "infer[1]", "outputs": ["output0[1]"]},
    ]
    assert info["planned_arena_bytes"] > 0
