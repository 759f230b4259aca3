"""Bad input through the CLI: one readable message, a non-zero exit, nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _util import ROOT, require_toolchain


def sweetspot(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "generator.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=cwd or ROOT)


def _one_error_line(p: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("sweetspot: error: ")
    assert "Traceback" not in p.stderr
    return lines[0]


def test_unknown_board(tmp_path):
    p = sweetspot("run", "--board", "nucleo_u57", "--build-dir", str(tmp_path / "b"))
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "board 'nucleo_u57' is unknown; known:" in msg and "nucleo_u575" in msg
    assert not (tmp_path / "b").exists()
    assert p.stdout == ""


def test_unknown_app(tmp_path):
    p = sweetspot("run", "--board", "qemu_m33", "--app", "nope", "--build-dir",
                  str(tmp_path / "b"))
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "app 'nope' is unknown; known:" in msg and "bench" in msg
    assert not (tmp_path / "b").exists()


def test_twin_flag_needs_a_nucleo(tmp_path):
    p = sweetspot("run", "--board", "qemu_m33", "--twin", "--build-dir", str(tmp_path / "b"))
    assert p.returncode == 2 and "--twin needs a Nucleo board" in _one_error_line(p)


def _path_without(tmp_path: Path, *tools_kept: str) -> dict[str, str]:
    """An environment whose PATH has only the named tools (plus python for SCons)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in tools_kept:
        real = shutil.which(tool)
        if real:
            (bindir / tool).symlink_to(real)
    env = dict(os.environ)
    env["PATH"] = str(bindir)
    return env


def test_missing_cross_compiler(tmp_path):
    env = _path_without(tmp_path)
    p = sweetspot("run", "--board", "qemu_m33", "--build-dir", str(tmp_path / "b"), env=env)
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "'arm-none-eabi-gcc' was not found" in msg
    assert "apt-get install -y --no-install-recommends gcc-arm-none-eabi" in msg
    assert not (tmp_path / "b").exists()


def test_missing_qemu(tmp_path):
    require_toolchain()
    tools = ["arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-objdump",
             "arm-none-eabi-ar", "arm-none-eabi-ranlib"]
    env = _path_without(tmp_path, *tools)
    p = sweetspot("run", "--board", "qemu_m33", "--build-dir", str(tmp_path / "b"), env=env)
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "'qemu-system-arm' was not found" in msg and "qemu-system-arm" in msg


def test_inspect_missing_model(tmp_path):
    p = sweetspot("inspect", str(tmp_path / "nope.tflite"))
    assert p.returncode == 2
    _one_error_line(p)


def test_run_json_not_written_on_failure(tmp_path):
    out = tmp_path / "r.json"
    p = sweetspot("run", "--board", "nope", "--json", str(out))
    assert p.returncode == 2 and not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_flash_rejects_a_twin():
    p = sweetspot("flash", "--board", "qemu_m33", "--probe-uid", "X")
    assert p.returncode == 2 and "flash takes a Nucleo board" in _one_error_line(p)


@pytest.mark.parametrize("argv", [["--version"], ["boards"]])
def test_cli_smoke(argv):
    p = sweetspot(*argv)
    assert p.returncode == 0 and p.stdout


# ---- issue 9, item 6: every bad input ends as one line, exit status 2, nothing half-made ------

MLP = ROOT / "models" / "digits_mlp_int8.tflite"


def _inputs(d: Path) -> Path:
    """Hostile input files, in their own folder (outside the output folder that must stay
    empty)."""
    d.mkdir()
    (d / "afile").write_text("not a directory\n")
    (d / "not_utf8.json").write_bytes(b'\xff\xfe{"default": "Q2"}')
    (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (d / "x.npy").write_bytes(b"\x93NUMPY")
    (d / "wrong_options.tflite").write_bytes(_wrong_options_model())
    (d / "rank0_softmax.tflite").write_bytes(_rank0_softmax_model())
    (d / "pad_1e8.tflite").write_bytes(_huge_pad_model())
    import numpy as np
    from numpy.lib import format as npy

    with (d / "claims_1e15.npy").open("wb") as f:  # a header claiming 784 TB, 100 bytes of data
        npy.write_array_header_1_0(f, {"descr": "|i1", "fortran_order": False,
                                       "shape": (10**12, 784)})
        f.write(bytes(100))
    np.save(d / "sets_4097.npy", np.zeros((4097, 1, 64), np.int8))  # digits_mlp: [1, 64]
    return d


def _huge_pad_model() -> bytes:
    """PAD [1, 10] to [1, 100000010]: consistent, but past the kernel's 16-bit dimensions (the
    C compiler used to truncate it, or the host run to read 100 MB of output)."""
    import numpy as np
    from _models import OP, T, act, build, me, op, tfl

    a, c = act([1, 10], "a"), act([1, 100_000_010], "c")
    p = me.Tensor(shape=[2, 2], dtype=T.INT32, name="paddings",
                  data=np.array([[0, 0], [0, 100_000_000]], np.int32))
    return build([op(OP.PAD, [a, p], [c], tfl.BuiltinOptions.PadOptions, tfl.PadOptionsT())],
                 [a], [c])


def _wrong_options_model() -> bytes:
    """FULLY_CONNECTED whose options table is a SoftmaxOptions."""
    import numpy as np
    from _models import OP, T, act, build, me, op, q, tfl

    x, y = act([1, 4], "input"), act([1, 3], "output", quant=q(0.1, -3))
    w = me.Tensor(shape=[3, 4], dtype=T.INT8, name="w", quantization=q(0.02),
                  data=np.ones((3, 4), np.int8))
    b = me.Tensor(shape=[3], dtype=T.INT32, name="b", quantization=q(0.001),
                  data=np.zeros(3, np.int32))
    so = tfl.SoftmaxOptionsT()
    so.beta = 1.0
    return build([op(OP.FULLY_CONNECTED, [x, w, b], [y], tfl.BuiltinOptions.SoftmaxOptions,
                     so)], [x], [y])


def _rank0_softmax_model() -> bytes:
    """SOFTMAX of a rank-0 (scalar) tensor."""
    from _models import OP, act, build, op, q, tfl

    a, c = act([], "a"), act([], "c", quant=q(1 / 256, -128))
    so = tfl.SoftmaxOptionsT()
    so.beta = 1.0
    return build([op(OP.SOFTMAX, [a], [c], tfl.BuiltinOptions.SoftmaxOptions, so)], [a], [c])


def _left_behind(out: Path) -> list[str]:
    """What a failed command left in ``out`` (the build directory's lock file sits beside it
    by design and is not a half-made output)."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if not (p.name.startswith(".") and p.name.endswith(".lock")))


RUN = ["run", "--board", "host", "--model", "{mlp}", "--build-dir", "{out}/b"]
SCONS = [sys.executable, "-m", "SCons", "-Q", "-C", str(ROOT), "board=host"]

#: (id, command: sweetspot argv or a full scons command line, what the one line must say)
BAD_INPUTS = [
    ("timeout-nan", [*RUN, "--timeout", "nan"], "argument --timeout: nan must be a number"),
    ("timeout-inf", [*RUN, "--timeout", "inf"], "argument --timeout: inf must be a number"),
    ("timeout-negative", [*RUN, "--timeout", "-5"], "argument --timeout: -5 must be a number"),
    ("timeout-zero", [*RUN, "--timeout", "0"], "argument --timeout: 0 must be a number"),
    ("timeout-text", [*RUN, "--timeout", "soon"], "argument --timeout: 'soon' is not a number"),
    ("demo-timeout-nan", ["demo", "--timeout", "nan"], "argument --timeout: nan"),
    ("demo-samples-zero", ["demo", "--samples", "0"], "argument --samples: 0 must be"),
    ("demo-samples-negative", ["demo", "--samples", "-3"], "argument --samples: -3 must be"),
    ("demo-samples-more-than-there-are", ["demo", "--samples", "999"],
     "--samples 999: the demo has"),
    ("json-is-a-directory", [*RUN, "--json", "{out}"], "argument --json: '{out}' is a directory"),
    ("json-under-a-file", [*RUN, "--json", "{in}/afile/r.json"], "is not a directory"),
    ("seed-negative", [*RUN, "--seed", "-1"],
     "seed=-1 must be an integer from 0 to 4294967295"),
    ("seed-too-big", [*RUN, "--seed", str(1 << 40)], "must be an integer from 0 to 4294967295"),
    ("pipeline-with-bench", ["run", "--board", "host", "--app", "bench", "--pipeline", "stream",
                             "--build-dir", "{out}/b"],
     "app 'bench' does not take pipeline; it takes seed"),
    ("input-with-bench", ["run", "--board", "host", "--app", "bench", "--input", "{in}/x.npy",
                          "--build-dir", "{out}/b"], "app 'bench' does not take input"),
    ("pipeline-with-infer", [*RUN, "--pipeline", "stream"], "app 'infer' does not take pipeline"),
    ("capacitor-1e999", [*RUN, "--capacitor", "C=1e999F,von=3.3,voff=1.8"],
     "--capacitor C='1e999F' is out of range"),
    ("ql-map-not-utf8", [*RUN, "--ql-map", "{in}/not_utf8.json"], "is not UTF-8 text"),
    ("ql-map-100k-deep", [*RUN, "--ql-map", "{in}/deep.json"], "nests too deeply"),
    ("power-fail-huge-number", [*RUN, "--power-fail", "9" * 5000],
     "this firmware holds at most 65536"),
    ("build-dir-is-a-file", ["run", "--board", "host", "--build-dir", "{in}/afile"],
     "afile is a file, not a directory"),
    ("build-dir-read-only", ["run", "--board", "host", "--build-dir", "/sys/kernel/sweetspot"],
     "/sys/kernel/"),
    ("options-table-of-another-op", ["run", "--board", "host", "--model",
                                     "{in}/wrong_options.tflite", "--build-dir", "{out}/b"],
     "FULLY_CONNECTED carries SoftmaxOptions"),
    ("rank-0-softmax", ["run", "--board", "host", "--model", "{in}/rank0_softmax.tflite",
                        "--build-dir", "{out}/b"], "SOFTMAX needs at least one dimension"),
    ("inspect-rank-0-softmax", ["inspect", "{in}/rank0_softmax.tflite"],
     "SOFTMAX needs at least one dimension"),
    ("input-header-claims-784-TB", [*RUN, "--input", "{in}/claims_1e15.npy"],
     "is not a readable .npy/.npz file: mmap length is greater than file size"),
    ("input-4097-sets", [*RUN, "--input", "{in}/sets_4097.npy"],
     "has 4097 input sets; an image holds at most 4096"),
    ("pad-to-1e8", ["run", "--board", "host", "--model", "{in}/pad_1e8.tflite",
                    "--build-dir", "{out}/b"], "this kernel takes dimensions of 1 to 65535"),
    ("scons-unknown-variable", [*SCONS, "modle=x", "build={out}/b"],
     "scons: error: unknown variable modle; valid: board, app, build"),
    ("scons-seed-abc", [*SCONS, "seed=abc", "build={out}/b"],
     "scons: error: seed=abc must be an integer"),
    ("scons-seed-negative", [*SCONS, "app=infer", "model={mlp}", "seed=-1", "build={out}/b"],
     "scons: error: seed=-1 must be an integer"),
    ("scons-option-not-for-app", [*SCONS, "app=bench", "pipeline=stream", "build={out}/b"],
     "scons: error: app 'bench' does not take pipeline"),
    ("scons-inputs-huge", [*SCONS, "app=infer", "model={mlp}", "inputs=100000000",
                           "build={out}/b"], "inputs=100000000 must be a number of input sets"),
    ("scons-nvmtest-chain-huge", [*SCONS, "app=nvmtest", "mode=chain99999999999",
                                  "build={out}/b"], "(16 <= N <= 1048576 bytes)"),
]


@pytest.mark.parametrize("argv,says", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, argv: list[str], says: str) -> None:
    inputs, out = _inputs(tmp_path / "in"), tmp_path / "out"
    out.mkdir()
    sub = {"{mlp}": str(MLP), "{in}": str(inputs), "{out}": str(out)}

    def fill(s: str) -> str:
        for k, v in sub.items():
            s = s.replace(k, v)
        return s

    argv = [fill(a) for a in argv]
    if argv[0] == sys.executable:  # scons directly
        p = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("scons: error: "), p.stderr
        msg = lines[0]
    else:
        p = sweetspot(*argv)
        msg = _one_error_line(p)
    assert p.returncode == 2, p.stderr
    assert fill(says) in msg
    assert "Traceback" not in p.stderr + p.stdout and "internal error" not in msg
    assert _left_behind(out) == []


def test_missing_objcopy_is_found_before_the_build(tmp_path: Path) -> None:
    require_toolchain()
    env = _path_without(tmp_path, "arm-none-eabi-gcc", "arm-none-eabi-ar",
                        "arm-none-eabi-ranlib", "qemu-system-arm")
    p = sweetspot("run", "--board", "qemu_m33", "--build-dir", str(tmp_path / "b"), env=env)
    assert p.returncode == 2
    assert "'arm-none-eabi-objcopy' was not found" in _one_error_line(p)
    assert not (tmp_path / "b").exists()


def test_unwritable_spot_inside_scons_is_one_line(tmp_path: Path) -> None:
    """An OSError inside SCons (here: a file where src/ must go) comes back as one line, and the
    older build directory keeps nothing that claims a finished build (no sweetspot.json)."""
    bdir = tmp_path / "b"
    bdir.mkdir()
    (bdir / "src").write_text("in the way\n")
    p = sweetspot("run", "--board", "host", "--model", str(MLP), "--build-dir", str(bdir))
    assert p.returncode == 2
    msg = _one_error_line(p)
    assert "File exists" in msg and "src" in msg and "internal error" not in msg
    assert sorted(x.name for x in bdir.iterdir()) == ["src"]


def test_failed_compile_leaves_no_half_made_tree(tmp_path: Path) -> None:
    """A build that fails after generation (here the C compiler is a script that fails) leaves
    no src/ and no sweetspot.json behind."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "gcc"
    fake.write_text("#!/bin/sh\necho 'gcc: fatal error: simulated' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    out = tmp_path / "out"
    out.mkdir()
    p = sweetspot("run", "--board", "host", "--model", str(MLP), "--build-dir",
                  str(out / "b"), env=env)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "simulated" in p.stderr
    assert _left_behind(out) == []


def test_reference_that_cannot_run_keeps_the_results(tmp_path: Path, monkeypatch, capsys
                                                      ) -> None:
    """TFLM itself cannot prepare the model: exit 2 with one line, and --json still holds the
    firmware's outputs (they used to be lost with a traceback)."""
    from tflite_micro import runtime

    from generator import cli

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Failed to prepare the model (simulated AllocateTensors failure)")

    monkeypatch.setattr(runtime.Interpreter, "from_file", staticmethod(refuse))
    out = tmp_path / "r.json"
    code = cli.main(["run", "--board", "host", "--model", str(MLP), "--build-dir",
                     str(tmp_path / "b"), "--json", str(out)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2
    assert len(err) == 1 and "reference could not check its outputs" in err[0]
    assert "Failed to prepare" in err[0]
    doc = json.loads(out.read_text())
    assert doc["status"] == 0 and doc["outputs"]["output0"]["values"]
    assert doc["checks"]["reference"]["ok"] is None


def test_json_path_that_cannot_be_written_is_refused_before_the_run(tmp_path: Path,
                                                                      monkeypatch, capsys
                                                                      ) -> None:
    """Permission is checked before anything is built (os.access, so also when the tests run as
    root, where chmod would not stop a write)."""
    from generator import cli

    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == tmp_path
                        else real(p, mode, **kw))
    with pytest.raises(SystemExit) as stop:  # a command-line error: argparse's exit
        cli.main(["run", "--board", "host", "--model", str(MLP), "--build-dir",
                  str(tmp_path / "b"), "--json", str(tmp_path / "r.json")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert stop.value.code == 2
    assert len(err) == 1 and "cannot be written (permission denied)" in err[0]
    assert list(tmp_path.iterdir()) == []
