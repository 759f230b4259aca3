"""Text from outside (model file names, tensor names, board and pipeline strings) reaches the
generated C only through generator.cstring: checked against the C compiler itself (what a literal
means is what gcc makes of it), on every template, and end to end with a hostile model."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import flatbuffers
import pytest
from _util import ROOT, require_tool
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

from generator.cstring import c_comment, c_string

HOSTILE = [
    "",
    'a"b',
    "back\\slash",
    'x"\n#error injected\n"',
    "new\nline\r\ttab\v\f\a\b",
    "*/ int injected; /*",
    "??/ trigraph ??= ??' ??( ??)",
    "\\x41 then digits \x01" + "23",
    "\x00nul inside",
    "ümlaut é 数字 \U0001f600",
    "bad utf-8 \udcff\udc80",  # surrogate-escaped bytes of a non-UTF-8 file name
    "".join(chr(c) for c in range(1, 128)),
]


def _compile_and_run(tmp_path: Path, c_source: str) -> bytes:
    cc = require_tool("gcc", "cc")
    src = tmp_path / "t.c"
    src.write_text(c_source, encoding="ascii")
    exe = tmp_path / "t"
    p = subprocess.run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wcomment",
                        "-Wtrigraphs", str(src), "-o", str(exe)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return subprocess.run([str(exe)], capture_output=True, timeout=30, check=True).stdout


def test_c_string_means_the_bytes_it_came_from(tmp_path: Path) -> None:
    body = "".join(
        f"    {{ static const char s[] = {c_string(s)}; "
        f"printf(\"%zu:\", sizeof s - 1); fwrite(s, 1, sizeof s - 1, stdout); }}\n"
        for s in HOSTILE)
    out = _compile_and_run(tmp_path, "#include <stdio.h>\nint main(void) {\n" + body
                           + "    return 0;\n}\n")
    got = []
    while out:
        n, _, out = out.partition(b":")
        got.append(out[:int(n)])
        out = out[int(n):]
    want = [s.encode("utf-8", errors="surrogateescape") for s in HOSTILE]
    assert got == want


def test_c_comment_stays_one_comment(tmp_path: Path) -> None:
    lines = "".join(f"/* {c_comment(s)} */\n" for s in HOSTILE)
    for s in HOSTILE:
        text = c_comment(s)
        assert "*/" not in text and "/*" not in text and "\n" not in text
        assert all(0x20 <= ord(ch) < 0x7F for ch in text)
    out = _compile_and_run(tmp_path, "#include <stdio.h>\n" + lines
                           + "int main(void) { fputs(\"ok\", stdout); return 0; }\n")
    assert out == b"ok"


#: literals that only ever hold generator-made text (an int, a fixed instruction)
GENERATOR_MADE = {'"t{{ t.index }}"', '"1: {{ clf.loop_sub }}\\n bne 1b\\n"'}


def _templates() -> list[Path]:
    return sorted((ROOT / "templates").rglob("*.j2"))


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_escape_every_text_they_place(path: Path) -> None:
    """No ``"{{ x }}"`` (a literal must come whole from ``cstr``), and every value placed inside
    a ``/* */`` comment goes through ``ccomment``."""
    text = path.read_text(encoding="utf-8")
    code = re.sub(r"\{%.*?%\}|\{\{.*?\}\}", lambda m: m.group(0).replace('"', "'"), text,
                  flags=re.S)  # quotes inside Jinja tags are Jinja's, not C's
    literals = re.findall(r'"(?:[^"\\\n]|\\.)*"', code)
    bad = [s for s in literals if "{{" in s and s not in GENERATOR_MADE]
    assert not bad, f"string literals built in the template (use | cstr): {bad}"
    for comment in re.findall(r"/\*.*?\*/", text, flags=re.S):
        for expr in re.findall(r"\{\{(.*?)\}\}", comment):
            assert re.search(r"\|\s*ccomment\s*$", expr), \
                f"{{{{{expr}}}}} inside a comment without | ccomment"


# ---- end to end: a model whose file name and tensor names try to inject C ---------------------

EVIL_FILE = 'evil"\n#define SS_INJECTED 1\n" *\\ ?? é'
EVIL_TENSOR = 'x */\n#define SS_INJECTED 2\n/* "'


def _evil_model(dest: Path) -> Path:
    model = tfl.ModelT.InitFromPackedBuf(
        (ROOT / "models" / "digits_mlp_int8.tflite").read_bytes(), 0)
    for i, t in enumerate(model.subgraphs[0].tensors):
        t.name = f"{EVIL_TENSOR}{i}".encode()
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path = dest / f"{EVIL_FILE}.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def test_hostile_model_and_tensor_names_build_and_read_back(tmp_path: Path) -> None:
    cc = require_tool("gcc", "cc")
    model = _evil_model(tmp_path)
    bdir = tmp_path / "b"
    p = subprocess.run([sys.executable, "-m", "generator.cli", "build", "--board", "host",
                        "--model", str(model), "--ql", "Q2", "--build-dir", str(bdir)],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    src = bdir / "src"
    generated = [f for f in src.rglob("*") if f.is_file() and f.suffix in (".c", ".h", ".ld")]
    text = "\n".join(f.read_text(encoding="utf-8") for f in generated)
    assert not re.search(r"^\s*#\s*define\s+SS_INJECTED", text, flags=re.M)
    assert "x * /\\x0a#define SS_INJECTED 2\\x0a/ * \"0" in text  # tensor names, in comments
    # what the compiler makes of SS_MODEL_NAME is the file name, byte for byte
    probe = tmp_path / "probe.c"
    probe.write_text('#include <stdio.h>\n#include "model/ss_model.h"\n'
                     '#ifdef SS_INJECTED\n#error injected\n#endif\n'
                     "int main(void) { fputs(SS_MODEL_NAME, stdout); return 0; }\n")
    exe = tmp_path / "probe"
    c = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", f"-I{src}", str(probe), "-o",
                        str(exe)], capture_output=True, text=True, timeout=60)
    assert c.returncode == 0, c.stderr
    out = subprocess.run([str(exe)], capture_output=True, timeout=30, check=True).stdout
    assert out == EVIL_FILE.encode()


# ---- board TOML strings that are not only shown in comments ---------------------------------

def _board_data(**changes: object) -> dict[str, object]:
    import tomllib

    data = tomllib.loads((ROOT / "boards" / "qemu_m33.toml").read_text())
    for key, value in changes.items():
        if key == "memory":
            data["memory"] = value
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("changes,says", [
    ({"name": 'm33"\n#define X 1'}, "name"),
    ({"name": "../../etc"}, "name"),
    ({"memory": {"flash": {"origin": 0x10000000, "length": 0x100000},
                 "ram\n} INJECTED": {"origin": 0x38000000, "length": 0x10000}}},
     "memory region name"),
])
def test_board_strings_used_as_names_must_be_names(changes: dict[str, object],
                                                   says: str) -> None:
    from generator.boards import parse_board
    from generator.errors import BoardError

    with pytest.raises(BoardError, match=says):
        parse_board(_board_data(**changes), "boards/evil.toml")
    parse_board(_board_data(), "boards/qemu_m33.toml")  # the real one passes
