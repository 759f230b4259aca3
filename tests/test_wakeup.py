"""The wake-up screener and its back end on the host: hand-worked examples for the fixed-point
screener (codes, parity, wake rule, smoothing), sklearn's chi2 as the independent χ² reference,
the committed MLP compiled for board=host against the TFLM interpreter, and the issue's targets on
the real MIT-BIH beats (../shared/data/mitdb; skipped outside CI when absent)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _util import missing

from generator.runtime.inject import stream_flips
from generator.wakeup import backend, data, degrade, metrics
from generator.wakeup import screener as S

# ---- hand-worked pieces -------------------------------------------------------------------


def test_codes_hand_worked() -> None:
    cfg = S.ScreenerConfig()  # B = 0.15, m = 16, 8-bit codes
    p = np.array([1.0, 0.15, math.sqrt(0.15), 0.15**2, 0.15**20, 0.0])
    assert S.encode(p, cfg).tolist() == [0, 16, 8, 32, 254, 255]
    assert S.decode_probs(np.array([0, 16, 255], dtype=np.uint8), cfg).tolist() == [1.0, 0.15, 0]


def test_compressed_codes_saturate() -> None:
    cfg = S.ScreenerConfig(code_bits=4)  # values 0..14, 15 = zero probability
    p = np.array([1.0, 0.15, 0.15**2, 0.0])
    assert S.encode(p, cfg).tolist() == [0, 14, 14, 15]


def test_protected_codes_have_odd_parity_and_one_flip_is_invalid() -> None:
    cfg = S.ScreenerConfig(protected=True)
    p = np.array([1.0, 0.15, 0.15**3, 0.0])
    codes = S.encode(p, cfg)
    assert (codes & 0x7F).tolist() == [0, 16, 48, 127]
    assert [bin(int(c)).count("1") % 2 for c in codes] == [1, 1, 1, 1]
    # a table lookup of one feature for 4 classes; flip one bit of class 2's code
    looked = np.array([[[codes[0]], [codes[1]], [codes[1]], [codes[2]]]], dtype=np.uint8)
    assert S.classify_codes(looked, cfg, np.zeros((1, 1), int)).status[0] == S.FINAL_NORMAL
    looked[0, 2, 0] ^= 0x04
    assert S.classify_codes(looked, cfg, np.zeros((1, 1), int)).status[0] == S.WAKE_INVALID


def _rule(scores_n: int, scores_abn: list[int], margin: int = 0, zero: bool = False) -> int:
    cfg = S.ScreenerConfig(margin=margin)
    codes = np.array([[[scores_n], *[[a] for a in scores_abn]]], dtype=np.uint8)
    if zero:
        codes[0, 1, 0] = 255
    return int(S.classify_codes(codes, cfg, np.zeros((1, 1), int)).status[0])


def test_wake_rule_hand_worked() -> None:
    assert _rule(10, [20, 30, 40]) == S.FINAL_NORMAL          # N clearly likeliest
    assert _rule(25, [20, 30, 40]) == S.WAKE_ABNORMAL         # L beats N
    assert _rule(20, [20, 30, 40]) == S.WAKE_AMBIGUOUS        # tie N / L
    assert _rule(15, [20, 30, 40], margin=5) == S.WAKE_AMBIGUOUS  # wins by 5, not more
    assert _rule(14, [20, 30, 40], margin=5) == S.FINAL_NORMAL
    assert _rule(10, [20, 30, 40], zero=True) == S.WAKE_INVALID   # zero probability


def test_scores_are_sums_and_decision_is_first_minimum() -> None:
    cfg = S.ScreenerConfig()
    codes = np.array([[[1, 2], [3, 0], [0, 3], [9, 9]]], dtype=np.uint8)
    r = S.classify_codes(codes, cfg, np.zeros((1, 2), int))
    assert r.scores.tolist() == [[3, 3, 3, 18]]
    assert r.decision.tolist() == [0]
    assert r.status.tolist() == [S.WAKE_AMBIGUOUS]


def test_quantize_levels_hand_worked() -> None:
    thr = np.array([[10, 20, 30]])
    fq = np.array([[0], [9], [10], [29], [30], [65535]], dtype=np.uint16)
    assert S.quantize_levels(fq, thr)[:, 0].tolist() == [0, 0, 1, 2, 3, 3]
    assert S.feature_q(np.array([1.0, 1e6, -1.0])).tolist() == [4096, 65535, 0]


def test_smoothing_is_a_truncated_gaussian_convolution() -> None:
    cfg = S.ScreenerConfig(levels=8, sigma=1.0, radius=2)
    levels = np.array([[0], [0], [3], [7]])
    y = np.array([0, 0, 0, 1])
    p = S.smoothed_probs(levels, y, 2, cfg)
    k = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    hist = np.bincount([0, 0, 3], minlength=8).astype(float)
    ref = np.convolve(hist, k, mode="same")
    np.testing.assert_allclose(p[0, 0], ref / ref.sum())
    assert p[1, 0, :5].tolist() == [0.0] * 5  # beyond the radius: probability zero


def test_chi2_equals_sklearn() -> None:
    sk = pytest.importorskip("sklearn.feature_selection")
    rng = np.random.default_rng(3)
    x = rng.random((200, 12)) * np.arange(1, 13)
    y = rng.integers(0, 4, 200)
    x[y == 2, 5] += 3.0
    ours = S.chi2(x, y, 4)
    np.testing.assert_allclose(ours, sk.chi2(x, y)[0], rtol=1e-10)
    assert S.rank_bins(x, y, 4, 1).tolist() == [int(np.argmax(ours))]


def test_bad_parameters_say_what_is_wrong() -> None:
    with pytest.raises(S.ScreenerError, match="base B"):
        S.ScreenerConfig(base=1.5)
    with pytest.raises(S.ScreenerError, match="code_bits"):
        S.ScreenerConfig(code_bits=9)


def test_ql_tables_flip_the_injector_stream_bits() -> None:
    rng = np.random.default_rng(0)
    table = rng.integers(0, 200, (4, 4, 8)).astype(np.uint8)
    s = S.Screener(S.ScreenerConfig(), np.arange(4), np.zeros((4, 7), int), table, None)
    tables = degrade.stored_tables(s, "Q4", 3, seed=7)
    nbits = table.size * 8
    flips = stream_flips(7, 4, 3 * nbits)
    for i in range(3):
        diff = np.unpackbits(tables[i].reshape(-1) ^ table.reshape(-1), bitorder="little")
        expect = [b - i * nbits for b in flips if i * nbits <= b < (i + 1) * nbits]
        assert np.flatnonzero(diff).tolist() == expect


def test_read_error_draws_equal_the_injectors_prng() -> None:
    from generator.runtime.inject import Xoshiro128ss

    rate = 0.05
    masks = degrade.read_flip_masks(11, 40, 16, rate)
    thr = round(rate * 2**32)
    for beat in (0, 7, 39):
        rng = Xoshiro128ss.seeded(11, beat)
        want = [sum(1 << b for b in range(8) if rng.next() < thr) for _ in range(16)]
        assert masks[beat].tolist() == want
    assert 0.03 < np.unpackbits(masks).mean() < 0.07
    assert not degrade.read_flip_masks(11, 40, 16, 0.0).any()


def test_energy_hand_worked(tmp_path) -> None:
    from generator.boards import load_board
    from generator.wakeup import energy as E

    g0, u5 = load_board("nucleo_g071"), load_board("nucleo_u575")
    mon = E.monitor_power(g0)
    assert mon.stop_uw > 0 and "DS12232" in mon.source
    c = E.Counts(screener=1000, boot=500, mlp=20000)
    r = E.energy_per_input(c, g0, u5, mon, t_s=2e-3, wake_normal=0.02, wake_abnormal=1.0,
                           prior=0.1)
    p_wake = 0.1 + 0.9 * 0.02
    expect = 1000 * 12.5e-3 + mon.stop_uw * 2e-3 * 1e3 + p_wake * 20500 * 12.0e-3
    assert r["e_total_nj"] == pytest.approx(expect)
    assert r["factor"] == pytest.approx((mon.stop_uw * 2.0 + 20000 * 12.0e-3) / expect)


# ---- real beats ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def beats() -> data.Beats:
    if not (data.mitdb_dir() / "100.dat").is_file():
        missing(f"MIT-BIH records are absent: {data.mitdb_dir()} (they live in ../shared)")
    return data.load_beats()


@pytest.fixture(scope="module")
def split(beats: data.Beats) -> data.Split:
    return data.random_split(beats)


def test_beats_and_splits(beats: data.Beats) -> None:
    # README's annotation counts minus beats too close to a record's ends
    counts = {r: int(np.sum(beats.records == r)) for r in ("100", "101", "109", "111")}
    assert 2235 <= counts["100"] <= 2239 and 1855 <= counts["101"] <= 1860
    assert 2488 <= counts["109"] <= 2492 and 2119 <= counts["111"] <= 2123
    assert beats.features.shape[1] == 127
    np.testing.assert_allclose(beats.features[:, 0], 0.0, atol=1e-12)  # mean removed
    rnd = data.random_split(beats)
    assert np.bincount(rnd.y_test).tolist() == [800] * 4
    assert len(rnd.y_train) + len(rnd.y_test) == len(beats.labels)
    pat = data.patient_split(beats)
    assert np.bincount(pat.y_test).tolist() == [800] * 4
    # patient-wise: no test row equals a training row
    assert not (set(map(bytes, pat.x_test)) & set(map(bytes, pat.x_train)))


def test_screener_and_system_meet_the_targets(split: data.Split) -> None:
    s = S.train(split.x_train, split.y_train, 4)
    r = S.classify(s, split.x_test)
    be = backend.decide(backend.tflm_outputs(backend.mlp_inputs(split.x_test)))
    sm = metrics.summary(split.y_test, r.decision, r.status, be, 4)
    assert sm["system_macro_f1_abnormal"] >= 0.98, sm
    assert sm["wake_rate_abnormal"] >= 0.99, sm
    assert sm["wake_rate_normal"] <= 0.03, sm
    # an independent check of the system figure: sklearn's f1_score
    skm = pytest.importorskip("sklearn.metrics")
    sysd = np.where(r.status != S.FINAL_NORMAL, be, 0)
    assert sm["system_macro_f1_abnormal"] == pytest.approx(
        skm.f1_score(split.y_test, sysd, labels=[1, 2, 3], average="macro"))


def test_protected_table_turns_corruption_into_wakeups(split: data.Split) -> None:
    be = backend.decide(backend.tflm_outputs(backend.mlp_inputs(split.x_test)))
    out = {}
    for prot in (False, True):
        s = S.train(split.x_train, split.y_train, 4, S.ScreenerConfig(protected=prot))
        r = degrade.classify_degraded(s, split.x_test, degrade.Degradation(read_error=0.03))
        out[prot] = metrics.summary(split.y_test, r.decision, r.status, be, 4)
    assert out[True]["screener_macro_f1_abnormal"] <= 0.8
    assert out[True]["system_macro_f1_abnormal"] >= 0.97
    assert out[True]["silent_errors"] < out[False]["silent_errors"]
    assert out[True]["wake_causes_normal"]["invalid"] > 0.5


def test_mlp_int8_compiled_for_host_equals_tflm(split: data.Split, tmp_path) -> None:
    from tflite_micro import runtime

    from generator.targets.hostmodel import build_host_model

    model = build_host_model(backend.MODEL, tmp_path / "mlp")
    x = backend.mlp_inputs(split.x_test[::16])  # 200 real beats
    interp = runtime.Interpreter.from_file(str(backend.MODEL))
    for row in x:
        ours = model.run(row.reshape(1, -1))[0]
        interp.set_input(row.reshape(1, -1), 0)
        interp.invoke()
        assert ours.tobytes() == np.asarray(interp.get_output(0)).tobytes()
    acc = np.mean(backend.decide(backend.tflm_outputs(x)) == split.y_test[::16])
    assert acc >= 0.98


@pytest.mark.slow
def test_mlp_regenerates_byte_identical(tmp_path, beats) -> None:  # noqa: ARG001
    import subprocess
    import sys

    subprocess.run([sys.executable, str(backend.MODEL.parent / "make_models.py"), "--models",
                    "wakeup", "--out", str(tmp_path)], check=True, capture_output=True,
                   timeout=600)
    assert (tmp_path / backend.MODEL.name).read_bytes() == backend.MODEL.read_bytes()
    assert (tmp_path / backend.INPUTS.name).read_bytes() == backend.INPUTS.read_bytes()


# ---- the app's and the CLI's bad inputs ----------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    ({"mode": "shielded"}, "wakeup mode 'shielded' is unknown; known: plain, protected"),
    ({"inputs": "0"}, "inputs=0 is out of range 1..3200"),
    ({"inputs": "many"}, "inputs='many' is not an integer"),
    ({"ql": "Q9"}, "ql='Q9' is unknown"),
])
def test_wakeup_app_bad_options(beats, tmp_path, options, message) -> None:  # noqa: ARG001
    from generator.boards import load_board
    from generator.errors import AppError
    from generator.firmware import generate

    with pytest.raises(AppError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate(load_board("host"), "wakeup", tmp_path / "b", options)
    assert not (tmp_path / "b" / "src").exists()


def test_wakeup_app_too_many_beats_for_the_board(beats, tmp_path) -> None:  # noqa: ARG001
    from generator.boards import load_board
    from generator.errors import AppError
    from generator.firmware import generate

    with pytest.raises(AppError, match=r"3200 beats \(128000 bytes\) do not fit nucleo_g071's "
                       r"128 KiB flash .*; use inputs=2662 or fewer"):
        generate(load_board("nucleo_g071"), "wakeup", tmp_path / "b", {"inputs": "3200"})
    assert not (tmp_path / "b" / "src").exists()


def test_cli_wakeup_bad_arguments(tmp_path, capsys) -> None:
    from generator.cli import main

    out = tmp_path / "rep"
    assert main(["wakeup", "--out", str(out), "--prior", "1.5"]) == 2
    assert "--prior 1.5 must be a probability in [0, 1]" in capsys.readouterr().err
    assert main(["wakeup", "--out", str(out), "--twin-beats", "5000"]) == 2
    assert "--twin-beats 5000 is out of range 0..3200" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_report_without_twins(beats, tmp_path, monkeypatch) -> None:  # noqa: ARG001
    import json

    from generator.wakeup import report

    monkeypatch.setattr(report, "READ_ERRORS", (0.0, 3e-2))
    monkeypatch.setattr(report, "QLS", (None, "Q0", "Q4"))
    monkeypatch.setattr(report, "CODE_BITS", {False: (8, 4), True: (7, 4)})
    out = tmp_path / "rep"
    doc = report.make_report(report.Options(out_dir=out, twin_beats=0))
    names = sorted(p.name for p in out.iterdir())
    assert names == ["confusion.png", "degradation.png", "wakeup_report.json",
                     "wakeup_report.md"]
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary left behind
    saved = json.loads((out / "wakeup_report.json").read_text())
    assert saved["random"]["system_macro_f1_abnormal"] == pytest.approx(
        doc["random"]["system_macro_f1_abnormal"])
    assert all(ok for _, ok in doc["targets"].values()), doc["targets"]
    text = (out / "wakeup_report.md").read_text()
    assert "| random |" in text and "| patient |" in text and "silent errors" in text
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_wakeup_builds_for_a_nucleo(beats, tmp_path) -> None:  # noqa: ARG001
    """The Cortex-M0+ Nucleo image (TIM6 beat timer, .noinit state) compiles and links cleanly
    (-Wall -Wextra -Werror) and passes the build's static checks."""
    from _util import require_toolchain

    from generator.boards import load_board
    from generator.build import run_scons, static_checks

    require_toolchain()
    board = load_board("nucleo_g071")
    art = run_scons(board, "wakeup", {"inputs": "48", "mode": "protected"}, tmp_path / "b")
    assert art.elf.is_file()
    assert static_checks(board, art.elf, art.bin) == []
    main_c = (tmp_path / "b" / "src" / "main.c").read_text()
    assert "wk_timer_start();" in main_c and "ss_board_reset();" in main_c
    timer_c = (tmp_path / "b" / "src" / "wakeup" / "ss_beat_timer.c").read_text()
    assert "TIM6" in timer_c and "0x40001000u" in timer_c
