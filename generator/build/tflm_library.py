"""The build stage of the TFLM backend: the TFLM library and the generated C++ glue as SCons
nodes, compiled with the project's toolchain flags (the tree itself is :mod:`generator.tflm.tree`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from generator.boards import Board
from generator.build.toolchain import read_sections, which_tool
from generator.errors import BuildError
from generator.tflm.tree import TflmSetupError, cache_root, tree_from_manifest

# ---- SCons -------------------------------------------------------------------------------------

_CXX_COMMON = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
               "-fno-unwind-tables", "-fno-asynchronous-unwind-tables", "-ffunction-sections",
               "-fdata-sections", "-fmessage-length=0"]


def check_cxx(board: Board) -> str:
    """The C++ compiler for the board, with a standard-library header set."""
    cxx = which_tool("g++" if board.is_host else "arm-none-eabi-g++")
    if board.is_host:
        return cxx
    probe = subprocess.run([cxx, *board.cflags(), "-x", "c++", "-fsyntax-only", "-"],
                           input="#include <new>\n#include <cstdint>\n#include <algorithm>\n",
                           capture_output=True, text=True, timeout=60, check=False)
    if probe.returncode != 0:
        raise TflmSetupError(
            "arm-none-eabi-g++ has no C++ standard headers (<new>, <cstdint>, ...); install "
            "them (headers only, about 17 MB): sudo apt-get install -y --no-install-recommends "
            f"libstdc++-arm-none-eabi-dev\n{probe.stderr.strip()[:500]}")
    return cxx


def _path_free_cache_class() -> type:
    """An SCons ``CacheDir`` class whose signature leaves out the target's path (SCons adds it
    so that several targets of one action differ; a TFLM object is the only target of its
    compile). With ``$( $TARGET $)`` in the command, an object compiled in one build directory
    is retrieved in every other one instead of being compiled again."""
    import SCons.CacheDir
    from SCons.Util import hash_collect

    class PathFreeCacheDir(SCons.CacheDir.CacheDir):  # type: ignore[misc]
        def cachepath(self, node: Any) -> tuple[str | None, str | None]:
            if not self.is_enabled():
                return None, None
            sigs = [n.get_cachedir_csig() for n in node.children()]
            sigs.append(node.get_contents_sig())
            sig = hash_collect(sigs)
            subdir = sig[: self.config["prefix_len"]].upper()
            cachedir = os.path.join(self.path, subdir)
            return cachedir, os.path.join(cachedir, sig)

    return PathFreeCacheDir


def scons_objects(env: Any, board: Board, src: Path, build_dir: Path, opt: str,
                  info: dict[str, Any], verbose: bool) -> list[Any]:
    """Declare the TFLM library and the generated C++ glue for ``env``; returns the nodes to link
    (glue objects, then ``libtflm.a``). Adjusts ``env`` for C++ linking on the host."""
    tree = tree_from_manifest(info)
    if not tree.path.is_dir():
        raise BuildError(f"the TFLM tree {tree.path} is gone; build again to regenerate it")
    cxx = check_cxx(board)
    arch = board.cflags()
    defines = [f"-D{d}" for d in tree.defines()]
    if board.is_host:
        cc = env["CC"]
        env.Replace(LINK=cxx)  # the host links libstdc++; targets link with gcc and need none
        base = ["-fPIC"]
    else:
        cc = env["CC"]
        base = arch + ["-fno-common"]
    lenv = env.Clone()
    lenv.Replace(
        CXX=cxx, CC=cc,
        CXXFLAGS=[], CFLAGS=[], CPPPATH=[str(d) for d in tree.include_dirs()],
        CCFLAGS=base + [f"-{opt}", "-w", "-ffunction-sections", "-fdata-sections"] + defines,
    )
    # The signature must not contain the object's path: then every build directory shares the
    # compiled library through the cache instead of compiling it again.
    lenv["CXXCOM"] = "$CXX -o $( $TARGET $) -c $CXXFLAGS $CCFLAGS $_CCCOMCOM $SOURCES"
    lenv["CCCOM"] = "$CC -o $( $TARGET $) -c $CFLAGS $CCFLAGS $_CCCOMCOM $SOURCES"
    lenv.Append(CXXFLAGS=_CXX_COMMON, CFLAGS=["-std=c11"])
    lenv.CacheDir(str(cache_root() / "scons"), _path_free_cache_class())
    if not verbose:
        lenv["CXXCOMSTR"] = "CXX(tflm) $TARGET"
        lenv["CCCOMSTR"] = "CC(tflm) $TARGET"
    lib_objs = []
    for rel in tree.library_sources(info.get("resolver")):
        obj = build_dir / "tflm" / "obj" / (rel + ".o")
        lib_objs.append(lenv.Object(str(obj), str(tree.path / rel)))
    aenv = env.Clone()  # the archive lists per-build paths: not worth caching
    if not verbose:
        aenv["ARCOMSTR"] = "AR $TARGET"
        aenv["RANLIBCOMSTR"] = "RANLIB $TARGET"
    lib = aenv.StaticLibrary(str(build_dir / "tflm" / "libtflm.a"), lib_objs)

    genv = env.Clone()
    genv.Replace(CXX=cxx)
    genv["CXXFLAGS"] = _CXX_COMMON + ["-Wall", "-Wextra", "-Werror"]
    genv["CCFLAGS"] = [f for f in env["CCFLAGS"] if f not in ("-std=c11",)] + defines
    genv.Append(CCFLAGS=[f"-isystem{d}" for d in tree.include_dirs()])
    if not verbose:
        genv["CXXCOMSTR"] = "CXX $TARGET"
    glue = []
    for p in sorted(src.rglob("*.cc")):
        rel = p.relative_to(src)
        glue.append(genv.Object(str(build_dir / "obj" / rel.with_suffix(".o")), str(p)))
    return glue + [lib]


def check_no_constructors(elf: Path) -> str | None:
    """The startup code runs no C++ static constructors: an image that has any is wrong."""
    for s in read_sections(elf):
        if s.name in (".init_array", ".preinit_array", ".ctors") and s.size:
            return f"{s.name} is not empty ({s.size} B): static constructors would never run"
    return None
