"""A reader that stops early (``sweetspot inspect m.tflite | head -1``) ends the command quietly:
no traceback, no error line, the status of a command ended by SIGPIPE (issue 15)."""

from __future__ import annotations

import subprocess
import sys

from _util import ROOT

MODEL = ROOT / "models" / "digits_cnn_int8.tflite"


def test_inspect_into_a_closed_pipe_is_quiet():
    # the read end closes before the child has even started: its first flush hits EPIPE
    p = subprocess.Popen([sys.executable, "-m", "generator.cli", "inspect", str(MODEL)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=120) == 141, err
    assert err == "", err


def test_inspect_into_head_keeps_the_first_line():
    p = subprocess.Popen([sys.executable, "-m", "generator.cli", "inspect", str(MODEL)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline().decode()
    p.stdout.close()
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=120) in (0, 141), err  # 0 when all output fitted the pipe at once
    assert first.startswith("model digits_cnn_int8"), first
    assert err == "", err
