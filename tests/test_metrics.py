"""Scores, baselines and the verdict: hand-computed values, properties, and real Windows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from core import metrics
from core.metrics import (detect_period, evaluate, last_value_forecast, mean_forecast, naive_scale, score,
                          seasonal_naive_forecast)


def test_score_hand_computed():
    s = score([1.0, 2.0, 4.0], [2.0, 2.0, 1.0], mase_scale=2.0)
    assert s["mae"] == pytest.approx(4 / 3)
    assert s["rmse"] == pytest.approx(np.sqrt(10 / 3))
    assert s["smape"] == pytest.approx(100 * (2 * 1 / 3 + 0 + 2 * 3 / 5) / 3)
    assert s["mape"] == pytest.approx(100 * (1 + 0 + 0.75) / 3)
    assert s["mase"] == pytest.approx(2 / 3)
    assert s["n"] == 3


def test_mape_none_near_zero_and_mase_none_without_scale():
    s = score([0.001, 5.0, 10.0], [1.0, 5.0, 10.0])
    assert s["mape"] is None and s["mase"] is None and s["smape"] is not None
    assert score([0.0, 0.0], [0.0, 0.0])["smape"] == 0.0  # both zero is a perfect forecast, not NaN


def test_nan_pairs_are_left_out_and_shapes_checked():
    s = score([1.0, np.nan, 3.0], [2.0, 5.0, 3.0])
    assert s["n"] == 2 and s["mae"] == pytest.approx(0.5)
    assert score([np.nan], [1.0])["mae"] is None
    with pytest.raises(ValueError):
        score([1.0, 2.0], [1.0])


def test_per_target_mase_scale():
    t = np.array([[1.0, 10.0], [2.0, 20.0]])
    p = t + np.array([1.0, 10.0])
    assert score(t, p, np.array([1.0, 10.0]))["mase"] == pytest.approx(1.0)
    assert naive_scale(t).tolist() == [1.0, 10.0]


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=finite), st.data())
def test_score_properties(t, data):
    p = data.draw(arrays(np.float64, t.shape, elements=finite))
    s = score(t, p)
    assert s["mae"] >= 0 and s["rmse"] >= s["mae"] - 1e-9 * max(1.0, s["mae"])  # RMSE >= MAE always
    assert 0 <= s["smape"] <= 200 + 1e-9
    assert score(t, t)["mae"] == 0 and score(t, t)["smape"] == 0
    assert score(t, p)["mae"] == pytest.approx(score(p, t)["mae"])
    shifted = score(t + 7.0, p + 7.0)  # MAE and RMSE do not care where zero is
    assert shifted["mae"] == pytest.approx(s["mae"], rel=1e-6, abs=1e-6)


def test_baselines_on_a_known_series():
    series = np.arange(20, dtype=np.float64)[:, None]  # value == row
    origins = np.array([9, 10])
    labels = origins[:, None] + 1 + np.arange(3)         # rows 10..12 and 11..13
    assert last_value_forecast(series, origins, 3)[..., 0].tolist() == [[9, 9, 9], [10, 10, 10]]
    # period 4: label 10 <- 6, 11 <- 7, 12 <- 8 (one period back is at or before origin 9)
    sn = seasonal_naive_forecast(series, origins, labels, [4])[..., 0]
    assert sn.tolist() == [[6, 7, 8], [7, 8, 9]]
    # period 2 with horizon 3: label 12 needs two periods back to reach at or before origin 9
    assert seasonal_naive_forecast(series, origins, labels, [2])[0, :, 0].tolist() == [8, 9, 8]
    # no period, or a period longer than the history: the last value
    assert seasonal_naive_forecast(series, origins, labels, [None])[0, :, 0].tolist() == [9, 9, 9]
    assert seasonal_naive_forecast(series, origins, labels, [50])[0, :, 0].tolist() == [9, 9, 9]
    assert mean_forecast(series[:5], 2, 3)[..., 0].tolist() == [[2, 2, 2], [2, 2, 2]]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 30), st.integers(1, 5), st.integers(0, 200))
def test_seasonal_naive_is_exact_on_a_periodic_series(period, horizon, seed):
    rng = np.random.default_rng(seed)
    one = rng.normal(size=period)
    series = np.tile(one, 400 // period + 2)[:, None]
    origins = np.arange(period, 300, 7)
    labels = origins[:, None] + 1 + np.arange(horizon)
    sn = seasonal_naive_forecast(series, origins, labels, [period])
    assert np.allclose(sn[..., 0], series[labels, 0])
    assert np.all(labels - origins[:, None] > 0)


def _daily(n=24 * 120, seed=0, amp=3.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return amp * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.1, n)) + rng.normal(0, 0.3, n)


def test_detect_period_finds_daily_cycle_and_weekly():
    s = detect_period(_daily(), "h")
    assert s.period == 24 and s.source == "autocorrelation" and s.strong
    rng = np.random.default_rng(1)
    t = np.arange(7 * 150)
    weekly = 5 * (t % 7 >= 5) + rng.normal(0, 0.5, len(t))
    w = detect_period(weekly, "D")
    assert w.period == 7 and w.strong
    # a 12-step cycle in data with no frequency is still found
    assert detect_period(np.sin(2 * np.pi * np.arange(600) / 12), None).period == 12


def test_detect_period_falls_back_to_frequency_on_noise():
    rng = np.random.default_rng(3)
    walk = np.cumsum(rng.normal(size=2000))
    s = detect_period(walk, "h")
    assert s.natural == 24 and not s.strong
    if s.source != "autocorrelation":
        assert s.period == 24 and s.source == "frequency"
    assert detect_period(np.ones(100), None).period is None
    assert detect_period([1.0, 2.0], "D").period == 7


def test_verdict_sentence_says_better_or_worse_with_numbers():
    base = {"last_value": {"mae": 0.8}, "seasonal_naive": {"mae": 0.53}, "mean": {"mae": 3.0}}
    best, pct, text = metrics.verdict("test", ["temp"], {"mae": 0.41}, base, "mae")
    assert best == "seasonal_naive" and pct == pytest.approx(100 * (0.53 - 0.41) / 0.53)
    assert text == "The model's test MAE for temp is 0.41, 23% better than the best baseline (seasonal naive, 0.53)."
    best, pct, text = metrics.verdict("validation", ["temp"], {"mae": 0.6}, base, "mae")
    assert pct < 0 and "worse" in text and "beat last value (0.8)" in text


# ---------------------------------------------------------------- on real Windows

def _windows(values: np.ndarray, horizon=3, window=24, offset=0, extra=False):
    from core.dataset import Dataset
    from core.windows import SplitSpec, WindowSpec, make_windows
    idx = pd.date_range("2024-01-01", periods=len(values), freq="h", name="time")
    cols = {"temp": values}
    if extra:
        cols["other"] = np.cos(np.arange(len(values)) / 5.0) * 100 + 1000
    ds = Dataset(name="t", frame=pd.DataFrame(cols, index=idx), freq="h", time_col="time")
    targets = ("temp", "other") if extra else ("temp",)
    return make_windows(ds, WindowSpec(targets=targets, features=("temp",), window=window, horizon=horizon,
                                       offset=offset), SplitSpec())


def test_evaluate_on_windows_in_data_units():
    values = _daily()
    w = _windows(values)
    n = w.count("test")
    perfect = evaluate(w, w.y("test"), "test")
    assert perfect["model"]["mae"] == pytest.approx(0, abs=1e-4)
    assert perfect["beats_best"] and perfect["beats_last_value"] and perfect["best_baseline"] in metrics.BASELINES
    assert [r["step"] for r in perfect["per_step"]] == [1, 2, 3]
    assert perfect["seasonality"][0]["period"] == 24
    # the baselines match a hand computation on the raw series
    starts = w.starts("test")
    origins = starts + 23
    labels = origins[:, None] + 1 + np.arange(3)
    actual = values[labels]
    lv = np.abs(values[origins][:, None] - actual).mean()
    assert perfect["baselines"]["last_value"]["mae"] == pytest.approx(lv, rel=1e-5)
    sn = np.abs(values[labels - 24] - actual).mean()
    assert perfect["baselines"]["seasonal_naive"]["mae"] == pytest.approx(sn, rel=1e-5)
    lo, hi = w.parts["train"]
    assert perfect["baselines"]["mean"]["mae"] == pytest.approx(np.abs(values[lo:hi].mean() - actual).mean(), rel=1e-4)
    # the last-value forecast itself, given as the model, ties last value and scores in data units
    lv_scaled = w.scaler.transform(np.repeat(values[origins][:, None, None], 3, axis=1), ["temp"])
    tie = evaluate(w, lv_scaled, "test")
    assert tie["model"]["mae"] == pytest.approx(lv, rel=1e-4) and not tie["beats_last_value"]
    assert "worse" in tie["verdict"] or "0%" in tie["verdict"]
    assert tie["model"]["mase"] == pytest.approx(lv / naive_scale(values[lo:hi])[0], rel=1e-4)
    assert len(perfect["per_step"]) == 3 and n > 0


def test_evaluate_offset_and_target_not_an_input():
    values = _daily(seed=5)
    w = _windows(values, horizon=2, offset=2, extra=True)
    out = evaluate(w, w.y("val"), "val")
    assert out["compared_by"] == "mase" and "MASE" in out["verdict"]
    assert set(out["per_target"]) == {"temp", "other"}
    starts = w.starts("val")
    origins = starts + 23
    other = np.cos(np.arange(len(values)) / 5.0) * 100 + 1000
    labels = origins[:, None] + 3 + np.arange(2)  # offset 2: first label three rows after the origin
    lv = np.abs(other[origins][:, None] - other[labels]).mean()
    assert out["per_target"]["other"]["baselines"]["last_value"]["mae"] == pytest.approx(lv, rel=1e-4)
    assert out["verdict"].startswith("The model's validation MASE")


def test_first_test_windows_and_seasonal_naive_read_before_the_part():
    values = _daily()
    w = _windows(values, horizon=3, window=24)
    v = w.parts["test"][0]
    starts = w.starts("test")
    assert starts[0] + 24 == v  # the first test forecast is for the first test row, from validation inputs
    base = metrics.baselines(w, "test", periods=[24])
    labels = starts[:, None] + 24 + np.arange(3)
    # seasonal naive: one period before each label, also when that row lies before the test part
    np.testing.assert_allclose(base["seasonal_naive"][..., 0], values[labels - 24], rtol=1e-5)
    assert (labels[0] - 24 < v).all()
    np.testing.assert_allclose(base["last_value"][:, 0, 0], values[starts + 23], rtol=1e-5)
    assert base["last_value"][0, 0, 0] == pytest.approx(values[v - 1], rel=1e-5)  # a validation row


def test_verdict_states_its_points_and_a_short_test_part_is_called_weak():
    values = _daily(n=24 * 10)
    w = _windows(values, horizon=3, window=24)
    out = evaluate(w, w.y("test"), "test")
    hi, lo = w.parts["test"][1], w.parts["test"][0]
    assert out["points"] == hi - lo == 36 and out["n_windows"] == 34
    assert out["verdict"].endswith(", over 36 test points.") and out["weak"] is None
    short = _windows(_daily(n=100), horizon=1, window=8)  # 15 test rows
    out = evaluate(short, short.y("test"), "test")
    assert out["points"] == 15 and "over 15 test points" in out["verdict"]
    assert out["weak"].startswith("This comparison is weak: it rests on only 15 test points (fewer than 20)")
    assert "larger share" in out["weak"] and "smaller window" in out["weak"]
    assert metrics.weak_note(20) is None and metrics.weak_note(1, "validation").count("1 validation point ") == 1
