"""The TFLM backend on the host side: the message without a checkout, the backend choice, the
resolver and arena arithmetic, and (with a checkout) the tree and the generated glue.

Tests that need a tflite-micro checkout use ``SWEETSPOT_TFLM_ROOT`` (``./sweetspot.sh test`` points
it at ../shared/tflite-micro); without one they skip with one short reason, and fail in CI.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from _util import ROOT, ZOO, missing, require_tflm_checkout, require_tool

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
    return require_tflm_checkout()


def _snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with the SHA-256 of its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _set_writable(root: Path, writable: bool) -> None:
    for p in [root, *root.rglob("*")]:
        mode = p.stat().st_mode
        bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        p.chmod(mode | stat.S_IWUSR if writable else mode & ~bits)


@pytest.fixture
def checkout_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the checkout in tmp_path (outside any git repository) and an empty cache."""
    root = checkout_or_skip()
    copy = tmp_path / "tflite-micro"
    shutil.copytree(root, copy, symlinks=True)
    monkeypatch.setenv(tflm.ENV_CACHE, str(tmp_path / "cache"))
    yield copy
    _set_writable(copy, True)


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


def test_arena_margin_has_a_floor_per_tensor():
    # the 8-tensor digits MLP: 740 B measured on the host, 1,392 B fail, 1,520 B run
    assert tflm_arena.arena_with_margin(740, 8) == 740 + 8 * 128 + 12 == 1776
    assert tflm_arena.arena_with_margin(100000, 8) == 105008  # 5 % dominates


def test_probe_arena_stays_inside_ram():
    m33 = load_board("qemu_m33")
    assert tflm_arena.probe_arena_bytes(3184, m33) == 2 * 3184 + 16384
    m0 = load_board("qemu_m0")  # 16 KiB of RAM - 2 KiB stack - 8 KiB reserve = 6 KiB
    assert tflm_arena.probe_arena_bytes(3184, m0) == 6144
    with pytest.raises(SweetspotError, match="has 16,384 B of RAM"):
        tflm_arena.probe_arena_bytes(12000, m0)


def test_arena_key_depends_on_model_tree_and_core(tmp_path):
    t1 = tflm.TflmTree(tmp_path, "k1", "reference", "c" * 24)
    t2 = tflm.TflmTree(tmp_path, "k2", "cmsis_nn", "c" * 24)
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

def test_tree_is_cached_and_keyed_by_content():
    root = checkout_or_skip()
    tree = tflm.ensure_tree(root, "reference")
    assert (tree.path / tflm.STAMP).is_file()
    assert tree.fingerprint == tflm.checkout_fingerprint(root, "reference")
    assert tree.key == tflm.tree_key(tree.fingerprint, "reference")
    again = tflm.ensure_tree(root, "reference")
    assert again == tree
    srcs = tree.library_sources()
    assert "tensorflow/lite/micro/micro_interpreter.cc" in srcs
    assert not any("cortex_m_generic" in s or s.startswith("signal/") for s in srcs)
    assert {"AddConv2D", "AddFullyConnected", "AddSoftmax"} <= tree.resolver_methods()


def test_read_only_checkout_is_left_untouched(checkout_copy):
    """CI's ../shared has no write bits: both trees are generated, and the checkout holds the
    same files with the same bytes afterwards (no gen/, no __pycache__)."""
    before = _snapshot(checkout_copy)
    _set_writable(checkout_copy, False)
    for kernels in tflm.KERNELS:
        tree = tflm.ensure_tree(checkout_copy, kernels)
        assert (tree.path / tflm.STAMP).is_file()
        assert (tree.path / "tensorflow/lite/micro/micro_interpreter.cc").is_file()
        assert not str(tree.path).startswith(str(checkout_copy))
    assert _snapshot(checkout_copy) == before


def test_key_is_the_content_outside_any_git_repository(checkout_copy):
    root = checkout_or_skip()
    if shutil.which("git"):
        p = subprocess.run(["git", "-C", str(checkout_copy), "rev-parse", "HEAD"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0, "tmp_path lies inside a git repository"
    # another path, other mtimes, the same files: the same key
    fp = tflm.checkout_fingerprint(checkout_copy, "reference")
    assert fp == tflm.checkout_fingerprint(root, "reference")
    tree = tflm.ensure_tree(checkout_copy, "reference")
    assert tree.fingerprint == fp
    # a touched file with the same bytes keeps it; one changed byte in a source changes it
    src = checkout_copy / "tensorflow/lite/micro/micro_interpreter.cc"
    os.utime(src, (1, 1))
    assert tflm.checkout_fingerprint(checkout_copy, "reference") == fp
    src.write_bytes(src.read_bytes() + b"\n")
    changed = tflm.checkout_fingerprint(checkout_copy, "reference")
    assert changed != fp
    assert tflm.tree_key(changed, "reference") != tree.key
    # a CMSIS-NN source belongs to the cmsis_nn tree only
    nn = next((checkout_copy / tflm.DOWNLOADS / "cmsis_nn" / "Source").rglob("*.c"))
    nn_fp = tflm.checkout_fingerprint(checkout_copy, "cmsis_nn")
    nn.write_bytes(nn.read_bytes() + b"\n")
    assert tflm.checkout_fingerprint(checkout_copy, "cmsis_nn") != nn_fp
    assert tflm.checkout_fingerprint(checkout_copy, "reference") == changed


def test_enclosing_git_repository_does_not_change_the_key(tmp_path, monkeypatch):
    """A checkout inside an unrelated repository: a commit there keeps the cached tree."""
    root = checkout_or_skip()
    git = require_tool("git")
    repo = tmp_path / "project"
    checkout = repo / "third_party" / "tflite-micro"
    shutil.copytree(root, checkout, symlinks=True)
    monkeypatch.setenv(tflm.ENV_CACHE, str(tmp_path / "cache"))

    def g(*args: str) -> None:
        subprocess.run([git, "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        *args], check=True, capture_output=True, timeout=120)

    g("init", "-q")
    (repo / "README").write_text("a project that holds a tflite-micro checkout\n")
    g("add", "README")
    g("commit", "-q", "-m", "start")
    tree = tflm.ensure_tree(checkout, "reference")
    stamp = (tree.path / tflm.STAMP).stat().st_mtime_ns
    (repo / "notes.txt").write_text("unrelated\n")
    g("add", "notes.txt")
    g("commit", "-q", "-m", "unrelated change")
    (repo / "draft.txt").write_text("uncommitted\n")
    again = tflm.ensure_tree(checkout, "reference")
    assert again == tree
    assert (again.path / tflm.STAMP).stat().st_mtime_ns == stamp  # not generated again


def test_cmsis_nn_tree_compiles_the_cmsis_nn_sources():
    root = checkout_or_skip()
    if tflm.missing_downloads(root, "cmsis_nn"):
        missing("the checkout lacks the CMSIS / CMSIS-NN downloads")
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


# ---- models the generated backend cannot compile ---------------------------------------------

def _reduce_max_model(path: Path) -> Path:
    """REDUCE_MAX (the issue's example) and GATHER_ND (no generated kernel when this was
    written)."""
    from generator.compiler.modelgen import ModelBuilder, write_model

    b = ModelBuilder(seed=3)
    x = b.input((1, 6, 5, 4))
    b.output(b.reduce("max", x, (1, 2), keep_dims=False))
    b.output(b.gather_nd(b.reduce("max", x, (-1,), keep_dims=True), [[0, 5], [0, 1]]))
    return write_model(b, path)


def test_structure_loader_takes_any_operator_and_state_tensors(tmp_path):
    """The TFLM backend's loader: every operator of the file in order, nothing folded."""
    from generator.compiler.loader import load_model_structure

    graph = load_model_structure(_reduce_max_model(tmp_path / "rmax.tflite"))
    assert [op.opcode for op in graph.operators] == ["REDUCE_MAX", "REDUCE_MAX", "GATHER_ND"]
    assert [graph.tensor(t).shape for t in graph.outputs] == [(1, 4), (2, 5, 1)]
    keyword = ROOT.parent / "shared" / "tflite-micro" / "tensorflow" / "lite" / "micro" / \
        "models" / "keyword_scrambled.tflite"
    if keyword.is_file():  # SVDF reads variable (state) tensors no operator produces
        ops = [op.opcode for op in load_model_structure(keyword).operators]
        assert "SVDF" in ops


@pytest.mark.slow
def test_tflm_backend_is_not_gated_by_the_generated_operator_list(tmp_path):
    """GATHER_ND (no generated kernel when this was written): backend=tflm on the host builds
    the resolver from the model's own operators and equals the wheel's interpreter. Slow: the
    host TFLM library (cold, tens of minutes on a loaded 2-core machine; cached after)."""
    from generator.runner import RunRequest, run

    root = checkout_or_skip()
    model = _reduce_max_model(tmp_path / "rmax.tflite")
    doc = run(RunRequest(board="host", app="infer",
                         options={"model": str(model), "backend": "tflm", "tflm_root": str(root),
                                  "inputs": "2", "tflm_arena": "host"},
                         build_dir=tmp_path / "build", timeout=900))
    assert doc["app_info"]["tflm"]["resolver"] == ["AddGatherNd", "AddReduceMax"]
    assert doc["app_info"]["planned_arena_bytes"] is None  # the generated backend cannot
    checks = doc["checks"]
    assert sorted(checks) == ["output0[0]", "output0[1]", "output1[0]", "output1[1]"]
    assert all(c["ok"] for c in checks.values()), checks


# ---- set-up: the extra, the checkout CI uses, failing instead of skipping ----------------------

def test_setup_installs_pillow_with_the_tflm_extra():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("pillow") for r in project["optional-dependencies"]["tflm"])
    script = (ROOT / "sweetspot.sh").read_text()
    assert "-e '.[dev,tflm]'" in script
    tflm.check_tree_generator_python()  # this environment was installed that way


CHILD_ENV_TEST = """
import os

def test_env():
    print("TFLM_ROOT=" + os.environ.get("SWEETSPOT_TFLM_ROOT", "<unset>"))
"""


def _fake_project(tmp_path: Path, with_shared: bool) -> Path:
    """sweetspot.sh in a project folder whose venv is this interpreter and is up to date, beside
    a shared/ folder that holds (or not) a tflite-micro folder."""
    proj = tmp_path / "main"
    (proj / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(ROOT / "sweetspot.sh", proj / "sweetspot.sh")
    shutil.copy(ROOT / "pyproject.toml", proj / "pyproject.toml")
    py = proj / ".venv" / "bin" / "python"
    py.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    py.chmod(0o755)
    digest = hashlib.sha256((proj / "pyproject.toml").read_bytes()).hexdigest()
    (proj / ".venv" / ".sweetspot-installed").write_text(digest + "\n")
    (proj / "test_child.py").write_text(CHILD_ENV_TEST)
    if with_shared:
        (tmp_path / "shared" / "tflite-micro").mkdir(parents=True)
    return proj


@pytest.mark.parametrize(("with_shared", "given", "expected"), [
    (True, None, "shared"), (True, "/opt/my-tflm", "/opt/my-tflm"), (False, None, "<unset>"),
])
def test_setup_test_command_uses_shared_tflite_micro(tmp_path, with_shared, given, expected):
    """./sweetspot.sh test sets SWEETSPOT_TFLM_ROOT to ../shared/tflite-micro (absolute) when
    that folder exists and no checkout is named; a named checkout wins."""
    require_tool("bash")
    if shutil.which("dpkg-query") is None:
        missing("dpkg-query is not installed (sweetspot.sh checks Debian packages with it)")
    proj = _fake_project(tmp_path, with_shared)
    env = {k: v for k, v in os.environ.items() if k != tflm.ENV_ROOT}
    if given:
        env[tflm.ENV_ROOT] = given
    r = subprocess.run(["bash", str(proj / "sweetspot.sh"), "test", "-q", "-s", "-p",
                        "no:cacheprovider", "--rootdir", str(proj), "-o", "addopts=",
                        "test_child.py"],
                       capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    want = str((tmp_path / "shared" / "tflite-micro").resolve()) if expected == "shared" \
        else expected
    assert f"TFLM_ROOT={want}\n" in r.stdout, r.stdout[-2000:]


CHILD_CHECKOUT_TEST = """
import sys
sys.path.insert(0, {tests!r})
from _util import require_tflm_checkout

def test_needs_checkout():
    require_tflm_checkout()
"""


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_missing_checkout_fails_in_ci_and_skips_outside_with_one_line(tmp_path, ci, outcome):
    (tmp_path / "test_child.py").write_text(CHILD_CHECKOUT_TEST.format(tests=str(ROOT / "tests")))
    env = {k: v for k, v in os.environ.items() if k != tflm.ENV_ROOT}
    env["CI"] = ci
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider",
                        "--rootdir", str(tmp_path), "-o", "addopts=",
                        str(tmp_path / "test_child.py")],
                       capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert outcome in r.stdout, r.stdout[-2000:]
    reason = "backend tflm needs a tflite-micro checkout, and none is configured. (set " \
        f"{tflm.ENV_ROOT}; ./sweetspot.sh test sets it to ../shared/tflite-micro"
    lines = [ln for ln in r.stdout.splitlines() if reason in ln]
    assert lines, r.stdout[-2000:]
    if ci:
        assert "CI=true and " + reason in r.stdout
    else:
        assert len(lines[0]) < 250, lines[0]  # one short line, not the how-to
    assert "git clone" not in r.stdout
