"""Exponential smoothing as weights over a window (core.smoothing_filter), the linear reference's third base
(issue 34): the weights are statsmodels' own Holt-Winters forecast once the window is long enough for the starting
state to be forgotten, the ridge can choose them, and long series skip them (the search keeps its time)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from core import linear_reference as LR
from core.references import Smoothing, fit_smoothing
from core.smoothing_filter import holt_winters_rows


def _seasonal(n: int, period: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = np.cumsum(rng.normal(0.05, 0.3, n))
    return level + 3.0 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.4, n)


@pytest.mark.parametrize("trend", [False, True])
def test_the_weights_are_statsmodels_forecast_once_the_start_is_forgotten(trend):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    m, h, w = 4, 6, 240
    y = _seasonal(600, m, seed=3)
    fit = Smoothing(alpha=0.35, beta=0.15 if trend else 0.0, gamma=0.3, phi=0.9 if trend else 1.0, trend=trend, period=m)
    kw = {"initial_level": float(y[:m].mean()), "initial_seasonal": y[:m] - y[:m].mean()}
    if trend:
        kw["initial_trend"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(y, trend="add" if trend else None, damped_trend=trend, seasonal="add",
                                     seasonal_periods=m, initialization_method="known", **kw)
        fixed = {"smoothing_level": fit.alpha, "smoothing_seasonal": fit.gamma, "optimized": False}
        if trend:
            fixed.update(smoothing_trend=fit.beta, damping_trend=fit.phi)
        library = np.asarray(model.fit(**fixed).forecast(h))
    ours = holt_winters_rows(fit, w, h) @ y[-w:]
    # The state's start decays as 0.65^240 (level) and 0.7^60 (season): what is left is the recursion itself.
    np.testing.assert_allclose(ours, library, rtol=0, atol=1e-6 * np.ptp(y))


def test_a_constant_window_is_forecast_as_that_constant_and_a_short_window_has_no_weights():
    fit = Smoothing(alpha=0.4, beta=0.1, gamma=0.2, phi=0.95, trend=True, period=12)
    rows = holt_winters_rows(fit, 36, 12)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-9)   # a constant series: level, no trend, no season
    assert holt_winters_rows(fit, 20, 12) is None                   # fewer than two seasons: no phase to average


def test_the_ridge_can_start_from_exponential_smoothing_and_long_series_do_not():
    y = _seasonal(160, 4, seed=1)
    window, horizon = 16, 1
    starts = np.arange(len(y) - window - horizon + 1)
    X = np.stack([y[s:s + window] for s in starts])
    Y = np.stack([y[s + window:s + window + horizon] for s in starts])
    n_train = 110
    series = y[:n_train + window][:, None]
    smooth = LR.smoothing_weights(series[:, 0], 4, window, horizon)
    assert smooth is not None and smooth.shape == (horizon, window)
    ref = LR.fit(X[:n_train, :, None], Y[:n_train, :, None], [0], 4, X[n_train:, :, None], Y[n_train:, :, None],
                 series=series)
    assert ref.bases[0] in ("last", "season", "smooth") and np.asarray(ref.weights).shape == (1, horizon, window)
    # Labels that are exponential smoothing's own forecasts: the ridge starts from that base and adds nothing.
    exact = LR.fit_target(X[:n_train], X[:n_train] @ smooth.T, 4, X[n_train:], X[n_train:] @ smooth.T, smooth=smooth)
    assert exact.bases[0] == "smooth"
    np.testing.assert_allclose(exact.weights[0], smooth, atol=1e-6)
    assert abs(float(exact.bias[0, 0])) < 1e-6
    long = np.resize(y, LR.SMOOTH_MAX_ROWS + 1)
    assert LR.smoothing_weights(long, 4, window, horizon) is None


def test_fit_smoothing_refuses_what_it_cannot_fit():
    from core.references import ReferenceUnavailable

    with pytest.raises(ReferenceUnavailable):
        fit_smoothing(np.ones(50), 4)
    with pytest.raises(ReferenceUnavailable):
        fit_smoothing(np.array([1.0, np.nan, 2.0] * 10), 0)
    s = fit_smoothing(_seasonal(80, 4), 4)
    assert s.period == 4 and 0 <= s.alpha <= 1


@pytest.mark.parametrize("window", [8, 12, 16])
def test_a_noise_free_trend_and_season_is_forecast_exactly(window):
    # The starting state is one least-squares fit of level, slope and phase offsets: a line fitted alone leans
    # with a high-then-low season and was a whole unit off here.
    t = np.arange(60.0)
    y = 5 + 0.3 * t + np.array([2.0, -1.0, 0.5, -1.5])[t.astype(int) % 4]
    fit = Smoothing(alpha=0.1, beta=0.1, gamma=0.66, phi=1.0, trend=True, period=4)
    rows = holt_winters_rows(fit, window, 4)
    np.testing.assert_allclose(rows @ y[-window - 4:-4], y[-4:], atol=1e-9)
