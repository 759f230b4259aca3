"""Outside text (file names, tensor and operator names, board and pipeline TOML strings) made
safe for generated C. Every such string reaches a template through one of these two functions,
registered as the Jinja filters ``cstr`` and ``ccomment`` (:func:`generator.firmware.make_env`).

* :func:`c_string` gives a complete C string literal, quotes included: printable ASCII passes
  through, ``"`` and ``\\`` are escaped, every other byte of the UTF-8 encoding (newlines, control
  characters, non-ASCII) becomes a three-digit octal escape, and ``?`` is escaped so no trigraph
  can form. Octal (never hex) escapes because a hex escape swallows every hex digit after it.
* :func:`c_comment` gives text for inside ``/* ... */``: one line, printable ASCII, ``*/`` and
  ``/*`` broken up; anything else shows as ``\\xNN`` (it is only read by people).

Both are total: any ``str`` (or anything with a ``str()``) goes in, and what comes out can never
end the literal or comment early, start a preprocessor line or a new statement.
"""

from __future__ import annotations

from typing import Any

_PRINTABLE = range(0x20, 0x7F)


def c_string(text: Any) -> str:
    """``text`` as a C string literal (with its quotes) whose bytes equal its UTF-8 encoding."""
    out = ['"']
    for b in str(text).encode("utf-8", errors="surrogateescape"):
        ch = chr(b)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif b in _PRINTABLE:
            out.append(ch)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


def c_comment(text: Any) -> str:
    """``text`` for inside a C block comment: one line of printable ASCII, no ``*/``."""
    out = []
    for b in str(text).encode("utf-8", errors="surrogateescape"):
        out.append(chr(b) if b in _PRINTABLE and b != 0x5C else f"\\x{b:02x}")
    s = "".join(out)
    while "*/" in s or "/*" in s:
        s = s.replace("*/", "* /").replace("/*", "/ *")
    return s
