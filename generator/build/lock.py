"""One run at a time per build directory: an advisory file lock (``fcntl.flock``).

Generation, the SCons build and the run that reads the artefacts (image, manifest, host
library) all use the files under ``build/<board>/<app>``. Two runs started together on the same
directory would otherwise interleave: one run's results document names the other run's model, a
check compares against the wrong reference, or the linker sees half-written objects. Whoever
holds :func:`build_dir_lock` for a directory owns it; a second process waits (after telling the
user through :data:`WAIT_NOTICE`) and gives up with a :class:`~generator.errors.BuildError`
after a bounded time.

The lock file sits next to the directory (``build/host/.infer.lock`` for ``build/host/infer``),
so removing or replacing the build directory never drops the lock. The kernel releases the lock
when its holder exits, however it exits: there are no stale locks to clean up.

Lifecycle: ``with build_dir_lock(dir): generate → build → run → read results``. The lock is
re-entrant within a process (runner → run_scons), and a child process started with
:func:`child_env` / :func:`inherited_fds` (the SCons subprocess) inherits the open lock instead of
waiting for its own parent.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from generator.errors import BuildError

__all__ = [
    "DEFAULT_WAIT_S",
    "ENV_FD",
    "WAIT_NOTICE",
    "build_dir_lock",
    "child_env",
    "hold_for_process",
    "inherited_fds",
    "lock_path",
]

#: How long a second run waits for the directory by default (a TFLM build may take minutes);
#: ``$SWEETSPOT_LOCK_TIMEOUT`` (seconds) overrides it.
DEFAULT_WAIT_S = 1800.0
ENV_TIMEOUT = "SWEETSPOT_LOCK_TIMEOUT"
#: Environment variable naming a lock file descriptor the parent passed to a child process.
ENV_FD = "SWEETSPOT_BUILD_LOCK_FD"
_POLL_S = 0.2

#: Called once with a one-line message when a run has to wait for another one. The CLI points
#: this at stderr; library code never prints.
WAIT_NOTICE: list[Callable[[str], None]] = []

_held: dict[Path, list[int]] = {}  # lock path -> [fd, depth]
_mutex = threading.Lock()


def lock_path(build_dir: Path) -> Path:
    d = Path(build_dir).resolve()
    return d.parent / f".{d.name}.lock"


def _wait_s(timeout: float | None) -> float:
    if timeout is not None:
        return timeout
    raw = os.environ.get(ENV_TIMEOUT)
    if raw is None:
        return DEFAULT_WAIT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        raise BuildError(f"${ENV_TIMEOUT}={raw!r} is not a number of seconds; set it to e.g. 600")
    return value


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "another sweetspot run"
    return text.splitlines()[0][:200] if text else "another sweetspot run"


def _inherited(path: Path) -> int | None:
    """The lock's fd if our parent passed it to us (it already holds the lock for us)."""
    raw = os.environ.get(ENV_FD)
    if not raw or not raw.isdigit():
        return None
    fd = int(raw)
    try:
        st, mine = os.fstat(fd), os.stat(path)
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino):
        return None
    # Same open file description as the parent's: this conversion never blocks on our parent,
    # and it fails if the descriptor is not actually locked by it.
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None
    return fd


def _acquire(path: Path, build_dir: Path, timeout: float | None) -> int:
    fd = _inherited(path)
    if fd is not None:
        return fd
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise BuildError(
            f"cannot create the lock file {path} for build directory {build_dir}: "
            f"{exc.strerror or exc}; check that the directory is writable"
        ) from None
    deadline = None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            now = time.monotonic()
            if deadline is None:
                wait = _wait_s(timeout)
                deadline = now + wait
                msg = (f"sweetspot: build directory {build_dir} is in use by {_holder(path)}; "
                       f"waiting up to {wait:g} s for it to finish")
                for notice in WAIT_NOTICE:
                    notice(msg)
            if now >= deadline:
                raise BuildError(
                    f"build directory {build_dir} is still in use by {_holder(path)} after "
                    f"{_wait_s(timeout):g} s; wait for that run to finish, or give this run its "
                    f"own directory with --build-dir (or build=<dir> for scons); "
                    f"${ENV_TIMEOUT} sets the wait"
                )
            time.sleep(min(_POLL_S, max(0.0, deadline - now)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({' '.join(sys.argv)[:160]})\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextmanager
def build_dir_lock(build_dir: Path, timeout: float | None = None) -> Iterator[Path]:
    """Hold the lock of ``build_dir`` for the ``with`` block (re-entrant in this process).

    Waits for another holder up to ``timeout`` seconds (default ``$SWEETSPOT_LOCK_TIMEOUT`` or
    :data:`DEFAULT_WAIT_S`), telling :data:`WAIT_NOTICE` once; then raises BuildError."""
    path = lock_path(build_dir)
    with _mutex:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
    if entry is None:
        fd = _acquire(path, Path(build_dir).resolve(), timeout)
        with _mutex:
            entry = _held.setdefault(path, [fd, 0])
            entry[1] += 1
    try:
        yield path
    finally:
        with _mutex:
            entry[1] -= 1
            done = entry[1] == 0
            if done:
                del _held[path]
        if done and str(entry[0]) != os.environ.get(ENV_FD):
            os.close(entry[0])  # closing the last descriptor releases the lock


def hold_for_process(build_dir: Path, timeout: float | None = None) -> Path:
    """Take the lock until this process exits (the ``scons`` command line: SConstruct).

    No context manager is left open: a suspended generator would be finalised during
    interpreter shutdown, after the module globals it needs are gone ("Exception ignored in
    build_dir_lock ... TypeError" on SCons' stderr). The kernel releases the lock at exit."""
    path = lock_path(build_dir)
    with _mutex:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
            return path
    fd = _acquire(path, Path(build_dir).resolve(), timeout)
    with _mutex:
        _held.setdefault(path, [fd, 0])[1] += 1
    return path


def inherited_fds(build_dir: Path) -> tuple[int, ...]:
    """The descriptors to pass to a child process (``pass_fds``) that works in ``build_dir``."""
    entry = _held.get(lock_path(build_dir))
    return (entry[0],) if entry else ()


def child_env(build_dir: Path) -> dict[str, str]:
    """The environment for a child process started with :func:`inherited_fds`."""
    env = dict(os.environ)
    fds = inherited_fds(build_dir)
    if fds:
        env[ENV_FD] = str(fds[0])
    else:
        env.pop(ENV_FD, None)
    return env
