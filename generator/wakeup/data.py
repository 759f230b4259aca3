"""MIT-BIH beats for the wake-up screener: records → 700 ms beats → FFT magnitude features.

The records are read at run time from ``../shared/data/mitdb`` (or ``$SWEETSPOT_MITDB``) with the
``wfdb`` package; nothing of the data set is copied into the repository. A beat is 700 ms
(252 samples at 360 Hz) of lead MLII centred on the annotated QRS peak; its features are the
magnitudes of the real FFT of the mean-free segment divided by the segment length (127 bins,
bin k = k·360/252 Hz).

Class order (AAMI-style): 0 N normal, 1 L left bundle branch block, 2 R right bundle branch
block, 3 P paced. Two records per class; only the beats annotated with the record's own class
symbol are used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from generator import PROJECT_ROOT
from generator.errors import SweetspotError

CLASSES = ("N", "L", "R", "P")
SYMBOLS = ("N", "L", "R", "/")
#: class → its two records; the first trains, the second tests in the patient-wise split
RECORDS: dict[int, tuple[str, str]] = {0: ("100", "101"), 1: ("109", "111"),
                                       2: ("118", "124"), 3: ("107", "217")}
FS_HZ = 360
BEAT_SAMPLES = 252          # 700 ms
HALF = BEAT_SAMPLES // 2
N_BINS = BEAT_SAMPLES // 2 + 1
TEST_PER_CLASS = 800
SPLIT_SEED = 20261207


class DataError(SweetspotError):
    """The MIT-BIH records cannot be found or read."""


def mitdb_dir() -> Path:
    env = os.environ.get("SWEETSPOT_MITDB")
    return Path(env) if env else PROJECT_ROOT.parent / "shared" / "data" / "mitdb"


@dataclass(frozen=True)
class Beats:
    """Every usable beat: features float64 [n, 127], label [n], record name [n], peak sample."""

    features: np.ndarray
    labels: np.ndarray
    records: np.ndarray
    peaks: np.ndarray


@dataclass(frozen=True)
class Split:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def beat_features(segments: np.ndarray) -> np.ndarray:
    """|rfft| / segment length of each row, the segment's mean removed first (the DC bin would
    measure the record's baseline offset, i.e. the patient, not the beat; it is 0 here)."""
    seg = segments - segments.mean(axis=-1, keepdims=True)
    return np.abs(np.fft.rfft(seg, axis=-1)) / segments.shape[-1]


def load_beats(folder: Path | None = None) -> Beats:
    folder = Path(folder) if folder else mitdb_dir()
    try:
        import wfdb
    except ImportError as e:
        raise DataError("the wfdb package is missing: pip install -e . (it is a dependency)"
                        ) from e
    feats, labels, recs, peaks = [], [], [], []
    for cls, names in RECORDS.items():
        for name in names:
            base = folder / name
            if not base.with_suffix(".dat").is_file():
                raise DataError(f"MIT-BIH record {base}.dat is missing; put the mitdb records "
                                f"in {folder} or set SWEETSPOT_MITDB")
            sig = wfdb.rdrecord(str(base), channels=[0]).p_signal[:, 0]
            ann = wfdb.rdann(str(base), "atr")
            sym = np.asarray(ann.symbol)
            pk = np.asarray(ann.sample)
            keep = (sym == SYMBOLS[cls]) & (pk >= HALF) & (pk + HALF <= len(sig))
            pk = pk[keep]
            seg = np.stack([sig[p - HALF:p + HALF] for p in pk])
            feats.append(beat_features(seg))
            labels.append(np.full(len(pk), cls, dtype=np.int64))
            recs.append(np.full(len(pk), name))
            peaks.append(pk)
    return Beats(np.concatenate(feats), np.concatenate(labels), np.concatenate(recs),
                 np.concatenate(peaks))


def random_split(beats: Beats, per_class: int = TEST_PER_CLASS, seed: int = SPLIT_SEED) -> Split:
    """Balanced test set: ``per_class`` random beats of each class; every other beat trains."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(beats.labels), dtype=bool)
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(beats.labels == c)
        if len(idx) <= per_class:
            raise DataError(f"class {CLASSES[c]} has only {len(idx)} beats; need more than "
                            f"{per_class} for the test set")
        test[rng.choice(idx, per_class, replace=False)] = True
    order = np.flatnonzero(test)
    order = order[np.lexsort((order, beats.labels[order]))]  # class order, then time
    train = np.flatnonzero(~test)
    return Split("random", beats.features[train], beats.labels[train],
                 beats.features[order], beats.labels[order])


def patient_split(beats: Beats, per_class: int = TEST_PER_CLASS, seed: int = SPLIT_SEED
                  ) -> Split:
    """Train on the first record of each class, test on ``per_class`` random beats of the
    other (so no patient is in both)."""
    rng = np.random.default_rng(seed)
    train_recs = [r[0] for r in RECORDS.values()]
    train = np.flatnonzero(np.isin(beats.records, train_recs))
    test_parts = []
    for c, (_, rec) in RECORDS.items():
        idx = np.flatnonzero((beats.records == rec) & (beats.labels == c))
        test_parts.append(np.sort(rng.choice(idx, min(per_class, len(idx)), replace=False)))
    test = np.concatenate(test_parts)
    return Split("patient", beats.features[train], beats.labels[train],
                 beats.features[test], beats.labels[test])

