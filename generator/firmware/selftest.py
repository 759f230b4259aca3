"""``selftest``: firmware that misbehaves on purpose (serial garbage, a fault, a stream cut short,
a hang, a non-zero status) so the host's error handling is exercised on real targets."""

from __future__ import annotations

from typing import Any

from generator.boards import Board
from generator.errors import AppError
from generator.firmware.apps import register

MODES = ("ok", "garbage", "fault", "cut", "hang", "status")


class SelftestApp:
    name = "selftest"
    description = "misbehaving firmware for testing the host's error paths"
    needs_model = False

    def _mode(self, options: dict[str, Any]) -> str:
        mode = str(options.get("mode", "ok"))
        if mode not in MODES:
            raise AppError(f"selftest mode '{mode}' is unknown; known: {', '.join(MODES)}")
        return mode

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        return {"mode": self._mode(options)}

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [("apps/selftest/main.c.j2", "main.c")]

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return {}

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        return {"mode": ctx["mode"]}


register(SelftestApp())
