"""Child processes (SCons, QEMU, the host executable) that end with the sweetspot process.

Every child starts in its own process group (so a timeout, an exception or Ctrl-C kills the child
*and* what it started, e.g. SCons' compiler jobs) and, on Linux, with ``PR_SET_PDEATHSIG`` =
SIGKILL, so the kernel kills it when sweetspot itself dies without cleaning up (``kill -9``, an
out-of-memory kill). The death signal is set by util-linux's ``setpriv --pdeathsig`` (always
there on Debian) in front of the command: a Python ``preexec_fn`` would force a full fork of
this process, 4x slower per child, which campaigns of thousands of host runs feel; without
``setpriv`` the ``preexec_fn`` is the fallback.

Lifecycle: :func:`popen` → read / wait → :func:`end` (always, in a ``finally``), or :func:`run`
which does all of that with a timeout.

Grandchildren (a compiler SCons started) are killed with the group by :func:`end`; when the parent
is SIGKILLed only the direct child gets the signal, and its jobs finish on their own.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from generator.errors import AppError

PR_SET_PDEATHSIG = 1

#: longest run a timeout may ask for (a week): beyond that it is a typo, and it must fit the
#: millisecond integers select()/poll() take
MAX_TIMEOUT_S = 7 * 24 * 3600.0


def check_timeout(value: Any, what: str = "--timeout") -> float:
    """``value`` as a timeout in seconds: a finite number > 0 and <= a week, else an error."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise AppError(f"{what} {value!r} is not a number of seconds") from None
    if not math.isfinite(t) or t <= 0 or t > MAX_TIMEOUT_S:
        raise AppError(f"{what} {value} must be a number of seconds > 0 and <= "
                       f"{MAX_TIMEOUT_S:g} (one week)")
    return t


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()  # resolved here, in the parent: the child only calls it


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # runs in the child between fork and exec
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)
    return preexec


@functools.cache
def _setpriv() -> str | None:
    path = shutil.which("setpriv")
    if path is None or not sys.platform.startswith("linux"):
        return None
    try:
        text = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10,
                              check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in text else None


def popen(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` in a new process group that dies with this process."""
    cmd = list(cmd)
    setpriv = _setpriv()
    if setpriv is None:
        return subprocess.Popen(cmd, start_new_session=True,
                                preexec_fn=_die_with(os.getpid()), **kwargs)
    exe = shutil.which(cmd[0], path=(kwargs.get("env") or os.environ).get("PATH"))
    if exe is None:  # as Popen itself would say, not setpriv's exit status 127
        raise FileNotFoundError(2, "No such file or directory", cmd[0])
    return subprocess.Popen([setpriv, "--pdeathsig", "KILL", "--", exe, *cmd[1:]],
                            start_new_session=True, **kwargs)


def end(proc: subprocess.Popen[Any]) -> None:
    """Kill ``proc`` and its process group if it is still running, and reap it."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    proc.wait()


def run(cmd: Sequence[str], *, timeout: float, input: bytes | str | None = None,
        text: bool = False, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """Like ``subprocess.run(capture_output=True)``; on a timeout, an exception or Ctrl-C the
    child's whole group is killed before the exception (``TimeoutExpired`` …) goes on."""
    stdin = subprocess.PIPE if input is not None else kwargs.pop("stdin", subprocess.DEVNULL)
    proc = popen(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text,
                 **kwargs)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:
        end(proc)
        raise
    finally:
        for f in (proc.stdout, proc.stderr, proc.stdin):
            if f is not None:
                f.close()
    return subprocess.CompletedProcess(list(cmd), proc.returncode, out, err)
