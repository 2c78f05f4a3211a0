"""The period a model's seasonal form reads and the period its seasonal naive baseline uses are one number
(core.seasons): the default configuration finds it on the raw training values, and the windows keep it for
every baseline, whether the form is multiplicative (log), the quick check cuts the training part, or a backtest
moves the origin back. On 55 yearly murder rates they were 7 and 2, and the search's "naive" default, a
change-from-last-season model, scored 1.00 against the 0.34 of the seasonal naive it claimed to equal."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from core.dataset import Dataset
from core.defaults import default_config, target_seasonality
from core.metrics import baselines, seasonality
from core.models import ModelSpec
from core.windows import SplitSpec, make_windows


def _yearly(seed: int = 113, n: int = 60) -> Dataset:
    # A six-year cycle on a random walk in logs: raw and log differences peak at different lags (12 and 6 for
    # seed 113), both well above the noise.
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    v = np.exp(np.cumsum(rng.normal(0.02, 0.12, n)) + 0.25 * np.sin(2 * np.pi * t / 6) + 1)
    frame = pd.DataFrame({"v": v}, index=pd.date_range("1950-01-01", periods=n, freq="YS", name="year"))
    return Dataset(name="yearly", frame=frame, freq="YS")


def _seasonal_reference(windows, period: int) -> np.ndarray:
    """What a change-from-last-season model with a zero output forecasts, in the data's units."""
    spec = ModelSpec(kind="gru", target_form="change_season", season_period=period, window=windows.spec.window,
                     horizon=windows.spec.horizon, n_inputs=windows.spec.n_inputs, n_targets=1)
    X = np.asarray(windows.X("test"), np.float64)
    ref = X[:, list(spec.season_steps), :][:, :, [0]]
    return np.asarray(windows.scaler.inverse(ref, windows.spec.targets), np.float64)


@pytest.mark.parametrize("log", [False, True])
def test_the_windows_keep_the_period_the_default_gave_the_model(log):
    ds = _yearly()
    cfg = default_config(ds, "v")
    period = cfg.seasonality.period
    assert period and period >= 2
    windows = make_windows(ds, dataclasses.replace(cfg.window_spec, window=max(period, 2) + 1, log=log),
                           cfg.split, cfg.scaler_kind)
    assert seasonality(windows)[0].period == period
    # The seasonal form's reference is, point for point, the seasonal naive baseline it is named after.
    sn = baselines(windows, "test")["seasonal_naive"]
    np.testing.assert_allclose(_seasonal_reference(windows, period), sn, rtol=1e-5)
    # The quick check keeps only the newest training windows; its baselines keep the same period.
    lo, hi = windows.parts["train"]
    cut = dataclasses.replace(windows, parts={**windows.parts, "train": (hi - 20, hi)}, _tf=None)
    assert seasonality(cut)[0].period == period


def test_an_earlier_origin_can_keep_the_validation_origins_season():
    ds = _yearly()
    cfg = default_config(ds, "v")
    origin = make_windows(ds, cfg.window_spec, cfg.split, cfg.scaler_kind)
    idx = ds.frame.index
    early = SplitSpec(train_end=idx[30], val_end=idx[40])
    kept = make_windows(ds, cfg.window_spec, early, cfg.scaler_kind, seasons=origin.seasons)
    assert seasonality(kept) == seasonality(origin)
    found = make_windows(ds, cfg.window_spec, early, cfg.scaler_kind)
    assert seasonality(found)[0] == target_seasonality(ds, "v", early)  # left alone, a split finds its own
