"""Energy per input of the wake-up system, from measured instruction counts.

    E = E_front + P_monitor · T_s + p_wake · E_service

* ``E_front``: the screener's instructions per beat on the always-on core × that board's energy
  per cycle (``active_uw_per_mhz`` is numerically pJ per cycle; one instruction is taken as one
  cycle - the twins count instructions, not cycles);
* ``P_monitor``: the always-on part's stop-mode power between beats, a board data field
  (``[power] stop_uw`` with its ``stop_source`` in ``boards/<board>.toml``);
* ``E_service``: the wake-up boot + MLP instructions on the service core × its energy per cycle;
* ``p_wake``: the wake rates on normal and abnormal beats reweighted to a deployment prior of
  abnormal beats, ``p_wake = prior · w_abnormal + (1 − prior) · w_normal``.

The baseline runs the MLP on every beat on the service core (and pays the same stop power
between beats): ``E_always = P_monitor · T_s + E_mlp``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from generator.boards import Board
from generator.errors import BoardError


@dataclass(frozen=True)
class MonitorPower:
    stop_uw: float
    source: str


def monitor_power(board: Board) -> MonitorPower:
    """The board's ``[power]`` table: stop-mode power in µW and where the figure comes from."""
    if board.path is None:
        raise BoardError(f"board '{board.name}' has no file to read [power] from")
    data = tomllib.loads(board.path.read_text())
    power = data.get("power")
    if not isinstance(power, dict) or "stop_uw" not in power or "stop_source" not in power:
        raise BoardError(f"board '{board.name}' ({board.path}) has no [power] stop_uw / "
                         "stop_source; add the part's stop-mode power and its datasheet source")
    return MonitorPower(float(power["stop_uw"]), str(power["stop_source"]))


@dataclass(frozen=True)
class Counts:
    """Measured instructions per beat: screener (always-on core), wake-up boot and MLP
    (service core)."""

    screener: float
    boot: float
    mlp: float


def energy_per_input(counts: Counts, front: Board, service: Board, monitor: MonitorPower,
                     t_s: float, wake_normal: float, wake_abnormal: float, prior: float
                     ) -> dict[str, Any]:
    """All terms in nJ for a monitoring period ``t_s`` seconds."""
    e_front = counts.screener * front.pj_per_cycle * 1e-3
    e_monitor = monitor.stop_uw * t_s * 1e3      # µW · s = µJ → nJ
    e_service = (counts.boot + counts.mlp) * service.pj_per_cycle * 1e-3
    e_mlp = counts.mlp * service.pj_per_cycle * 1e-3
    p_wake = prior * wake_abnormal + (1 - prior) * wake_normal
    total = e_front + e_monitor + p_wake * e_service
    always = e_monitor + e_mlp
    return {"t_s": t_s, "prior": prior, "p_wake": p_wake, "e_front_nj": e_front,
            "e_monitor_nj": e_monitor, "e_service_nj": e_service, "e_total_nj": total,
            "e_always_nj": always, "factor": always / total}
