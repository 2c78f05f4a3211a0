"""Exponential smoothing itself as a candidate of the default (issue 34): a "change_linear" spec whose reference is
Holt-Winters over the window (``ModelSpec.linear_base`` "smooth"), nothing chosen on validation, held to the
networks' rule against the naive forecast, at a window of four seasons (or three) that the search gives it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import linear_reference as LR
from core.dataset import Dataset
from core.defaults import default_config
from core.errors import StudioError
from core.models import ModelSpec, choice_label, choice_options, form_choice
from core.naive_default import LINEAR_Z, beats_naive
from core.search_rules import SMOOTH_NO_SEASON, smoothing_window


def _monthly(n: int, seed: int = 0, noise: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 20 + 0.05 * t + 3.0 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(0, 0.15, n)) + rng.normal(0, noise, n)


def _ds(y: np.ndarray) -> Dataset:
    frame = pd.DataFrame({"y": y}, index=pd.date_range("2001-01-01", periods=len(y), freq="MS", name="month"))
    return Dataset(name="m", frame=frame, freq="MS")


def test_the_smooth_base_is_the_smoothing_weights_themselves_with_no_bias():
    y = _monthly(160, seed=2)
    window, horizon = 48, 3
    starts = np.arange(len(y) - window - horizon + 1)
    X = np.stack([y[s:s + window] for s in starts])[:, :, None]
    Y = np.stack([y[s + window:s + window + horizon] for s in starts])[:, :, None]
    series = y[:120, None]
    ref = LR.fit(X[:60], Y[:60], [0], 12, X[60:], Y[60:], series=series, base="smooth")
    expected = LR.smoothing_weights(series[:, 0], 12, window, horizon)
    np.testing.assert_array_equal(ref.weights[0], np.asarray(expected, np.float32))
    assert not np.any(ref.bias) and ref.bases == ("smooth",) and ref.penalties == (None,)
    assert "itself, no ridge" in ref.describe()
    # The ridge on the same windows chooses something else (a penalty, maybe another base): the pin is real.
    ridge = LR.fit(X[:60], Y[:60], [0], 12, X[60:], Y[60:], series=series)
    assert ridge.penalties[0] is not None


def test_the_smooth_base_refuses_a_window_under_two_seasons_and_says_why():
    y = _monthly(160)
    window = 18
    starts = np.arange(len(y) - window)
    X = np.stack([y[s:s + window] for s in starts])[:, :, None]
    Y = y[window:][:, None, None]
    with pytest.raises(StudioError) as e:
        LR.fit(X, Y, [0], 12, series=y[:120, None], base="smooth")
    assert "holds less than two seasons" in e.value.problem and "ridge linear forecast" in str(e.value)
    with pytest.raises(StudioError) as e:
        LR.fit(X, Y, [0], 12, base="smooth")
    assert "no training values" in e.value.problem


def test_the_spec_keeps_the_smooth_base_only_on_a_linear_form_and_round_trips():
    spec = ModelSpec(target_form="change_linear", linear_base="smooth", target_input_index=(0,))
    assert "change from exponential smoothing" in spec.label
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ModelSpec(target_form="change_last", linear_base="smooth").linear_base == ""
    with pytest.raises(StudioError):
        ModelSpec(target_form="change_linear", linear_base="arima", target_input_index=(0,)).validate()
    for choice in ("level", "change_last", "change_linear", "change_smooth"):
        opts = choice_options(choice)
        assert form_choice(opts["target_form"], opts["linear_base"]) == choice
    assert choice_label("change_smooth") == "change from exponential smoothing"


def test_the_smoothing_window_is_four_seasons_else_three_else_skipped_with_the_reason():
    assert smoothing_window(12, 60, 200) == (48, None)
    assert smoothing_window(12, 40, 200) == (36, None)
    window, why = smoothing_window(12, 30, 200)
    assert window is None and "36 steps (3 seasons)" in why and "allows 30" in why
    assert smoothing_window(None, 100, 200) == (SMOOTH_NO_SEASON, None)
    assert "at most 2,000 rows" in smoothing_window(24, 400, 5000)[1]
    assert "not among the inputs" in smoothing_window(12, 60, 200, targets_in=False)[1]


def test_smoothing_is_held_to_the_networks_rule_and_the_ridge_to_the_stricter_one():
    # 1.2 standard errors and 5% ahead of the naive forecast: enough for a network and for exponential smoothing
    # (nothing chosen on validation), not for the ridge, which chose its base and penalty there.
    score, base, se = 0.95, 1.0, 0.05 / 1.2
    assert 1.0 < 0.05 / se < LINEAR_Z
    assert beats_naive(score, base, se, "change_last")
    assert beats_naive(score, base, se, "change_linear", smooth=True)
    assert not beats_naive(score, base, se, "change_linear")


def test_a_run_with_the_smooth_base_adds_back_exponential_smoothing_fitted_on_its_training_part(tmp_path):
    from core.train_config import TrainConfig
    from core.training import train
    from core.windows import make_windows

    ds = _ds(_monthly(150, seed=4))
    cfg = default_config(ds, "y", horizon=2, window=48)
    windows = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    spec = ModelSpec.for_windows(cfg.window_spec, kind="gru", units=4, target_form="change_linear", season_period=12,
                                 linear_base="smooth")
    run = train(windows, spec, TrainConfig(epochs=2, batch_size=16, seed=0), tmp_path / "run", dataset=ds)
    lo, hi = windows.parts["train"]
    expected = LR.smoothing_weights(np.asarray(windows.target_values[lo:hi])[:, 0], 12, 48, 2)
    np.testing.assert_array_equal(np.asarray(run.model_spec.linear_weights, np.float32).reshape(2, 48),
                                  np.asarray(expected, np.float32))
    assert run.model_spec.linear_base == "smooth" and not any(run.model_spec.linear_bias)
    assert run.info["linear_reference"]["penalties"] == [None]


def test_the_search_tries_smoothing_at_four_seasons_and_a_winner_keeps_its_base():
    from core.search import search_default

    ds = _ds(_monthly(200, seed=5))
    result = search_default(ds, default_config(ds, "y", horizon=1))
    smooth = [t for t in result.trials if t.smooth]
    assert len(smooth) >= 1 and smooth[0].window == 48 and smooth[0].score is not None, smooth
    assert smooth[0].label.startswith("change from exponential smoothing")
    best = result.best
    assert result.config.model_options.get("linear_base", "") == ("smooth" if best.smooth else "")
    if best.smooth:
        assert result.config.model_spec().linear_base == "smooth"
        assert "exponential smoothing" in result.config.reasons["target_form"]


def test_a_long_series_skips_the_smoothing_trial_with_its_reason():
    """The weather sample's search keeps its time (issue 34's speed target): past 2,000 training rows no trial."""
    from core.search import smoothing_trial

    y = _monthly(4000)
    frame = pd.DataFrame({"y": y}, index=pd.date_range("2020-01-01", periods=len(y), freq="h", name="time"))
    ds = Dataset(name="h", frame=frame, freq="h")
    base = default_config(ds, "y", horizon=1)
    trial = smoothing_trial(ds, base, base.seasonality.period)
    assert trial.smooth and trial.score is None and "at most 2,000 rows" in trial.skipped


def test_a_smoothing_rescue_is_worded_with_its_own_rule():
    from core.search import Trial
    from core.search_words import why_won

    lowest = Trial("change_both", 24, score=0.9, margin_se=0.2)
    smooth = Trial("change_linear", 48, score=0.95, smooth=True)
    words = why_won(smooth, lowest, "MAE", 0.1, rescued="noise")
    assert "while exponential smoothing beat it by one of its own: exponential smoothing, not the naive one" in words
    ridge = why_won(Trial("change_linear", 24, score=0.95), lowest, "MAE", 0.1, rescued="noise")
    assert "the linear forecast beat it by one and a half of its own and by more than 2%" in ridge
