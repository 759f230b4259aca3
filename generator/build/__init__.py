"""Build stage: a generated C tree → ELF/BIN/HEX (or a host executable), with a size report and
static image checks. Used by ``SConstruct`` (in-process) and by the CLI (which runs SCons).

Everything the compiler is told comes from the board file and the app options.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import PROJECT_ROOT, proc
from generator.boards import Board, board_names, load_board
from generator.build import tflm_library
from generator.build.lock import build_dir_lock, child_env, hold_for_process, inherited_fds
from generator.build.toolchain import read_sections, which_tool
from generator.errors import BuildError, ToolchainError
from generator.firmware import MANIFEST, generate
from generator.firmware.apps import MAX_INPUT_SETS, app_names, check_app_options, get_app
from generator.tflm import tree as tflm

DEFAULT_BOARD = "nucleo_u575"
DEFAULT_APP = "bench"
SCONS_TIMEOUT_S = 1800


def project_root() -> Path:
    return PROJECT_ROOT


def default_build_dir(board: str, app: str) -> Path:
    return project_root() / "build" / board / app


def help_text() -> str:
    lines = [
        "sweetspot firmware build",
        "",
        "usage: scons board=<board> [app=<app>] [model=<model.tflite>] [build=<dir>] [verbose=1]",
        "",
        "variables:",
        f"  board=<name>     board to build for (default {DEFAULT_BOARD})",
        f"  app=<name>       firmware app (default {DEFAULT_APP})",
        "  model=<path>     .tflite int8 model, for apps that run a model",
        "  build=<dir>      build directory (default build/<board>/<app>)",
        "  opt=<level>      optimisation: O2 (default), Os, O3",
        "  backend=<name>   infer with 'generated' code (default) or 'tflm' (TFLM interpreter)",
        "  tflm_root=<dir>  tflite-micro checkout for backend=tflm (or $SWEETSPOT_TFLM_ROOT)",
        "  tflm_kernels=<k> reference (default) or cmsis_nn (Cortex-M4/M7/M33)",
        "  tflm_arena=<a>   auto (measured on the twin + margin, default), host, or bytes",
        "  verbose=1        print full compiler command lines",
        "",
        "aliases: size (print the size report)",
        "",
        "boards: " + ", ".join(board_names()),
        "apps:   " + ", ".join(app_names()),
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Artifacts:
    build_dir: Path
    elf: Path
    bin: Path | None
    hex: Path | None
    map: Path | None
    size_json: Path

    @classmethod
    def for_dir(cls, board: Board, build_dir: Path) -> Artifacts:
        if board.is_host:
            return cls(build_dir, build_dir / "firmware", None, None, None,
                       build_dir / "size.json")
        return cls(build_dir, build_dir / "firmware.elf", build_dir / "firmware.bin",
                   build_dir / "firmware.hex", build_dir / "firmware.map",
                   build_dir / "size.json")


# ---- size report and static checks ---------------------------------------------------------

def size_report(board: Board, elf: Path) -> dict[str, Any]:
    """Bytes used per memory region: loadable sections count at their load address (flash),
    allocated sections at their run address (RAM)."""
    sections = read_sections(elf)
    used = {r.name: 0 for r in board.memory}
    for s in sections:
        if not s.alloc or s.size == 0:
            continue
        for r in board.memory:
            if r.contains(s.vma, s.size):
                used[r.name] += s.size
            if s.load and s.lma != s.vma and r.contains(s.lma, s.size):
                used[r.name] += s.size
    regions = []
    for r in board.memory:
        regions.append({
            "region": r.name, "origin": r.origin, "length": r.length, "used": used[r.name],
            "percent": round(100.0 * used[r.name] / r.length, 2),
        })
    return {"board": board.name, "regions": regions,
            "sections": {s.name: s.size for s in sections if s.alloc}}


def format_size_report(report: dict[str, Any]) -> str:
    lines = [f"Memory region      Used Size  Region Size  %age Used   ({report['board']})"]
    for r in report["regions"]:
        lines.append(f"{r['region']:>13}: {r['used']:>12,} B {r['length']:>12,} B "
                     f"{r['percent']:>8.2f}%")
    return "\n".join(lines)


def static_checks(board: Board, elf: Path, binary: Path) -> list[str]:
    """Checks a Nucleo image must pass before it is flashed; returns the problems found."""
    problems: list[str] = []
    sections = {s.name: s for s in read_sections(elf)}
    vt = sections.get(".isr_vector")
    flash = board.flash
    if vt is None:
        return ["no .isr_vector section"]
    if vt.lma != flash.origin:
        problems.append(f"vector table at 0x{vt.lma:08x}, not at the flash base "
                        f"0x{flash.origin:08x}")
    data = binary.read_bytes()
    if len(data) < 8:
        return problems + ["image shorter than a vector table"]
    sp = int.from_bytes(data[0:4], "little")
    reset = int.from_bytes(data[4:8], "little")
    if not any(r.origin < sp <= r.end for r in board.memory if r.name != "flash"):
        problems.append(f"initial SP 0x{sp:08x} is not inside a RAM region")
    if not reset & 1:
        problems.append(f"reset vector 0x{reset:08x} lacks the Thumb bit")
    if not flash.contains(reset & ~1, 2):
        problems.append(f"reset handler 0x{reset & ~1:08x} is not in flash")
    for r in size_report(board, elf)["regions"]:
        if r["used"] > r["length"]:
            problems.append(f"{r['region']} overflows: {r['used']} B > {r['length']} B")
    return problems


def write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    part = path.with_name(path.name + ".part")
    part.write_text(text, encoding="utf-8")
    os.replace(part, path)


# ---- the SCons side ------------------------------------------------------------------------

def describe_exception(e: BaseException) -> str:
    """One line for an exception that is not a :class:`SweetspotError` (an unwritable build
    directory, an option no check caught): what it is, where, and that it should be reported
    if it is not the user's doing."""
    if isinstance(e, OSError) and e.filename is not None:
        what = f"{e.strerror or type(e).__name__}: {e.filename}"
        return f"{what}; check that the path exists and that you may write there"
    text = " ".join(str(e).split())[:300] or "(no message)"
    return (f"{type(e).__name__}: {text} (an input no check caught; please report it with "
            "the command line)")


#: variables of the build itself; every other variable is an app option (:data:`OPTION_VARIABLES`)
BUILD_VARIABLES = ("board", "app", "build", "opt", "verbose")
OPTION_VARIABLES = ("model", "seed", "input", "backend", "tflm_root", "ql", "ql_map", "inject",
                    "power_fail", "capacitor", "pipeline", "inputs", "mode",
                    "tflm_kernels", "tflm_arena", "tflm_probe", "tflm_dump")
#: largest seed (the runtime and the input generators take 32 bits)
MAX_SEED = 0xFFFFFFFF


def check_seed(value: Any) -> int:
    """``seed=`` as an int in 0..2**32-1, else a :class:`BuildError` saying so."""
    try:
        seed = int(str(value).strip())
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise BuildError(f"seed={value} must be an integer from 0 to {MAX_SEED}")
    return seed


def parse_args(args: dict[str, str]) -> tuple[Board, str, dict[str, Any], Path]:
    unknown = sorted(set(args) - set(BUILD_VARIABLES) - set(OPTION_VARIABLES))
    if unknown:
        raise BuildError(f"unknown variable{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(unknown)}; valid: "
                         f"{', '.join(BUILD_VARIABLES + OPTION_VARIABLES)} (scons --help)")
    board = load_board(args.get("board", DEFAULT_BOARD))
    options: dict[str, Any] = {k: args[k] for k in OPTION_VARIABLES if k in args}
    if "seed" in options:
        check_seed(options["seed"])
    app_name = tflm.resolve_app(args.get("app", DEFAULT_APP), options)  # infer+tflm -> tflm
    app = get_app(app_name)
    check_app_options(app_name, options)
    if "inputs" in options and app_name in ("infer", "tflm", "nvmtest"):
        text = str(options["inputs"]).strip()
        if not (text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_INPUT_SETS):
            raise BuildError(f"inputs={options['inputs']} must be a number of input sets from 1 "
                             f"to {MAX_INPUT_SETS}")
    if app.needs_model and "model" not in options:
        raise BuildError(f"app '{app_name}' needs a model: scons board={board.name} "
                         f"app={app_name} model=<path/to/model.tflite>")
    build_dir = (Path(args["build"]) if "build" in args else
                 default_build_dir(board.name, tflm.default_build_name(app_name, options)))
    return board, app_name, options, build_dir.resolve()


def configure(env: Any, args: dict[str, str]) -> None:
    """Set up the SCons environment ``env`` for the board/app in ``args`` and declare targets."""
    from SCons.Script import Alias, AlwaysBuild, Default, SConsignFile  # only under SCons

    board, app_name, options, build_dir = parse_args(args)
    opt = args.get("opt", "O2")
    if opt not in ("O0", "O1", "O2", "O3", "Os", "Og"):
        raise BuildError(f"opt={opt} is not one of O0, O1, O2, O3, Os, Og")
    if not board.is_host:  # every tool the build and its report need, before anything is made
        for tool in ("arm-none-eabi-gcc", "arm-none-eabi-ar", "arm-none-eabi-ranlib",
                     "arm-none-eabi-objcopy"):
            which_tool(tool)
    tree = generate(board, app_name, build_dir, options)
    SConsignFile(str(build_dir / ".sconsign"))
    src = tree.src_dir
    art = Artifacts.for_dir(board, build_dir)

    common = ["-std=c11", f"-{opt}", "-g", "-Wall", "-Wextra", "-Werror",
              "-ffunction-sections", "-fdata-sections"]
    if board.is_host:
        cc = which_tool("gcc") if shutil.which("gcc") else which_tool("cc")
        env.Replace(CC=cc, LINK=cc)
        env.Replace(CCFLAGS=common + ["-fPIC"], CPPPATH=[str(src)], LINKFLAGS=[], LIBS=["m"])
    else:
        cc = which_tool("arm-none-eabi-gcc")
        env.Replace(CC=cc, LINK=cc, AS=cc, AR=which_tool("arm-none-eabi-ar"),
                    RANLIB=which_tool("arm-none-eabi-ranlib"))
        arch = board.cflags()
        env.Replace(
            CCFLAGS=common + arch + ["-fno-common"],
            CPPPATH=[str(src)],
            LINKFLAGS=arch + ["-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
                              "-Wl,--gc-sections", f"-Wl,-Map={art.map}",
                              f"-T{src / 'linker.ld'}"],
            LIBS=["m"],
        )
    env["OBJPREFIX"] = ""
    if args.get("verbose") != "1":
        env["CCCOMSTR"] = "CC $TARGET"
        env["LINKCOMSTR"] = "LINK $TARGET"
    objs = []
    cdb = []
    for s in tree.sources:
        obj = build_dir / "obj" / Path(s).with_suffix(".o")
        objs.append(env.Object(str(obj), str(src / s)))
        cdb.append({"directory": str(build_dir), "file": str(src / s), "output": str(obj),
                    "arguments": [cc, *env["CCFLAGS"], f"-I{src}", "-c", str(src / s),
                                  "-o", str(obj)]})
    # Written here rather than by SCons' compilation_db tool, which rewrites it on every run.
    write_if_changed(build_dir / "compile_commands.json", json.dumps(cdb, indent=2) + "\n")
    tflm_info = tree.manifest.get("app_info", {}).get("tflm")
    if tflm_info:  # backend=tflm: the C++ glue and the TFLM library (generator/tflm.py)
        objs += tflm_library.scons_objects(env, board, src, build_dir, opt, tflm_info,
                                   args.get("verbose") == "1")
    elf = env.Program(str(art.elf), objs)
    if not board.is_host:
        env.Depends(elf, str(src / "linker.ld"))
    outputs = [elf]
    # board=host: an app may ask for a shared library of some of its sources (infer:
    # libssmodel.so, driven by generator.targets.hostmodel through ctypes). Host objects are -fPIC.
    lib = tree.manifest.get("app_info", {}).get("host_library") if board.is_host else None
    if lib:
        wanted = set(lib["sources"])
        env["STATIC_AND_SHARED_OBJECTS_ARE_THE_SAME"] = True
        if args.get("verbose") != "1":
            env["SHLINKCOMSTR"] = "LINK $TARGET"
        outputs.append(env.SharedLibrary(
            str(build_dir / lib["file"]),
            [o for s, o in zip(tree.sources, objs) if s in wanted],
        ))

    # SCons fingerprints what an action's closure captures: keep to plain values.
    board_name, is_host, has_tflm = board.name, board.is_host, bool(tflm_info)

    def _report(target: Any, source: Any, env: Any) -> int:
        board = load_board(board_name)
        if is_host:
            Path(art.size_json).write_text(json.dumps({"board": board.name}) + "\n")
            return 0
        objcopy = which_tool("arm-none-eabi-objcopy")
        for fmt, path in (("binary", art.bin), ("ihex", art.hex)):
            subprocess.run([objcopy, "-O", fmt, str(art.elf), str(path)], check=True,
                           timeout=60)
        report = size_report(board, art.elf)
        problems = static_checks(board, art.elf, art.bin)  # type: ignore[arg-type]
        if has_tflm:
            problems += [p for p in [tflm_library.check_no_constructors(art.elf)] if p]
        report["static_checks"] = problems or "ok"
        Path(art.size_json).write_text(json.dumps(report, indent=2) + "\n")
        print(format_size_report(report))
        if problems:
            sys.stderr.write(f"image checks failed for {board.name}: {'; '.join(problems)}\n")
            return 1
        return 0

    targets = [str(art.size_json)] + ([str(art.bin), str(art.hex)] if art.bin else [])
    post = env.Command(targets, elf, _report)
    outputs.append(post)
    Default(outputs)

    def _print_size(target: Any, source: Any, env: Any) -> int:
        if not is_host:
            print(format_size_report(size_report(load_board(board_name), art.elf)))
        return 0

    size_alias = Alias("size", post, _print_size)
    AlwaysBuild(size_alias)


# ---- the CLI side --------------------------------------------------------------------------

def scons_command(board: str, app: str, options: dict[str, Any], build_dir: Path | None,
                  extra: list[str] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "SCons", "-Q", "-C", str(project_root()), f"board={board}",
           f"app={app}"]
    for k, v in sorted(options.items()):
        cmd.append(f"{k}={v}")
    if build_dir is not None:
        cmd.append(f"build={build_dir}")
    if extra:
        cmd += extra
    return cmd


def resolve_build_dir(board: Board, app: str, options: dict[str, Any] | None,
                      build_dir: Path | None) -> Path:
    """The directory a build of ``app`` for ``board`` uses (``build_dir`` or the default)."""
    return Path(build_dir or default_build_dir(
        board.name, tflm.default_build_name(app, dict(options or {})))).resolve()


def lock_for_scons(args: dict[str, str]) -> None:
    """``scons`` on the command line: own the build directory until SCons exits (a run started
    by ``sweetspot`` passes its lock down instead, see :mod:`generator.build.lock`)."""
    hold_for_process(parse_args(args)[3])


def check_build_dir(bdir: Path) -> None:
    """A build directory that cannot be one (a file is in the way) is an error up front."""
    at = bdir
    while not at.exists() and at != at.parent:
        at = at.parent
    if not at.is_dir():
        raise BuildError(f"build directory {bdir}: {at} is a file, not a directory; "
                         "give another --build-dir")


def run_scons(board: Board, app: str, options: dict[str, Any] | None = None,
              build_dir: Path | None = None, jobs: int | None = None) -> Artifacts:
    """Generate and build via SCons in a subprocess; returns the artifact paths. Holds the
    build directory's lock while SCons runs (callers that go on to run the image hold it
    longer: :func:`generator.build.lock.build_dir_lock`)."""
    options = dict(options or {})
    tflm.preflight(app, options)  # backend=tflm without a checkout: the how-to, before SCons
    bdir = resolve_build_dir(board, app, options, build_dir)
    check_build_dir(bdir)
    extra = [f"-j{jobs or max(1, os.cpu_count() or 1)}"]
    cmd = scons_command(board.name, app, options, bdir, extra)
    with build_dir_lock(bdir):
        fresh = not bdir.exists()
        try:
            return _scons(board, app, bdir, cmd)
        except BaseException:
            # nothing half-made: a directory this build created goes; an older one loses its
            # manifest, so nothing (runner, HostModel) trusts sources that were never built
            if fresh:
                shutil.rmtree(bdir, ignore_errors=True)
            else:
                (bdir / MANIFEST).unlink(missing_ok=True)
            raise


def _scons(board: Board, app: str, bdir: Path, cmd: list[str]) -> Artifacts:
    try:
        result = proc.run(cmd, text=True, timeout=SCONS_TIMEOUT_S,
                          pass_fds=inherited_fds(bdir), env=child_env(bdir))
    except FileNotFoundError as e:
        raise ToolchainError(
            f"cannot run SCons ({e}); reinstall the package: pip install -e .") from e
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"the build took longer than {SCONS_TIMEOUT_S} s") from e
    if result.returncode != 0:
        err = result.stderr.strip().splitlines()
        at = next((i for i, line in enumerate(err) if line.startswith("scons: error: ")), None)
        if at is not None:  # the message and its continuation lines
            raise BuildError("\n".join([err[at][len("scons: error: "):]] + err[at + 1:]))
        tail = "\n".join((result.stdout.strip().splitlines() + err)[-25:])
        raise BuildError(f"build failed for board {board.name}, app {app}:\n{tail}")
    return Artifacts.for_dir(board, bdir)
