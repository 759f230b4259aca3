"""Accuracy figures of the screener and of the system with wake-up."""

from __future__ import annotations

from typing import Any

import numpy as np

from generator.wakeup.screener import (
    FINAL_NORMAL,
    STATUS_NAMES,
    WAKE_ABNORMAL,
    WAKE_AMBIGUOUS,
    WAKE_INVALID,
)


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int, classes=None) -> float:
    """Mean F1 over ``classes`` (default: all), predictions over all ``n_classes``."""
    f1 = f1_per_class(confusion(y, pred, n_classes))
    sel = list(range(n_classes)) if classes is None else list(classes)
    return float(f1[sel].mean())


def system_decision(status: np.ndarray, backend: np.ndarray) -> np.ndarray:
    """Woken beats take the back end's class, the others are finalized normal (0)."""
    return np.where(status != FINAL_NORMAL, backend, 0)


def summary(y: np.ndarray, screener_pred: np.ndarray, status: np.ndarray,
            backend: np.ndarray | None, n_classes: int) -> dict[str, Any]:
    """Everything the report states about one screener on one test set."""
    abnormal = y != 0
    normal = ~abnormal
    out: dict[str, Any] = {
        "n_beats": int(len(y)),
        "screener_macro_f1_abnormal": macro_f1(y, screener_pred, n_classes,
                                               range(1, n_classes)),
        "screener_macro_f1_all": macro_f1(y, screener_pred, n_classes),
        "screener_confusion": confusion(y, screener_pred, n_classes).tolist(),
        "wake_rate_normal": float(np.mean(status[normal] != FINAL_NORMAL)),
        "wake_rate_abnormal": float(np.mean(status[abnormal] != FINAL_NORMAL)),
        "silent_errors": int(np.sum(abnormal & (status == FINAL_NORMAL))),
        "silent_error_rate": float(np.mean(status[abnormal] == FINAL_NORMAL)),
    }
    for name, group in (("normal", normal), ("abnormal", abnormal)):
        out[f"wake_causes_{name}"] = {
            STATUS_NAMES[s]: float(np.mean(status[group] == s))
            for s in (WAKE_ABNORMAL, WAKE_AMBIGUOUS, WAKE_INVALID)}
    if backend is not None:
        sysd = system_decision(status, backend)
        out["system_macro_f1_abnormal"] = macro_f1(y, sysd, n_classes, range(1, n_classes))
        out["system_macro_f1_all"] = macro_f1(y, sysd, n_classes)
        out["system_confusion"] = confusion(y, sysd, n_classes).tolist()
        out["backend_macro_f1_all"] = macro_f1(y, backend, n_classes)
    return out
