"""The package's architecture, checked: no import cycles between modules, and every stage
imports only earlier stages (load → plan → emit → build → run → results)."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

from _util import ROOT

PKG = ROOT / "generator"

#: every module's stage; a module may import only modules of its own or an earlier stage
STAGES = ("foundation", "load", "plan", "emit", "build", "run", "results", "entry")
STAGE_OF = {
    "generator": "foundation",
    "generator.errors": "foundation",
    "generator.cstring": "foundation",
    "generator.proc": "foundation",
    "generator.compiler": "foundation",
    "generator.runtime": "foundation",
    "generator.frontend": "foundation",
    "generator.tflm": "foundation",
    "generator.boards": "load",
    "generator.compiler.ir": "load",
    "generator.compiler.loader": "load",
    "generator.compiler.fold": "load",
    "generator.compiler.modelgen": "load",
    "generator.compiler.shapes": "load",
    "generator.frontend.pipeline": "plan",
    "generator.compiler.tflm_math": "plan",
    "generator.compiler.schedule": "plan",
    "generator.compiler.plan": "plan",
    "generator.compiler.inspect": "plan",
    "generator.runtime.quality": "plan",
    "generator.runtime.inject": "plan",
    "generator.runtime.layout": "plan",
    "generator.frontend.preprocess": "plan",
    "generator.tflm.tree": "plan",
    "generator.firmware": "emit",
    "generator.firmware.apps": "emit",
    "generator.firmware.board": "emit",
    "generator.firmware.bench": "emit",
    "generator.firmware.selftest": "emit",
    "generator.compiler.lowering": "emit",
    "generator.compiler.emit": "emit",
    "generator.runtime.emit": "emit",
    "generator.runtime.nvmtest": "emit",
    "generator.frontend.emit": "emit",
    "generator.tflm.arena": "emit",
    "generator.tflm.app": "emit",
    "generator.build": "build",
    "generator.build.toolchain": "foundation",
    "generator.build.lock": "foundation",
    "generator.build.tflm_library": "build",
    "generator.targets": "run",
    "generator.targets.base": "run",
    "generator.targets.protocol": "run",
    "generator.targets.qemu": "run",
    "generator.targets.host": "run",
    "generator.targets.nucleo": "run",
    "generator.targets.hostmodel": "run",
    "generator.runtime.energy": "results",
    "generator.runner": "results",
    "generator.runtime.campaign": "results",
    "generator.tflm.probe": "results",
    "generator.wakeup": "foundation",
    "generator.wakeup.data": "load",
    "generator.wakeup.screener": "plan",
    "generator.wakeup.metrics": "plan",
    "generator.wakeup.backend": "plan",
    "generator.wakeup.degrade": "plan",
    "generator.wakeup.energy": "plan",
    "generator.wakeup.emit": "emit",
    "generator.wakeup.report": "results",
    "generator.cli": "entry",
}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _graph() -> dict[str, set[str]]:
    """Module → the project modules it imports anywhere in its body (late imports included)."""
    mods = _modules()
    g: dict[str, set[str]] = collections.defaultdict(set)
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.startswith("generator"):
                for a in node.names:
                    sub = f"{node.module}.{a.name}"
                    g[m].add(sub if sub in mods else node.module)
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{p}: relative import; the package uses absolute imports")
            elif isinstance(node, ast.Import):
                g[m].update(a.name for a in node.names if a.name.startswith("generator"))
        g[m].discard(m)
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    color: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(u: str) -> None:
        color[u] = 1
        stack.append(u)
        for v in sorted(g.get(u, ())):
            if color.get(v) == 1:
                found.append(stack[stack.index(v):] + [v])
            elif not color.get(v):
                visit(v)
        stack.pop()
        color[u] = 2

    for m in sorted(g):
        if not color.get(m):
            visit(m)
    return found


def test_every_module_has_a_stage():
    assert sorted(set(_modules()) - set(STAGE_OF)) == []


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_stages_only_import_earlier_stages():
    rank = {s: i for i, s in enumerate(STAGES)}
    back = [f"{m} ({STAGE_OF[m]}) imports {d} ({STAGE_OF[d]})"
            for m, deps in _graph().items() for d in deps
            if d in STAGE_OF and rank[STAGE_OF[d]] > rank[STAGE_OF[m]]]
    assert back == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_one_crc32_in_the_templates():
    crcs = [p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*crc32.c*")]
    assert crcs == ["templates/common/ss_crc32.c.j2"]


def test_test_files_have_unique_names():
    """tests/ and hil_tests/ are no packages: pytest imports each file by its basename, so two
    files of one name stop the whole collection."""
    names = [p.name for d in ("tests", "hil_tests") for p in (ROOT / d).glob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []
