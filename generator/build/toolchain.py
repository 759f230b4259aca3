"""The tools a build and a run call, found on PATH, each with the Debian package that brings it.

A leaf module: the build stage, the TFLM library build and the targets all look tools up here,
so a missing tool always names the right package.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from generator.errors import BuildError, ToolchainError

#: Debian packages per tool (the set-up script, ./sweetspot.sh, installs all of them)
_PACKAGES = (
    ("arm-none-eabi-g++", "gcc-arm-none-eabi libstdc++-arm-none-eabi-dev"),
    ("arm-none-eabi-", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
    ("qemu-system-", "qemu-system-arm"),
    ("g++", "g++"),
    ("gcc", "gcc libc6-dev"),
    ("cc", "gcc libc6-dev"),
    ("make", "make"),
)


def apt_hint(tool: str) -> str:
    """How to install ``tool`` on Debian (or run ./sweetspot.sh, which installs everything)."""
    for prefix, pkgs in _PACKAGES:
        if tool == prefix or (prefix.endswith("-") and tool.startswith(prefix)):
            return (f"install it with: sudo apt-get install -y --no-install-recommends {pkgs} "
                    "(./sweetspot.sh installs everything the project needs)")
    return "install it, or run ./sweetspot.sh, which installs everything the project needs"


def which_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"'{name}' was not found on PATH; {apt_hint(name)}")
    return path




@dataclass(frozen=True)
class Section:
    name: str
    size: int
    vma: int
    lma: int
    alloc: bool
    load: bool


def read_sections(elf: Path, objdump: str = "arm-none-eabi-objdump") -> list[Section]:
    tool = which_tool(objdump)
    try:
        out = subprocess.run([tool, "-h", str(elf)], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except subprocess.CalledProcessError as e:
        raise BuildError(f"objdump failed on {elf}: {e.stderr.strip()}") from e
    sections: list[Section] = []
    lines = out.splitlines()
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) >= 7 and parts[0].isdigit():
            flags = lines[i + 1] if i + 1 < len(lines) else ""
            sections.append(Section(
                name=parts[1], size=int(parts[2], 16), vma=int(parts[3], 16),
                lma=int(parts[4], 16), alloc="ALLOC" in flags, load="LOAD" in flags,
            ))
    return sections
